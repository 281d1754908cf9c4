package model_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// TestRNNLayersRoundTripThroughSpec: LSTM and GRU → spec → JSON → Build gives
// the same spec, the same state dict keys and, with the weights loaded,
// bitwise the same outputs.
func TestRNNLayersRoundTripThroughSpec(t *testing.T) {
	r := tensor.NewRNG(3)
	seq := testutil.Rand(4, -1, 1, 5, 2, 3).Detach()   // [T, N, I]
	seqBF := testutil.Rand(5, -1, 1, 2, 5, 3).Detach() // [N, T, I]
	cases := []struct {
		m nn.Module
		x *tensor.Tensor
	}{
		{nn.NewLSTM(r, 3, 4, nn.DefaultRNN), seq},
		{nn.NewLSTM(r, 3, 4, nn.RNNOptions{NumLayers: 2, Bias: true, BatchFirst: true, Dropout: 0.25, Bidirectional: true}), seqBF},
		{nn.NewGRU(r, 3, 5, nn.RNNOptions{NumLayers: 3}), seq},
		{nn.NewGRU(r, 3, 2, nn.RNNOptions{NumLayers: 1, Bias: true, BatchFirst: true, Bidirectional: true}), seqBF},
	}
	for _, c := range cases {
		roundTrip(t, "", c.m, c.x)
	}
}

func TestRNNBuildDefaultsAndErrors(t *testing.T) {
	var spec model.LayerSpec
	if err := json.Unmarshal([]byte(`{"type": "LSTM", "config": {"input_size": 3, "hidden_size": 4}}`), &spec); err != nil {
		t.Fatal(err)
	}
	m, err := model.Build(spec, model.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := m.(*nn.LSTM)
	if l.Options != nn.DefaultRNN {
		t.Errorf("default options %+v, want %+v", l.Options, nn.DefaultRNN)
	}
	want := []string{"bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"}
	if got := sortedKeys(nn.StateDict(m)); !reflect.DeepEqual(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	for _, c := range []struct{ src, want string }{
		{`{"type": "GRU", "config": {"input_size": 0, "hidden_size": 4}}`, "architecture (GRU): input_size 0"},
		{`{"type": "LSTM", "config": {"input_size": 3, "hidden_size": 4, "num_layers": 9}}`, "num_layers 9"},
		{`{"type": "LSTM", "config": {"input_size": 3, "hidden_size": 4, "num_layers": 0}}`, "num_layers 0"},
		{`{"type": "GRU", "config": {"input_size": 3, "hidden_size": 4, "dropout": -0.5}}`, "dropout -0.5"},
		{`{"type": "GRU", "config": {"input_size": 3, "hidden_size": 4, "proj_size": 2}}`, "proj_size"},
		{`{"type": "LSTM", "config": {"input_size": 3, "hidden_size": 4}, "layers": [{"type": "ReLU"}]}`, "takes no"},
	} {
		var spec model.LayerSpec
		if err := json.Unmarshal([]byte(c.src), &spec); err != nil {
			t.Fatal(err)
		}
		_, err := model.Build(spec, model.BuildOptions{})
		oneLine(t, err, c.want)
	}
	// The value budget: 2 directions · 4 gates · 1000 · (1000 + 1000 + 2) values.
	var big model.LayerSpec
	if err := json.Unmarshal([]byte(`{"type": "LSTM", "config": {"input_size": 1000, "hidden_size": 1000, "bidirectional": true}}`), &big); err != nil {
		t.Fatal(err)
	}
	_, err = model.Build(big, model.BuildOptions{MaxValues: 1000})
	oneLine(t, err, "16016000 parameter values")
}

// TestRNNPackageSaveLoad writes a model package holding a GRU and reads it
// back: model.json describes it with PyTorch's argument names and the
// weights keep PyTorch's keys.
func TestRNNPackageSaveLoad(t *testing.T) {
	g := nn.NewGRU(tensor.NewRNG(8), 3, 4, nn.RNNOptions{NumLayers: 2, Bias: true, BatchFirst: true, Bidirectional: true})
	pkg := &model.Package{
		Name:   "gru",
		Module: g,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "sequence", DType: "float32", Shape: []int{-1, -1, 3}}},
			Outputs: []model.TensorSpec{{Name: "hidden", DType: "float32", Shape: []int{-1, -1, 8}}},
		},
	}
	dir := filepath.Join(t.TempDir(), "gru")
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"type": "GRU"`, `"bidirectional": true`, `"batch_first": true`, `"num_layers": 2`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("model.json lacks %s:\n%s", s, raw)
		}
	}
	got, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	x := testutil.Rand(6, -1, 1, 2, 5, 3).Detach()
	nn.Eval(g)
	want := g.Forward(x)
	out, err := got.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	bitwiseEqual(t, "loaded GRU", out, want)
	if _, ok := nn.StateDict(got.Module)["weight_hh_l1_reverse"]; !ok {
		t.Error("loaded module lacks weight_hh_l1_reverse")
	}
}
