package tensor_test

import (
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

func TestReductionGolden(t *testing.T) {
	fx := testutil.LoadFixtures(t, opsFixture)
	cases := map[string]func(x *tensor.Tensor) *tensor.Tensor{
		"sum_all":     tensor.Sum,
		"sum_1_keep":  func(x *tensor.Tensor) *tensor.Tensor { return tensor.SumAxes(x, true, 1) },
		"sum_02":      func(x *tensor.Tensor) *tensor.Tensor { return tensor.SumAxes(x, false, 0, 2) },
		"sum_02_keep": func(x *tensor.Tensor) *tensor.Tensor { return tensor.SumAxes(x, true, 2, 0) },
		"sum_12":      func(x *tensor.Tensor) *tensor.Tensor { return tensor.SumAxes(x, false, -1, -2) },
		"mean_all":    tensor.Mean,
		"mean_last":   func(x *tensor.Tensor) *tensor.Tensor { return tensor.MeanAxes(x, false, -1) },
		"mean_02_keep": func(x *tensor.Tensor) *tensor.Tensor {
			return tensor.MeanAxes(x, true, 0, 2)
		},
		"var_all_unbiased": func(x *tensor.Tensor) *tensor.Tensor { return tensor.Var(x, true, false) },
		"var_all_biased":   func(x *tensor.Tensor) *tensor.Tensor { return tensor.Var(x, false, false) },
		"var_1_unbiased":   func(x *tensor.Tensor) *tensor.Tensor { return tensor.Var(x, true, false, 1) },
		"var_02_biased_keep": func(x *tensor.Tensor) *tensor.Tensor {
			return tensor.Var(x, false, true, 0, 2)
		},
		"var_last_unbiased_keep": func(x *tensor.Tensor) *tensor.Tensor {
			return tensor.Var(x, true, true, -1)
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) { opsGoldenUnary(t, fx, name, f, 1e-5) })
	}
	t.Run("sum_long", func(t *testing.T) { opsGoldenUnary(t, fx, "sum_long", tensor.Sum, 1e-4) })
}

func TestMaxMinGoldenWithTies(t *testing.T) {
	fx := testutil.LoadFixtures(t, opsFixture)
	for axis := range 3 {
		for _, keep := range []bool{false, true} {
			sfx := string(rune('0' + axis))
			if keep {
				sfx += "_keep"
			}
			t.Run("max"+sfx, func(t *testing.T) {
				opsGoldenUnary(t, fx, "max"+sfx, func(x *tensor.Tensor) *tensor.Tensor { return tensor.Max(x, axis, keep) }, 0)
			})
			t.Run("min"+sfx, func(t *testing.T) {
				opsGoldenUnary(t, fx, "min"+sfx, func(x *tensor.Tensor) *tensor.Tensor { return tensor.Min(x, axis, keep) }, 0)
			})
			x := fx.Get(t, "max"+sfx+".x")
			for _, c := range []struct {
				name string
				got  *tensor.Tensor
			}{
				{"argmax", tensor.ArgMax(x, axis, keep)},
				{"maxidx", tensor.ArgMax(x, axis-3, keep)},
				{"argmin", tensor.ArgMin(x, axis, keep)},
				{"minidx", tensor.ArgMin(x, axis-3, keep)},
			} {
				want := fx.Get(t, c.name+sfx+".idx")
				if c.got.DType() != tensor.Int64 {
					t.Fatalf("%s%s: dtype %v, want int64", c.name, sfx, c.got.DType())
				}
				testutil.AssertClose(t, c.name+sfx, c.got, want, 0, 0)
			}
		}
	}
}

