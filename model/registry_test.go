package model_test

import (
	"encoding/json"
	"fmt"
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

// layerCase is a module of one built-in type and an input it accepts.
type layerCase struct {
	m nn.Module
	x *tensor.Tensor
}

func layerCases() []layerCase {
	r := tensor.NewRNG(11)
	img := testutil.Rand(1, -1, 1, 2, 4, 7, 6).Detach()
	vec := testutil.Rand(2, -1, 1, 3, 6).Detach()
	bn1 := nn.NewBatchNorm1D(6, nn.BatchNormOptions{Eps: 1e-3, Momentum: 0.3, Affine: true, TrackRunningStats: true})
	bn2 := nn.NewBatchNorm2D(4, nn.BatchNormOptions{Eps: 1e-4, Momentum: 0.2, Affine: false, TrackRunningStats: true})
	bn3 := nn.NewBatchNorm1D(6, nn.BatchNormOptions{Eps: 1e-5, Momentum: 0.1, Affine: true, TrackRunningStats: false})
	tensor.NoGrad(func() { bn1.Forward(vec); bn2.Forward(img) })
	ln := nn.NewLayerNorm([]int{7, 6}, true)
	ln.Eps = 1e-6
	nonSquare := &nn.Conv2D{
		Weight:  testutil.Rand(3, -1, 1, 6, 2, 3, 2),
		Options: tensor.Conv2DOptions{Stride: [2]int{2, 1}, Padding: [2]int{1, 0}, Dilation: [2]int{1, 2}, Groups: 2},
	}
	return []layerCase{
		{nn.NewLinear(r, 6, 5, true), vec},
		{nn.NewLinear(r, 6, 2, false), vec},
		{nn.NewConv2D(r, 4, 6, 3, tensor.Conv2DOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, true), img},
		{nonSquare, img},
		{nn.NewMaxPool2D(2), img},
		{&nn.MaxPool2D{Options: tensor.Pool2DOptions{Kernel: [2]int{3, 2}, Stride: [2]int{1, 2}, Padding: [2]int{1, 1}, Dilation: [2]int{2, 1}, CeilMode: true}}, img},
		{nn.NewAvgPool2D(3), img},
		{&nn.AvgPool2D{Options: tensor.Pool2DOptions{Kernel: [2]int{2, 3}, Stride: [2]int{1, 1}, Padding: [2]int{1, 1}, ExcludePad: true}}, img},
		{nn.NewFlatten(), img},
		{&nn.Flatten{StartDim: 2, EndDim: 3}, img},
		{nn.NewDropout(r, 0.25), vec},
		{bn1, vec},
		{bn2, img},
		{bn3, vec},
		{ln, img},
		{nn.NewLayerNorm([]int{6}, false), vec},
		{nn.NewEmbedding(r, 10, 4, 2), tensor.FromInt64([]int64{1, 2, 9, 0}, 2, 2)},
		{nn.NewEmbedding(r, 10, 3, -1), tensor.FromInt64([]int64{3, 4}, 2)},
		{&nn.ReLU{}, vec},
		{&nn.LeakyReLU{Slope: 0.2}, vec},
		{&nn.Sigmoid{}, vec},
		{&nn.Tanh{}, vec},
		{&nn.GELU{}, vec},
		{&nn.GELU{Approximate: true}, vec},
		{&nn.Softmax{Dim: 1}, vec},
		{&nn.LogSoftmax{Dim: -1}, vec},
		{nn.NewSequential(nn.NewLinear(r, 6, 4, true), &nn.ReLU{}, nn.NewSequential(nn.NewLinear(r, 4, 2, true), &nn.Sigmoid{})), vec},
	}
}

func TestEveryLayerRoundTripsThroughSpec(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range layerCases() {
		spec := roundTrip(t, fmt.Sprintf("%T", c.m), c.m, c.x)
		covered[spec.Type] = true
	}
	// Sequence layers have their own round-trip tests
	// (registry_transformer_test.go, registry_rnn_test.go).
	for _, typ := range append(transformerLayerTypes, "LSTM", "GRU") {
		covered[typ] = true
	}
	for _, typ := range model.LayerTypes() {
		if strings.HasSuffix(typ, "d") || strings.HasPrefix(typ, "test.") {
			continue // PyTorch aliases, test layers
		}
		if !covered[typ] {
			t.Errorf("built-in layer type %s is not covered by the round-trip test", typ)
		}
	}
}

func TestBuildDefaultsAndAliases(t *testing.T) {
	var spec model.LayerSpec
	src := `{"type": "Sequential", "layers": [
		{"type": "Conv2d", "config": {"in_channels": 1, "out_channels": 4, "kernel_size": [3, 3]}},
		{"type": "BatchNorm2d", "config": {"num_features": 4}},
		{"type": "MaxPool2d", "config": {"kernel_size": 2}},
		{"type": "Flatten"},
		{"type": "Linear", "config": {"in_features": 4, "out_features": 2, "bias": false}}]}`
	if err := json.Unmarshal([]byte(src), &spec); err != nil {
		t.Fatal(err)
	}
	m, err := model.Build(spec, model.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0.bias", "0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var", "1.weight", "4.weight"}
	if keys := sortedKeys(nn.StateDict(m)); !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	pool := m.(*nn.Sequential).Layers[2].(*nn.MaxPool2D)
	if pool.Options.Stride != [2]int{2, 2} {
		t.Errorf("MaxPool2D stride defaults to %v, want the kernel size", pool.Options.Stride)
	}
	bn := m.(*nn.Sequential).Layers[1].(*nn.BatchNorm2D)
	if bn.Eps != 1e-5 || bn.Momentum != 0.1 {
		t.Errorf("BatchNorm defaults eps %v momentum %v", bn.Eps, bn.Momentum)
	}
	y := m.Forward(tensor.Zeros(2, 1, 4, 4))
	if !reflect.DeepEqual(y.Shape(), []int{2, 2}) {
		t.Errorf("output shape %v", y.Shape())
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{`{"type": "Nope"}`, `architecture: unknown layer type "Nope"`},
		{`{}`, `no "type"`},
		{`{"type": "Sequential", "layers": [{"type": "ReLU"}, {"type": "Linear", "config": {"in_features": 0, "out_features": 2}}]}`, "architecture.layers[1] (Linear): in_features 0"},
		{`{"type": "Linear", "config": {"in_features": 2, "out_features": 2, "bias": "yes"}}`, "architecture (Linear): config"},
		{`{"type": "Linear", "config": [1]}`, "config"},
		{`{"type": "ReLU", "config": {"inplace": true}}`, "inplace"},
		{`{"type": "ReLU", "layers": [{"type": "ReLU"}]}`, "takes no"},
		{`{"type": "Conv2D", "config": {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2}}`, "groups 2"},
		{`{"type": "Conv2D", "config": {"in_channels": 1, "out_channels": 1, "kernel_size": [1, 2, 3]}}`, "pair"},
		{`{"type": "Conv2D", "config": {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": 100000}}`, "padding"},
		{`{"type": "MaxPool2D", "config": {"kernel_size": 2, "padding": 2}}`, "padding"},
		{`{"type": "Dropout", "config": {"p": 1.5}}`, "p 1.5"},
		{`{"type": "Embedding", "config": {"num_embeddings": 3, "embedding_dim": 2, "padding_idx": 3}}`, "padding_idx 3"},
		{`{"type": "LayerNorm", "config": {"normalized_shape": []}}`, "normalized_shape"},
		{`{"type": "GELU", "config": {"approximate": "fast"}}`, "fast"},
		{`{"type": "Softmax"}`, `"dim"`},
		{`{"type": "BatchNorm1D", "config": {"num_features": -1}}`, "num_features -1"},
	}
	for _, c := range cases {
		var spec model.LayerSpec
		if err := json.Unmarshal([]byte(c.src), &spec); err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		_, err := model.Build(spec, model.BuildOptions{})
		if err == nil {
			t.Errorf("%s: no error", c.src)
			continue
		}
		oneLine(t, err, c.want)
	}
	// The value budget refuses oversized layers before allocating them.
	var spec model.LayerSpec
	json.Unmarshal([]byte(`{"type": "Linear", "config": {"in_features": 100000, "out_features": 100000}}`), &spec)
	_, err := model.Build(spec, model.BuildOptions{MaxValues: 1000})
	oneLine(t, err, "10000100000 parameter values")
}

// scale multiplies its input by a learned per-feature factor.
type scale struct {
	Alpha *tensor.Tensor
}

func (s *scale) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.Mul(x, s.Alpha) }

type scaleConfig struct {
	Features int `json:"features"`
}

func init() {
	model.Register("test.Scale", func(spec model.LayerSpec, ctx *model.BuildContext) (nn.Module, error) {
		var cfg scaleConfig
		if err := spec.DecodeConfig(&cfg); err != nil {
			return nil, err
		}
		if err := ctx.Reserve(int64(cfg.Features)); err != nil {
			return nil, err
		}
		return &scale{Alpha: tensor.Ones(cfg.Features).SetRequiresGrad(true)}, nil
	})
	model.RegisterEncoder((*scale)(nil), func(m nn.Module) (model.LayerSpec, error) {
		return model.NewLayerSpec("test.Scale", scaleConfig{Features: m.(*scale).Alpha.Size(0)})
	})
	model.Register("test.Panics", func(model.LayerSpec, *model.BuildContext) (nn.Module, error) {
		panic("kaboom")
	})
	// A custom container that builds its children through the context.
	model.Register("test.Residual", func(spec model.LayerSpec, ctx *model.BuildContext) (nn.Module, error) {
		if len(spec.Layers) != 1 {
			return nil, fmt.Errorf("wants one layer, got %d", len(spec.Layers))
		}
		inner, err := ctx.Child("layers[0]", spec.Layers[0])
		if err != nil {
			return nil, err
		}
		return &residual{Inner: inner}, nil
	})
	model.RegisterEncoder((*residual)(nil), func(m nn.Module) (model.LayerSpec, error) {
		inner, err := model.Spec(m.(*residual).Inner)
		return model.LayerSpec{Type: "test.Residual", Layers: []model.LayerSpec{inner}}, err
	})
}

// residual computes x + Inner(x).
type residual struct{ Inner nn.Module }

func (r *residual) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.Add(x, r.Inner.Forward(x)) }

