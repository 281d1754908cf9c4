package tensor_test

import (
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

const opsFixture = "tensor/testdata/torch_tensor_ops.safetensors"

// opsGoldenUnary checks f's forward and the gradient of sum(f(x)*w) against
// the PyTorch fixture case name.
func opsGoldenUnary(t *testing.T, fx *testutil.Fixtures, name string, f func(x *tensor.Tensor) *tensor.Tensor, rtol float64) {
	t.Helper()
	x := fx.Get(t, name+".x").SetRequiresGrad(true)
	out := f(x)
	testutil.AssertClose(t, name+" forward", out, fx.Get(t, name+".out"), rtol, 1e-6)
	tensor.Sum(tensor.Mul(out, fx.Get(t, name+".w"))).Backward()
	testutil.AssertClose(t, name+" grad", x.Grad(), fx.Get(t, name+".gx"), rtol, 1e-6)
}

// opsGoldenBinary is opsGoldenUnary for two inputs.
func opsGoldenBinary(t *testing.T, fx *testutil.Fixtures, name string, f func(x, y *tensor.Tensor) *tensor.Tensor) {
	t.Helper()
	x := fx.Get(t, name+".x").SetRequiresGrad(true)
	y := fx.Get(t, name+".y").SetRequiresGrad(true)
	out := f(x, y)
	testutil.AssertClose(t, name+" forward", out, fx.Get(t, name+".out"), 1e-5, 1e-6)
	tensor.Sum(tensor.Mul(out, fx.Get(t, name+".w"))).Backward()
	testutil.AssertClose(t, name+" grad x", x.Grad(), fx.Get(t, name+".gx"), 1e-5, 1e-6)
	testutil.AssertClose(t, name+" grad y", y.Grad(), fx.Get(t, name+".gy"), 1e-5, 1e-6)
}

func one(f func(x *tensor.Tensor) *tensor.Tensor) func(in []*tensor.Tensor) *tensor.Tensor {
	return func(in []*tensor.Tensor) *tensor.Tensor { return f(in[0]) }
}

func two(f func(x, y *tensor.Tensor) *tensor.Tensor) func(in []*tensor.Tensor) *tensor.Tensor {
	return func(in []*tensor.Tensor) *tensor.Tensor { return f(in[0], in[1]) }
}

// awayFrom moves values closer than gap to any of the points out to gap, so
// finite differences do not straddle a kink.
func awayFrom(x *tensor.Tensor, gap float32, points ...float32) *tensor.Tensor {
	d := x.Data()
	for i, v := range d {
		for _, p := range points {
			if v-p < gap && p-v < gap {
				if v >= p {
					d[i] = p + gap
				} else {
					d[i] = p - gap
				}
			}
		}
	}
	return x
}

func TestElementwiseUnaryGolden(t *testing.T) {
	fx := testutil.LoadFixtures(t, opsFixture)
	cases := map[string]func(x *tensor.Tensor) *tensor.Tensor{
		"neg":       tensor.Neg,
		"exp":       tensor.Exp,
		"log":       tensor.Log,
		"sqrt":      tensor.Sqrt,
		"pow2":      func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, 2) },
		"pow2_5":    func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, 2.5) },
		"pow_neg1":  func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, -1) },
		"abs":       tensor.Abs,
		"clamp":     func(x *tensor.Tensor) *tensor.Tensor { return tensor.Clamp(x, -0.5, 0.7) },
		"addscalar": func(x *tensor.Tensor) *tensor.Tensor { return tensor.AddScalar(x, 1.5) },
		"mulscalar": func(x *tensor.Tensor) *tensor.Tensor { return tensor.MulScalar(x, -2.5) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) { opsGoldenUnary(t, fx, name, f, 1e-5) })
	}
}

func TestBroadcastBinaryGolden(t *testing.T) {
	fx := testutil.LoadFixtures(t, opsFixture)
	ops := map[string]func(x, y *tensor.Tensor) *tensor.Tensor{
		"add": tensor.Add, "sub": tensor.Sub, "mul": tensor.Mul, "div": tensor.Div,
		"maximum": tensor.Maximum, "minimum": tensor.Minimum,
	}
	for name, f := range ops {
		for _, sfx := range []string{"_b3", "_outer", "_scalar", "_scalar_left"} {
			t.Run(name+sfx, func(t *testing.T) { opsGoldenBinary(t, fx, name+sfx, f) })
		}
	}
	t.Run("maximum_ties", func(t *testing.T) { opsGoldenBinary(t, fx, "maximum_ties", tensor.Maximum) })
	t.Run("minimum_ties", func(t *testing.T) { opsGoldenBinary(t, fx, "minimum_ties", tensor.Minimum) })
}

