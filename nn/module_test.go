package nn_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/safetensors"
	"github.com/deepgo/deepgo/tensor"
)

// block exercises every naming rule.
type block struct {
	nn.Mode
	Conv1      *nn.Conv2D
	Norm       *nn.BatchNorm2D
	Heads      []*nn.Linear
	Proj       nn.Module `nn:"out_proj"`
	Scale      *tensor.Tensor
	RunningAvg *tensor.Tensor `nn:",buffer"`
	Extra      []*tensor.Tensor
	Cache      *tensor.Tensor `nn:"-"`
	Missing    *nn.Linear
	hidden     *tensor.Tensor
}

func (b *block) Forward(x *tensor.Tensor) *tensor.Tensor { return b.Conv1.Forward(x) }

func newBlock(r *tensor.RNG) *block {
	return &block{
		Conv1:      nn.NewConv2D(r, 1, 2, 3, tensor.Conv2DOptions{}, true),
		Norm:       nn.NewBatchNorm2D(2, nn.DefaultBatchNorm),
		Heads:      []*nn.Linear{nn.NewLinear(r, 4, 2, false), nn.NewLinear(r, 4, 3, true)},
		Proj:       nn.NewSequential(nn.NewLinear(r, 3, 3, true), &nn.ReLU{}, nn.NewDropout(r, 0.1), nn.NewLinear(r, 3, 1, true)),
		Scale:      tensor.Ones(1).SetRequiresGrad(true),
		RunningAvg: tensor.Zeros(2),
		Extra:      []*tensor.Tensor{tensor.Zeros(2).SetRequiresGrad(true), tensor.Zeros(3).SetRequiresGrad(true)},
		Cache:      tensor.Zeros(5),
		hidden:     tensor.Zeros(7),
	}
}

func names(ns []nn.Named) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestNamesFollowPyTorch(t *testing.T) {
	b := newBlock(tensor.NewRNG(1))
	wantParams := []string{
		"conv1.weight", "conv1.bias", "norm.weight", "norm.bias",
		"heads.0.weight", "heads.1.weight", "heads.1.bias",
		"out_proj.0.weight", "out_proj.0.bias", "out_proj.3.weight", "out_proj.3.bias",
		"scale", "extra.0", "extra.1",
	}
	if got := names(nn.NamedParameters(b)); !reflect.DeepEqual(got, wantParams) {
		t.Errorf("NamedParameters = %v\nwant %v", got, wantParams)
	}
	wantBuf := []string{"norm.running_mean", "norm.running_var", "norm.num_batches_tracked", "running_avg"}
	if got := names(nn.NamedBuffers(b)); !reflect.DeepEqual(got, wantBuf) {
		t.Errorf("NamedBuffers = %v, want %v", got, wantBuf)
	}
	sd := nn.StateDict(b)
	if len(sd) != len(wantParams)+len(wantBuf) {
		t.Errorf("StateDict has %d keys, want %d", len(sd), len(wantParams)+len(wantBuf))
	}
	if sd["conv1.weight"] != b.Conv1.Weight {
		t.Error("StateDict must hold the module's own tensors")
	}
	if got := len(nn.Parameters(b)); got != len(wantParams) {
		t.Errorf("Parameters: %d, want %d", got, len(wantParams))
	}
	var mods []string
	for _, m := range nn.NamedModules(b) {
		mods = append(mods, m.Name)
	}
	wantMods := []string{"", "conv1", "norm", "heads.0", "heads.1", "out_proj", "out_proj.0", "out_proj.1", "out_proj.2", "out_proj.3"}
	if !reflect.DeepEqual(mods, wantMods) {
		t.Errorf("NamedModules = %v, want %v", mods, wantMods)
	}
	var kids []string
	for _, m := range nn.Children(b) {
		kids = append(kids, m.Name)
	}
	if want := []string{"conv1", "norm", "heads.0", "heads.1", "out_proj"}; !reflect.DeepEqual(kids, want) {
		t.Errorf("Children = %v, want %v", kids, want)
	}
}

func TestSharedTensorListedOnceAsParameter(t *testing.T) {
	r := tensor.NewRNG(1)
	a := nn.NewLinear(r, 2, 2, false)
	b := &nn.Linear{Weight: a.Weight}
	s := nn.NewSequential(a, b)
	if n := len(nn.Parameters(s)); n != 1 {
		t.Errorf("tied weight listed %d times, want 1", n)
	}
	if n := len(nn.StateDict(s)); n != 2 {
		t.Errorf("state dict has %d keys, want 2 (0.weight and 1.weight, as PyTorch)", n)
	}
}

