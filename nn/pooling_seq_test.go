package nn_test

import (
	"reflect"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

func TestMaskedPoolingGolden(t *testing.T) {
	for _, c := range []struct {
		key string
		f   func(x, mask *tensor.Tensor) *tensor.Tensor
	}{{"mean", nn.MaskedMean}, {"max", nn.MaskedMax}} {
		t.Run(c.key, func(t *testing.T) {
			x := rnnMust(t, c.key+".x").SetRequiresGrad(true)
			mask := rnnMust(t, c.key+".mask") // int64, as PyTorch's bool mask
			out := c.f(x, mask)
			testutil.AssertClose(t, "output", out, rnnMust(t, c.key+".out"), 1e-5, 1e-6)
			tensor.Sum(tensor.Mul(out, rnnMust(t, c.key+".R"))).Backward()
			testutil.AssertClose(t, "grad x", x.Grad(), rnnMust(t, c.key+".grad.x"), 1e-5, 1e-6)
			// A float32 mask gives the same result.
			testutil.AssertClose(t, "float mask", c.f(x.Detach(), mask.Float()), out, 0, 0)
		})
	}
}

func TestMaskedPoolingGradCheck(t *testing.T) {
	mask := tensor.FromSlice([]float32{1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0}, 3, 4)
	x := testutil.Rand(11, -1, 1, 3, 4, 2)
	testutil.GradCheck(t, "MaskedMean", func(in []*tensor.Tensor) *tensor.Tensor { return nn.MaskedMean(in[0], mask) }, []*tensor.Tensor{x}, 1e-2, 1e-2)
	// Values far apart, so that a finite-difference step never changes the argmax.
	v := []float32{0.1, 0.9, -0.5, 0.3, 1.7, -1.2, 0.6, 2.4, -2.0, 1.1, 0.0, -0.8,
		2.2, -0.3, 1.4, 0.7, -1.6, 0.2, 0.8, -2.5, 1.9, -1.0, 0.4, 1.3}
	xm := tensor.FromSlice(v, 3, 4, 2).SetRequiresGrad(true)
	testutil.GradCheck(t, "MaskedMax", func(in []*tensor.Tensor) *tensor.Tensor { return nn.MaskedMax(in[0], mask) }, []*tensor.Tensor{xm}, 1e-2, 1e-2)
	// Masked steps get no gradient even where they hold the larger values.
	xm.SetGrad(nil)
	tensor.Sum(nn.MaskedMax(xm, mask)).Backward()
	g := xm.Grad().Data()
	for _, i := range []int{4, 5, 6, 7} { // row 0, steps 2 and 3
		if g[i] != 0 {
			t.Errorf("masked element %d got gradient %v", i, g[i])
		}
	}
	for _, v := range g[16:] { // row 2 has no valid step
		if v != 0 {
			t.Errorf("empty row got gradient %v", g[16:])
			break
		}
	}
}

func TestSequenceMaskAndLengths(t *testing.T) {
	m := nn.SequenceMask([]int{3, 0, 5}, 5)
	want := []float32{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1}
	if !reflect.DeepEqual(m.Shape(), []int{3, 5}) || !reflect.DeepEqual(m.Data(), want) {
		t.Errorf("SequenceMask = %v %v", m.Shape(), m.Data())
	}
	if got := nn.MaskLengths(m); !reflect.DeepEqual(got, []int{3, 0, 5}) {
		t.Errorf("MaskLengths = %v", got)
	}
	im := tensor.FromInt64([]int64{1, 1, 0, 1, 0, 0}, 2, 3)
	if got := nn.MaskLengths(im); !reflect.DeepEqual(got, []int{2, 1}) {
		t.Errorf("MaskLengths(int64) = %v", got)
	}
	// Lengths from a mask drive an LSTM the same way as the lengths themselves.
	l := nn.NewLSTM(tensor.NewRNG(1), 2, 3, nn.RNNOptions{Bias: true, BatchFirst: true, Bidirectional: true})
	x := testutil.Rand(2, -1, 1, 2, 3, 2).Detach()
	a, _, _ := l.ForwardSeq(x, nn.MaskLengths(im), nil, nil)
	b, _, _ := l.ForwardSeq(x, []int{2, 1}, nil, nil)
	testutil.AssertClose(t, "lengths from mask", a, b, 0, 0)
}

func TestMaskedPoolingPanics(t *testing.T) {
	x := tensor.Zeros(2, 3, 4)
	testutil.MustPanic(t, "mask shape", func() { nn.MaskedMean(x, tensor.Zeros(2, 4)) }, "nn.MaskedMean", "[2 3 4]", "[2 4]")
	testutil.MustPanic(t, "input rank", func() { nn.MaskedMax(tensor.Zeros(2, 3), tensor.Zeros(2, 3)) }, "nn.MaskedMax", "[2 3]")
	testutil.MustPanic(t, "left padding", func() {
		nn.MaskLengths(tensor.FromSlice([]float32{0, 1, 1}, 1, 3))
	}, "nn.MaskLengths", "[1 3]", "step 1", "step 0")
	testutil.MustPanic(t, "mask rank", func() { nn.MaskLengths(tensor.Zeros(3)) }, "nn.MaskLengths", "[3]")
	testutil.MustPanic(t, "length too long", func() { nn.SequenceMask([]int{2, 6}, 5) }, "nn.SequenceMask", "length 6", "[0, 5]")
}
