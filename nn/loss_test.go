package nn_test

import (
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

func TestLossGradCheck(t *testing.T) {
	tgt := tensor.FromInt64([]int64{0, 3, -100, 2, 1}, 5)
	w := tensor.FromSlice([]float32{0.5, 1.5, 1, 2}, 4)
	probs := tensor.Softmax(testutil.Rand(3, -1, 1, 5, 4), 1).Detach()
	bt := tensor.FromSlice([]float32{1, 0, 0.3, 0, 1, 1, 0.5, 0, 1, 0, 1, 0}, 4, 3)
	y := testutil.Rand(4, -1, 1, 4, 3).SetRequiresGrad(false)
	cases := []struct {
		name  string
		shape []int
		lo    float32
		f     func(x *tensor.Tensor) *tensor.Tensor
	}{
		{"CrossEntropy", []int{5, 4}, -2, func(x *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(x, tgt) }},
		{"CrossEntropy weighted smoothed", []int{5, 4}, -2, func(x *tensor.Tensor) *tensor.Tensor {
			return nn.CrossEntropy(x, tgt, nn.WithWeight(w), nn.WithLabelSmoothing(0.3))
		}},
		{"CrossEntropy none", []int{5, 4}, -2, func(x *tensor.Tensor) *tensor.Tensor {
			return nn.CrossEntropy(x, tgt, nn.WithReduction(nn.ReduceNone), nn.WithLabelSmoothing(0.1))
		}},
		{"CrossEntropy probabilities", []int{5, 4}, -2, func(x *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(x, probs) }},
		{"NLLLoss", []int{5, 4}, -3, func(x *tensor.Tensor) *tensor.Tensor { return nn.NLLLoss(x, tgt, nn.WithWeight(w)) }},
		{"BCEWithLogits", []int{4, 3}, -3, func(x *tensor.Tensor) *tensor.Tensor {
			return nn.BCEWithLogits(x, bt, nn.WithPosWeight(tensor.FromSlice([]float32{2, 1, 0.5}, 3)))
		}},
		{"MSE", []int{4, 3}, -2, func(x *tensor.Tensor) *tensor.Tensor { return nn.MSE(x, y) }},
		{"L1", []int{4, 3}, 1.5, func(x *tensor.Tensor) *tensor.Tensor { return nn.L1(x, y) }},
		{"SmoothL1", []int{4, 3}, 1.5, func(x *tensor.Tensor) *tensor.Tensor { return nn.SmoothL1(x, y, nn.WithBeta(3)) }},
	}
	for i, c := range cases {
		x := testutil.Rand(uint64(20+i), c.lo, c.lo+4, c.shape...)
		testutil.GradCheck(t, c.name, func(in []*tensor.Tensor) *tensor.Tensor { return c.f(in[0]) }, []*tensor.Tensor{x}, 1e-2, 1e-2)
	}
}

func TestBCEWithLogitsAtZeroAndExtremes(t *testing.T) {
	// The gradient at a logit of exactly 0 is sigmoid(0) - y = 0.5 - y.
	x := tensor.FromSlice([]float32{0, 0, 200, -200}, 4).SetRequiresGrad(true)
	y := tensor.FromSlice([]float32{1, 0, 1, 0}, 4)
	l := nn.BCEWithLogits(x, y, nn.WithReduction(nn.ReduceSum))
	if v := l.Item(); math.Abs(float64(v)-2*math.Ln2) > 1e-6 {
		t.Errorf("loss %v, want 2 ln 2", v)
	}
	l.Backward()
	testutil.AssertClose(t, "grad", x.Grad(), tensor.FromSlice([]float32{-0.5, 0.5, 0, 0}, 4), 0, 1e-7)
}

func TestCrossEntropyUnbatched(t *testing.T) {
	x := tensor.FromSlice([]float32{1, 2, 3}, 3)
	tgt := tensor.FromInt64([]int64{2})
	want := math.Log(math.Exp(1)+math.Exp(2)+math.Exp(3)) - 3
	for _, red := range []nn.Reduction{nn.ReduceMean, nn.ReduceNone} {
		got := nn.CrossEntropy(x, tgt, nn.WithReduction(red))
		if got.Dim() != 0 || math.Abs(float64(got.Item())-want) > 1e-6 {
			t.Errorf("%v: got %v, want 0-d %v", red, got, want)
		}
	}
}

func TestLossPanics(t *testing.T) {
	x := testutil.Rand(1, -1, 1, 3, 4)
	testutil.MustPanic(t, "CE target shape", func() { nn.CrossEntropy(x, tensor.FromInt64([]int64{0, 1}, 2)) }, "nn.CrossEntropy", "[2]", "[3 4]")
	testutil.MustPanic(t, "CE target range", func() { nn.CrossEntropy(x, tensor.FromInt64([]int64{0, 4, 1}, 3)) }, "nn.CrossEntropy", "target 4", "4 classes")
	testutil.MustPanic(t, "CE weight shape", func() {
		nn.CrossEntropy(x, tensor.FromInt64([]int64{0, 1, 1}, 3), nn.WithWeight(tensor.Ones(3)))
	}, "nn.CrossEntropy", "[3]", "[4]")
	testutil.MustPanic(t, "MSE shapes", func() { nn.MSE(x, tensor.Zeros(4, 3)) }, "nn.MSE", "[3 4]", "[4 3]")
	testutil.MustPanic(t, "option", func() { nn.MSE(x, x, nn.WithBeta(1)) }, "nn.MSE", "WithBeta")
	testutil.MustPanic(t, "NLL float target", func() { nn.NLLLoss(x, tensor.Zeros(3)) }, "nn.NLLLoss", "int64")
	testutil.MustPanic(t, "smoothing", func() { nn.CrossEntropy(x, tensor.ZerosInt64(3), nn.WithLabelSmoothing(2)) }, "nn.CrossEntropy", "smoothing")
}

func TestLayerPanics(t *testing.T) {
	r := tensor.NewRNG(1)
	testutil.MustPanic(t, "BatchNorm2D rank", func() { nn.NewBatchNorm2D(3, nn.DefaultBatchNorm).Forward(tensor.Zeros(2, 3, 4)) }, "nn.BatchNorm2D", "[2 3 4]")
	testutil.MustPanic(t, "BatchNorm1D channels", func() { nn.NewBatchNorm1D(3, nn.DefaultBatchNorm).Forward(tensor.Zeros(2, 5)) }, "nn.BatchNorm1D", "[2 5]", "3")
	testutil.MustPanic(t, "BatchNorm1D one value", func() { nn.NewBatchNorm1D(3, nn.DefaultBatchNorm).Forward(tensor.Zeros(1, 3)) }, "nn.BatchNorm1D", "[1 3]")
	testutil.MustPanic(t, "LayerNorm shape", func() { nn.NewLayerNorm([]int{4}, true).Forward(tensor.Zeros(2, 5)) }, "nn.LayerNorm", "[2 5]", "[4]")
	testutil.MustPanic(t, "Embedding dtype", func() { nn.NewEmbedding(r, 5, 2, -1).Forward(tensor.Zeros(3)) }, "nn.Embedding", "int64")
	testutil.MustPanic(t, "Embedding range", func() { nn.NewEmbedding(r, 5, 2, -1).Forward(tensor.FromInt64([]int64{5}, 1)) }, "nn.Embedding", "id 5", "5 rows")
	testutil.MustPanic(t, "Linear input", func() { nn.NewLinear(r, 3, 2, true).Forward(tensor.Zeros(2, 4)) }, "[2 4]")
	testutil.MustPanic(t, "NewLinear sizes", func() { nn.NewLinear(r, 0, 2, true) }, "nn.NewLinear")
	testutil.MustPanic(t, "NewConv2D groups", func() { nn.NewConv2D(r, 3, 4, 3, tensor.Conv2DOptions{Groups: 2}, true) }, "nn.NewConv2D", "groups 2")
	testutil.MustPanic(t, "NewDropout p", func() { nn.NewDropout(r, 1.5) }, "nn.NewDropout", "1.5")
}

func TestNormGradCheck(t *testing.T) {
	bn := nn.NewBatchNorm2D(2, nn.DefaultBatchNorm)
	ln := nn.NewLayerNorm([]int{3}, true)
	emb := nn.NewEmbedding(tensor.NewRNG(2), 4, 3, 1)
	ids := tensor.FromInt64([]int64{0, 1, 3, 1, 0}, 5)
	x := testutil.Rand(31, -2, 2, 3, 2, 2, 2)
	testutil.GradCheck(t, "BatchNorm2D", func(in []*tensor.Tensor) *tensor.Tensor { return bn.Forward(in[0]) },
		[]*tensor.Tensor{x, bn.Weight, bn.Bias}, 1e-2, 2e-2)
	y := testutil.Rand(32, -2, 2, 4, 3)
	testutil.GradCheck(t, "LayerNorm", func(in []*tensor.Tensor) *tensor.Tensor { return ln.Forward(in[0]) },
		[]*tensor.Tensor{y, ln.Weight, ln.Bias}, 1e-2, 2e-2)
	testutil.GradCheck(t, "Embedding", func(in []*tensor.Tensor) *tensor.Tensor {
		out := emb.Forward(ids)
		// Row 1 is padding: its numeric gradient is nonzero, so mask it out of the check.
		return tensor.Mul(out, tensor.FromSlice([]float32{1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1}, 5, 3))
	}, []*tensor.Tensor{emb.Weight}, 1e-2, 1e-2)
}