func TestElementwiseUnaryGradCheck(t *testing.T) {
	pos := func(seed uint64) *tensor.Tensor { return testutil.Rand(seed, 0.3, 3, 3, 4) }
	cases := []struct {
		name string
		f    func(x *tensor.Tensor) *tensor.Tensor
		x    *tensor.Tensor
	}{
		{"Neg", tensor.Neg, testutil.Rand(1, -2, 2, 3, 4)},
		{"Exp", tensor.Exp, testutil.Rand(2, -2, 2, 3, 4)},
		{"Log", tensor.Log, pos(3)},
		{"Sqrt", tensor.Sqrt, pos(4)},
		{"Pow2", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, 2) }, testutil.Rand(5, -2, 2, 3, 4)},
		{"Pow3", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, 3) }, testutil.Rand(6, -2, 2, 3, 4)},
		{"Pow1.5", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, 1.5) }, pos(7)},
		{"Pow-2", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, -2) }, testutil.Rand(8, 0.8, 3, 3, 4)},
		{"Pow1", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, 1) }, testutil.Rand(9, -2, 2, 3, 4)},
		{"Pow0", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, 0) }, testutil.Rand(10, -2, 2, 3, 4)},
		{"Abs", tensor.Abs, awayFrom(testutil.Rand(11, -2, 2, 3, 4), 0.05, 0)},
		{"Clamp", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Clamp(x, -0.5, 0.7) },
			awayFrom(testutil.Rand(12, -2, 2, 3, 4), 0.05, -0.5, 0.7)},
		{"AddScalar", func(x *tensor.Tensor) *tensor.Tensor { return tensor.AddScalar(x, 3) }, testutil.Rand(13, -2, 2, 3, 4)},
		{"MulScalar", func(x *tensor.Tensor) *tensor.Tensor { return tensor.MulScalar(x, -1.5) }, testutil.Rand(14, -2, 2, 3, 4)},
	}
	for _, c := range cases {
		testutil.GradCheck(t, c.name, one(c.f), []*tensor.Tensor{c.x}, 1e-2, 1e-2)
	}
}

func TestBroadcastBinaryGradCheck(t *testing.T) {
	ops := []struct {
		name string
		f    func(x, y *tensor.Tensor) *tensor.Tensor
	}{
		{"Add", tensor.Add}, {"Sub", tensor.Sub}, {"Mul", tensor.Mul}, {"Div", tensor.Div},
		{"Maximum", tensor.Maximum}, {"Minimum", tensor.Minimum},
	}
	shapes := [][2][]int{
		{{3, 1, 4}, {2, 1}},
		{{3, 1}, {1, 4}},
		{{2, 3}, {}},
		{{}, {2, 3}},
		{{2, 3}, {2, 3}},
		{{4}, {2, 3, 4}},
	}
	for i, op := range ops {
		for j, sh := range shapes {
			x := testutil.Rand(uint64(100+10*i+j), -2, 2, sh[0]...)
			// divisors away from zero; both operands on distinct grids so
			// Maximum/Minimum never see (near-)ties
			y := testutil.Rand(uint64(200+10*i+j), 0.5, 2, sh[1]...)
			if op.name == "Maximum" || op.name == "Minimum" {
				awayFrom(x, 0.05, y.Data()...)
			}
			testutil.GradCheck(t, op.name, two(op.f), []*tensor.Tensor{x, y}, 1e-2, 1e-2)
		}
	}
}

func TestMaximumTiesSplitGradient(t *testing.T) {
	a := tensor.FromSlice([]float32{1, 2, 3}, 3).SetRequiresGrad(true)
	b := tensor.FromSlice([]float32{1, 5, 0}, 3).SetRequiresGrad(true)
	tensor.Sum(tensor.Maximum(a, b)).Backward()
	testutil.AssertClose(t, "grad a", a.Grad(), tensor.FromSlice([]float32{0.5, 0, 1}, 3), 0, 0)
	testutil.AssertClose(t, "grad b", b.Grad(), tensor.FromSlice([]float32{0.5, 1, 0}, 3), 0, 0)
}