func TestCustomLayer(t *testing.T) {
	r := tensor.NewRNG(5)
	s := &scale{Alpha: testutil.Rand(4, 0.5, 2, 4)}
	m := nn.NewSequential(nn.NewLinear(r, 3, 4, true), s, &residual{Inner: nn.NewLinear(r, 4, 4, false)})
	pkg := &model.Package{
		Module: m,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "x", DType: "float32", Shape: []int{-1, 3}}},
			Outputs: []model.TensorSpec{{Name: "y", DType: "float32", Shape: []int{-1, 4}}},
		},
	}
	dir := filepath.Join(t.TempDir(), "custom")
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	got, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0.bias", "0.weight", "1.alpha", "2.inner.weight"}
	if keys := sortedKeys(nn.StateDict(got.Module)); !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	x := testutil.Rand(6, -1, 1, 2, 3).Detach()
	y1, _ := pkg.Predict(x)
	y2, err := got.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	bitwiseEqual(t, "custom layer output", y2, y1)

	// A builder that panics becomes an error naming the layer.
	var spec model.LayerSpec
	json.Unmarshal([]byte(`{"type": "Sequential", "layers": [{"type": "ReLU"}, {"type": "test.Residual", "layers": [{"type": "test.Panics"}]}]}`), &spec)
	_, err = model.Build(spec, model.BuildOptions{})
	oneLine(t, err, "architecture.layers[1].layers[0] (test.Panics): kaboom")
	if strings.Count(err.Error(), "architecture") != 1 {
		t.Errorf("layer path repeated in %q", err)
	}
	// ... also through Load.
	path := filepath.Join(dir, "model.json")
	b, _ := os.ReadFile(path)
	writeFile(t, path, strings.Replace(string(b), `"type": "test.Scale"`, `"type": "test.Panics"`, 1))
	_, err = model.Load(dir)
	oneLine(t, err, path, "layers[1] (test.Panics): kaboom")

	testutil.MustPanic(t, "Register twice", func() { model.Register("Linear", nil) }, "model.Register")
	testutil.MustPanic(t, "Register duplicate", func() {
		model.Register("test.Scale", func(model.LayerSpec, *model.BuildContext) (nn.Module, error) { return nil, nil })
	}, "test.Scale", "twice")
	testutil.MustPanic(t, "RegisterEncoder twice", func() {
		model.RegisterEncoder((*scale)(nil), func(nn.Module) (model.LayerSpec, error) { return model.LayerSpec{}, nil })
	}, "twice")
}

