package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/track"
)

// readToyTexts returns the texts of a CSV written by writeToyText.
func readToyTexts(t *testing.T, path string) []string {
	t.Helper()
	d, err := textdata.ReadFile(path, textdata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Texts()
}

// selfTrainFiles writes an unlabeled CSV (column "tweet") and an unlabeled
// JSONL file (field "tweet") for the toy task of writeToyText: u new texts
// (each with a word of its own, so none repeats another or a labelled
// text), followed by the overlap texts (written with extra white space), 5
// repeats of new texts and 3 empty texts. It returns the paths and the
// number of texts in all.
func selfTrainFiles(t *testing.T, dir string, u int, overlap []string) (csvPath, jsonlPath string, n int) {
	t.Helper()
	cues := [][]string{{"surge", "beat", "rally"}, {"plunge", "miss", "slump"}, {"steady", "flat", "unchanged"}}
	var texts []string
	for i := range u {
		texts = append(texts, fmt.Sprintf("shares of company %s in quarter u%d", cues[i%3][i%2], i))
	}
	for _, s := range overlap {
		texts = append(texts, "  "+strings.ReplaceAll(s, " ", " \t ")+"\n")
	}
	for i := range 5 {
		texts = append(texts, strings.ReplaceAll(texts[i], " ", "  "))
	}
	texts = append(texts, "", "   ", "\t")
	// The first half goes to the CSV (with an id column), the rest to JSONL.
	half := len(texts) / 2
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write([]string{"id", "tweet"})
	for i, s := range texts[:half] {
		w.Write([]string{fmt.Sprint(i), s})
	}
	w.Flush()
	csvPath = filepath.Join(dir, "unlabeled.csv")
	writeFile(t, csvPath, []byte(b.String()))
	var j strings.Builder
	for _, s := range texts[half:] {
		line, _ := json.Marshal(map[string]string{"tweet": s})
		j.Write(append(line, '\n'))
	}
	jsonlPath = filepath.Join(dir, "unlabeled.jsonl")
	writeFile(t, jsonlPath, []byte(j.String()))
	return csvPath, jsonlPath, len(texts)
}

// num returns m[key] as an int (-1 if it is not a number).
func num(m map[string]any, key string) int {
	v, ok := m[key].(float64)
	if !ok {
		return -1
	}
	return int(v)
}

// checkSelfTrainCounts checks the self-training fields of a --json result:
// unlabeled and the dropped counts as given, pseudo_labelled within the
// texts left and equal to the per-class sum, and the student trained on the
// labelled rows plus the pseudo-labelled ones.
func checkSelfTrainCounts(t *testing.T, name string, res map[string]any, unlabeled, overlap, labelled int) int {
	t.Helper()
	dropped, _ := res["dropped"].(map[string]any)
	if num(res, "unlabeled") != unlabeled || num(dropped, "overlap") != overlap || num(dropped, "duplicate") != 5 || num(dropped, "empty") != 3 {
		t.Errorf("%s: unlabeled %v, dropped %v; want %d unlabeled, %d overlap, 5 duplicate, 3 empty", name, res["unlabeled"], res["dropped"], unlabeled, overlap)
	}
	n := num(res, "pseudo_labelled")
	t.Logf("%s: %d of %d unlabeled texts pseudo-labelled (%v), teacher %v, student accuracy %v", name, n, unlabeled, res["pseudo_per_class"], res["teacher"], res["accuracy"])
	if n < 0 || n > unlabeled-overlap-5-3 {
		t.Errorf("%s: pseudo_labelled %v, want 0 to %d (the texts left after dropping)", name, res["pseudo_labelled"], unlabeled-overlap-8)
	}
	per, _ := res["pseudo_per_class"].(map[string]any)
	sum := 0
	for _, c := range []string{"bullish", "bearish", "neutral"} {
		if num(per, c) < 0 {
			t.Errorf("%s: pseudo_per_class %v lacks %s", name, per, c)
		}
		sum += num(per, c)
	}
	if len(per) != 3 || sum != n {
		t.Errorf("%s: pseudo_per_class %v sums to %d, pseudo_labelled %d", name, per, sum, n)
	}
	if num(res, "train_examples") != labelled+n {
		t.Errorf("%s: the student trained on %v rows, want %d labelled + %d pseudo-labelled", name, res["train_examples"], labelled, n)
	}
	teacher, _ := res["teacher"].(map[string]any)
	acc, ok := teacher["accuracy"].(float64)
	if !ok || teacher["macro_f1"] == nil || teacher["seconds"] == nil || acc < 0.5 {
		t.Errorf("%s: teacher %v, want its accuracy (>= 0.5), macro_f1 and seconds", name, res["teacher"])
	}
	if s, _ := res["seconds"].(float64); s < teacher["seconds"].(float64) {
		t.Errorf("%s: seconds %v, less than the teacher's %v: want the whole pipeline's", name, s, teacher["seconds"])
	}
	return n
}

func TestTrainTextSelfTraining(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "toy.csv")
	writeToyText(t, data, 120, 1, nil)
	val := filepath.Join(dir, "val.csv")
	writeToyText(t, val, 30, 5, nil)
	// The unlabeled texts: 60 new ones, every validation text and 4
	// training texts (dropped as overlap), 5 repeats and 3 empty texts.
	overlap := append(readToyTexts(t, val), readToyTexts(t, data)[:4]...)
	unlCSV, unlJSONL, total := selfTrainFiles(t, dir, 60, overlap)
	store := filepath.Join(dir, "store.db")
	out := filepath.Join(dir, "student")
	base := []string{"train", "text", "--data", data, "--val", val, "--arch", "bow", "--epochs", "12", "--batch-size", "16",
		"--dim", "16", "--buckets", "256", "--lr", "0.05", "--seed", "3", "--json"}
	args := slices.Concat(base, []string{"--unlabeled", unlCSV, "--unlabeled", unlJSONL, "--unlabeled-text-col", "tweet"})
	r := mustRun(t, slices.Concat(args, []string{"--out", out, "--store", store, "--run-name", "st"})...)
	res := lastJSON(t, r.stdout)
	n := checkSelfTrainCounts(t, "bow", res, total, len(overlap), 120)
	if n == 0 {
		t.Errorf("no unlabeled text pseudo-labelled at threshold 0.9 (%v)", res)
	}
	if res["pseudo_threshold"] != 0.9 || res["val_examples"] != float64(30) {
		t.Errorf("pseudo_threshold %v, val_examples %v; want 0.9 and the 30 --val rows", res["pseudo_threshold"], res["val_examples"])
	}
	for _, want := range []string{"teacher: validation accuracy", fmt.Sprintf("pseudo-labelled %d of %d unlabeled texts (per class ", n, total),
		fmt.Sprintf("dropped %d overlapping", len(overlap)), "5 duplicate, 3 empty"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// The package is the student, with the self-training fields.
	pkg, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if md := pkg.Metadata; md["pseudo_labelled"] != float64(n) || md["unlabeled"] != float64(total) || md["teacher"] == nil ||
		md["dropped"] == nil || md["train_examples"] != float64(120+n) {
		t.Errorf("package metadata %v lacks the self-training fields", md)
	}
	p := lastJSON(t, mustRun(t, "predict", "--model", out, "--json", "--text", "shares surge after report").stdout)
	if p["class"] != "bullish" {
		t.Errorf("the student predicted %v for 'shares surge after report'", p)
	}
	// One run in the store: the student's, marked as self-trained.
	var runs []track.Run
	if err := json.Unmarshal([]byte(mustRun(t, "runs", "ls", "--store", store, "--json").stdout), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("%d runs in the store, want 1 (the student)", len(runs))
	}
	if ps := runs[0].Params; ps["pseudo_labelled"] != fmt.Sprint(n) || ps["pseudo_threshold"] != "0.9" ||
		ps["unlabeled"] != unlCSV+","+unlJSONL || ps["train_examples"] != fmt.Sprint(120+n) {
		t.Errorf("run params %v lack the self-training ones", ps)
	}
	if _, ok := runs[0].Metrics["teacher_val_accuracy"]; !ok {
		t.Errorf("run metrics %v lack teacher_val_accuracy", runs[0].Metrics)
	}

	// The teacher is the model the same command trains without --unlabeled.
	plain := lastJSON(t, mustRun(t, slices.Concat(base, []string{"--out", filepath.Join(dir, "plain"), "--no-track"})...).stdout)
	if teacher := res["teacher"].(map[string]any); plain["accuracy"] != teacher["accuracy"] || plain["macro_f1"] != teacher["macro_f1"] {
		t.Errorf("teacher %v, the same run without --unlabeled: accuracy %v, macro_f1 %v", teacher, plain["accuracy"], plain["macro_f1"])
	}

	// Threshold 1 keeps (almost) nothing; the student still trains and saves.
	out1 := filepath.Join(dir, "student1")
	res1 := lastJSON(t, mustRun(t, slices.Concat(args, []string{"--out", out1, "--pseudo-threshold", "1", "--no-track"})...).stdout)
	n1 := checkSelfTrainCounts(t, "threshold 1", res1, total, len(overlap), 120)
	if n1 > n/2 {
		t.Errorf("threshold 1 pseudo-labelled %d texts, threshold 0.9 %d: want (almost) none", n1, n)
	}
	if n1 == 0 && (res1["train_loss"] != plain["train_loss"] || res1["val_loss"] != plain["val_loss"]) {
		// Nothing added: the student is the teacher trained again.
		t.Errorf("student without pseudo-labelled rows: train_loss %v, val_loss %v; the run without --unlabeled: %v, %v",
			res1["train_loss"], res1["val_loss"], plain["train_loss"], plain["val_loss"])
	}
	if _, err := os.Stat(filepath.Join(out1, "model.json")); err != nil {
		t.Errorf("threshold 1: no package saved: %v", err)
	}
}

func TestCandidateTexts(t *testing.T) {
	ex := func(texts ...string) *textdata.Data {
		d := &textdata.Data{}
		for i, s := range texts {
			d.Examples = append(d.Examples, textdata.Example{Text: s, Label: "a", Line: i + 2})
		}
		return d
	}
	train := ex("stock rises", "shares fall")
	val := ex("market flat today")
	setAside := ex("profit beats")
	unl := ex("new text one", "  market   flat\ttoday ", "", "new text one", "stock rises", " \t ",
		"new  text two", "profit beats", "new text two", "shares fall!")
	cand, drops := candidateTexts(unl.Examples, train, val, nil, setAside)
	if drops != (unlabeledDrops{Empty: 2, Duplicate: 2, Overlap: 3}) {
		t.Errorf("drops %+v, want 2 empty, 2 duplicate, 3 overlap", drops)
	}
	var got []string
	for _, e := range cand {
		got = append(got, fmt.Sprint(e.Line, ":", e.Text))
	}
	if want := "2:new text one|8:new  text two|11:shares fall!"; strings.Join(got, "|") != want {
		t.Errorf("candidates %q, want %q (first copies, in order, as written)", strings.Join(got, "|"), want)
	}
}

func TestBalancePseudo(t *testing.T) {
	// Labelled rows 10, 20, 40; confident pseudo-labels 2, 8 and 40 (ratios
	// 0.2, 0.4, 1.0; median 0.4): caps 4, 8 and 16. Class 2 keeps its 16
	// most confident, the earlier one on a tie.
	var cls []int
	var conf []float32
	for i := range 2 {
		cls, conf = append(cls, 0), append(conf, 0.95+float32(i)*0.01)
	}
	for range 8 {
		cls, conf = append(cls, 1), append(conf, 0.91)
	}
	for i := range 40 {
		cls, conf = append(cls, 2), append(conf, 0.90+float32(i%20)*0.005)
	}
	keep := balancePseudo(cls, conf, []int{10, 20, 40})
	per := make([]int, 3)
	for i, k := range keep {
		if !k {
			continue
		}
		per[cls[i]]++
		if cls[i] == 2 && conf[i] < 0.90+12*0.005-1e-6 {
			t.Errorf("kept class-2 pseudo-label %d of probability %v: less confident ones than the cap allows", i, conf[i])
		}
	}
	if per[0] != 2 || per[1] != 8 || per[2] != 16 {
		t.Errorf("kept per class %v, want [2 8 16]", per)
	}
	// A tie at the cut: ratios 2 and 0.25, median 1.125, so class 0 keeps
	// round(2.25) = 2: the 0.95 and the first of the 0.9s.
	keep = balancePseudo([]int{0, 0, 1, 0, 0}, []float32{0.9, 0.95, 0.99, 0.9, 0.9}, []int{2, 4})
	if want := []bool{true, true, true, false, false}; !slices.Equal(keep, want) {
		t.Errorf("kept %v, want %v", keep, want)
	}
	// A class without labelled rows has no ratio and keeps none of its
	// pseudo-labels; class 1, the only ratio (2/4), keeps its 2.
	keep = balancePseudo([]int{0, 1, 0, 1}, []float32{0.99, 0.95, 0.98, 0.97}, []int{0, 4})
	if want := []bool{false, true, false, true}; !slices.Equal(keep, want) {
		t.Errorf("a class without labelled rows: kept %v, want %v", keep, want)
	}
}

func TestTrainTextSelfTrainingEnsemble(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "toy.csv")
	writeToyText(t, data, 120, 1, nil)
	val := filepath.Join(dir, "val.csv")
	writeToyText(t, val, 30, 5, nil)
	// With --dev-split the --val rows are set aside: still never
	// pseudo-labelled.
	unlCSV, unlJSONL, total := selfTrainFiles(t, dir, 30, readToyTexts(t, val))
	out := filepath.Join(dir, "ens")
	r := mustRun(t, "train", "text", "--data", data, "--val", val, "--dev-split", "0.25", "--arch", "ensemble",
		"--member", "arch=bow,epochs=8,dim=16,buckets=256,lr=0.05", "--member", "arch=lstm,epochs=4,dim=16,hidden=16,lr=0.01",
		"--batch-size", "16", "--seed", "3", "--no-track", "--json", "--out", out,
		"--unlabeled", unlCSV, "--unlabeled", unlJSONL, "--unlabeled-text-col", "tweet", "--pseudo-threshold", "0.6", "--pseudo-balance")
	res := lastJSON(t, r.stdout)
	if res["pseudo_balance"] != true {
		t.Errorf("pseudo_balance %v, want true", res["pseudo_balance"])
	}
	checkSelfTrainCounts(t, "ensemble", res, total, 30, 90) // 120 rows, a quarter for dev
	if members, _ := res["members"].([]any); len(members) != 2 || res["dev_split"] != 0.25 || res["pseudo_threshold"] != 0.6 {
		t.Errorf("members %v, dev_split %v, pseudo_threshold %v", res["members"], res["dev_split"], res["pseudo_threshold"])
	}
	if !strings.Contains(r.stderr, "teacher: dev accuracy") {
		t.Errorf("stderr does not report the teacher's dev score:\n%s", r.stderr)
	}
	p := lastJSON(t, mustRun(t, "predict", "--model", out, "--json", "--text", "shares plunge after report").stdout)
	if p["class"] != "bearish" {
		t.Errorf("the ensemble student predicted %v for 'shares plunge after report'", p)
	}
}