func TestElementwiseSpecialValues(t *testing.T) {
	nan := float32(math.NaN())
	x := tensor.FromSlice([]float32{nan, 1, -1}, 3)
	y := tensor.FromSlice([]float32{0, nan, -2}, 3)
	mx := tensor.Maximum(x, y).Data()
	if !math.IsNaN(float64(mx[0])) || !math.IsNaN(float64(mx[1])) || mx[2] != -1 {
		t.Errorf("Maximum with NaN = %v, want [NaN NaN -1]", mx)
	}
	mn := tensor.Minimum(x, y).Data()
	if !math.IsNaN(float64(mn[0])) || !math.IsNaN(float64(mn[1])) || mn[2] != -2 {
		t.Errorf("Minimum with NaN = %v, want [NaN NaN -2]", mn)
	}
	c := tensor.Clamp(tensor.FromSlice([]float32{nan, -5, 5, 0.25}, 4), -1, 1).Data()
	if !math.IsNaN(float64(c[0])) || c[1] != -1 || c[2] != 1 || c[3] != 0.25 {
		t.Errorf("Clamp = %v, want [NaN -1 1 0.25]", c)
	}
	// lo > hi: everything becomes hi, as torch.clamp
	if c := tensor.Clamp(tensor.FromSlice([]float32{-3, 0, 3}, 3), 1, -1).Data(); c[0] != -1 || c[1] != -1 || c[2] != -1 {
		t.Errorf("Clamp(lo>hi) = %v, want all -1", c)
	}
	// gradient of Abs at 0 is 0, of Clamp at the bounds is 1
	z := tensor.FromSlice([]float32{0, -0.5, 0.7}, 3).SetRequiresGrad(true)
	tensor.Sum(tensor.Abs(z)).Backward()
	testutil.AssertClose(t, "Abs grad", z.Grad(), tensor.FromSlice([]float32{0, -1, 1}, 3), 0, 0)
	z.SetGrad(nil)
	tensor.Sum(tensor.Clamp(z, -0.5, 0.7)).Backward()
	testutil.AssertClose(t, "Clamp grad at bounds", z.Grad(), tensor.FromSlice([]float32{1, 1, 1}, 3), 0, 0)
	// Pow(x, 0) has zero gradient even at x = 0
	z.SetGrad(nil)
	tensor.Sum(tensor.Pow(z, 0)).Backward()
	testutil.AssertClose(t, "Pow0 grad", z.Grad(), tensor.Zeros(3), 0, 0)
}

func TestElementwisePanics(t *testing.T) {
	a, b := tensor.Zeros(2, 3), tensor.Zeros(4)
	testutil.MustPanic(t, "Maximum", func() { tensor.Maximum(a, b) }, "tensor.Maximum", "[2 3]", "[4]")
	testutil.MustPanic(t, "Minimum", func() { tensor.Minimum(a, b) }, "tensor.Minimum", "[2 3]", "[4]")
	testutil.MustPanic(t, "Add", func() { tensor.Add(a, b) }, "tensor.Add", "[2 3]", "[4]")
	testutil.MustPanic(t, "Div", func() { tensor.Div(tensor.Zeros(3, 2), tensor.Zeros(2, 3)) }, "tensor.Div", "[3 2]", "[2 3]")
	ints := tensor.ZerosInt64(2, 2)
	for name, f := range map[string]func(){
		"Exp":       func() { tensor.Exp(ints) },
		"Neg":       func() { tensor.Neg(ints) },
		"Pow":       func() { tensor.Pow(ints, 2) },
		"Clamp":     func() { tensor.Clamp(ints, 0, 1) },
		"MulScalar": func() { tensor.MulScalar(ints, 2) },
	} {
		testutil.MustPanic(t, name, f, "tensor."+name, "int64", "[2 2]")
	}
}

func TestOpsDoNotRecordWithoutGrad(t *testing.T) {
	x := testutil.Rand(1, -1, 1, 2, 3).SetRequiresGrad(false)
	if y := tensor.Exp(x); y.RequiresGrad() || !y.IsLeaf() {
		t.Errorf("Exp of a constant recorded a graph")
	}
	w := testutil.Rand(2, -1, 1, 2, 3)
	var y *tensor.Tensor
	tensor.NoGrad(func() { y = tensor.Maximum(x, w) })
	if y.RequiresGrad() || y.Op() != "" {
		t.Errorf("Maximum inside NoGrad recorded op %q", y.Op())
	}
	if z := tensor.Maximum(x, w); z.Op() != "Maximum" {
		t.Errorf("Op() = %q, want Maximum", z.Op())
	}
}
