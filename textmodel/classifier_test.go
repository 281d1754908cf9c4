package textmodel_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
)

// toyData makes a separable 3-class task: each text mixes filler words with
// one cue word of its class ("good..." / "bad..." / "flat...").
func toyData(n int, seed uint64) *textdata.Data {
	r := rand.New(rand.NewPCG(seed, 1))
	cues := [][]string{{"gain", "rise", "beat", "surge"}, {"loss", "fall", "miss", "drop"}, {"flat", "steady", "hold", "unchanged"}}
	filler := []string{"the", "stock", "market", "today", "shares", "company", "report", "quarter", "price", "news"}
	d := &textdata.Data{}
	for i := range n {
		c := i % 3
		var w []string
		k := 3 + r.IntN(6)
		pos := r.IntN(k)
		for j := range k {
			if j == pos {
				w = append(w, cues[c][r.IntN(4)])
			}
			w = append(w, filler[r.IntN(len(filler))])
		}
		d.Examples = append(d.Examples, textdata.Example{Text: strings.Join(w, " "), Label: fmt.Sprint([]string{"pos", "neg", "neu"}[c]), Line: i + 2})
	}
	return d
}

func toyTokenizer(t testing.TB, d *textdata.Data) text.Tokenizer {
	tok, err := text.TrainWordLevel(d.Texts(), text.WordLevelConfig{Normalizer: text.Normalizer{Lowercase: true}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func smallConfig(arch string, vocab, classes int) textmodel.Config {
	c := textmodel.DefaultConfig(arch, vocab, classes)
	switch arch {
	case textmodel.ArchBOW:
		c.Dim, c.Buckets = 16, 64
	case textmodel.ArchLSTM:
		c.Dim, c.Hidden, c.Dropout = 16, 16, 0
	case textmodel.ArchTransformer:
		c.Dim, c.Hidden, c.Layers, c.Heads, c.MaxLen, c.Dropout = 16, 32, 1, 2, 16, 0
	}
	return c
}

// fitToy trains m on ds for a few epochs and returns the accuracy on val.
func fitToy(t *testing.T, m textmodel.Classifier, ds, val *textdata.Dataset, epochs int, lr float64) float64 {
	t.Helper()
	opt := optim.NewAdam(nn.Parameters(m), optim.AdamConfig{LR: lr})
	nn.Train(m)
	for ep := range epochs {
		for b := range ds.Batches(textdata.BatchConfig{BatchSize: 16, Shuffle: true, Seed: 3}, ep) {
			opt.ZeroGrad()
			loss := nn.CrossEntropy(m.Forward(b.IDs), b.Target, nn.WithWeight(tensor.FromSlice(textmodel.BalancedWeights(ds.ClassCounts()), 3)))
			loss.Backward()
			opt.Step()
		}
	}
	nn.Eval(m)
	pred := textmodel.Predictions(m, val, 32)
	correct := 0
	for i, p := range pred {
		if p == val.Targets()[i] {
			correct++
		}
	}
	return float64(correct) / float64(len(pred))
}

func TestArchitecturesLearnToyTask(t *testing.T) {
	all := toyData(240, 1)
	tr, va := textmodel.StratifiedSplit(all, 0.25, 7)
	tok := toyTokenizer(t, tr)
	classes := textdata.Classes(tr)
	for _, arch := range []string{textmodel.ArchBOW, textmodel.ArchLSTM, textmodel.ArchTransformer} {
		t.Run(arch, func(t *testing.T) {
			opt := textdata.DatasetOptions{MaxLen: 16, AddSpecial: arch == textmodel.ArchTransformer}
			ds, err := textdata.NewDataset(tr, tok, classes, opt)
			if err != nil {
				t.Fatal(err)
			}
			val, err := textdata.NewDataset(va, tok, classes, opt)
			if err != nil {
				t.Fatal(err)
			}
			m, err := textmodel.New(tensor.NewRNG(5), smallConfig(arch, tok.Vocab().Len(), len(classes)))
			if err != nil {
				t.Fatal(err)
			}
			epochs, lr := 15, 1e-2
			if arch == textmodel.ArchBOW {
				epochs, lr = 30, 5e-2
			}
			if acc := fitToy(t, m, ds, val, epochs, lr); acc < 0.9 {
				t.Fatalf("%s: validation accuracy %.3f after training, want >= 0.9", arch, acc)
			}
		})
	}
}

func TestStratifiedSplit(t *testing.T) {
	d := toyData(100, 2)
	d.Examples = append(d.Examples, textdata.Example{Text: "lonely", Label: "rare", Line: 500})
	tr, va := textmodel.StratifiedSplit(d, 0.2, 9)
	if len(tr.Examples)+len(va.Examples) != len(d.Examples) {
		t.Fatalf("split lost examples: %d + %d != %d", len(tr.Examples), len(va.Examples), len(d.Examples))
	}
	count := map[string]int{}
	for _, e := range va.Examples {
		count[e.Label]++
	}
	// 34, 33, 33 examples per class → 7, 7, 7; the single "rare" stays in training.
	for _, l := range []string{"pos", "neg", "neu"} {
		if count[l] != 7 {
			t.Errorf("class %s: %d validation examples, want 7 (%v)", l, count[l], count)
		}
	}
	if count["rare"] != 0 {
		t.Errorf("a class with one example went to validation")
	}
	tr2, va2 := textmodel.StratifiedSplit(d, 0.2, 9)
	for i := range va.Examples {
		if va.Examples[i].Line != va2.Examples[i].Line {
			t.Fatal("split is not deterministic for a fixed seed")
		}
	}
	_ = tr2
	_, va3 := textmodel.StratifiedSplit(d, 0.2, 10)
	same := true
	for i := range va.Examples {
		same = same && va.Examples[i].Line == va3.Examples[i].Line
	}
	if same {
		t.Error("different seeds gave the same split")
	}
}

func TestBalancedWeights(t *testing.T) {
	w := textmodel.BalancedWeights([]int{10, 30, 0})
	want := []float32{40.0 / 30, 40.0 / 90, 0}
	for i := range w {
		if d := w[i] - want[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("weights %v, want %v", w, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []textmodel.Config{
		{Arch: "cnn", VocabSize: 10, NumClasses: 2, Dim: 4},
		{Arch: textmodel.ArchBOW, VocabSize: 10, NumClasses: 1, Dim: 4},
		{Arch: textmodel.ArchBOW, VocabSize: 10, NumClasses: 2, Dim: 4, Buckets: -1},
		{Arch: textmodel.ArchLSTM, VocabSize: 10, NumClasses: 2, Dim: 4, Hidden: 4, Layers: 1, Pool: "cls"},
		{Arch: textmodel.ArchTransformer, VocabSize: 10, NumClasses: 2, Dim: 6, Hidden: 4, Layers: 1, Heads: 4, MaxLen: 8, Pool: "mean"},
		{Arch: textmodel.ArchLSTM, VocabSize: 10, NumClasses: 2, Dim: 4, Hidden: 4, Layers: 1, Pool: "max", Dropout: 1},
		{Arch: textmodel.ArchLSTM, VocabSize: 10, NumClasses: 2, Dim: 4, Hidden: 4, Layers: 1, Pool: "max", EmbedDropout: -0.1},
		{Arch: textmodel.ArchBOW, VocabSize: 10, NumClasses: 2, Dim: 4, MinN: 3, MaxN: 5, Subwords: 8},             // no buckets
		{Arch: textmodel.ArchBOW, VocabSize: 10, NumClasses: 2, Dim: 4, Buckets: 8, MinN: 4, MaxN: 3, Subwords: 8}, // min > max
		{Arch: textmodel.ArchBOW, VocabSize: 10, NumClasses: 2, Dim: 4, Buckets: 8, MinN: 3, MaxN: 5},              // no subwords
		{Arch: textmodel.ArchBOW, VocabSize: 10, NumClasses: 2, Dim: 4, Buckets: 8, MinN: 3},                       // no max_n
	}
	for _, c := range bad {
		if _, err := textmodel.New(tensor.NewRNG(1), c); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}

func TestForwardShapesAndBadIDs(t *testing.T) {
	for _, arch := range []string{textmodel.ArchBOW, textmodel.ArchLSTM, textmodel.ArchTransformer} {
		m, err := textmodel.New(tensor.NewRNG(1), smallConfig(arch, 20, 3))
		if err != nil {
			t.Fatal(err)
		}
		nn.Eval(m)
		// Row 1 is empty (all padding); padding columns are trimmed.
		ids := tensor.FromInt64([]int64{5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0}, 3, 5)
		out := m.Forward(ids)
		if got := out.Shape(); len(got) != 2 || got[0] != 3 || got[1] != 3 {
			t.Fatalf("%s: output shape %v, want [3 3]", arch, got)
		}
		for _, v := range out.Data() {
			if v != v {
				t.Fatalf("%s: NaN in output %v", arch, out.Data())
			}
		}
		// Extra padding does not change the logits.
		wide := tensor.FromInt64([]int64{5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 12)
		narrow := tensor.FromInt64([]int64{5, 6, 7}, 1, 3)
		testutil.AssertClose(t, arch+" padding", m.Forward(wide), m.Forward(narrow), 1e-6, 1e-6)
		testutil.MustPanic(t, arch+" bad id", func() { m.Forward(tensor.FromInt64([]int64{1, 25}, 1, 2)) }, "out of range", "[1 2]")
		testutil.MustPanic(t, arch+" float ids", func() { m.Forward(tensor.Zeros(2, 3)) }, "textmodel.", "[2 3]")
	}
}

func TestBigramsMatter(t *testing.T) {
	cfg := smallConfig(textmodel.ArchBOW, 20, 2)
	m := textmodel.NewBOW(tensor.NewRNG(1), cfg)
	nn.Eval(m)
	ab := m.Forward(tensor.FromInt64([]int64{5, 6, 7}, 1, 3))
	ba := m.Forward(tensor.FromInt64([]int64{7, 6, 5}, 1, 3))
	if same(ab.Data(), ba.Data()) {
		t.Fatal("word order does not change a bag of bigrams")
	}
	feats, mask := m.Features(tensor.FromInt64([]int64{5, 6, 7, 0, 8, 0, 0, 0}, 2, 4))
	if got := feats.Shape(); got[0] != 2 || got[1] != 5 { // trimmed to 3 columns + 2 bigram slots
		t.Fatalf("features shape %v, want [2 5]", got)
	}
	wantMask := []float32{1, 1, 1, 1, 1, 1, 0, 0, 0, 0}
	for i, v := range mask.Data() {
		if v != wantMask[i] {
			t.Fatalf("mask %v, want %v", mask.Data(), wantMask)
		}
	}
	b := textmodel.BigramBucket(5, 6, 20, 64)
	if b < 20 || b >= 84 || b != feats.Int64s()[3] {
		t.Fatalf("bigram bucket %d out of [20, 84) or not in the features %v", b, feats.Int64s())
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	all := toyData(30, 3)
	tok := toyTokenizer(t, all)
	for _, arch := range []string{textmodel.ArchBOW, textmodel.ArchLSTM, textmodel.ArchTransformer} {
		m, err := textmodel.New(tensor.NewRNG(2), smallConfig(arch, tok.Vocab().Len(), 3))
		if err != nil {
			t.Fatal(err)
		}
		op, err := textmodel.TokenizeOp(tok, 16, arch == textmodel.ArchTransformer)
		if err != nil {
			t.Fatal(err)
		}
		pkg := &model.Package{Name: "toy-" + arch, Module: m,
			Signature: model.Signature{
				Inputs:  []model.TensorSpec{{Name: "ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
				Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 3}}},
			},
			Preprocess: []model.PreprocessOp{op}, Labels: []string{"neg", "neu", "pos"}}
		dir := filepath.Join(t.TempDir(), arch)
		if err := model.Save(dir, pkg); err != nil {
			t.Fatalf("%s: save: %v", arch, err)
		}
		back, err := model.Load(dir)
		if err != nil {
			t.Fatalf("%s: load: %v", arch, err)
		}
		if _, ok := back.Module.(textmodel.Classifier); !ok {
			t.Fatalf("%s: loaded module is %T", arch, back.Module)
		}
		texts := []string{"the stock gain today", "", strings.Repeat("loss ", 300000), "bad \xff\xfe utf8 fall"}
		got, err := textmodel.PredictTexts(back, texts)
		if err != nil {
			t.Fatalf("%s: predict: %v", arch, err)
		}
		nn.Eval(m)
		want, err := textmodel.PredictTexts(pkg, texts)
		if err != nil {
			t.Fatal(err)
		}
		testutil.AssertClose(t, arch+" round trip", got, want, 1e-5, 1e-6)
		if got.Size(0) != len(texts) {
			t.Fatalf("%s: %d rows of logits for %d texts", arch, got.Size(0), len(texts))
		}
	}
}

func TestTokenizeOpValidation(t *testing.T) {
	tok := toyTokenizer(t, toyData(10, 4))
	op, err := textmodel.TokenizeOp(tok, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	bad := op
	bad.MaxLen = 0
	if bad.Validate() == nil {
		t.Error("max_len 0 accepted")
	}
	bad = op
	bad.Tokenizer = []byte(`{"format":"nope"}`)
	if bad.Validate() == nil {
		t.Error("a broken tokenizer accepted")
	}
	if _, err := textmodel.NewTextEncoder([]model.PreprocessOp{{Op: model.OpScale, Factor: 2}}); err == nil {
		t.Error("NewTextEncoder accepted a non-text model")
	}
	enc, err := textmodel.NewTextEncoder([]model.PreprocessOp{op})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := enc.Encode([]string{"", ""})
	if err != nil {
		t.Fatal(err)
	}
	if s := ids.Shape(); s[0] != 2 || s[1] != 1 {
		t.Fatalf("two empty texts gave ids of shape %v, want [2 1]", s)
	}
	ids, err = enc.Encode([]string{strings.Repeat("stock ", 1<<18)})
	if err != nil {
		t.Fatal(err)
	}
	if s := ids.Shape(); s[1] != 8 {
		t.Fatalf("a 1.5 MB text gave %v ids, want truncation to 8", s)
	}
}

func same(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}
