package textmodel_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/textmodel"
)

// maxMeanLSTM returns a small lstm config with max+mean pooling and
// embedding dropout.
func maxMeanLSTM(vocab, classes int) textmodel.Config {
	c := smallConfig(textmodel.ArchLSTM, vocab, classes)
	c.Pool, c.EmbedDropout = textmodel.PoolMaxMean, 0.2
	return c
}

func TestLSTMMaxMeanPooling(t *testing.T) {
	mm := textmodel.NewLSTM(tensor.NewRNG(4), maxMeanLSTM(20, 3))
	maxCfg := smallConfig(textmodel.ArchLSTM, 20, 3)
	mx := textmodel.NewLSTM(tensor.NewRNG(4), maxCfg)
	h := maxCfg.Hidden
	if got := mm.FC.Weight.Shape(); got[0] != 3 || got[1] != 4*h {
		t.Fatalf("maxmean output layer weight %v, want [3 %d]", got, 4*h)
	}
	// Same embedding and LSTM weights; the max model's output layer is the
	// maxmean one's first half, and the mean half is zeroed: same logits.
	mx.Embedding.Weight.CopyFrom(mm.Embedding.Weight)
	for i, p := range nn.Parameters(mm.LSTM) {
		nn.Parameters(mx.LSTM)[i].CopyFrom(p)
	}
	w := mm.FC.Weight.Data()
	mw := mx.FC.Weight.Data()
	for o := range 3 {
		for j := range 4 * h {
			if j < 2*h {
				mw[o*2*h+j] = w[o*4*h+j]
			} else {
				w[o*4*h+j] = 0
			}
		}
	}
	mx.FC.Bias.CopyFrom(mm.FC.Bias)
	nn.Eval(mm)
	nn.Eval(mx)
	ids := tensor.FromInt64([]int64{5, 6, 7, 0, 9, 3, 0, 0}, 2, 4)
	testutil.AssertClose(t, "maxmean with a zero mean half vs max", mm.Forward(ids), mx.Forward(ids), 1e-6, 1e-6)
	// With the mean half set, the logits change.
	w[2*h] = 1
	if same(mm.Forward(ids).Data(), mx.Forward(ids).Data()) {
		t.Fatal("the mean half of the pooled features does not reach the logits")
	}
	// Embedding dropout acts in training mode only.
	nn.Train(mm)
	a, b := mm.Forward(ids), mm.Forward(ids)
	if same(a.Data(), b.Data()) {
		t.Fatal("embedding dropout 0.2 left two training-mode forwards identical")
	}
}

func TestEnsembleAveragesProbabilities(t *testing.T) {
	bow := textmodel.NewBOW(tensor.NewRNG(1), smallConfig(textmodel.ArchBOW, 20, 3))
	lstm := textmodel.NewLSTM(tensor.NewRNG(2), maxMeanLSTM(20, 3))
	e, err := textmodel.NewEnsemble(bow, lstm)
	if err != nil {
		t.Fatal(err)
	}
	nn.Eval(e)
	if bow.Dropout.Training() || lstm.EmbedDropout.Training() {
		t.Fatal("nn.Eval on the ensemble left a member's dropout in training mode")
	}
	if got, want := len(nn.Parameters(e)), len(nn.Parameters(bow))+len(nn.Parameters(lstm)); got != want {
		t.Fatalf("ensemble has %d parameters, want %d (its members')", got, want)
	}
	ids := tensor.FromInt64([]int64{5, 6, 7, 0, 9, 0, 0, 0, 0, 0, 0, 0}, 3, 4) // row 2 empty
	out := e.Forward(ids)
	pb := tensor.Softmax(bow.Forward(ids), 1).Data()
	pl := tensor.Softmax(lstm.Forward(ids), 1).Data()
	got := out.Data()
	for i := range got {
		want := math.Log(float64(pb[i]+pl[i]) / 2)
		if math.Abs(float64(got[i])-want) > 1e-5 {
			t.Fatalf("ensemble logit %d = %v, want log of the mean probability %v", i, got[i], want)
		}
	}
	// Its logits are log-probabilities: softmax gives the mean back.
	testutil.AssertClose(t, "softmax of ensemble logits", tensor.Softmax(out, 1), tensor.Exp(out), 1e-5, 1e-6)

	tr := textmodel.NewTransformer(tensor.NewRNG(1), smallConfig(textmodel.ArchTransformer, 20, 3))
	other := textmodel.NewBOW(tensor.NewRNG(1), smallConfig(textmodel.ArchBOW, 21, 3))
	for name, members := range map[string][]textmodel.Classifier{
		"none": nil, "transformer": {bow, tr}, "vocab": {bow, other}, "nested": {bow, e},
	} {
		if _, err := textmodel.NewEnsemble(members...); err == nil {
			t.Errorf("NewEnsemble(%s): no error", name)
		}
	}
	if _, err := textmodel.New(tensor.NewRNG(1), e.Config()); err == nil {
		t.Error("New built an ensemble without members")
	}
}

func TestEnsembleRoundTrip(t *testing.T) {
	tok := toyTokenizer(t, toyData(30, 3))
	v := tok.Vocab().Len()
	e, err := textmodel.NewEnsemble(
		textmodel.NewBOW(tensor.NewRNG(1), smallConfig(textmodel.ArchBOW, v, 3)),
		textmodel.NewLSTM(tensor.NewRNG(2), maxMeanLSTM(v, 3)),
		textmodel.NewLSTM(tensor.NewRNG(3), smallConfig(textmodel.ArchLSTM, v, 3)))
	if err != nil {
		t.Fatal(err)
	}
	op, err := textmodel.TokenizeOp(tok, 16, false)
	if err != nil {
		t.Fatal(err)
	}
	pkg := &model.Package{Name: "toy-ensemble", Module: e,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 3}}},
		},
		Preprocess: []model.PreprocessOp{op}, Labels: []string{"neg", "neu", "pos"}}
	dir := filepath.Join(t.TempDir(), "ens")
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	back, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	be, ok := back.Module.(*textmodel.Ensemble)
	if !ok || len(be.Members) != 3 || be.Members[1].Config().Pool != textmodel.PoolMaxMean {
		t.Fatalf("loaded %T, want an ensemble of 3 with member 1 pooling %q", back.Module, textmodel.PoolMaxMean)
	}
	texts := []string{"the stock gain today", "", "bad \xff\xfe utf8 fall"}
	nn.Eval(e)
	assertSamePredictions(t, "ensemble round trip", pkg, back, texts)
}

// assertSamePredictions checks that two packages give bit-identical
// outputs for texts.
func assertSamePredictions(t *testing.T, name string, want, got *model.Package, texts []string) {
	t.Helper()
	w, err := textmodel.PredictTexts(want, texts)
	if err != nil {
		t.Fatal(err)
	}
	g, err := textmodel.PredictTexts(got, texts)
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, name, g, w, 0, 0)
}