func TestSequentialKeysLeaveGaps(t *testing.T) {
	sd := nn.StateDict(cnn(tensor.NewRNG(1)))
	var keys []string
	for k := range sd {
		keys = append(keys, k)
	}
	want := []string{"0.bias", "0.weight", "4.bias", "4.weight", "6.bias", "6.weight"}
	if strings.Join(sortStrings(keys), " ") != strings.Join(want, " ") {
		t.Errorf("keys %v, want %v", sortStrings(keys), want)
	}
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestLoadStateDictReportsEveryProblem(t *testing.T) {
	r := tensor.NewRNG(1)
	m := cnn(r)
	before := m.Layers[0].(*nn.Conv2D).Weight.Clone()
	sd := nn.StateDict(cnn(r))
	sd["0.weight"] = tensor.Zeros(16, 1, 3, 3)
	sd["6.bias"] = tensor.Zeros(11)
	delete(sd, "4.bias")
	delete(sd, "4.weight")
	sd["7.weight"] = tensor.Zeros(1)
	sd["extra"] = tensor.Zeros(1)

	err := nn.LoadStateDict(m, sd, true)
	var le *nn.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v is not a *LoadError", err)
	}
	msg := err.Error()
	for _, part := range []string{"0.weight", "[16 1 3 3]", "[32 1 3 3]", "6.bias", "[11]", "[10]", "4.bias", "4.weight", "7.weight", "extra"} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q does not mention %q", msg, part)
		}
	}
	if !reflect.DeepEqual(le.Missing, []string{"4.bias", "4.weight"}) || !reflect.DeepEqual(le.Unexpected, []string{"7.weight", "extra"}) || len(le.Mismatched) != 2 {
		t.Errorf("LoadError = %+v", le)
	}
	testutil.AssertClose(t, "weights untouched after a failed load", m.Layers[0].(*nn.Conv2D).Weight, before, 0, 0)

	// Non-strict: missing and unexpected keys are ignored, shapes still checked.
	err = nn.LoadStateDict(m, sd, false)
	if err == nil || strings.Contains(err.Error(), "extra") || strings.Contains(err.Error(), "4.bias") || !strings.Contains(err.Error(), "size mismatch for 0.weight") {
		t.Errorf("non-strict error = %v", err)
	}
	sd["0.weight"] = tensor.Ones(32, 1, 3, 3)
	sd["6.bias"] = tensor.Ones(10)
	if err := nn.LoadStateDict(m, sd, false); err != nil {
		t.Fatalf("non-strict load: %v", err)
	}
	testutil.AssertClose(t, "loaded weight", m.Layers[0].(*nn.Conv2D).Weight, tensor.Ones(32, 1, 3, 3), 0, 0)
}

