package textdata_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/text"
)

func TestReadCSV(t *testing.T) {
	in := "\ufefftext,label,agree\n" +
		"\"Shares, up\",positive,100\n" +
		"\"multi\nline\",  negative ,66\n" +
		"no label,,50\n" +
		",neutral,50\n" +
		"also none,  ,50\n"
	d, err := textdata.ReadCSV(strings.NewReader(in), textdata.Options{Keep: []string{"agree"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Texts(); !slices.Equal(got, []string{"Shares, up", "multi\nline", ""}) {
		t.Errorf("texts %q", got)
	}
	if got := d.Labels(); !slices.Equal(got, []string{"positive", "negative", "neutral"}) {
		t.Errorf("labels %q", got)
	}
	if d.Skipped != 2 || !slices.Equal(d.SkippedLines, []int{5, 7}) {
		t.Errorf("skipped %d at lines %v, want 2 at [5 7]", d.Skipped, d.SkippedLines)
	}
	if lines := []int{d.Examples[0].Line, d.Examples[1].Line, d.Examples[2].Line}; !slices.Equal(lines, []int{2, 3, 6}) {
		t.Errorf("lines %v", lines)
	}
	if d.Examples[1].Extra[0] != "66" {
		t.Errorf("extra %q", d.Examples[1].Extra)
	}
	if f := d.Filter(func(e textdata.Example) bool { return e.Extra[0] == "100" }); len(f.Examples) != 1 || f.Skipped != 2 {
		t.Errorf("filter kept %d", len(f.Examples))
	}

	bad := map[string]string{
		"ragged":    "text,label\na,1\n\"b\nc\",2\nd,3,extra\n",
		"nocol":     "body,label\na,1\n",
		"nolabel":   "text,y\na,1\n",
		"dup":       "text,text,label\na,b,1\n",
		"empty":     "",
		"badquote":  "text,label\na\"b,1\n",
		"keepmiss":  "text,label\na,1\n",
		"shortline": "text,label\nonly\n",
	}
	want := map[string]string{
		"ragged": "line 5: ragged row with 3 fields, the header has 2", "nocol": `no text column "text"`,
		"nolabel": `no label column "label"`, "dup": `"text" twice`, "empty": "empty input",
		"badquote": "line 2", "keepmiss": `no kept column "x"`, "shortline": "line 2: ragged row with 1 fields",
	}
	for name, data := range bad {
		opt := textdata.Options{}
		if name == "keepmiss" {
			opt.Keep = []string{"x"}
		}
		_, err := textdata.ReadCSV(strings.NewReader(data), opt)
		if err == nil || !strings.Contains(err.Error(), want[name]) || !strings.HasPrefix(err.Error(), "textdata: ") {
			t.Errorf("%s: err %v, want one containing %q", name, err, want[name])
		}
	}
	// Unlabeled reads every row.
	d, err = textdata.ReadCSV(strings.NewReader("text,label\na,\nb,1\n"), textdata.Options{Unlabeled: true})
	if err != nil || len(d.Examples) != 2 || d.Skipped != 0 {
		t.Errorf("unlabeled: %+v %v", d, err)
	}
}

func TestReadTSVAndFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.tsv")
	if err := os.WriteFile(p, []byte("label\ttext_a\n1\t\"quoted\" text, with comma\n    0\tother\r\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := textdata.ReadFile(p, textdata.Options{TextCol: "text_a"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Texts(), []string{`"quoted" text, with comma`, "other"}) || !slices.Equal(d.Labels(), []string{"1", "0"}) {
		t.Errorf("tsv: %q %q", d.Texts(), d.Labels())
	}
	rag := filepath.Join(dir, "r.tsv")
	os.WriteFile(rag, []byte("label\ttext_a\n1\ta\tb\n"), 0o644)
	if _, err := textdata.ReadFile(rag, textdata.Options{TextCol: "text_a"}); err == nil || !strings.Contains(err.Error(), "r.tsv: line 2: ragged") {
		t.Errorf("ragged tsv: %v", err)
	}
	if _, err := textdata.ReadFile(filepath.Join(dir, "x.parquet"), textdata.Options{}); err == nil {
		t.Error("missing file: want error")
	}
	other := filepath.Join(dir, "x.txt")
	os.WriteFile(other, []byte("x"), 0o644)
	if _, err := textdata.ReadFile(other, textdata.Options{}); err == nil || !strings.Contains(err.Error(), "unknown extension") {
		t.Errorf("txt: %v", err)
	}
}

func TestReadJSONL(t *testing.T) {
	in := `{"text": "a", "label": "pos", "k": 1}` + "\n" +
		"\n" +
		`{"text": "b", "label": 2}` + "\n" +
		`{"text": "c"}` + "\n" +
		`{"text": "d", "label": null}` + "\n" +
		`{"text": "e", "label": " neg "}`
	d, err := textdata.ReadJSONL(strings.NewReader(in), textdata.Options{Keep: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Texts(), []string{"a", "b", "e"}) || !slices.Equal(d.Labels(), []string{"pos", "2", "neg"}) {
		t.Errorf("got %q %q", d.Texts(), d.Labels())
	}
	if d.Skipped != 2 || !slices.Equal(d.SkippedLines, []int{4, 5}) || d.Examples[2].Line != 6 {
		t.Errorf("skipped %d %v, line %d", d.Skipped, d.SkippedLines, d.Examples[2].Line)
	}
	if d.Examples[0].Extra[0] != "1" || d.Examples[1].Extra[0] != "" {
		t.Errorf("extra %q %q", d.Examples[0].Extra, d.Examples[1].Extra)
	}
	bad := map[string]string{
		`{"text": "a", "label": 1}` + "\n" + `{"label": 1}`: "line 2: no text field",
		`{"text": 5, "label": 1}`:                           "line 1: text field",
		`{"text": "a", "label": ["x", "y"]}`:                "multi-label",
		"{\"text\": \"a\", \"label\": 1}\n{oops\n":          "line 2: not a JSON object",
		`[1, 2]`: "line 1: not a JSON object",
	}
	for in, want := range bad {
		if _, err := textdata.ReadJSONL(strings.NewReader(in), textdata.Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", in, err, want)
		}
	}
}

func TestClasses(t *testing.T) {
	mk := func(labels ...string) *textdata.Data {
		d := &textdata.Data{}
		for _, l := range labels {
			d.Examples = append(d.Examples, textdata.Example{Label: l})
		}
		return d
	}
	if got := textdata.Classes(mk("10", "2", "0", "2"), mk("1")); !slices.Equal(got, []string{"0", "1", "2", "10"}) {
		t.Errorf("numeric classes %q", got)
	}
	if got := textdata.Classes(mk("positive", "negative", "10", "neutral")); !slices.Equal(got, []string{"10", "negative", "neutral", "positive"}) {
		t.Errorf("string classes %q", got)
	}
	if got := textdata.Classes(mk("b", "a"), mk("a", "c")); !slices.Equal(got, textdata.Classes(mk("c", "a", "b"))) {
		t.Errorf("classes depend on order: %q", got)
	}
}

func tokenizer(t testing.TB, texts []string) text.Tokenizer {
	tok, err := text.TrainWordPiece(texts, text.DefaultWordPieceConfig(200))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sample() *textdata.Data {
	d := &textdata.Data{}
	texts := []string{"shares jumped", "earnings fell sharply today", "", "profit up", "the stock dropped after the report", strings.Repeat("big ", 1<<18)}
	labels := []string{"pos", "neg", "neu", "pos", "neg", "neu"}
	for i := range texts {
		d.Examples = append(d.Examples, textdata.Example{Text: texts[i], Label: labels[i], Line: i + 2})
	}
	return d
}

func TestDataset(t *testing.T) {
	d := sample()
	tok := tokenizer(t, d.Texts()[:5])
	classes := textdata.Classes(d)
	ds, err := textdata.NewDataset(d, tok, classes, textdata.DatasetOptions{MaxLen: 8, AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 6 || !slices.Equal(ds.Classes(), []string{"neg", "neu", "pos"}) || !slices.Equal(ds.Targets(), []int64{2, 0, 1, 2, 0, 1}) {
		t.Fatalf("len %d classes %q targets %v", ds.Len(), ds.Classes(), ds.Targets())
	}
	if !slices.Equal(ds.ClassCounts(), []int{2, 2, 2}) {
		t.Errorf("class counts %v", ds.ClassCounts())
	}
	ex, err := ds.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	plain := tok.Encode("shares jumped")
	want := append(append([]int64{text.ClsID}, toInt64(plain[:min(len(plain), 6)])...), text.SepID)
	if !slices.Equal(ex.Input.Int64s(), want) || ex.Input.Dim() != 1 || ex.Target.Dim() != 0 || ex.Target.Int64s()[0] != 2 {
		t.Errorf("example 0: %v %v", ex.Input, ex.Target)
	}
	if ex, _ := ds.Get(2); !slices.Equal(ex.Input.Int64s(), []int64{text.ClsID, text.SepID}) {
		t.Errorf("empty text -> %v", ex.Input.Int64s())
	}
	if ex, _ := ds.Get(5); ex.Input.Size(0) != 8 { // 1 MB text truncated
		t.Errorf("1 MB text -> %d ids", ex.Input.Size(0))
	}
	if _, err := ds.Get(6); err == nil {
		t.Error("Get(6): want error")
	}
	// data.Loader cannot stack variable-length examples...
	ld := data.NewLoader(ds, data.LoaderConfig{BatchSize: 3})
	for _, err := range ld.Batches(0) {
		if err == nil || !strings.Contains(err.Error(), "cannot batch") {
			t.Errorf("loader over variable lengths: err %v", err)
		}
		break
	}
	// ... Batches pads per batch, in data.Loader's seeded order.
	var seen []int
	for b := range ds.Batches(textdata.BatchConfig{BatchSize: 4, Shuffle: true, Seed: 7}, 3) {
		T := b.IDs.Size(1)
		for k, i := range b.Indices {
			row := b.IDs.Int64s()[k*T : (k+1)*T]
			ids := ds.IDs(i)
			if b.Lengths[k] != len(ids) || !slices.Equal(row[:len(ids)], ids) || slices.ContainsFunc(row[len(ids):], func(v int64) bool { return v != text.PadID }) {
				t.Errorf("batch row %d (example %d): %v vs %v", k, i, row, ids)
			}
			for j := range T {
				if m := b.Mask.Data()[k*T+j]; (m == 1) != (j < len(ids)) {
					t.Errorf("mask[%d][%d] = %v", k, j, m)
				}
			}
			if b.Target.Int64s()[k] != ds.Targets()[i] {
				t.Errorf("target of %d", i)
			}
		}
		seen = append(seen, b.Indices...)
	}
	shuffled := data.NewLoader(ds, data.LoaderConfig{Shuffle: true, Seed: 7})
	if !slices.Equal(seen, shuffled.Order(3)) {
		t.Errorf("order %v, want data.Loader's %v", seen, shuffled.Order(3))
	}
	n := 0
	for b := range ds.Batches(textdata.BatchConfig{BatchSize: 4, DropLast: true}, 0) {
		n++
		if b.Size() != 4 || !slices.Equal(b.Indices, []int{0, 1, 2, 3}) {
			t.Errorf("unshuffled batch %v", b.Indices)
		}
	}
	if n != 1 {
		t.Errorf("%d batches with DropLast, want 1", n)
	}
	testutil.MustPanic(t, "negative batch size", func() { ds.Batches(textdata.BatchConfig{BatchSize: -1}, 0) }, "textdata.Dataset.Batches", "-1")

	// FixedLen works with data.Loader.
	fixed, err := textdata.NewDataset(d, tok, classes, textdata.DatasetOptions{MaxLen: 6, AddSpecial: true, FixedLen: true})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for b, err := range data.NewLoader(fixed, data.LoaderConfig{BatchSize: 4, Workers: 2}).Batches(0) {
		if err != nil {
			t.Fatal(err)
		}
		if b.Input.Size(1) != 6 || b.Input.DType() != b.Target.DType() || b.Target.Dim() != 1 {
			t.Errorf("fixed batch %v %v", b.Input.Shape(), b.Target.Shape())
		}
		got += b.Size()
	}
	if got != 6 {
		t.Errorf("loader gave %d examples", got)
	}
	if b := fixed.Collate([]int{2, 0}); !slices.Equal(b.Lengths, []int{2, min(6, len(want))}) {
		t.Errorf("fixed collate lengths %v", b.Lengths)
	}

	// Errors.
	if _, err := textdata.NewDataset(d, tok, []string{"neg", "pos"}, textdata.DatasetOptions{}); err == nil || !strings.Contains(err.Error(), `line 4: label "neu"`) {
		t.Errorf("unknown label: %v", err)
	}
	for _, o := range []textdata.DatasetOptions{{MaxLen: -1}, {FixedLen: true}, {MaxLen: 1, AddSpecial: true}} {
		if _, err := textdata.NewDataset(d, tok, classes, o); err == nil {
			t.Errorf("options %+v: want error", o)
		}
	}
}

func toInt64(ids []int) []int64 {
	out := make([]int64, len(ids))
	for i, v := range ids {
		out[i] = int64(v)
	}
	return out
}

func FuzzReadCSV(f *testing.F) {
	f.Add("text,label\na,1\n\"b\",2\n")
	f.Add("text,label\na,1,2\n")
	f.Add("text,label\n\"a\nb\",\n")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := textdata.ReadCSV(strings.NewReader(in), textdata.Options{})
		if err == nil && len(d.Examples)+d.Skipped > strings.Count(in, "\n")+1 {
			t.Fatalf("%d rows from %d lines", len(d.Examples)+d.Skipped, strings.Count(in, "\n")+1)
		}
		textdata.ReadCSV(strings.NewReader(in), textdata.Options{Comma: '\t', NoQuotes: true})
	})
}

func FuzzReadJSONL(f *testing.F) {
	f.Add(`{"text":"a","label":1}` + "\n" + `{"text":"b"}`)
	f.Add(`{"text":"a","label":[1]}`)
	f.Fuzz(func(t *testing.T, in string) {
		d, err := textdata.ReadJSONL(strings.NewReader(in), textdata.Options{})
		if err == nil {
			for _, e := range d.Examples {
				if e.Label == "" {
					t.Fatal("example with an empty label")
				}
			}
		}
	})
}
