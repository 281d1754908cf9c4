package textmodel

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
)

// sgnsLoss64 is the SGNS loss in float64: −log σ(in·out_0) − Σ_{k>0} log σ(−in·out_k).
func sgnsLoss64(in []float64, outs [][]float64) float64 {
	var l float64
	for k, o := range outs {
		var f float64
		for i := range in {
			f += in[i] * o[i]
		}
		if k == 0 {
			l -= logSigmoid(f)
		} else {
			l -= logSigmoid(-f)
		}
	}
	return l
}

// TestSGNSGradientFiniteDifferences checks that sgnsUpdate moves every
// vector by −lr times the gradient of the SGNS loss, against central
// differences of the float64 loss.
func TestSGNSGradientFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const D, K = 5, 4 // one positive and three negatives
	in64 := make([]float64, D)
	outs64 := make([][]float64, K)
	for i := range in64 {
		in64[i] = r.NormFloat64() * 0.7
	}
	for k := range outs64 {
		outs64[k] = make([]float64, D)
		for i := range outs64[k] {
			outs64[k][i] = r.NormFloat64() * 0.7
		}
	}
	in := make([]float32, D)
	for i, v := range in64 {
		in[i] = float32(v)
		in64[i] = float64(in[i])
	}
	outs := make([][]float32, K)
	for k := range outs {
		outs[k] = make([]float32, D)
		for i, v := range outs64[k] {
			outs[k][i] = float32(v)
			outs64[k][i] = float64(outs[k][i])
		}
	}
	before := make([][]float32, K)
	for k := range outs {
		before[k] = slices.Clone(outs[k])
	}
	const lr = 1e-3
	acc := make([]float32, D)
	loss := sgnsUpdate(in, outs, lr, acc)
	if want := sgnsLoss64(in64, outs64); math.Abs(loss-want) > 1e-5 {
		t.Fatalf("loss %v, want %v", loss, want)
	}
	const h = 1e-6
	fd := func(x []float64, i int) float64 {
		old := x[i]
		x[i] = old + h
		lp := sgnsLoss64(in64, outs64)
		x[i] = old - h
		lm := sgnsLoss64(in64, outs64)
		x[i] = old
		return (lp - lm) / (2 * h)
	}
	for i := range D {
		got := -float64(acc[i]) / lr
		if want := fd(in64, i); math.Abs(got-want) > 1e-3*(1+math.Abs(want)) {
			t.Errorf("d/d in[%d]: update gives %v, finite differences %v", i, got, want)
		}
	}
	for k := range K {
		for i := range D {
			got := -float64(outs[k][i]-before[k][i]) / lr
			if want := fd(outs64[k], i); math.Abs(got-want) > 2e-3*(1+math.Abs(want)) {
				t.Errorf("d/d out[%d][%d]: update gives %v, finite differences %v", k, i, got, want)
			}
		}
	}
}

func TestNegativeTableFollowsUnigramPower(t *testing.T) {
	counts := []int64{0, 0, 0, 0, 0, 100, 0, 1000, 10}
	table := negativeTable(counts)
	hits := make([]int, len(counts))
	for _, id := range table {
		hits[id]++
	}
	var z float64
	for _, c := range counts {
		z += math.Pow(float64(c), 0.75)
	}
	for i, c := range counts {
		want := math.Pow(float64(c), 0.75) / z
		got := float64(hits[i]) / float64(len(table))
		if math.Abs(got-want) > 1e-4 {
			t.Errorf("word %d (count %d): share %.5f of the table, want %.5f", i, c, got, want)
		}
	}
}

// topicCorpus makes sentences whose words come from one of two disjoint
// groups, so that words of a group co-occur and words of different groups
// never do.
func topicCorpus(n int, seed uint64) []string {
	groups := [][]string{
		{"stock", "shares", "earnings", "profit", "dividend", "revenue"},
		{"rain", "storm", "cloud", "snow", "wind", "thunder"},
	}
	r := rand.New(rand.NewPCG(seed, 3))
	var out []string
	for range n {
		g := groups[r.IntN(2)]
		words := make([]string, 8)
		for i := range words {
			words[i] = g[r.IntN(len(g))]
		}
		out = append(out, strings.Join(words, " "))
	}
	return out
}

func smallW2V() Word2VecConfig {
	c := DefaultWord2VecConfig()
	c.Dim, c.MinCount, c.Sample, c.Epochs, c.Seed = 16, 1, 0, 3, 7
	return c
}

