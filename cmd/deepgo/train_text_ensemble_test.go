package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrainTextEnsemble(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "toy.csv")
	writeToyText(t, data, 150, 1, nil)
	bowFlags := "epochs=10,dim=16,buckets=256,lr=0.05"
	out := filepath.Join(dir, "ens")
	r := mustRun(t, "train", "text", "--data", data, "--arch", "ensemble", "--member", "arch=bow,"+bowFlags,
		"--member", "arch=lstm,epochs=10,dim=16,hidden=16,lr=0.01,pool=maxmean,embed-dropout=0.1",
		"--batch-size", "16", "--dev-split", "0.25", "--seed", "3", "--no-track", "--json", "--out", out)
	res := lastJSON(t, r.stdout)
	if acc, _ := res["accuracy"].(float64); acc < 0.9 {
		t.Errorf("ensemble dev accuracy %v, want >= 0.9 (%v)", res["accuracy"], res)
	}
	// 150 rows: 30 validation (--val-split 0.2, set aside), then a quarter
	// of the 120 training rows (10 of each class) for dev.
	if res["val_examples"] != float64(30) || res["dev_split"] != 0.25 || res["train_examples"] != float64(90) {
		t.Errorf("val_examples %v, dev_split %v, train_examples %v; want 30 dev rows of 120, 90 to train",
			res["val_examples"], res["dev_split"], res["train_examples"])
	}
	members, _ := res["members"].([]any)
	if len(members) != 2 {
		t.Fatalf("members %v, want 2", res["members"])
	}
	m0, _ := members[0].(map[string]any)
	m1, _ := members[1].(map[string]any)
	if m0["arch"] != "bow" || m1["arch"] != "lstm" || m0["epochs"] != float64(10) {
		t.Errorf("members %v", members)
	}
	// Member 0 is the model that deepgo train text --arch bow trains with
	// the same flags: the same tokenizer, data, seed and schedule.
	single := mustRun(t, "train", "text", "--data", data, "--arch", "bow", "--epochs", "10", "--dim", "16", "--buckets", "256",
		"--lr", "0.05", "--batch-size", "16", "--dev-split", "0.25", "--seed", "3", "--no-track", "--json",
		"--out", filepath.Join(dir, "bow"))
	sres := lastJSON(t, single.stdout)
	if sres["train_loss"] == nil || sres["train_loss"] != m0["train_loss"] || sres["val_loss"] != m0["val_loss"] {
		t.Errorf("single bow: train_loss %v, val_loss %v; ensemble member 0: %v, %v", sres["train_loss"], sres["val_loss"], m0["train_loss"], m0["val_loss"])
	}
	// The package serves like any text model.
	p := lastJSON(t, mustRun(t, "predict", "--model", out, "--json", "--text", "shares surge after report").stdout)
	if p["class"] != "bullish" {
		t.Errorf("ensemble predicted %v for 'shares surge after report'", p)
	}

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--arch", "bow", "--member", "arch=lstm"}, "--arch ensemble"},
		{[]string{"--arch", "ensemble", "--member", "arch=bow"}, "two or more"},
		{[]string{"--arch", "ensemble", "--member", "arch=bow", "--member", "arch=transformer"}, "bow or lstm"},
		{[]string{"--arch", "ensemble", "--member", "arch=bow,size=3", "--member", "arch=lstm"}, "unknown key"},
		{[]string{"--arch", "ensemble", "--member", "arch=bow,epochs=x", "--member", "arch=lstm"}, "epochs"},
		{[]string{"--arch", "ensemble", "--member", "arch=bow,pool=mean", "--member", "arch=lstm"}, "pool"},
		{[]string{"--arch", "lstm", "--pool", "avg"}, "pool"},
		{[]string{"--arch", "bow", "--dev-split", "1"}, "--dev-split"},
	}
	for _, c := range cases {
		args := append([]string{"train", "text", "--data", data, "--no-track", "--epochs", "1", "--out", filepath.Join(dir, "x")}, c.args...)
		r := deepgo(t, context.Background(), nil, args...)
		msg := strings.Join(errorLines(r.stderr), "\n")
		if r.code != exitUsage || !strings.Contains(msg, c.want) {
			t.Errorf("deepgo %s: exit %d, stderr %q; want a usage error mentioning %q", strings.Join(args, " "), r.code, r.stderr, c.want)
		}
	}
}
