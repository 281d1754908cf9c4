package nn_test

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

const fixturePath = "nn/testdata/torch_nn.safetensors"

var (
	fixMu  sync.Mutex
	fixAll map[string]*tensor.Tensor
)

// fixtures returns every tensor of torch_nn.safetensors (written by
// tools/fixtures/nn.py), loaded once.
func fixtures(t *testing.T) map[string]*tensor.Tensor {
	t.Helper()
	fixMu.Lock()
	defer fixMu.Unlock()
	if fixAll == nil {
		f := testutil.LoadFixtures(t, fixturePath)
		all := map[string]*tensor.Tensor{}
		for _, k := range f.Names() {
			all[k] = f.Get(t, k)
		}
		fixAll = all
	}
	return fixAll
}

func get(t *testing.T, name string) *tensor.Tensor {
	t.Helper()
	v, ok := fixtures(t)[name]
	if !ok {
		t.Fatalf("fixture %q missing", name)
	}
	return v.Clone()
}

// sub returns the fixtures under prefix, with the prefix removed.
func sub(t *testing.T, prefix string) map[string]*tensor.Tensor {
	out := map[string]*tensor.Tensor{}
	for k, v := range fixtures(t) {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = v.Clone()
		}
	}
	return out
}

const (
	rtol = 1e-5
	atol = 1e-6
)

// checkLayer loads key's weights into m (strictly), runs the forward and
// backward passes and compares the output and every gradient with PyTorch.
func checkLayer(t *testing.T, key string, m nn.Module, rt float64) {
	t.Helper()
	if err := nn.LoadStateDict(m, sub(t, key+".p."), true); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	nn.ZeroGrad(m)
	x := get(t, key+".in")
	if x.DType() == tensor.Float32 {
		x.SetRequiresGrad(true)
	}
	y := m.Forward(x)
	testutil.AssertClose(t, key+" output", y, get(t, key+".out"), rt, atol)
	tensor.Sum(tensor.Mul(y, get(t, key+".R"))).Backward()
	if x.DType() == tensor.Float32 {
		testutil.AssertClose(t, key+" input grad", x.Grad(), get(t, key+".grad.in"), rt, atol)
	}
	for _, p := range nn.NamedParameters(m) {
		testutil.AssertClose(t, key+" grad of "+p.Name, p.Tensor.Grad(), get(t, key+".grad."+p.Name), rt, atol)
	}
}

func TestLayersGolden(t *testing.T) {
	r := tensor.NewRNG(1)
	cases := []struct {
		key  string
		m    nn.Module
		rtol float64
	}{
		{"linear", nn.NewLinear(r, 5, 3, true), rtol},
		{"linear_nobias", nn.NewLinear(r, 5, 3, false), rtol},
		{"conv", nn.NewConv2D(r, 3, 4, 3, tensor.Conv2DOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, true), 1e-4},
		{"conv_groups", nn.NewConv2D(r, 4, 6, 3, tensor.Conv2DOptions{Padding: [2]int{2, 2}, Dilation: [2]int{2, 2}, Groups: 2}, false), 1e-4},
		{"maxpool", nn.NewMaxPool2D(2), rtol},
		{"maxpool_s", &nn.MaxPool2D{Options: tensor.Pool2DOptions{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}}, rtol},
		{"avgpool", nn.NewAvgPool2D(2), rtol},
		{"avgpool_pad", &nn.AvgPool2D{Options: tensor.Pool2DOptions{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}}, rtol},
		{"flatten", nn.NewFlatten(), rtol},
		{"layernorm", nn.NewLayerNorm([]int{4, 5}, true), rtol},
		{"layernorm_noaffine", nn.NewLayerNorm([]int{6}, false), rtol},
		{"embedding", nn.NewEmbedding(r, 10, 4, 0), rtol},
		{"relu", &nn.ReLU{}, rtol},
		{"leaky_relu", &nn.LeakyReLU{Slope: 0.2}, rtol},
		{"sigmoid", &nn.Sigmoid{}, rtol},
		{"tanh", &nn.Tanh{}, rtol},
		{"gelu", &nn.GELU{}, rtol},
		{"gelu_tanh", &nn.GELU{Approximate: true}, rtol},
		{"softmax", &nn.Softmax{Dim: 1}, rtol},
		{"log_softmax", &nn.LogSoftmax{Dim: -1}, rtol},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) { checkLayer(t, c.key, c.m, c.rtol) })
	}
	t.Run("dropout_eval", func(t *testing.T) {
		d := nn.NewDropout(r, 0.5)
		nn.Eval(d)
		checkLayer(t, "dropout_eval", d, rtol)
	})
}

