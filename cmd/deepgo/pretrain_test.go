package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/textmodel"
)

func TestPretrainTextThenFineTune(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "toy.csv")
	writeToyText(t, data, 120, 5, nil)
	enc := filepath.Join(dir, "mlm")
	r := mustRun(t, "pretrain", "text", "--data", data, "--out", enc, "--epochs", "2", "--batch-size", "16",
		"--vocab-size", "100", "--dim", "16", "--hidden", "32", "--heads", "2", "--layers", "1", "--max-len", "16", "--seed", "2")
	if !strings.Contains(r.stdout, "saved model package to "+enc) {
		t.Fatalf("stdout: %s", r.stdout)
	}
	p, err := textmodel.LoadPretrained(enc)
	if err != nil {
		t.Fatal(err)
	}
	if p.Encoder.Cfg.Dim != 16 || p.Encoder.Cfg.MaxLen != 16 || p.Metadata["steps"] == nil {
		t.Fatalf("config %+v, metadata %v", p.Encoder.Cfg, p.Metadata)
	}
	for _, rank := range []string{"0", "2"} {
		out := filepath.Join(dir, "clf-"+rank)
		r := mustRun(t, "train", "text", "--data", data, "--pretrained", enc, "--lora-rank", rank, "--epochs", "1",
			"--batch-size", "16", "--no-track", "--out", out, "--json")
		if m := lastJSON(t, r.stdout); m["accuracy"] == nil && m["val_accuracy"] == nil {
			t.Fatalf("lora rank %s: no accuracy in %v", rank, m)
		}
		mustRun(t, "predict", "--model", out, "--text", "shares surge after report")
	}

	for _, args := range [][]string{
		{"pretrain", "text", "--out", filepath.Join(dir, "x")},
		{"pretrain", "text", "--data", data},
		{"pretrain", "text", "--data", data, "--corpus", "financial", "--out", filepath.Join(dir, "x")},
		{"pretrain", "text", "--corpus", "legal", "--out", filepath.Join(dir, "x")},
	} {
		if r := deepgo(t, context.Background(), nil, args...); r.code != exitUsage {
			t.Errorf("deepgo %s: exit %d, want %d (stderr %s)", strings.Join(args, " "), r.code, exitUsage, r.stderr)
		}
	}
	if r := deepgo(t, context.Background(), nil, "pretrain", "text", "--data", filepath.Join(dir, "missing.csv"), "--out", filepath.Join(dir, "x")); r.code != exitError {
		t.Errorf("missing file: exit %d, stderr %s", r.code, r.stderr)
	}
}