func TestSpecErrors(t *testing.T) {
	_, err := model.Spec(nil)
	oneLine(t, err, "nil module")
	_, err = model.Spec(nn.NewSequential(&nn.ReLU{}, &opaque{}))
	oneLine(t, err, "layers[1]", "*model_test.opaque", "RegisterEncoder")
}

// roundTrip sends m through spec → JSON → Build and checks that the rebuilt
// layer has m's type, spec and state-dict keys and, with m's weights loaded
// strictly, bitwise the same eval-mode output on x. It returns m's spec and
// the rebuilt layer for further checks.
func roundTrip(t *testing.T, what string, m nn.Module, x *tensor.Tensor) model.LayerSpec {
	t.Helper()
	spec, _ := roundTripBuilt(t, what, m, x)
	return spec
}

func roundTripBuilt(t *testing.T, what string, m nn.Module, x *tensor.Tensor) (model.LayerSpec, nn.Module) {
	t.Helper()
	spec, err := model.Spec(m)
	if err != nil {
		t.Fatalf("Spec(%s): %v", what, err)
	}
	name := what + " " + spec.Type + " " + string(spec.Config)
	var back model.LayerSpec
	if err := json.Unmarshal([]byte(jsonOf(t, spec)), &back); err != nil {
		t.Fatal(err)
	}
	built, err := model.Build(back, model.BuildOptions{RNG: tensor.NewRNG(99)})
	if err != nil {
		t.Fatalf("%s: Build: %v", name, err)
	}
	if reflect.TypeOf(built) != reflect.TypeOf(m) {
		t.Errorf("%s: built a %T", name, built)
	}
	spec2, err := model.Spec(built)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := jsonOf(t, spec), jsonOf(t, spec2); a != b {
		t.Errorf("%s: spec changed in the round trip:\n%s\n%s", name, a, b)
	}
	sd := nn.StateDict(m)
	if got, want := sortedKeys(nn.StateDict(built)), sortedKeys(sd); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: state dict keys %v, want %v", name, got, want)
	}
	if err := nn.LoadStateDict(built, sd, true); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	nn.Eval(m)
	nn.Eval(built)
	var want, got *tensor.Tensor
	tensor.NoGrad(func() { want, got = m.Forward(x), built.Forward(x) })
	bitwiseEqual(t, name, got, want)
	return spec, built
}
