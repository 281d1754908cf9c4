package model_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

func mnistCNN(seed uint64) *nn.Sequential {
	r := tensor.NewRNG(seed)
	return nn.NewSequential(
		nn.NewConv2D(r, 1, 32, 3, tensor.Conv2DOptions{}, true),
		&nn.ReLU{},
		nn.NewMaxPool2D(2),
		nn.NewFlatten(),
		nn.NewLinear(r, 5408, 64, true),
		&nn.ReLU{},
		nn.NewLinear(r, 64, 10, true),
	)
}

func cnnPackage(seed uint64) *model.Package {
	labels := make([]string, 10)
	for i := range labels {
		labels[i] = string(rune('0' + i))
	}
	labels[0] = "zero [0],\n {x}" // brackets and escapes survive the compact layout
	return &model.Package{
		Name:   "mnist-cnn",
		Module: mnistCNN(seed),
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "image", DType: "float32", Shape: []int{-1, 1, 28, 28}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: "float32", Shape: []int{-1, 10}}},
		},
		Preprocess: []model.PreprocessOp{
			{Op: "image", Height: 28, Width: 28, Channels: 1, InvertIfLightBackground: true, Center: "mass"},
			{Op: "scale", Factor: 1.0 / 255},
			{Op: "normalize", Mean: []float64{0.1307}, Std: []float64{0.3081}},
		},
		Labels:   labels,
		Metadata: map[string]any{"epochs": 3.0, "seed": 42.0, "metrics": map[string]any{"accuracy": 0.99}},
		Monitor:  json.RawMessage(`{"reference":[1,2,3]}`),
	}
}

// mlp has a BatchNorm with non-trivial running statistics and a Dropout.
func mlp(seed uint64) *nn.Sequential {
	r := tensor.NewRNG(seed)
	m := nn.NewSequential(
		nn.NewLinear(r, 8, 16, true),
		nn.NewBatchNorm1D(16, nn.DefaultBatchNorm),
		&nn.Tanh{},
		nn.NewDropout(r, 0.2),
		nn.NewLinear(r, 16, 3, false),
	)
	tensor.NoGrad(func() { m.Forward(testutil.Rand(seed, -2, 2, 32, 8).Detach()) }) // updates running stats
	return m
}

func mlpPackage(seed uint64) *model.Package {
	return &model.Package{
		Name:   "mlp",
		Module: mlp(seed),
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "features", DType: "float32", Shape: []int{-1, 8}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: "float32", Shape: []int{-1, 3}}},
		},
		Labels: []string{"neg", "neu", "pos"},
	}
}

func bitwiseEqual(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if !reflect.DeepEqual(got.Shape(), want.Shape()) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	g, w := got.Data(), want.Data()
	for i := range g {
		if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
			t.Fatalf("%s: element %d is %v, want %v (bitwise)", what, i, g[i], w[i])
		}
	}
}