func TestTrainTextSelfTrainingBadInput(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "toy.csv")
	writeToyText(t, data, 60, 1, nil)
	noText := filepath.Join(dir, "notext.csv")
	writeFile(t, noText, []byte("id,body\n1,shares surge\n"))
	good := filepath.Join(dir, "unl.csv")
	writeFile(t, good, []byte("text\nshares surge\n"))
	writeFile(t, filepath.Join(dir, "unl.txt"), []byte("shares surge\n"))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--unlabeled", filepath.Join(dir, "missing.csv")}, exitError, "missing.csv"},
		{[]string{"--unlabeled", noText}, exitError, `no text column "text"`},
		{[]string{"--unlabeled", good, "--unlabeled-text-col", "tweet"}, exitError, `"tweet"`},
		{[]string{"--unlabeled", filepath.Join(dir, "unl.txt")}, exitError, "unknown extension"},
		{[]string{"--unlabeled", good, "--pseudo-threshold", "0"}, exitUsage, "--pseudo-threshold"},
		{[]string{"--unlabeled", good, "--pseudo-threshold", "1.5"}, exitUsage, "--pseudo-threshold"},
		{[]string{"--unlabeled", good, "--pseudo-threshold", "NaN"}, exitUsage, "--pseudo-threshold"},
		{[]string{"--pseudo-threshold", "0.8"}, exitUsage, "need --unlabeled"},
	}
	for _, c := range cases {
		args := append([]string{"train", "text", "--data", data, "--epochs", "1", "--dim", "8", "--buckets", "16", "--no-track",
			"--out", filepath.Join(dir, "m")}, c.args...)
		r := deepgo(t, context.Background(), nil, args...)
		msg := strings.Join(errorLines(r.stderr), "\n")
		if r.code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("deepgo %s: exit %d, stderr %q; want exit %d and an error mentioning %q",
				strings.Join(args, " "), r.code, r.stderr, c.code, c.want)
		}
		if strings.Contains(r.stderr, "internal error") {
			t.Errorf("deepgo %s panicked: %s", strings.Join(args, " "), r.stderr)
		}
		if strings.Contains(r.stderr, "Epoch 1/") {
			t.Errorf("deepgo %s trained before finding the bad input", strings.Join(args, " "))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "m")); !os.IsNotExist(err) {
		t.Errorf("a failed run left a package behind (%v)", err)
	}
}

