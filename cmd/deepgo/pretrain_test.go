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

func TestPretrainWord2VecThenTrain(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "toy.csv")
	writeToyText(t, data, 150, 6, nil)
	vec := filepath.Join(dir, "w2v")
	r := mustRun(t, "pretrain", "text", "--objective", "word2vec", "--data", data, "--out", vec, "--dim", "16",
		"--min-count", "1", "--epochs", "2", "--seed", "3")
	if !strings.Contains(r.stdout, "16-dimensional vectors") || !strings.Contains(r.stdout, "saved model package to "+vec) {
		t.Fatalf("stdout: %s", r.stdout)
	}
	w, err := textmodel.LoadWordVectors(vec)
	if err != nil {
		t.Fatal(err)
	}
	if w.Dim() != 16 || w.Metadata["epochs"] != float64(2) {
		t.Fatalf("dim %d, metadata %v", w.Dim(), w.Metadata)
	}
	for _, c := range []struct {
		arch  string
		extra []string
	}{{"lstm", nil}, {"bow", []string{"--buckets", "0", "--freeze-embeddings"}}} {
		out := filepath.Join(dir, "clf-"+c.arch)
		args := append([]string{"train", "text", "--data", data, "--arch", c.arch, "--pretrained", vec, "--epochs", "1",
			"--batch-size", "16", "--no-track", "--out", out, "--json"}, c.extra...)
		r := mustRun(t, args...)
		m := lastJSON(t, r.stdout)
		if m["pretrained_rows"] == nil || m["pretrained_rows"].(float64) < 10 || m["accuracy"] == nil {
			t.Fatalf("%s: %v", c.arch, m)
		}
		if !strings.Contains(r.stderr, "initialised the embeddings of") {
			t.Errorf("%s: stderr %s", c.arch, r.stderr)
		}
		if frozen := c.extra != nil; m["frozen_embeddings"] != frozen {
			t.Errorf("%s: frozen_embeddings %v, want %v", c.arch, m["frozen_embeddings"], frozen)
		}
		mustRun(t, "predict", "--model", out, "--text", "shares surge after report")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--arch", "transformer", "--pretrained", vec}, "initialise --arch bow or lstm"},
		{[]string{"--arch", "lstm", "--pretrained", vec, "--dim", "8"}, "have 16 dimensions"},
		{[]string{"--arch", "bow", "--pretrained", vec, "--freeze-embeddings"}, "--buckets 0"},
		{[]string{"--arch", "lstm", "--pretrained", vec, "--lora-rank", "2"}, "not word vectors"},
		{[]string{"--arch", "lstm", "--freeze-embeddings"}, "needs --pretrained"},
		{[]string{"--arch", "lstm", "--limit", "-1"}, "--limit"},
	} {
		args := append([]string{"train", "text", "--data", data, "--no-track", "--out", filepath.Join(dir, "x")}, c.args...)
		r := deepgo(t, context.Background(), nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("deepgo %s: exit %d, stderr %q; want a usage error mentioning %q", strings.Join(args, " "), r.code, r.stderr, c.want)
		}
	}
	if r := deepgo(t, context.Background(), nil, "pretrain", "text", "--objective", "glove", "--data", data, "--out", filepath.Join(dir, "x")); r.code != exitUsage {
		t.Errorf("--objective glove: exit %d", r.code)
	}
	// A package of neither kind is an error naming the problem.
	if r := deepgo(t, context.Background(), nil, "train", "text", "--data", data, "--pretrained", filepath.Join(dir, "clf-lstm"), "--no-track", "--out", filepath.Join(dir, "x")); r.code != exitError || !strings.Contains(r.stderr, "neither an MLM encoder nor word vectors") {
		t.Errorf("--pretrained of a classifier: exit %d, stderr %s", r.code, r.stderr)
	}
}