func sortedKeys(m map[string]*tensor.Tensor) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func oneLine(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans several lines: %q", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

func TestRoundTripCNN(t *testing.T) {
	pkg := cnnPackage(1)
	dir := filepath.Join(t.TempDir(), "mnist")
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	got, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0.bias", "0.weight", "4.bias", "4.weight", "6.bias", "6.weight"}
	if keys := sortedKeys(nn.StateDict(got.Module)); !reflect.DeepEqual(keys, want) {
		t.Errorf("state dict keys %v, want PyTorch's %v", keys, want)
	}
	x := testutil.Rand(7, 0, 1, 3, 1, 28, 28).Detach()
	y1, err := pkg.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	y2, err := got.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	bitwiseEqual(t, "CNN output after round trip", y2, y1)
	if got.Name != pkg.Name || !reflect.DeepEqual(got.Labels, pkg.Labels) ||
		!reflect.DeepEqual(got.Preprocess, pkg.Preprocess) || !reflect.DeepEqual(got.Signature, pkg.Signature) ||
		!reflect.DeepEqual(got.Metadata, pkg.Metadata) || jsonOf(t, got.Monitor) != jsonOf(t, pkg.Monitor) {
		t.Errorf("package fields changed in the round trip:\n got %+v\nwant %+v", got, pkg)
	}
	spec, _ := model.Spec(pkg.Module)
	if !reflect.DeepEqual(jsonOf(t, got.Spec), jsonOf(t, spec)) {
		t.Errorf("spec %s, want %s", jsonOf(t, got.Spec), jsonOf(t, spec))
	}
}

func TestRoundTripMLP(t *testing.T) {
	pkg := mlpPackage(2)
	dir := filepath.Join(t.TempDir(), "mlp")
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	got, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, nm := range nn.NamedModules(got.Module) {
		if s, ok := nm.Module.(nn.ModeSetter); ok && s.Training() {
			t.Errorf("loaded module %q is in training mode", nm.Name)
		}
	}
	sd := nn.StateDict(got.Module)
	for _, k := range []string{"1.running_mean", "1.running_var", "1.num_batches_tracked", "4.weight"} {
		if sd[k] == nil {
			t.Errorf("loaded state dict lacks %s", k)
		}
	}
	if sd["1.num_batches_tracked"].Int64s()[0] != 1 {
		t.Errorf("num_batches_tracked = %v, want 1", sd["1.num_batches_tracked"].Int64s())
	}
	x := testutil.Rand(3, -1, 1, 5, 8).Detach()
	y1, err := pkg.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	y2, err := got.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	bitwiseEqual(t, "MLP output after round trip", y2, y1)
	// Predict runs in eval mode: calling it twice gives the same answer
	// (no dropout) and leaves the running statistics alone.
	y3, _ := got.Predict(x)
	bitwiseEqual(t, "second Predict", y3, y2)
	if sd["1.num_batches_tracked"].Int64s()[0] != 1 {
		t.Errorf("Predict updated the running statistics")
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func savedCNN(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pkg")
	if err := model.Save(dir, cnnPackage(3)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPredictChecksInput(t *testing.T) {
	pkg := cnnPackage(1)
	_, err := pkg.Predict(tensor.Zeros(2, 1, 27, 28))
	oneLine(t, err, "[2 1 27 28]", "[-1 1 28 28]", `"image"`)
	_, err = pkg.Predict(tensor.ZerosInt64(2, 1, 28, 28))
	oneLine(t, err, "int64", "float32")
	_, err = pkg.Predict(tensor.Zeros(1, 28, 28))
	oneLine(t, err, "[1 28 28]", "[-1 1 28 28]")
	y, err := pkg.Predict(tensor.Zeros(4, 1, 28, 28))
	if err != nil || !reflect.DeepEqual(y.Shape(), []int{4, 10}) || y.RequiresGrad() {
		t.Errorf("Predict on a good batch: %v, %v", y, err)
	}
	// A panic inside the forward pass becomes an error.
	emb := &model.Package{Module: nn.NewEmbedding(tensor.NewRNG(1), 4, 2, -1)}
	_, err = emb.Predict(tensor.FromInt64([]int64{9}, 1))
	oneLine(t, err, "model.Predict", "out of range")
}

func TestLoadErrors(t *testing.T) {
	t.Run("missing model.json", func(t *testing.T) {
		_, err := model.Load(t.TempDir())
		oneLine(t, err, "model.json", "no such file")
	})
	t.Run("missing weights", func(t *testing.T) {
		dir := savedCNN(t)
		os.Remove(filepath.Join(dir, "weights.safetensors"))
		_, err := model.Load(dir)
		oneLine(t, err, "weights.safetensors", "no such file")
	})
	t.Run("unknown layer", func(t *testing.T) {
		dir := savedCNN(t)
		path := filepath.Join(dir, "model.json")
		b, _ := os.ReadFile(path)
		writeFile(t, path, strings.Replace(string(b), `"type": "Flatten"`, `"type": "Frobnicate"`, 1))
		_, err := model.Load(dir)
		oneLine(t, err, "Frobnicate", path, "unknown layer type", "layers[3]")
	})
	t.Run("truncated weights", func(t *testing.T) {
		dir := savedCNN(t)
		path := filepath.Join(dir, "weights.safetensors")
		b, _ := os.ReadFile(path)
		for _, n := range []int{len(b) / 2, 100, 4} {
			writeFile(t, path, string(b[:n]))
			_, err := model.Load(dir)
			oneLine(t, err, path)
		}
	})
	t.Run("wrong shape", func(t *testing.T) {
		dir := savedCNN(t)
		sd := nn.StateDict(mnistCNN(1))
		sd["4.weight"] = tensor.Zeros(64, 100)
		if err := nn.SaveStateDict(filepath.Join(dir, "weights.safetensors"), sd); err != nil {
			t.Fatal(err)
		}
		_, err := model.Load(dir)
		oneLine(t, err, "weights.safetensors", "4.weight", "[64 100]", "[64 5408]")
	})
	t.Run("missing and unexpected keys", func(t *testing.T) {
		dir := savedCNN(t)
		sd := nn.StateDict(mnistCNN(1))
		sd["7.weight"] = sd["6.weight"]
		delete(sd, "6.bias")
		if err := nn.SaveStateDict(filepath.Join(dir, "weights.safetensors"), sd); err != nil {
			t.Fatal(err)
		}
		_, err := model.Load(dir)
		oneLine(t, err, "weights.safetensors", "6.bias", "7.weight")
	})
	t.Run("bad JSON", func(t *testing.T) {
		dir := savedCNN(t)
		path := filepath.Join(dir, "model.json")
		writeFile(t, path, "{\n  \"format_version\": 1,\n  \"name\": \"x\" oops\n}")
		_, err := model.Load(dir)
		oneLine(t, err, path, "line 3, column 15", "invalid character")
		writeFile(t, path, "{\n  \"format_version\": \"one\"\n}")
		_, err = model.Load(dir)
		oneLine(t, err, path, "line 2", "format_version")
		writeFile(t, path, `{"format_version": 1, "nmae": "x"}`)
		_, err = model.Load(dir)
		oneLine(t, err, path, "nmae")
		writeFile(t, path, `{"format_version": 1`)
		_, err = model.Load(dir)
		oneLine(t, err, path, "unexpected end")
		writeFile(t, path, "")
		_, err = model.Load(dir)
		oneLine(t, err, path, "empty")
	})
	t.Run("bad config", func(t *testing.T) {
		dir := savedCNN(t)
		path := filepath.Join(dir, "model.json")
		b, _ := os.ReadFile(path)
		writeFile(t, path, strings.Replace(string(b), `"in_features"`, `"in_feature"`, 1))
		_, err := model.Load(dir)
		oneLine(t, err, path, "layers[4] (Linear)", "in_feature")
	})
	t.Run("newer format", func(t *testing.T) {
		dir := savedCNN(t)
		path := filepath.Join(dir, "model.json")
		b, _ := os.ReadFile(path)
		writeFile(t, path, strings.Replace(string(b), `"format_version": 1`, `"format_version": 7`, 1))
		_, err := model.Load(dir)
		oneLine(t, err, path, "format_version 7")
	})
	t.Run("signature does not fit", func(t *testing.T) {
		dir := savedCNN(t)
		path := filepath.Join(dir, "model.json")
		b, _ := os.ReadFile(path)
		writeFile(t, path, strings.Replace(string(b), "[-1, 1, 28, 28]", "[-1, 1, 32, 28]", 1))
		_, err := model.Load(dir)
		oneLine(t, err, path, "signature check")
	})
	t.Run("huge layer is refused before allocating", func(t *testing.T) {
		dir := savedCNN(t)
		path := filepath.Join(dir, "model.json")
		b, _ := os.ReadFile(path)
		writeFile(t, path, strings.Replace(string(b), `"out_features": 64`, `"out_features": 1000000000`, 1))
		_, err := model.Load(dir)
		oneLine(t, err, path, "layers[4] (Linear)", "5409000000000 parameter values")
	})
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestAtomicSave(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "pkg")
	a := cnnPackage(1)
	if err := model.Save(dir, a); err != nil {
		t.Fatal(err)
	}
	x := testutil.Rand(5, 0, 1, 2, 1, 28, 28).Detach()
	want, _ := a.Predict(x)

	// A save that fails after writing the temporary package (the output
	// signature does not fit the model) leaves the old package intact.
	bad := cnnPackage(2)
	bad.Labels = nil
	bad.Signature.Outputs[0].Shape = []int{-1, 5}
	oneLine(t, model.Save(dir, bad), "model.Save", "output")
	// So does a save whose spec cannot be derived.
	odd := cnnPackage(2)
	odd.Module = nn.NewSequential(odd.Module, &opaque{})
	oneLine(t, model.Save(dir, odd), "model.Save", "opaque")

	if names := listDir(t, parent); !reflect.DeepEqual(names, []string{"pkg"}) {
		t.Errorf("after failed saves the parent holds %v, want only pkg", names)
	}
	got, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := got.Predict(x)
	bitwiseEqual(t, "old package after failed save", y, want)

	// A successful save replaces it and cleans up.
	b := mlpPackage(3)
	if err := model.Save(dir, b); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, parent); !reflect.DeepEqual(names, []string{"pkg"}) {
		t.Errorf("after replacing, the parent holds %v, want only pkg", names)
	}
	if names := listDir(t, dir); !reflect.DeepEqual(names, []string{"model.json", "weights.safetensors"}) {
		t.Errorf("package holds %v", names)
	}
	if got, err := model.Load(dir); err != nil || got.Name != "mlp" {
		t.Errorf("Load after replacing: %v, %v", got, err)
	}

	// Directories that are not packages, and files, are never replaced.
	other := filepath.Join(parent, "other")
	os.Mkdir(other, 0o755)
	writeFile(t, filepath.Join(other, "keep.txt"), "precious")
	oneLine(t, model.Save(other, b), "refusing", other)
	if _, err := os.Stat(filepath.Join(other, "keep.txt")); err != nil {
		t.Errorf("Save damaged a non-package directory: %v", err)
	}
	file := filepath.Join(parent, "file")
	writeFile(t, file, "x")
	oneLine(t, model.Save(file, b), "not a directory")
	// An empty directory is fine, and so is a missing parent.
	empty := filepath.Join(parent, "empty")
	os.Mkdir(empty, 0o755)
	if err := model.Save(empty, b); err != nil {
		t.Error(err)
	}
	if err := model.Save(filepath.Join(parent, "a", "b", "c"), b); err != nil {
		t.Error(err)
	}
	if names := listDir(t, parent); !reflect.DeepEqual(names, []string{"a", "empty", "file", "other", "pkg"}) {
		t.Errorf("parent holds %v", names)
	}
	oneLine(t, model.Save(dir, nil), "no module")
}

// opaque is a module type with no encoder.
type opaque struct{}

func (*opaque) Forward(x *tensor.Tensor) *tensor.Tensor { return x }

func TestConcurrentPredict(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mlp")
	if err := model.Save(dir, mlpPackage(4)); err != nil {
		t.Fatal(err)
	}
	pkg, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	x := testutil.Rand(9, -1, 1, 4, 8).Detach()
	want, _ := pkg.Predict(x)
	errs := make(chan error, 8)
	outs := make(chan *tensor.Tensor, 8)
	for range 8 {
		go func() {
			y, err := pkg.Predict(x)
			errs <- err
			outs <- y
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		bitwiseEqual(t, "concurrent Predict", <-outs, want)
	}
}

// panicky panics in Forward when its input's first value is negative.
type panicky struct{ nn.Module }

func (p *panicky) Forward(x *tensor.Tensor) *tensor.Tensor {
	if x.Data()[0] < 0 {
		panic("negative input")
	}
	return p.Module.Forward(x)
}

// TestPredictArena: Predict runs in a recycled arena, yet each output
// keeps its own values: equal bit for bit to a forward pass without an
// arena, and unchanged by later calls of any batch size, by a failed call
// or by concurrent ones.
func TestPredictArena(t *testing.T) {
	pkg := cnnPackage(1)
	direct := func(x *tensor.Tensor) *tensor.Tensor {
		var y *tensor.Tensor
		tensor.NoGrad(func() { y = pkg.Module.Forward(x) })
		return y
	}
	var xs, outs, wants []*tensor.Tensor
	for i, n := range []int{3, 1, 3, 5, 3} {
		x := testutil.Rand(uint64(20+i), 0, 1, n, 1, 28, 28).Detach()
		y, err := pkg.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		xs, outs, wants = append(xs, x), append(outs, y), append(wants, direct(x))
	}
	for i := range outs {
		bitwiseEqual(t, "Predict output after later calls", outs[i], wants[i])
	}
	// A pass that panics is an error; the next ones still answer right.
	bad := &model.Package{Name: "p", Module: &panicky{pkg.Module}}
	if _, err := bad.Predict(testutil.Rand(30, -2, -1, 2, 1, 28, 28).Detach()); err == nil || !strings.Contains(err.Error(), "negative input") {
		t.Fatalf("panicking forward: %v", err)
	}
	for range 3 {
		y, err := bad.Predict(xs[0])
		if err != nil {
			t.Fatal(err)
		}
		bitwiseEqual(t, "Predict after a failed pass", y, wants[0])
	}
	// Concurrent calls of different batch sizes.
	errs := make(chan error, 16)
	for g := range 16 {
		go func() {
			k := g % len(xs)
			y, err := pkg.Predict(xs[k])
			if err == nil && !reflect.DeepEqual(y.Data(), wants[k].Data()) {
				err = fmt.Errorf("concurrent Predict %d: output differs from a direct forward pass", g)
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for i := range outs {
		bitwiseEqual(t, "Predict output after concurrent calls", outs[i], wants[i])
	}
}