// TestTrainTextExtraData: --extra-data rows (filtered by --extra-where)
// join the training rows only; those whose text is a validation text are
// dropped and counted; bad extra files are errors.
func TestTrainTextExtraData(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "toy.csv")
	writeToyText(t, data, 60, 1, nil)
	val := filepath.Join(dir, "val.csv")
	writeToyText(t, val, 30, 5, nil)
	valTexts := readToyTexts(t, val)
	// 20 new rows of subset a, 10 of subset b, and 5 validation texts (with
	// other white space) in subset a.
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write([]string{"text", "label", "subset"})
	cues := map[string]string{"bullish": "surge", "bearish": "plunge", "neutral": "steady"}
	labels := []string{"bullish", "bearish", "neutral"}
	for i := range 30 {
		sub := "a"
		if i >= 20 {
			sub = "b"
		}
		l := labels[i%3]
		w.Write([]string{fmt.Sprintf("company %s in extra quarter x%d", cues[l], i), l, sub})
	}
	for _, s := range valTexts[:5] {
		w.Write([]string{" " + strings.ReplaceAll(s, " ", "  "), "neutral", "a"})
	}
	w.Flush()
	extra := filepath.Join(dir, "extra.csv")
	writeFile(t, extra, []byte(b.String()))
	base := []string{"train", "text", "--data", data, "--val", val, "--arch", "bow", "--epochs", "2", "--dim", "8",
		"--buckets", "64", "--json", "--no-track", "--out", filepath.Join(dir, "m")}
	r := mustRun(t, slices.Concat(base, []string{"--extra-data", extra, "--extra-where", "subset=a"})...)
	res := lastJSON(t, r.stdout)
	if num(res, "extra_rows") != 20 || num(res, "extra_overlap") != 5 || num(res, "train_examples") != 80 || num(res, "val_examples") != 30 {
		t.Errorf("extra_rows %v, extra_overlap %v, train_examples %v, val_examples %v; want 20, 5, 80, 30",
			res["extra_rows"], res["extra_overlap"], res["train_examples"], res["val_examples"])
	}
	if !strings.Contains(r.stderr, "extra training rows: 20 from "+extra+" (dropped 5 whose text is a validation or dev text)") {
		t.Errorf("stderr lacks the extra rows line:\n%s", r.stderr)
	}
	pkg, err := model.Load(filepath.Join(dir, "m"))
	if err != nil {
		t.Fatal(err)
	}
	if md := pkg.Metadata; md["extra_rows"] != float64(20) || md["extra_where"] != "subset=a" {
		t.Errorf("package metadata %v lacks extra_rows 20 and extra_where", md)
	}
	// Without --extra-where every row is read: 30 new ones.
	res = lastJSON(t, mustRun(t, slices.Concat(base, []string{"--extra-data", extra})...).stdout)
	if num(res, "extra_rows") != 30 || num(res, "extra_overlap") != 5 {
		t.Errorf("without --extra-where: extra_rows %v, extra_overlap %v; want 30 and 5", res["extra_rows"], res["extra_overlap"])
	}
	// Bad input.
	odd := filepath.Join(dir, "odd.csv")
	writeFile(t, odd, []byte("text,label\nshares surge,bullish\nshares wobble,sideways\n"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--extra-data", odd}, `line 3: label "sideways" does not occur in the training data`},
		{[]string{"--extra-data", filepath.Join(dir, "missing.csv")}, "missing.csv"},
		{[]string{"--extra-where", "subset=a"}, "--extra-where needs --extra-data"},
		{[]string{"--extra-data", extra, "--extra-where", "nocol=a"}, "nocol"},
	} {
		r := deepgo(t, context.Background(), nil, slices.Concat(base, c.args)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
