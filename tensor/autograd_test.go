package tensor_test

import (
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

func vec(v ...float32) *tensor.Tensor { return tensor.FromSlice(v, len(v)) }

func TestGradAccumulatesOverBackwardCalls(t *testing.T) {
	x := vec(1, -2, 3).SetRequiresGrad(true)
	loss := func() *tensor.Tensor { return tensor.Sum(tensor.Mul(x, x)) }
	loss().Backward()
	testutil.AssertClose(t, "first", x.Grad(), vec(2, -4, 6), 0, 0)
	loss().Backward()
	testutil.AssertClose(t, "second", x.Grad(), vec(4, -8, 12), 0, 0)
	// the same graph walked twice accumulates too
	l := loss()
	l.Backward()
	l.Backward()
	testutil.AssertClose(t, "same graph twice", x.Grad(), vec(8, -16, 24), 0, 0)
	// interior nodes keep no gradient
	y := tensor.Mul(x, x)
	tensor.Sum(y).Backward()
	if y.Grad() != nil || y.IsLeaf() {
		t.Errorf("interior node: Grad %v, IsLeaf %v; want nil, false", y.Grad(), y.IsLeaf())
	}
}

func TestZeroGradKeepsBuffer(t *testing.T) {
	x := vec(1, 2).SetRequiresGrad(true)
	x.ZeroGrad() // no gradient yet: no-op
	if x.Grad() != nil {
		t.Fatalf("ZeroGrad created a gradient")
	}
	tensor.Sum(tensor.MulScalar(x, 3)).Backward()
	g := x.Grad()
	x.ZeroGrad()
	if x.Grad() != g {
		t.Errorf("ZeroGrad replaced the gradient buffer")
	}
	testutil.AssertClose(t, "zeroed", x.Grad(), vec(0, 0), 0, 0)
	tensor.Sum(tensor.MulScalar(x, 3)).Backward()
	testutil.AssertClose(t, "after ZeroGrad", x.Grad(), vec(3, 3), 0, 0)
	x.SetGrad(nil)
	if x.Grad() != nil {
		t.Errorf("SetGrad(nil) did not clear")
	}
}

func TestNoGrad(t *testing.T) {
	x := vec(1, 2).SetRequiresGrad(true)
	var inner, nested *tensor.Tensor
	tensor.NoGrad(func() {
		if tensor.IsGradEnabled() {
			t.Errorf("IsGradEnabled inside NoGrad")
		}
		inner = tensor.Exp(x)
		tensor.NoGrad(func() { nested = tensor.Mul(x, x) })
		if tensor.IsGradEnabled() {
			t.Errorf("IsGradEnabled after a nested NoGrad returned")
		}
	})
	if !tensor.IsGradEnabled() {
		t.Fatalf("gradients still disabled after NoGrad")
	}
	for _, y := range []*tensor.Tensor{inner, nested} {
		if y.RequiresGrad() || !y.IsLeaf() || y.Op() != "" {
			t.Errorf("op inside NoGrad recorded a graph (%q)", y.Op())
		}
	}
	testutil.MustPanic(t, "Backward of no-grad", func() { tensor.Sum(inner).Backward() }, "tensor.Backward", "does not require grad")
	// recording resumes afterwards
	if y := tensor.Exp(x); !y.RequiresGrad() || y.Op() != "Exp" {
		t.Errorf("after NoGrad: RequiresGrad %v, Op %q", y.RequiresGrad(), y.Op())
	}
}

func TestDetach(t *testing.T) {
	x := vec(1, 2, 3).SetRequiresGrad(true)
	d := tensor.Exp(x).Detach()
	if d.RequiresGrad() || !d.IsLeaf() {
		t.Errorf("Detach: RequiresGrad %v, IsLeaf %v", d.RequiresGrad(), d.IsLeaf())
	}
	xd := x.Detach()
	xd.Data()[0] = 10 // shares storage
	if x.Data()[0] != 10 {
		t.Errorf("Detach does not share storage")
	}
	xd.Data()[0] = 1
	// gradient does not flow through the detached branch: d(x·sg(x))/dx = x
	tensor.Sum(tensor.Mul(x.Detach(), x)).Backward()
	testutil.AssertClose(t, "grad", x.Grad(), vec(1, 2, 3), 0, 0)
}

func TestDiamondGraph(t *testing.T) {
	x := vec(0.5, -1, 2).SetRequiresGrad(true)
	a := tensor.MulScalar(x, 2)
	b := tensor.Exp(x)
	tensor.Sum(tensor.Mul(a, b)).Backward() // d/dx 2x·e^x = 2e^x(1+x)
	want := make([]float32, 3)
	for i, v := range x.Data() {
		want[i] = float32(2 * math.Exp(float64(v)) * (1 + float64(v)))
	}
	testutil.AssertClose(t, "diamond", x.Grad(), vec(want...), 1e-6, 0)
	// the same tensor twice as inputs of one op
	y := vec(1, 2).SetRequiresGrad(true)
	tensor.Sum(tensor.Add(y, y)).Backward()
	testutil.AssertClose(t, "Add(y, y)", y.Grad(), vec(2, 2), 0, 0)
	// a longer chain that reuses an interior node on several paths
	z := vec(3).SetRequiresGrad(true)
	s := tensor.Mul(z, z)                   // z²
	u := tensor.Add(s, tensor.Mul(s, z))    // z² + z³
	tensor.Sum(tensor.Add(u, s)).Backward() // 2z² + z³ → 4z + 3z² = 39
	testutil.AssertClose(t, "reuse", z.Grad(), vec(39), 0, 0)
	testutil.GradCheck(t, "diamond", func(in []*tensor.Tensor) *tensor.Tensor {
		s := tensor.Mul(in[0], in[1])
		return tensor.Add(tensor.Mul(s, in[0]), tensor.Sigmoid(s))
	}, []*tensor.Tensor{testutil.Rand(1, -1, 1, 3, 1), testutil.Rand(2, -1, 1, 4)}, 1e-2, 1e-2)
}

func TestBroadcastGradients(t *testing.T) {
	a := tensor.FromSlice([]float32{1, 2, 3}, 3, 1).SetRequiresGrad(true)
	b := tensor.FromSlice([]float32{10, 20, 30, 40}, 1, 4).SetRequiresGrad(true)
	out := tensor.Mul(a, b)
	if !tensor.SameShape(out.Shape(), []int{3, 4}) {
		t.Fatalf("[3,1]x[1,4] gives %v", out.Shape())
	}
	tensor.Sum(out).Backward()
	testutil.AssertClose(t, "ga", a.Grad(), tensor.Full(100, 3, 1), 0, 0)
	testutil.AssertClose(t, "gb", b.Grad(), tensor.Full(6, 1, 4), 0, 0)

	// 0-d and [1] scalars broadcast against a matrix
	s := tensor.Scalar(2).SetRequiresGrad(true)
	one := tensor.FromSlice([]float32{3}, 1).SetRequiresGrad(true)
	m := tensor.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3).SetRequiresGrad(true)
	tensor.Sum(tensor.Sub(tensor.Mul(s, m), one)).Backward()
	testutil.AssertClose(t, "g scalar", s.Grad(), tensor.Scalar(21), 0, 0)
	testutil.AssertClose(t, "g [1]", one.Grad(), tensor.FromSlice([]float32{-6}, 1), 0, 0)
	testutil.AssertClose(t, "g matrix", m.Grad(), tensor.Full(2, 2, 3), 0, 0)

	// leading broadcast dimension plus an inner size-1 dimension
	c := testutil.Rand(3, -1, 1, 2, 1)
	d := testutil.Rand(4, 0.5, 1.5, 3, 2, 4)
	testutil.GradCheck(t, "Div [2,1]/[3,2,4]", two(tensor.Div), []*tensor.Tensor{c, d}, 1e-2, 1e-2)
	// BroadcastTo is differentiable and reduces back
	e := tensor.FromSlice([]float32{1, 2}, 2, 1).SetRequiresGrad(true)
	tensor.Sum(tensor.BroadcastTo(e, []int{3, 2, 5})).Backward()
	testutil.AssertClose(t, "BroadcastTo grad", e.Grad(), tensor.Full(15, 2, 1), 0, 0)
}