func TestMaxGradientGoesToFirstTie(t *testing.T) {
	x := tensor.FromSlice([]float32{
		3, 1, 3,
		2, 2, 0,
	}, 2, 3).SetRequiresGrad(true)
	m := tensor.Max(x, 1, false)
	testutil.AssertClose(t, "Max", m, tensor.FromSlice([]float32{3, 2}, 2), 0, 0)
	tensor.Sum(m).Backward()
	testutil.AssertClose(t, "Max grad", x.Grad(), tensor.FromSlice([]float32{1, 0, 0, 1, 0, 0}, 2, 3), 0, 0)

	y := tensor.FromSlice([]float32{0, 5, 0, 5, 1, 1}, 2, 3).SetRequiresGrad(true)
	n := tensor.Min(y, 0, true)
	testutil.AssertClose(t, "Min", n, tensor.FromSlice([]float32{0, 1, 0}, 1, 3), 0, 0)
	tensor.Sum(n).Backward()
	testutil.AssertClose(t, "Min grad", y.Grad(), tensor.FromSlice([]float32{1, 0, 1, 0, 1, 0}, 2, 3), 0, 0)
	if got := tensor.ArgMin(y, 0, false).Int64s(); got[0] != 0 || got[1] != 1 || got[2] != 0 {
		t.Errorf("ArgMin = %v, want [0 1 0]", got)
	}
}

func TestReductionGradCheck(t *testing.T) {
	type rc struct {
		name  string
		shape []int
		f     func(x *tensor.Tensor) *tensor.Tensor
	}
	cases := []rc{
		{"Sum", []int{3, 4}, tensor.Sum},
		{"Sum0d", []int{}, tensor.Sum},
		{"Mean", []int{2, 3, 4}, tensor.Mean},
	}
	axesSets := [][]int{{}, {0}, {1}, {-1}, {0, 1}, {0, 2}, {1, 3}, {0, 2, 3}, {2, 1}, {0, 1, 2, 3}}
	for _, axes := range axesSets {
		for _, keep := range []bool{false, true} {
			cases = append(cases,
				rc{"SumAxes", []int{2, 3, 2, 3}, func(x *tensor.Tensor) *tensor.Tensor { return tensor.SumAxes(x, keep, axes...) }},
				rc{"MeanAxes", []int{2, 3, 2, 3}, func(x *tensor.Tensor) *tensor.Tensor { return tensor.MeanAxes(x, keep, axes...) }},
				rc{"VarUnbiased", []int{2, 3, 2, 3}, func(x *tensor.Tensor) *tensor.Tensor { return tensor.Var(x, true, keep, axes...) }},
				rc{"VarBiased", []int{2, 3, 2, 3}, func(x *tensor.Tensor) *tensor.Tensor { return tensor.Var(x, false, keep, axes...) }},
			)
		}
	}
	for axis := -3; axis < 3; axis++ {
		for _, keep := range []bool{false, true} {
			cases = append(cases,
				rc{"Max", []int{3, 4, 5}, func(x *tensor.Tensor) *tensor.Tensor { return tensor.Max(x, axis, keep) }},
				rc{"Min", []int{3, 4, 5}, func(x *tensor.Tensor) *tensor.Tensor { return tensor.Min(x, axis, keep) }},
			)
		}
	}
	for i, c := range cases {
		// distinct values on a coarse grid: no ties, and eps never reorders them
		x := testutil.Rand(uint64(300+i), -2, 2, c.shape...)
		d := x.Data()
		perm := tensor.NewRNG(uint64(i)).Perm(len(d))
		for k := range d {
			d[k] = float32(perm[k])*0.1 - 2
		}
		testutil.GradCheck(t, c.name, one(c.f), []*tensor.Tensor{x}, 1e-2, 1e-2)
	}
}