func TestEmbeddingPaddingRowGetsNoGradient(t *testing.T) {
	e := nn.NewEmbedding(tensor.NewRNG(3), 10, 4, 0)
	checkLayer(t, "embedding", e, rtol)
	g := e.Weight.Grad().Data()
	for i := 0; i < 4; i++ {
		if g[i] != 0 {
			t.Fatalf("padding row gradient %v, want zeros", g[:4])
		}
	}
	// The row used by id 3 (three times) gets a nonzero gradient.
	nonzero := false
	for _, v := range g[12:16] {
		nonzero = nonzero || v != 0
	}
	if !nonzero {
		t.Fatal("row 3 got no gradient")
	}
}

func TestBatchNormGolden(t *testing.T) {
	cases := []struct {
		key string
		m   nn.Module
	}{
		{"bn1d", nn.NewBatchNorm1D(4, nn.DefaultBatchNorm)},
		{"bn1d_3d", nn.NewBatchNorm1D(4, nn.DefaultBatchNorm)},
		{"bn2d", nn.NewBatchNorm2D(3, nn.DefaultBatchNorm)},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			// Train step 1 with gradients.
			checkLayer(t, c.key, c.m, 1e-4)
			// Train step 2, then the running statistics must match PyTorch's.
			tensor.NoGrad(func() { c.m.Forward(get(t, c.key+".in2")) })
			want := sub(t, c.key+".state.")
			got := nn.StateDict(c.m)
			if len(got) != len(want) {
				t.Fatalf("state dict has %d entries, PyTorch %d", len(got), len(want))
			}
			for k, w := range want {
				testutil.AssertClose(t, c.key+" state "+k, got[k], w, rtol, atol)
			}
			if n := got["num_batches_tracked"]; n.DType() != tensor.Int64 || n.Int64s()[0] != 2 {
				t.Errorf("num_batches_tracked = %v, want int64 2", n)
			}
			// Eval mode uses the running statistics.
			nn.Eval(c.m)
			checkLayer(t, c.key+"_eval", c.m, 1e-4)
		})
	}
}

func TestBatchNormTrainChangesStatsEvalDoesNot(t *testing.T) {
	bn := nn.NewBatchNorm2D(2, nn.DefaultBatchNorm)
	x := testutil.Rand(5, -1, 3, 3, 2, 2, 2)
	bn.Forward(x)
	if bn.RunningMean.Data()[0] == 0 {
		t.Fatal("train forward did not update running_mean")
	}
	nn.Eval(bn)
	before := bn.RunningMean.Clone()
	bn.Forward(x)
	testutil.AssertClose(t, "running_mean after eval forward", bn.RunningMean, before, 0, 0)
	if bn.NumBatchesTracked.Int64s()[0] != 1 {
		t.Fatalf("num_batches_tracked = %d, want 1", bn.NumBatchesTracked.Int64s()[0])
	}
}

func checkLoss(t *testing.T, key string, f func(x, target *tensor.Tensor) *tensor.Tensor, rt float64) {
	t.Helper()
	x := get(t, key+".in").SetRequiresGrad(true)
	out := f(x, get(t, key+".target"))
	testutil.AssertClose(t, key+" loss", out, get(t, key+".out"), rt, atol)
	if out.Dim() == 0 {
		out.Backward()
	} else {
		tensor.Sum(tensor.Mul(out, get(t, key+".R"))).Backward()
	}
	testutil.AssertClose(t, key+" input grad", x.Grad(), get(t, key+".grad.in"), rt, atol)
}