func TestSaveLoadRoundTrip(t *testing.T) {
	r := tensor.NewRNG(7)
	m := nn.NewSequential(nn.NewConv2D(r, 1, 2, 3, tensor.Conv2DOptions{}, true), nn.NewBatchNorm2D(2, nn.DefaultBatchNorm), nn.NewFlatten(), nn.NewLinear(r, 8, 3, true))
	m.Forward(testutil.Rand(1, -1, 1, 4, 1, 4, 4)) // move the running stats
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := nn.Save(path, m); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := f.Tensors["1.num_batches_tracked"]; st.DType != "I64" || len(st.Shape) != 0 {
		t.Errorf("num_batches_tracked stored as %s %v, want I64 []", st.DType, st.Shape)
	}
	if st := f.Tensors["0.weight"]; st.DType != "F32" || !reflect.DeepEqual(st.Shape, []int{2, 1, 3, 3}) {
		t.Errorf("0.weight stored as %s %v", st.DType, st.Shape)
	}
	m2 := nn.NewSequential(nn.NewConv2D(r, 1, 2, 3, tensor.Conv2DOptions{}, true), nn.NewBatchNorm2D(2, nn.DefaultBatchNorm), nn.NewFlatten(), nn.NewLinear(r, 8, 3, true))
	if err := nn.Load(path, m2, true); err != nil {
		t.Fatal(err)
	}
	a, b := nn.StateDict(m), nn.StateDict(m2)
	for k := range a {
		testutil.AssertClose(t, k, b[k], a[k], 0, 0)
	}
	if got := b["1.num_batches_tracked"].Int64s()[0]; got != 1 {
		t.Errorf("num_batches_tracked = %d, want 1", got)
	}
	// Files and user input give errors, not panics.
	if _, err := nn.LoadStateDictFile(filepath.Join(t.TempDir(), "nope.safetensors")); err == nil {
		t.Error("missing file: no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(bad, []byte("not a safetensors file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := nn.Load(bad, m2, true); err == nil {
		t.Error("corrupt file: no error")
	}
	if err := nn.SaveStateDict(filepath.Join(t.TempDir(), "no", "such", "dir", "x.safetensors"), nn.StateDict(m)); err == nil {
		t.Error("unwritable path: no error")
	}
}

func TestTrainEvalReachesEveryModule(t *testing.T) {
	b := newBlock(tensor.NewRNG(1))
	drop := b.Proj.(*nn.Sequential).Layers[2].(*nn.Dropout)
	if !b.Training() || !b.Norm.Training() || !drop.Training() {
		t.Fatal("fresh modules must be in training mode")
	}
	nn.Eval(b)
	if b.Training() || b.Norm.Training() || drop.Training() {
		t.Fatal("Eval did not reach every module")
	}
	nn.Train(b)
	if !b.Training() || !b.Norm.Training() || !drop.Training() {
		t.Fatal("Train did not reach every module")
	}
}

func TestDropoutTrainAndEval(t *testing.T) {
	d := nn.NewDropout(tensor.NewRNG(5), 0.5)
	x := tensor.Ones(1000)
	y := d.Forward(x).Data()
	zeros := 0
	for _, v := range y {
		switch v {
		case 0:
			zeros++
		case 2:
		default:
			t.Fatalf("dropout value %v, want 0 or 2", v)
		}
	}
	if zeros < 400 || zeros > 600 {
		t.Errorf("%d of 1000 dropped with p=0.5", zeros)
	}
	nn.Eval(d)
	testutil.AssertClose(t, "eval dropout", d.Forward(x), x, 0, 0)
}

func TestZeroGrad(t *testing.T) {
	l := nn.NewLinear(tensor.NewRNG(1), 3, 2, true)
	tensor.Sum(l.Forward(tensor.Ones(4, 3))).Backward()
	if l.Bias.Grad().Data()[0] != 4 {
		t.Fatalf("bias grad %v, want 4", l.Bias.Grad())
	}
	nn.ZeroGrad(l)
	testutil.AssertClose(t, "weight grad", l.Weight.Grad(), tensor.Zeros(2, 3), 0, 0)
	testutil.AssertClose(t, "bias grad", l.Bias.Grad(), tensor.Zeros(2), 0, 0)
}

// stats returns the mean, variance, min and max of t's values.
func stats(t *tensor.Tensor) (mean, variance, lo, hi float64) {
	d := t.Data()
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range d {
		mean += float64(v)
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	mean /= float64(len(d))
	for _, v := range d {
		variance += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, variance / float64(len(d)), lo, hi
}

func TestInitialisers(t *testing.T) {
	r := tensor.NewRNG(11)
	// fan_in 200, fan_out 100 for [100, 50, 2, 2].
	shape := []int{100, 50, 2, 2}
	if in, out := nn.Fans(shape); in != 200 || out != 400 {
		t.Fatalf("Fans(%v) = %d, %d", shape, in, out)
	}
	uniform := func(name string, x *tensor.Tensor, bound float64) {
		mean, v, lo, hi := stats(x)
		if lo < -bound || hi > bound || hi < 0.95*bound || lo > -0.95*bound {
			t.Errorf("%s: range [%v, %v], want within ±%v and reaching near it", name, lo, hi, bound)
		}
		if want := bound * bound / 3; math.Abs(v-want) > 0.05*want || math.Abs(mean) > 0.05*bound {
			t.Errorf("%s: mean %v variance %v, want 0 and %v", name, mean, v, want)
		}
	}
	normal := func(name string, x *tensor.Tensor, mu, std float64) {
		mean, v, _, _ := stats(x)
		if math.Abs(math.Sqrt(v)-std) > 0.03*std || math.Abs(mean-mu) > 0.03*std+1e-9 {
			t.Errorf("%s: mean %v std %v, want %v and %v", name, mean, math.Sqrt(v), mu, std)
		}
	}
	uniform("KaimingUniform(√5)", nn.KaimingUniform(tensor.Zeros(shape...), math.Sqrt(5), r), 1/math.Sqrt(200))
	uniform("KaimingUniform(0)", nn.KaimingUniform(tensor.Zeros(shape...), 0, r), math.Sqrt(6.0/200))
	normal("KaimingNormal(0)", nn.KaimingNormal(tensor.Zeros(shape...), 0, r), 0, math.Sqrt(2.0/200))
	uniform("XavierUniform", nn.XavierUniform(tensor.Zeros(shape...), 2, r), 2*math.Sqrt(6.0/600))
	normal("XavierNormal", nn.XavierNormal(tensor.Zeros(shape...), 1, r), 0, math.Sqrt(2.0/600))
	normal("Normal", nn.Normal(tensor.Zeros(shape...), 3, 0.5, r), 3, 0.5)
	uniform("Uniform", nn.Uniform(tensor.Zeros(shape...), -0.2, 0.2, r), 0.2)
	testutil.AssertClose(t, "Zeros", nn.Zeros(tensor.Ones(3)), tensor.Zeros(3), 0, 0)
	testutil.AssertClose(t, "Ones", nn.Ones(tensor.Zeros(3)), tensor.Ones(3), 0, 0)

	// The layers' defaults.
	l := nn.NewLinear(r, 400, 5000, true)
	uniform("Linear weight", l.Weight, 1/math.Sqrt(400))
	uniform("Linear bias", l.Bias, 1/math.Sqrt(400))
	c := nn.NewConv2D(r, 16, 64, 3, tensor.Conv2DOptions{}, true)
	uniform("Conv2D weight", c.Weight, 1/math.Sqrt(144))
	e := nn.NewEmbedding(r, 200, 50, -1)
	normal("Embedding weight", e.Weight, 0, 1)
	bn := nn.NewBatchNorm1D(3, nn.DefaultBatchNorm)
	testutil.AssertClose(t, "BN weight", bn.Weight, tensor.Ones(3), 0, 0)
	testutil.AssertClose(t, "BN bias", bn.Bias, tensor.Zeros(3), 0, 0)
	if !l.Weight.RequiresGrad() || !e.Weight.RequiresGrad() || bn.RunningMean.RequiresGrad() {
		t.Error("parameters must require grad, buffers must not")
	}
	// Same seed, same weights.
	a := nn.NewLinear(tensor.NewRNG(3), 4, 4, true)
	b := nn.NewLinear(tensor.NewRNG(3), 4, 4, true)
	testutil.AssertClose(t, "seeded init", a.Weight, b.Weight, 0, 0)
	testutil.MustPanic(t, "Fans of a vector", func() { nn.Fans([]int{3}) }, "nn.Fans", "[3]")
}

func TestSummaryCNN(t *testing.T) {
	m := cnn(tensor.NewRNG(1))
	s := nn.Summary(m, 1, 1, 28, 28)
	for _, part := range []string{
		"0 (Conv2D)", "[1 32 26 26]", "320",
		"1 (ReLU)", "2 (MaxPool2D)", "[1 32 13 13]",
		"3 (Flatten)", "[1 5408]",
		"4 (Linear)", "[1 64]", "346,176",
		"6 (Linear)", "[1 10]", "650",
		"Total params: 347,146", "Trainable params: 347,146", "Non-trainable params: 0",
	} {
		if !strings.Contains(s, part) {
			t.Errorf("summary lacks %q:\n%s", part, s)
		}
	}
	lines := strings.Split(s, "\n")
	var conv string
	for _, l := range lines {
		if strings.HasPrefix(l, "0 (Conv2D)") {
			conv = l
		}
	}
	if f := strings.Fields(conv); len(f) < 2 || f[len(f)-1] != "320" {
		t.Errorf("conv row %q does not end with its parameter count 320", conv)
	}
}

func TestSummaryOtherModulesAndModeRestored(t *testing.T) {
	b := newBlock(tensor.NewRNG(1))
	b.Conv1.Bias.SetRequiresGrad(false)
	s := nn.Summary(b, 1, 1, 5, 5)
	for _, part := range []string{"conv1 (Conv2D)", "norm (BatchNorm2D)", "out_proj (Sequential)", "scale (Parameter)", "Output shape: [1 2 3 3]", "Non-trainable params: 2"} {
		if !strings.Contains(s, part) {
			t.Errorf("summary lacks %q:\n%s", part, s)
		}
	}
	if !b.Training() || !b.Norm.Training() {
		t.Error("Summary must restore training mode")
	}
	if n := nn.NumParams(b); !strings.Contains(s, "Total params: "+strings.TrimSpace(commaInt(n))) {
		t.Errorf("total %d missing:\n%s", n, s)
	}
}

func commaInt(n int) string {
	s := ""
	for n >= 1000 {
		s = "," + padInt(n%1000) + s
		n /= 1000
	}
	return itoa(n) + s
}

func padInt(n int) string {
	s := itoa(n)
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestModuleCycleAndSnakeCase(t *testing.T) {
	type loop struct {
		nn.Sequential
		FC1    *nn.Linear
		QKVOut *nn.Linear
	}
	r := tensor.NewRNG(1)
	l := &loop{FC1: nn.NewLinear(r, 1, 1, false), QKVOut: nn.NewLinear(r, 1, 1, false)}
	if got := names(nn.NamedParameters(l)); !reflect.DeepEqual(got, []string{"fc1.weight", "qkv_out.weight"}) {
		t.Errorf("names %v", got)
	}
	s := nn.NewSequential()
	s.Append(s)
	testutil.MustPanic(t, "cycle", func() { nn.StateDict(s) }, "contains itself")
}