func TestReductionShapes(t *testing.T) {
	x := tensor.Arange(0, 24, 1).Data()
	a := tensor.FromSlice(x, 2, 3, 4)
	for _, c := range []struct {
		got  *tensor.Tensor
		want []int
	}{
		{tensor.Sum(a), []int{}},
		{tensor.SumAxes(a, false), []int{}},
		{tensor.SumAxes(a, true), []int{1, 1, 1}},
		{tensor.SumAxes(a, false, 1), []int{2, 4}},
		{tensor.SumAxes(a, true, -1, 0), []int{1, 3, 1}},
		{tensor.MeanAxes(a, false, 0, 2), []int{3}},
		{tensor.Var(a, true, true, 2), []int{2, 3, 1}},
		{tensor.Max(a, -1, false), []int{2, 3}},
		{tensor.Min(a, 0, true), []int{1, 3, 4}},
		{tensor.ArgMax(a, 1, true), []int{2, 1, 4}},
		{tensor.Max(tensor.Scalar(3), 0, false), []int{}},
		{tensor.SumAxes(tensor.Scalar(3), true, -1), []int{}},
	} {
		if !tensor.SameShape(c.got.Shape(), c.want) {
			t.Errorf("%s: shape %v, want %v", c.got.Op(), c.got.Shape(), c.want)
		}
	}
	// values: sum over axes 0 and 2 of arange(24).reshape(2,3,4)
	testutil.AssertClose(t, "SumAxes(0,2)", tensor.SumAxes(a, false, 2, 0), tensor.FromSlice([]float32{60, 92, 124}, 3), 0, 0)
	testutil.AssertClose(t, "Mean", tensor.Mean(a), tensor.Scalar(11.5), 0, 0)
	testutil.AssertClose(t, "Var biased over 2", tensor.Var(a, false, false, 2), tensor.Full(1.25, 2, 3), 1e-6, 0)
	testutil.AssertClose(t, "Var unbiased over 2", tensor.Var(a, true, false, 2), tensor.Full(5.0/3, 2, 3), 1e-6, 0)
	// one element, unbiased: 0/0 = NaN as in PyTorch
	if v := tensor.Var(tensor.Ones(1), true, false).Item(); !math.IsNaN(float64(v)) {
		t.Errorf("unbiased Var of one element = %v, want NaN", v)
	}
	if v := tensor.Sum(tensor.Zeros(0, 3)).Item(); v != 0 {
		t.Errorf("Sum of empty = %v, want 0", v)
	}
	// NaN propagates through Max, and ArgMax points at it
	nan := float32(math.NaN())
	n := tensor.FromSlice([]float32{1, nan, 5, 2}, 4)
	if v := tensor.Max(n, 0, false).Item(); !math.IsNaN(float64(v)) {
		t.Errorf("Max with NaN = %v, want NaN", v)
	}
	if i := tensor.ArgMax(n, 0, false).Int64s()[0]; i != 1 {
		t.Errorf("ArgMax with NaN = %d, want 1", i)
	}
}

func TestReductionPanics(t *testing.T) {
	a := tensor.Zeros(2, 3)
	testutil.MustPanic(t, "SumAxes range", func() { tensor.SumAxes(a, false, 2) }, "tensor.SumAxes", "axis 2", "[2 3]")
	testutil.MustPanic(t, "MeanAxes range", func() { tensor.MeanAxes(a, false, -3) }, "tensor.MeanAxes", "axis -3", "[2 3]")
	testutil.MustPanic(t, "Var repeat", func() { tensor.Var(a, true, false, 1, -1) }, "tensor.Var", "twice", "[2 3]")
	testutil.MustPanic(t, "Max range", func() { tensor.Max(a, 5, false) }, "tensor.Max", "axis 5", "[2 3]")
	testutil.MustPanic(t, "ArgMin range", func() { tensor.ArgMin(a, -4, false) }, "tensor.ArgMin", "[2 3]")
	testutil.MustPanic(t, "Min empty", func() { tensor.Min(tensor.Zeros(2, 0), 1, false) }, "tensor.Min", "empty", "[2 0]")
	testutil.MustPanic(t, "ArgMax int", func() { tensor.ArgMax(tensor.ZerosInt64(2), 0, false) }, "tensor.ArgMax", "int64", "[2]")
	testutil.MustPanic(t, "Sum int", func() { tensor.Sum(tensor.ZerosInt64(2)) }, "tensor.Sum", "int64")
}
