package main

import (
	"context"
	"encoding/csv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeToyText writes a CSV of a separable 3-class toy task: each text
// holds a cue word of its class among filler words. Rows in noLabel get an
// empty label.
func writeToyText(t *testing.T, path string, n int, seed uint64, noLabel map[int]bool) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 2))
	cues := [][]string{{"surge", "beat", "rally"}, {"plunge", "miss", "slump"}, {"steady", "flat", "unchanged"}}
	labels := []string{"bullish", "bearish", "neutral"}
	filler := []string{"the", "stock", "shares", "of", "company", "in", "quarter", "after", "report"}
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write([]string{"text", "label"})
	for i := range n {
		c := i % 3
		var words []string
		for range 2 + r.IntN(5) {
			words = append(words, filler[r.IntN(len(filler))])
		}
		words = append(words[:1], append([]string{cues[c][r.IntN(3)]}, words[1:]...)...)
		l := labels[c]
		if noLabel[i] {
			l = ""
		}
		w.Write([]string{strings.Join(words, " "), l})
	}
	w.Flush()
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTrainTextAndPredict(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "toy.csv")
	writeToyText(t, data, 150, 1, map[int]bool{4: true, 9: true})
	for _, arch := range []string{"bow", "lstm"} {
		out := filepath.Join(dir, "model-"+arch)
		args := []string{"train", "text", "--data", data, "--arch", arch, "--epochs", "12", "--batch-size", "16",
			"--dim", "16", "--no-track", "--out", out, "--json", "--class-weights", "--val-split", "0.2", "--seed", "3"}
		if arch == "bow" {
			args = append(args, "--buckets", "256", "--lr", "0.05")
		} else {
			args = append(args, "--lr", "0.01")
		}
		r := mustRun(t, args...)
		if !strings.Contains(r.stderr, "skipped 2 rows without a label (lines 6 11)") {
			t.Errorf("%s: stderr does not report the skipped rows:\n%s", arch, r.stderr)
		}
		res := lastJSON(t, r.stdout)
		if acc, _ := res["accuracy"].(float64); acc < 0.9 {
			t.Errorf("%s: validation accuracy %v, want >= 0.9 (%v)", arch, res["accuracy"], res)
		}
		if f1, _ := res["macro_f1"].(float64); f1 < 0.9 {
			t.Errorf("%s: macro_f1 %v, want >= 0.9", arch, res["macro_f1"])
		}
		pc, _ := res["per_class_f1"].(map[string]any)
		if len(pc) != 3 || pc["bullish"] == nil {
			t.Errorf("%s: per_class_f1 %v, want the 3 labels", arch, res["per_class_f1"])
		}
		if res["val_examples"] != float64(30) { // 148 labelled rows: 50/49/49 → 10+10+10
			t.Errorf("%s: %v validation examples, want 30 (stratified 20%%)", arch, res["val_examples"])
		}

		// predict --text, including an empty, a huge and an invalid UTF-8 text.
		huge := strings.Repeat("slump ", 200000)
		r = mustRun(t, "predict", "--model", out, "--json", "--text", "shares surge after report",
			"--text", "", "--text", huge, "--text", "plunge \xff\xfe of stock")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 4 {
			t.Fatalf("%s: predict printed %d lines, want 4:\n%s", arch, len(lines), r.stdout)
		}
		if p := lastJSON(t, lines[0]); p["class"] != "bullish" {
			t.Errorf("%s: 'shares surge after report' predicted %v", arch, p["class"])
		}
		if p := lastJSON(t, lines[2]); p["class"] != "bearish" {
			t.Errorf("%s: a long run of 'slump' predicted %v", arch, p["class"])
		}
		// --text-file, plain output.
		tf := filepath.Join(dir, "texts.txt")
		os.WriteFile(tf, []byte("stock steady in quarter\r\n\nthe company rally\n"), 0o644)
		r = mustRun(t, "predict", "--model", out, "--text-file", tf)
		if !strings.Contains(r.stdout, tf+":1: neutral") || !strings.Contains(r.stdout, tf+":3: bullish") {
			t.Errorf("%s: predict --text-file output:\n%s", arch, r.stdout)
		}
	}
}

func TestTrainTextBadInput(t *testing.T) {
	dir := t.TempDir()
	ragged := filepath.Join(dir, "ragged.csv")
	os.WriteFile(ragged, []byte("text,label\nhello there,a\nbad row,b,extra\nfine,b\n"), 0o644)
	good := filepath.Join(dir, "good.csv")
	writeToyText(t, good, 30, 2, nil)
	names := filepath.Join(dir, "labels.tsv")
	os.WriteFile(names, []byte("label\tname\nbullish\tUp\nbearish\tDown\n"), 0o644)
	badNames := filepath.Join(dir, "bad.tsv")
	os.WriteFile(badNames, []byte("label\tname\nbullish\n"), 0o644)
	model := filepath.Join(dir, "m")
	mustRun(t, "train", "text", "--data", good, "--epochs", "1", "--dim", "8", "--buckets", "16", "--no-track", "--out", model, "--label-names", names)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"train", "text", "--data", ragged, "--no-track", "--out", filepath.Join(dir, "x")}, exitError, "line 3"},
		{[]string{"train", "text", "--data", good, "--arch", "cnn", "--no-track"}, exitUsage, "--arch"},
		{[]string{"train", "text", "--data", good, "--text-col", "nope", "--no-track"}, exitError, "nope"},
		{[]string{"train", "text", "--data", good, "--lora-rank", "4", "--no-track"}, exitUsage, "--pretrained"},
		{[]string{"train", "text", "--data", good, "--where", "oops", "--no-track"}, exitUsage, "--where"},
		{[]string{"train", "text", "--data", filepath.Join(dir, "missing.csv"), "--no-track"}, exitError, "missing.csv"},
		{[]string{"predict", "--model", model}, exitUsage, "--text"},
		{[]string{"train", "text", "--data", good, "--label-names", badNames, "--no-track"}, exitError, "line 2"},
		{[]string{"predict", "--model", model, "--text", "a", "file.png"}, exitUsage, "not both"},
		{[]string{"predict", "--model", model, "--text-file", filepath.Join(dir, "none.txt")}, exitError, "none.txt"},
	}
	for _, c := range cases {
		r := deepgo(t, context.Background(), nil, c.args...)
		msg := strings.Join(errorLines(r.stderr), "\n")
		if r.code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("deepgo %s: exit %d, stderr %q; want exit %d and an error mentioning %q",
				strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
		if strings.Contains(r.stderr, "internal error") {
			t.Errorf("deepgo %s panicked: %s", strings.Join(c.args, " "), r.stderr)
		}
	}
	// A text model given --text works; an image/tabular path is refused with a clear error.
	r := mustRun(t, "predict", "--model", model, "--text", "")
	if !strings.Contains(r.stdout, "text 1:") || !strings.Contains(r.stdout, "Up:") || !strings.Contains(r.stdout, "Down:") || !strings.Contains(r.stdout, "neutral:") {
		t.Errorf("predict of an empty text with --label-names Up/Down: %q", r.stdout)
	}
}
