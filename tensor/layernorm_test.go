package tensor_test

import (
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

// layerNormComposed is LayerNorm from the elementary ops.
func layerNormComposed(x, w, b *tensor.Tensor, axes []int, eps float32) *tensor.Tensor {
	mean := tensor.MeanAxes(x, true, axes...)
	v := tensor.Var(x, false, true, axes...)
	y := tensor.Div(tensor.Sub(x, mean), tensor.Sqrt(tensor.AddScalar(v, eps)))
	if w != nil {
		y = tensor.Add(tensor.Mul(y, w), b)
	}
	return y
}

func TestLayerNorm(t *testing.T) {
	x := testutil.Rand(40, -2, 3, 3, 4, 5)
	w, b := testutil.Rand(41, 0.5, 1.5, 4, 5), testutil.Rand(42, -1, 1, 4, 5)
	// Values as the composition, affine over the last two dimensions and
	// plain over the last one.
	testutil.AssertClose(t, "LayerNorm affine", tensor.LayerNorm(x, w, b, 20, 1e-5),
		layerNormComposed(x, w, b, []int{1, 2}, 1e-5), 1e-5, 1e-5)
	testutil.AssertClose(t, "LayerNorm plain", tensor.LayerNorm(x, nil, nil, 5, 1e-3),
		layerNormComposed(x, nil, nil, []int{2}, 1e-3), 1e-5, 1e-5)

	testutil.GradCheck(t, "LayerNorm affine", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.LayerNorm(in[0], in[1], in[2], 20, 1e-5)
	}, []*tensor.Tensor{x, w, b}, 1e-2, 1e-2)
	testutil.GradCheck(t, "LayerNorm plain", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.LayerNorm(in[0], nil, nil, 5, 1e-5)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)

	// Gradients match the composition's too.
	xs := []*tensor.Tensor{x.Clone().SetRequiresGrad(true), x.Clone().SetRequiresGrad(true)}
	ws := []*tensor.Tensor{w.Clone().SetRequiresGrad(true), w.Clone().SetRequiresGrad(true)}
	bs := []*tensor.Tensor{b.Clone().SetRequiresGrad(true), b.Clone().SetRequiresGrad(true)}
	gy := testutil.Rand(43, -1, 1, 3, 4, 5)
	tensor.Sum(tensor.Mul(tensor.LayerNorm(xs[0], ws[0], bs[0], 20, 1e-5), gy)).Backward()
	tensor.Sum(tensor.Mul(layerNormComposed(xs[1], ws[1], bs[1], []int{1, 2}, 1e-5), gy)).Backward()
	for i, name := range []string{"x", "weight", "bias"} {
		got, want := []*tensor.Tensor{xs[0], ws[0], bs[0]}[i].Grad(), []*tensor.Tensor{xs[1], ws[1], bs[1]}[i].Grad()
		testutil.AssertClose(t, "LayerNorm grad of "+name, got, want, 1e-4, 1e-4)
	}

	testutil.MustPanic(t, "LayerNorm size", func() { tensor.LayerNorm(x, nil, nil, 7, 1e-5) }, "LayerNorm", "7", "[3 4 5]")
	testutil.MustPanic(t, "LayerNorm weight", func() { tensor.LayerNorm(x, w, nil, 5, 1e-5) }, "LayerNorm", "[4 5]", "5")
}