func TestSumTo(t *testing.T) {
	g := tensor.FromSlice(tensor.Arange(0, 24, 1).Data(), 2, 3, 4)
	if tensor.SumTo(g, []int{2, 3, 4}) != g {
		t.Errorf("SumTo to the same shape must return its input")
	}
	testutil.AssertClose(t, "to [3 1]", tensor.SumTo(g, []int{3, 1}),
		tensor.FromSlice([]float32{60, 92, 124}, 3, 1), 0, 0)
	testutil.AssertClose(t, "to [4]", tensor.SumTo(g, []int{4}),
		tensor.FromSlice([]float32{60, 66, 72, 78}, 4), 0, 0)
	testutil.AssertClose(t, "to [2 1 1]", tensor.SumTo(g, []int{2, 1, 1}),
		tensor.FromSlice([]float32{66, 210}, 2, 1, 1), 0, 0)
	testutil.AssertClose(t, "to []", tensor.SumTo(g, []int{}), tensor.Scalar(276), 0, 0)
	testutil.AssertClose(t, "to [1 1 1]", tensor.SumTo(g, []int{1, 1, 1}), tensor.Full(276, 1, 1, 1), 0, 0)
	testutil.MustPanic(t, "SumTo bad dim", func() { tensor.SumTo(g, []int{3, 2}) }, "tensor.SumTo", "[2 3 4]", "[3 2]")
	testutil.MustPanic(t, "SumTo more dims", func() { tensor.SumTo(g, []int{1, 2, 3, 4}) }, "tensor.SumTo", "[2 3 4]", "[1 2 3 4]")
}

func TestBackwardPanics(t *testing.T) {
	x := vec(1, 2).SetRequiresGrad(true)
	y := tensor.Exp(x)
	testutil.MustPanic(t, "non-scalar Backward", func() { y.Backward() }, "tensor.Backward", "[2]")
	testutil.MustPanic(t, "BackwardWith shape", func() { y.BackwardWith(tensor.Ones(3)) }, "tensor.BackwardWith", "[3]", "[2]")
	testutil.MustPanic(t, "int64 requires grad", func() { tensor.ZerosInt64(2).SetRequiresGrad(true) }, "tensor.SetRequiresGrad", "int64")
	testutil.MustPanic(t, "SetGrad shape", func() { x.SetGrad(tensor.Ones(3)) }, "tensor.SetGrad", "[3]", "[2]")
	// BackwardWith weights every output element
	y.BackwardWith(vec(1, 0))
	testutil.AssertClose(t, "BackwardWith", x.Grad(), vec(float32(math.E), 0), 1e-6, 0)
}
