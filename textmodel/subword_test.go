package textmodel_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
)

func TestCharNGrams(t *testing.T) {
	if got, want := textmodel.CharNGrams("ab", 2, 3), []string{"<a", "ab", "b>", "<ab", "ab>"}; !slices.Equal(got, want) {
		t.Fatalf("CharNGrams(ab, 2, 3) = %q, want %q", got, want)
	}
	if got, want := textmodel.CharNGrams("é$", 3, 4), []string{"<é$", "é$>", "<é$>"}; !slices.Equal(got, want) {
		t.Fatalf("CharNGrams(é$, 3, 4) = %q, want %q (runes, not bytes)", got, want)
	}
	if got := textmodel.CharNGrams("a", 4, 5); len(got) != 0 {
		t.Fatalf("CharNGrams(a, 4, 5) = %q, want none (<a> is 3 runes)", got)
	}
	words := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ab", "abcdef"}
	// "<abcdef>" has 8 runes: 6 + 5 + 4 n-grams of 3 to 5; the special tokens count for nothing.
	if got := textmodel.MaxSubwords(words, 3, 5, 64); got != 15 {
		t.Fatalf("MaxSubwords = %d, want 15", got)
	}
	if got := textmodel.MaxSubwords(words, 3, 5, 10); got != 10 {
		t.Fatalf("MaxSubwords with limit 10 = %d, want 10", got)
	}
	if a, b := textmodel.NGramBucket("abc", 7, 100), textmodel.NGramBucket("abd", 7, 100); a < 7 || a >= 107 || b < 7 || b >= 107 {
		t.Fatalf("n-gram buckets %d, %d outside [7, 107)", a, b)
	}
}

// subwordBOW returns a bow over words with character 2-3-grams.
func subwordBOW(words []string) *textmodel.BOW {
	cfg := smallConfig(textmodel.ArchBOW, len(words), 2)
	cfg.MinN, cfg.MaxN = 2, 3
	cfg.Subwords = textmodel.MaxSubwords(words, 2, 3, 64)
	m := textmodel.NewBOW(tensor.NewRNG(1), cfg)
	m.SetSubwords(words)
	return m
}

func TestBOWCharNGramFeatures(t *testing.T) {
	words := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ab", "abc"}
	m := subwordBOW(words)
	if k := m.Cfg.Subwords; k != 7 { // "<abc>": 4 bigrams + 3 trigrams
		t.Fatalf("subwords %d, want 7", k)
	}
	// Row 0: "ab abc"; row 1: [UNK] alone (no subwords).
	feats, mask := m.Features(tensor.FromInt64([]int64{5, 6, 1, 0}, 2, 2))
	v := int64(len(words))
	var want []int64
	for _, g := range append(textmodel.CharNGrams("ab", 2, 3), textmodel.CharNGrams("abc", 2, 3)...) {
		want = append(want, textmodel.NGramBucket(g, len(words), m.Cfg.Buckets))
	}
	// 2 unigram slots, 1 bigram slot, then the n-grams of row 0 (5 + 7).
	if got := feats.Shape(); got[0] != 2 || got[1] != 3+len(want) {
		t.Fatalf("features shape %v, want [2 %d]", got, 3+len(want))
	}
	f := feats.Int64s()
	if f[0] != 5 || f[1] != 6 || f[2] != textmodel.BigramBucket(5, 6, len(words), m.Cfg.Buckets) || !slices.Equal(f[3:3+len(want)], want) {
		t.Fatalf("row 0 features %v, want [5 6 bigram %v]", f[:3+len(want)], want)
	}
	row1 := f[3+len(want):]
	mk := mask.Data()[3+len(want):]
	if row1[0] != 1 || mk[0] != 1 || slices.ContainsFunc(mk[1:], func(x float32) bool { return x != 0 }) {
		t.Fatalf("row 1 ([UNK]) features %v, mask %v: want only the unigram", row1, mk)
	}
	for _, b := range want {
		if b < v || b >= v+int64(m.Cfg.Buckets) {
			t.Fatalf("n-gram row %d outside the buckets", b)
		}
	}
	// The n-grams reach the logits: a word's prediction changes when its
	// n-gram rows change.
	nn.Eval(m)
	ids := tensor.FromInt64([]int64{6}, 1, 1)
	before := m.Forward(ids).Data()
	m.Embedding.Weight.Data()[int(want[5])*m.Cfg.Dim] += 1
	if same(before, m.Forward(ids).Data()) {
		t.Fatal("changing an n-gram row of abc left its logits unchanged")
	}
	testutil.MustPanic(t, "SetSubwords with a wrong vocabulary", func() { m.SetSubwords(words[:3]) }, "SetSubwords", "3 words")
}

func TestBOWCharNGramRoundTrip(t *testing.T) {
	tok := toyTokenizer(t, toyData(30, 3))
	m := subwordBOW(tok.Vocab().Tokens())
	op, err := textmodel.TokenizeOp(tok, 16, false)
	if err != nil {
		t.Fatal(err)
	}
	pkg := &model.Package{Name: "toy-subwords", Module: m,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 2}}},
		},
		Preprocess: []model.PreprocessOp{op}, Labels: []string{"a", "b"}}
	dir := filepath.Join(t.TempDir(), "bow")
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	back, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	bb := back.Module.(*textmodel.BOW)
	if !slices.Equal(bb.Subwords.Int64s(), m.Subwords.Int64s()) {
		t.Fatal("the n-gram table did not survive save and load")
	}
	texts := []string{"the stock gain today", "", "unseen words " + text.UnkToken}
	nn.Eval(m)
	assertSamePredictions(t, "subword bow round trip", pkg, back, texts)
}