func TestLossesGolden(t *testing.T) {
	fixtures(t)
	w := func(key string) *tensor.Tensor { return get(t, key+".weight") }
	type lossFn = func(x, target *tensor.Tensor) *tensor.Tensor
	with := func(f func(x, y *tensor.Tensor, o ...nn.LossOption) *tensor.Tensor, o ...nn.LossOption) lossFn {
		return func(x, y *tensor.Tensor) *tensor.Tensor { return f(x, y, o...) }
	}
	cases := []struct {
		key string
		f   lossFn
	}{
		{"ce", with(nn.CrossEntropy)},
		{"ce_sum", with(nn.CrossEntropy, nn.WithReduction(nn.ReduceSum))},
		{"ce_none", with(nn.CrossEntropy, nn.WithReduction(nn.ReduceNone))},
		{"ce_weight", with(nn.CrossEntropy, nn.WithWeight(w("ce_weight")))},
		{"ce_ignore", with(nn.CrossEntropy, nn.WithWeight(w("ce_ignore")), nn.WithIgnoreIndex(2))},
		{"ce_smooth", with(nn.CrossEntropy, nn.WithLabelSmoothing(0.1))},
		{"ce_smooth_ignore", with(nn.CrossEntropy, nn.WithLabelSmoothing(0.2))},
		{"ce_smooth_weight_ignore", with(nn.CrossEntropy, nn.WithWeight(w("ce_smooth_weight_ignore")), nn.WithLabelSmoothing(0.2))},
		{"ce_smooth_weight_sum", with(nn.CrossEntropy, nn.WithWeight(w("ce_smooth_weight_sum")), nn.WithLabelSmoothing(0.2), nn.WithReduction(nn.ReduceSum))},
		{"ce_smooth_weight_none", with(nn.CrossEntropy, nn.WithWeight(w("ce_smooth_weight_none")), nn.WithLabelSmoothing(0.2), nn.WithReduction(nn.ReduceNone))},
		{"ce_kdim", with(nn.CrossEntropy, nn.WithWeight(w("ce_kdim")))},
		{"ce_prob", with(nn.CrossEntropy, nn.WithWeight(w("ce_prob")), nn.WithLabelSmoothing(0.1))},
		{"nll", with(nn.NLLLoss, nn.WithWeight(w("nll")))},
		{"nll_none", with(nn.NLLLoss, nn.WithReduction(nn.ReduceNone))},
		{"bce", with(nn.BCEWithLogits)},
		{"bce_pos", with(nn.BCEWithLogits, nn.WithPosWeight(get(t, "bce_pos.pos_weight")), nn.WithWeight(w("bce_pos")), nn.WithReduction(nn.ReduceSum))},
		{"bce_none", with(nn.BCEWithLogits, nn.WithReduction(nn.ReduceNone))},
		{"bce_extreme", with(nn.BCEWithLogits)},
		{"mse", with(nn.MSE)},
		{"mse_sum", with(nn.MSE, nn.WithReduction(nn.ReduceSum))},
		{"l1", with(nn.L1)},
		{"smoothl1", with(nn.SmoothL1)},
		{"smoothl1_beta", with(nn.SmoothL1, nn.WithBeta(0.5), nn.WithReduction(nn.ReduceSum))},
		{"smoothl1_none", with(nn.SmoothL1, nn.WithBeta(2), nn.WithReduction(nn.ReduceNone))},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) { checkLoss(t, c.key, c.f, rtol) })
	}
}

// cnn builds the acceptance model: Conv2d(1,32,3) → ReLU → MaxPool2d(2) →
// Flatten → Linear(5408,64) → ReLU → Linear(64,10).
func cnn(r *tensor.RNG) *nn.Sequential {
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

func TestLoadStateDictFileReadsPyTorchFile(t *testing.T) {
	sd, err := nn.LoadStateDictFile(filepath.Join(testutil.RepoRoot(), fixturePath))
	if err != nil {
		t.Fatal(err)
	}
	n := sd["bn2d.state.num_batches_tracked"]
	if n == nil || n.DType() != tensor.Int64 || n.Dim() != 0 || n.Int64s()[0] != 2 {
		t.Fatalf("num_batches_tracked from PyTorch = %v, want 0-d int64 2", n)
	}
	bn := nn.NewBatchNorm2D(3, nn.DefaultBatchNorm)
	if err := nn.LoadStateDict(bn, sub(t, "bn2d.state."), true); err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "running_var", bn.RunningVar, sd["bn2d.state.running_var"], 0, 0)
	if len(sd) != len(fixtures(t)) {
		t.Errorf("LoadStateDictFile found %d tensors, testutil %d", len(sd), len(fixtures(t)))
	}
}

func TestCNNFromPyTorchStateDict(t *testing.T) {
	m := cnn(tensor.NewRNG(42))
	if err := nn.Load(filepath.Join(testutil.RepoRoot(), "nn/testdata/torch_cnn.safetensors"), m, true); err != nil {
		t.Fatal(err)
	}
	nn.Eval(m)
	var logits *tensor.Tensor
	tensor.NoGrad(func() { logits = m.Forward(get(t, "cnn.x")) })
	testutil.AssertClose(t, "CNN logits", logits, get(t, "cnn.logits"), 1e-5, 1e-5)
}