func TestWord2VecRelatedWordsNearer(t *testing.T) {
	w, err := TrainWord2Vec(context.Background(), topicCorpus(1500, 1), smallW2V())
	if err != nil {
		t.Fatal(err)
	}
	if n := w.Tokenizer.Vocab().Len(); n != 6+12 {
		t.Fatalf("vocabulary of %d tokens, want 6 reserved + 12 words", n)
	}
	sim := func(a, b string) float64 {
		s, ok := w.Similarity(a, b)
		if !ok {
			t.Fatalf("%q or %q not in the vocabulary", a, b)
		}
		return s
	}
	within := (sim("stock", "profit") + sim("earnings", "dividend") + sim("rain", "snow") + sim("storm", "wind")) / 4
	across := (sim("stock", "rain") + sim("profit", "snow") + sim("earnings", "wind") + sim("dividend", "storm")) / 4
	if !(within > across+0.5) {
		t.Fatalf("mean cosine within a group %.3f, across groups %.3f: want within > across + 0.5", within, across)
	}
	if len(w.Losses) != 3 || !(w.Losses[2] < w.Losses[0]) {
		t.Fatalf("epoch losses %v: want 3, decreasing", w.Losses)
	}
	if _, ok := w.Similarity("stock", "unseen"); ok {
		t.Fatal("Similarity of an unknown word reported ok")
	}
}

