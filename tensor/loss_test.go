package tensor_test

import (
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

// composedCE is the cross entropy built from LogSoftmax, Gather and a sum.
func composedCE(logits *tensor.Tensor, target []int64, ignore int64, sum bool) *tensor.Tensor {
	n := len(target)
	idx := make([]int64, n)
	keep := make([]float32, n)
	count := 0
	for i, t := range target {
		if t != ignore {
			idx[i], keep[i] = t, 1
			count++
		}
	}
	picked := tensor.Reshape(tensor.Gather(tensor.LogSoftmax(logits, 1), 1, tensor.FromInt64(idx, n, 1)), n)
	l := tensor.Neg(tensor.Sum(tensor.Mul(picked, tensor.FromSlice(keep, n))))
	if sum {
		return l
	}
	return tensor.MulScalar(l, 1/float32(count))
}

func TestSoftmaxCrossEntropyMatchesComposition(t *testing.T) {
	target := []int64{2, 0, -100, 4, 4, 1}
	for _, sum := range []bool{false, true} {
		x := testutil.Rand(1, -3, 3, 6, 5)
		checkSame(t, "SoftmaxCrossEntropy",
			func(in []*tensor.Tensor) *tensor.Tensor {
				return tensor.SoftmaxCrossEntropy(in[0], tensor.FromInt64(target, 6), -100, sum)
			},
			func(in []*tensor.Tensor) *tensor.Tensor { return composedCE(in[0], target, -100, sum) },
			[]*tensor.Tensor{x}, 1e-5)
	}
	testutil.GradCheck(t, "SoftmaxCrossEntropy", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.SoftmaxCrossEntropy(in[0], tensor.FromInt64(target, 6), -100, false)
	}, []*tensor.Tensor{testutil.Rand(2, -2, 2, 6, 5)}, 1e-2, 1e-2)
	all := tensor.SoftmaxCrossEntropy(tensor.Zeros(2, 3), tensor.FromInt64([]int64{-1, -1}, 2), -1, false)
	if !math.IsNaN(float64(all.Item())) {
		t.Fatalf("mean over no targets = %v, want NaN", all.Item())
	}
}

func TestSoftmaxCrossEntropyPanics(t *testing.T) {
	testutil.MustPanic(t, "shape", func() {
		tensor.SoftmaxCrossEntropy(tensor.Zeros(2, 3), tensor.FromInt64([]int64{0, 1, 2}, 3), -100, false)
	}, "tensor.SoftmaxCrossEntropy", "[2 3]", "[3]")
	testutil.MustPanic(t, "range", func() {
		tensor.SoftmaxCrossEntropy(tensor.Zeros(2, 3), tensor.FromInt64([]int64{0, 3}, 2), -100, false)
	}, "tensor.SoftmaxCrossEntropy", "target 3", "[2 3]")
	testutil.MustPanic(t, "dtype", func() {
		tensor.SoftmaxCrossEntropy(tensor.Zeros(2, 3), tensor.Zeros(2), -100, false)
	}, "tensor.SoftmaxCrossEntropy", "int64")
}
