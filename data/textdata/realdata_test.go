package textdata_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/text"
)

func datasets(t testing.TB) string {
	t.Helper()
	root := filepath.Join(testutil.RepoRoot(), "..", "shared", "datasets")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("real datasets not found at %s (they live in the shared folder next to the repository): %v", root, err)
	}
	return root
}

func read(t *testing.T, path string, opt textdata.Options) *textdata.Data {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not present: %v", path, err)
	}
	d, err := textdata.ReadFile(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func counts(d *textdata.Data) map[string]int {
	m := map[string]int{}
	for _, e := range d.Examples {
		m[e.Label]++
	}
	return m
}

func checkCounts(t *testing.T, name string, d *textdata.Data, n int, perLabel map[string]int) {
	t.Helper()
	if len(d.Examples) != n || d.Skipped != 0 {
		t.Errorf("%s: %d examples (%d skipped), README says %d", name, len(d.Examples), d.Skipped, n)
	}
	if perLabel != nil {
		if got := counts(d); !mapsEqual(got, perLabel) {
			t.Errorf("%s: label counts %v, README says %v", name, got, perLabel)
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The counts below are the split sizes and label counts in each dataset's
// README.md.

func TestRealTwitterSentiment(t *testing.T) {
	dir := filepath.Join(datasets(t), "twitter_financial_news_sentiment")
	train := read(t, filepath.Join(dir, "sent_train.csv"), textdata.Options{})
	valid := read(t, filepath.Join(dir, "sent_valid.csv"), textdata.Options{})
	checkCounts(t, "train", train, 9543, map[string]int{"0": 1442, "1": 1923, "2": 6178})
	checkCounts(t, "valid", valid, 2388, map[string]int{"0": 347, "1": 475, "2": 1566})
	classes := textdata.Classes(train)
	tok, err := text.TrainWordPiece(train.Texts(), text.DefaultWordPieceConfig(4000))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := textdata.NewDataset(valid, tok, classes, textdata.DatasetOptions{MaxLen: 64, AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.ClassCounts(), []int{347, 475, 1566}) {
		t.Errorf("valid class counts %v", ds.ClassCounts())
	}
	n := 0
	for b := range ds.Batches(textdata.BatchConfig{BatchSize: 128, Shuffle: true, Seed: 1}, 0) {
		if b.IDs.Size(1) > 64 || b.IDs.Size(1) < 3 {
			t.Errorf("batch width %d", b.IDs.Size(1))
		}
		n += b.Size()
	}
	if n != 2388 {
		t.Errorf("batches hold %d examples", n)
	}
}

func TestRealTwitterTopic(t *testing.T) {
	dir := filepath.Join(datasets(t), "twitter_financial_news_topic")
	train := read(t, filepath.Join(dir, "topic_train.csv"), textdata.Options{})
	valid := read(t, filepath.Join(dir, "topic_valid.csv"), textdata.Options{})
	checkCounts(t, "train", train, 16990, nil)
	checkCounts(t, "valid", valid, 4117, nil)
	c := counts(train)
	if c["2"] != 3545 || c["11"] != 44 || c["10"] != 69 {
		t.Errorf("train counts of classes 2, 11, 10: %d %d %d, README says 3545 44 69", c["2"], c["11"], c["10"])
	}
	classes := textdata.Classes(train, valid)
	want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19"}
	if !slices.Equal(classes, want) {
		t.Errorf("classes %q", classes)
	}
}

func TestRealPhrasebank(t *testing.T) {
	dir := filepath.Join(datasets(t), "financial_phrasebank")
	all := read(t, filepath.Join(dir, "financial_phrasebank.csv"), textdata.Options{TextCol: "sentence", Keep: []string{"agreement_subset"}})
	checkCounts(t, "50Agree", all, 4846, map[string]int{"negative": 604, "neutral": 2879, "positive": 1363})
	allAgree := all.Filter(func(e textdata.Example) bool { return e.Extra[0] == "100" })
	checkCounts(t, "AllAgree", allAgree, 2264, map[string]int{"negative": 303, "neutral": 1391, "positive": 570})
	if got := textdata.Classes(all); !slices.Equal(got, []string{"negative", "neutral", "positive"}) {
		t.Errorf("classes %q", got)
	}
}

func TestRealReuters(t *testing.T) {
	dir := filepath.Join(datasets(t), "reuters21578_modapte")
	train := read(t, filepath.Join(dir, "train.jsonl"), textdata.Options{TextCol: "body", Unlabeled: true})
	test := read(t, filepath.Join(dir, "test.jsonl"), textdata.Options{TextCol: "body", Unlabeled: true})
	checkCounts(t, "train", train, 9603, nil)
	checkCounts(t, "test", test, 3299, nil)
	empty := 0
	for _, e := range train.Examples {
		if e.Text == "" {
			empty++
		}
	}
	if empty != 787 { // the BRIEF documents (title only)
		t.Errorf("%d train documents with an empty body, README says 787", empty)
	}
	// Multi-label topics are reported as an error, not silently flattened.
	if _, err := textdata.ReadFile(filepath.Join(dir, "test.jsonl"), textdata.Options{TextCol: "body", LabelCol: "topics"}); err == nil {
		t.Error("topics as a label: want a multi-label error")
	}
}

func TestRealChnSentiCorp(t *testing.T) {
	dir := filepath.Join(datasets(t), "chnsenticorp")
	opt := textdata.Options{TextCol: "text_a"}
	train := read(t, filepath.Join(dir, "train.tsv"), opt)
	dev := read(t, filepath.Join(dir, "dev.tsv"), opt)
	test := read(t, filepath.Join(dir, "test.tsv"), opt)
	checkCounts(t, "train", train, 9600, map[string]int{"0": 4802, "1": 4798})
	checkCounts(t, "dev", dev, 1200, map[string]int{"0": 610, "1": 590})
	checkCounts(t, "test", test, 1200, map[string]int{"0": 598, "1": 602})
	tok, err := text.TrainWordPiece(dev.Texts(), text.DefaultWordPieceConfig(5000))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := textdata.NewDataset(test, tok, textdata.Classes(train), textdata.DatasetOptions{MaxLen: 256, AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.ClassCounts(), []int{598, 602}) {
		t.Errorf("test class counts %v", ds.ClassCounts())
	}
	// One token per Chinese character: "很好" is two tokens.
	if ids := tok.Encode("很好"); len(ids) != 2 {
		t.Errorf("很好 -> %v", ids)
	}
}