func TestWord2VecDeterministic(t *testing.T) {
	corpus := topicCorpus(300, 2)
	cfg := smallW2V()
	a, err := TrainWord2Vec(context.Background(), corpus, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sample = 1e-3 // subsampling draws from the RNG too
	b1, _ := TrainWord2Vec(context.Background(), corpus, cfg)
	b2, _ := TrainWord2Vec(context.Background(), corpus, cfg)
	if !slices.Equal(b1.Vectors.Data(), b2.Vectors.Data()) || b1.Steps != b2.Steps {
		t.Fatal("two runs with the same seed differ")
	}
	if slices.Equal(a.Vectors.Data(), b1.Vectors.Data()) {
		t.Fatal("subsampling changed nothing")
	}
	cfg.Seed++
	c, _ := TrainWord2Vec(context.Background(), corpus, cfg)
	if slices.Equal(c.Vectors.Data(), b1.Vectors.Data()) {
		t.Fatal("another seed gave the same vectors")
	}
	// Special rows stay zero.
	d := a.Dim()
	for id := 0; id <= text.MaskID; id++ {
		if slices.ContainsFunc(a.Vectors.Data()[id*d:(id+1)*d], func(v float32) bool { return v != 0 }) {
			t.Fatalf("row %d of a special token is not zero", id)
		}
	}
}

func TestWord2VecErrorsAndStop(t *testing.T) {
	bad := smallW2V()
	bad.Window = 0
	if _, err := TrainWord2Vec(context.Background(), topicCorpus(10, 1), bad); err == nil || !strings.Contains(err.Error(), "window 0") {
		t.Fatalf("window 0: error %v", err)
	}
	if _, err := TrainWord2Vec(context.Background(), []string{"one", "two"}, smallW2V()); err == nil || !strings.Contains(err.Error(), "two words") {
		t.Fatalf("corpus of one-word texts: error %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w, err := TrainWord2Vec(ctx, topicCorpus(50, 1), smallW2V())
	if err != nil || w.Stopped != "canceled" || w.Steps != 0 {
		t.Fatalf("canceled: stopped %q after %d words, error %v", w.Stopped, w.Steps, err)
	}
}

func TestWordVectorsSaveLoad(t *testing.T) {
	w, err := TrainWord2Vec(context.Background(), topicCorpus(200, 3), smallW2V())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "w2v")
	if err := w.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadWordVectors(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Vectors.Data(), w.Vectors.Data()) || !slices.Equal(back.Vectors.Shape(), w.Vectors.Shape()) {
		t.Fatal("vectors differ after the round trip")
	}
	if !slices.Equal(back.Tokenizer.Vocab().Tokens(), w.Tokenizer.Vocab().Tokens()) {
		t.Fatal("vocabulary differs after the round trip")
	}
	if got, want := back.Tokenizer.Encode("STOCK Rain http://x.io zzz"), w.Tokenizer.Encode("STOCK Rain http://x.io zzz"); !slices.Equal(got, want) {
		t.Fatalf("encodings differ: %v vs %v", got, want)
	}
	if back.Metadata["kind"] != WordVectorsKind || back.Metadata["task"] != "word2vec-sgns" {
		t.Fatalf("metadata %v", back.Metadata)
	}
	p, wv, err := OpenPretrained(dir)
	if err != nil || p != nil || wv == nil {
		t.Fatalf("OpenPretrained: %v %v %v", p, wv, err)
	}
}

func TestLoadWordVectorsBadPackage(t *testing.T) {
	root := t.TempDir()
	if _, err := LoadWordVectors(filepath.Join(root, "missing")); err == nil {
		t.Fatal("missing directory: no error")
	}
	// A package of another kind.
	lin := filepath.Join(root, "linear")
	if err := model.Save(lin, &model.Package{Module: nn.NewLinear(tensor.NewRNG(1), 2, 2, true),
		Signature: model.Signature{Inputs: []model.TensorSpec{{Name: "x", DType: model.DTypeFloat32, Shape: []int{-1, 2}}},
			Outputs: []model.TensorSpec{{Name: "y", DType: model.DTypeFloat32, Shape: []int{-1, 2}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWordVectors(lin); err == nil || !strings.Contains(err.Error(), "not word vectors") {
		t.Fatalf("Linear package: error %v", err)
	}
	if _, _, err := OpenPretrained(lin); err == nil || !strings.Contains(err.Error(), "neither an MLM encoder nor word vectors") {
		t.Fatalf("OpenPretrained of a Linear package: error %v", err)
	}
	// Word vectors whose table does not match the tokenizer.
	w, err := TrainWord2Vec(context.Background(), topicCorpus(50, 3), smallW2V())
	if err != nil {
		t.Fatal(err)
	}
	op, err := TokenizeOp(w.Tokenizer, 512, false)
	if err != nil {
		t.Fatal(err)
	}
	mis := filepath.Join(root, "mismatch")
	if err := model.Save(mis, &model.Package{Module: nn.NewEmbedding(tensor.NewRNG(1), 3, 16, 0), Preprocess: []model.PreprocessOp{op},
		Metadata: map[string]any{"kind": WordVectorsKind},
		Signature: model.Signature{Inputs: []model.TensorSpec{{Name: "input_ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
			Outputs: []model.TensorSpec{{Name: "vectors", DType: model.DTypeFloat32, Shape: []int{-1, -1, 16}}}}}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("tokenizer has %d tokens, the vector table 3 rows", w.Tokenizer.Vocab().Len())
	if _, err := LoadWordVectors(mis); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("mismatched table: error %v, want it to say %q", err, want)
	}
}

func TestInitEmbedding(t *testing.T) {
	w, err := TrainWord2Vec(context.Background(), topicCorpus(100, 4), smallW2V())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := text.TrainWordLevel([]string{"Stock profit unknownword http://a.b"}, text.WordLevelConfig{
		Normalizer: text.Normalizer{Lowercase: true}, PreTokenizer: text.PreTokenizer{URLToken: true}})
	if err != nil {
		t.Fatal(err)
	}
	V := tok.Vocab().Len()
	weight := tensor.Full(9, V+2, 16) // two extra rows, as bigram buckets
	n, err := InitEmbedding(weight, tok, w, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // stock and profit; [URL] is in both vocabularies but never occurs in the corpus
		t.Fatalf("set %d rows, want 2 (stock, profit)", n)
	}
	d := weight.Data()
	c, mean := w.centered()
	for _, word := range []string{"stock", "profit"} {
		id, _ := tok.Vocab().ID(word)
		v, _ := w.Vector(word)
		j, _ := w.Tokenizer.Vocab().ID(word)
		for i := range 16 {
			if d[id*16+i] != 2*c[j*16+i] || math.Abs(float64(c[j*16+i])-(float64(v[i])-mean[i])) > 1e-6 {
				t.Fatalf("row of %q not the centred, scaled vector", word)
			}
		}
	}
	id, _ := tok.Vocab().ID("unknownword")
	urlID, _ := tok.Vocab().ID(text.URLToken)
	for _, row := range []int{id, text.UnkID, urlID, V, V + 1} {
		if d[row*16] != 9 {
			t.Fatalf("row %d changed", row)
		}
	}
	if _, err := InitEmbedding(tensor.Zeros(V, 8), tok, w, 1); err == nil || !strings.Contains(err.Error(), "width 8, word vectors 16") {
		t.Fatalf("width mismatch: error %v", err)
	}
}
