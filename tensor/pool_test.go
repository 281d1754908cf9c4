package tensor_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

func TestPool2DGolden(t *testing.T) {
	f := testutil.LoadFixtures(t, convFixtures)
	for _, prefix := range []string{"maxpool_", "avgpool_"} {
		names, metas := fixtureCases(t, f, prefix, 5)
		for _, name := range names {
			m := metas[name]
			t.Run(name, func(t *testing.T) {
				x := f.Get(t, name+".x").SetRequiresGrad(true)
				opt := tensor.Pool2DOptions{
					Kernel: m.Kernel, Stride: m.Stride, Padding: m.Padding,
					CeilMode: m.CeilMode,
				}
				var y *tensor.Tensor
				if m.Kind == "max" {
					opt.Dilation = m.Dilation
					y = tensor.MaxPool2D(x, opt)
				} else {
					opt.ExcludePad = !m.CountIncludePad
					y = tensor.AvgPool2D(x, opt)
				}
				testutil.AssertClose(t, "y", y, f.Get(t, name+".y"), 1e-5, 1e-6)
				y.BackwardWith(f.Get(t, name+".gy"))
				testutil.AssertClose(t, "grad x", x.Grad(), f.Get(t, name+".gx"), 1e-5, 1e-6)
			})
		}
	}
}

// distinctInput returns a tensor whose values are a shuffled grid spaced 0.05
// apart, so finite differences with eps 1e-2 never swap a window's maximum.
func distinctInput(seed uint64, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n)
	for i, p := range rng.Perm(n) {
		v[i] = float32(p)*0.05 - float32(n)*0.025
	}
	return tensor.FromSlice(v, shape...).SetRequiresGrad(true)
}

func TestMaxPool2DGradCheck(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		opt   tensor.Pool2DOptions
		want  []int
	}{
		{"k2", []int{2, 2, 4, 6}, tensor.Pool2DOptions{Kernel: [2]int{2, 2}}, []int{2, 2, 2, 3}},
		{"overlap", []int{1, 2, 5, 5}, tensor.Pool2DOptions{Kernel: [2]int{3, 3}, Stride: [2]int{1, 2}}, []int{1, 2, 3, 2}},
		{"padded_ceil", []int{1, 2, 6, 5}, tensor.Pool2DOptions{Kernel: [2]int{3, 2}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, CeilMode: true}, []int{1, 2, 4, 3}},
		{"dilated", []int{1, 1, 7, 8}, tensor.Pool2DOptions{Kernel: [2]int{2, 3}, Stride: [2]int{1, 2}, Padding: [2]int{1, 1}, Dilation: [2]int{3, 2}}, []int{1, 1, 6, 3}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := distinctInput(uint64(i), c.shape...)
			f := func(in []*tensor.Tensor) *tensor.Tensor { return tensor.MaxPool2D(in[0], c.opt) }
			if got := f([]*tensor.Tensor{x}).Shape(); !tensor.SameShape(got, c.want) {
				t.Fatalf("output shape %v, want %v", got, c.want)
			}
			testutil.GradCheck(t, c.name, f, []*tensor.Tensor{x}, 1e-2, 1e-2)
		})
	}
}

// TestMaxPool2DTies checks that a window's gradient goes to its first maximal
// element (row-major), as PyTorch, and that padding never wins.
func TestMaxPool2DTies(t *testing.T) {
	// All equal, non-overlapping 2x2 windows: the top-left of each window.
	x := tensor.Full(3, 1, 1, 4, 4).SetRequiresGrad(true)
	y := tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: [2]int{2, 2}})
	y.BackwardWith(tensor.FromSlice([]float32{1, 2, 3, 4}, 1, 1, 2, 2))
	want := tensor.FromSlice([]float32{
		1, 0, 2, 0,
		0, 0, 0, 0,
		3, 0, 4, 0,
		0, 0, 0, 0,
	}, 1, 1, 4, 4)
	testutil.AssertClose(t, "equal windows", x.Grad(), want, 0, 0)

	// A tie inside the window after a smaller value: the first of the tied
	// maxima (row 0, col 2) wins over the later one (row 1, col 1).
	x = tensor.FromSlice([]float32{
		1, 0, 5,
		2, 5, 5,
		5, 0, 1,
	}, 1, 1, 3, 3).SetRequiresGrad(true)
	y = tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: [2]int{3, 3}})
	y.Backward()
	want = tensor.FromSlice([]float32{0, 0, 1, 0, 0, 0, 0, 0, 0}, 1, 1, 3, 3)
	testutil.AssertClose(t, "tie after smaller", x.Grad(), want, 0, 0)

	// Overlapping windows with stride 1: every window of the constant
	// input picks its own top-left element, so gradients do not pile up.
	x = tensor.Full(-2, 1, 1, 3, 3).SetRequiresGrad(true)
	y = tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: [2]int{2, 2}, Stride: [2]int{1, 1}})
	y.BackwardWith(tensor.OnesLike(y))
	want = tensor.FromSlice([]float32{1, 1, 0, 1, 1, 0, 0, 0, 0}, 1, 1, 3, 3)
	testutil.AssertClose(t, "overlapping", x.Grad(), want, 0, 0)

	// Padding is -inf: a negative constant input still yields its value,
	// and the gradient goes to the first real element of each window.
	x = tensor.Full(-7, 1, 1, 3, 3).SetRequiresGrad(true)
	y = tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}})
	testutil.AssertClose(t, "padded values", y, tensor.Full(-7, 1, 1, 2, 2), 0, 0)
	y.BackwardWith(tensor.OnesLike(y))
	// Windows start at rows/cols -1 and 1, so their first real elements are
	// (0,0), (0,1), (1,0) and (1,1).
	want = tensor.FromSlice([]float32{
		1, 1, 0,
		1, 1, 0,
		0, 0, 0,
	}, 1, 1, 3, 3)
	testutil.AssertClose(t, "padded ties", x.Grad(), want, 0, 0)
}

func TestMaxPool2DNaN(t *testing.T) {
	nan := float32(math.NaN())
	x := tensor.FromSlice([]float32{1, nan, 3, 4}, 1, 1, 2, 2)
	y := tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: [2]int{2, 2}})
	if v := y.Item(); !math.IsNaN(float64(v)) {
		t.Errorf("max of a window holding NaN = %v, want NaN", v)
	}
}

func TestAvgPool2DGradCheck(t *testing.T) {
	cases := []struct {
		name string
		opt  tensor.Pool2DOptions
		want []int
	}{
		{"k2", tensor.Pool2DOptions{Kernel: [2]int{2, 2}}, []int{2, 2, 2, 3}},
		{"padded_incl", tensor.Pool2DOptions{Kernel: [2]int{3, 3}, Stride: [2]int{2, 1}, Padding: [2]int{1, 1}}, []int{2, 2, 3, 7}},
		{"padded_excl", tensor.Pool2DOptions{Kernel: [2]int{3, 3}, Stride: [2]int{2, 1}, Padding: [2]int{1, 1}, ExcludePad: true}, []int{2, 2, 3, 7}},
		{"ceil_incl", tensor.Pool2DOptions{Kernel: [2]int{2, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, CeilMode: true}, []int{2, 2, 3, 4}},
		{"ceil_excl", tensor.Pool2DOptions{Kernel: [2]int{2, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, CeilMode: true, ExcludePad: true}, []int{2, 2, 3, 4}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := testutil.Rand(uint64(40+i), -1, 1, 2, 2, 5, 7)
			f := func(in []*tensor.Tensor) *tensor.Tensor { return tensor.AvgPool2D(in[0], c.opt) }
			if got := f([]*tensor.Tensor{x}).Shape(); !tensor.SameShape(got, c.want) {
				t.Fatalf("output shape %v, want %v", got, c.want)
			}
			testutil.GradCheck(t, c.name, f, []*tensor.Tensor{x}, 1e-2, 1e-2)
		})
	}
}

func TestAvgPool2DCountModes(t *testing.T) {
	x := tensor.Arange(0, 9, 1)
	x = tensor.FromSlice(x.Data(), 1, 1, 3, 3)
	opt := tensor.Pool2DOptions{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	// Windows: rows/cols {0,1} and {1,2} of the 3x3 grid 0..8.
	incl := tensor.AvgPool2D(x, opt)
	testutil.AssertClose(t, "count_include_pad", incl,
		tensor.FromSlice([]float32{8.0 / 9, 12.0 / 9, 20.0 / 9, 24.0 / 9}, 1, 1, 2, 2), 1e-6, 0)
	opt.ExcludePad = true
	excl := tensor.AvgPool2D(x, opt)
	testutil.AssertClose(t, "exclude pad", excl,
		tensor.FromSlice([]float32{2, 3, 5, 6}, 1, 1, 2, 2), 1e-6, 0)
}

func TestPool2DOutputSize(t *testing.T) {
	cases := []struct {
		h    int
		opt  tensor.Pool2DOptions
		want int
	}{
		{5, tensor.Pool2DOptions{Kernel: [2]int{2, 1}}, 2},
		{5, tensor.Pool2DOptions{Kernel: [2]int{2, 1}, CeilMode: true}, 3},
		// Ceil mode would start a last window in the right padding: dropped.
		{4, tensor.Pool2DOptions{Kernel: [2]int{2, 1}, Stride: [2]int{3, 1}, Padding: [2]int{1, 0}, CeilMode: true}, 2},
		{7, tensor.Pool2DOptions{Kernel: [2]int{3, 1}, Stride: [2]int{2, 1}, Padding: [2]int{1, 0}, CeilMode: true}, 4},
		{6, tensor.Pool2DOptions{Kernel: [2]int{3, 1}, Stride: [2]int{2, 1}, Padding: [2]int{1, 0}, CeilMode: true}, 4},
		{6, tensor.Pool2DOptions{Kernel: [2]int{3, 1}, Stride: [2]int{2, 1}, Padding: [2]int{1, 0}}, 3},
	}
	for _, c := range cases {
		x := tensor.Zeros(1, 1, c.h, 2)
		for _, y := range []*tensor.Tensor{tensor.MaxPool2D(x, c.opt), tensor.AvgPool2D(x, c.opt)} {
			if got := y.Size(2); got != c.want {
				t.Errorf("H=%d %+v: output height %d, want %d", c.h, c.opt, got, c.want)
			}
		}
	}
}

func TestPool2DShapeErrors(t *testing.T) {
	x := tensor.Zeros(2, 3, 5, 5)
	k2 := [2]int{2, 2}
	for _, c := range []struct {
		what  string
		f     func()
		parts []string
	}{
		{"max 3-D", func() { tensor.MaxPool2D(tensor.Zeros(3, 5, 5), tensor.Pool2DOptions{Kernel: k2}) },
			[]string{"tensor.MaxPool2D", "[3 5 5]"}},
		{"avg 3-D", func() { tensor.AvgPool2D(tensor.Zeros(3, 5, 5), tensor.Pool2DOptions{Kernel: k2}) },
			[]string{"tensor.AvgPool2D", "[3 5 5]"}},
		{"max no kernel", func() { tensor.MaxPool2D(x, tensor.Pool2DOptions{}) },
			[]string{"tensor.MaxPool2D", "kernel [0 0]", "[2 3 5 5]"}},
		{"max kernel too big", func() { tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: [2]int{6, 2}}) },
			[]string{"tensor.MaxPool2D", "[6 2]", "[2 3 5 5]"}},
		{"avg kernel too big", func() { tensor.AvgPool2D(x, tensor.Pool2DOptions{Kernel: [2]int{2, 6}}) },
			[]string{"tensor.AvgPool2D", "[2 6]", "[2 3 5 5]"}},
		{"max dilated too big", func() {
			tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: k2, Dilation: [2]int{5, 1}})
		}, []string{"tensor.MaxPool2D", "dilation [5 1]", "[2 3 5 5]"}},
		{"padding over half", func() {
			tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: k2, Padding: [2]int{0, 2}})
		}, []string{"tensor.MaxPool2D", "padding [0 2]", "kernel [2 2]", "[2 3 5 5]"}},
		{"avg padding over half", func() {
			tensor.AvgPool2D(x, tensor.Pool2DOptions{Kernel: [2]int{3, 3}, Padding: [2]int{2, 0}})
		}, []string{"tensor.AvgPool2D", "padding [2 0]", "[2 3 5 5]"}},
		{"avg dilation", func() {
			tensor.AvgPool2D(x, tensor.Pool2DOptions{Kernel: k2, Dilation: [2]int{2, 2}})
		}, []string{"tensor.AvgPool2D", "dilation [2 2]", "[2 3 5 5]"}},
		{"max exclude pad", func() {
			tensor.MaxPool2D(x, tensor.Pool2DOptions{Kernel: k2, ExcludePad: true})
		}, []string{"tensor.MaxPool2D", "ExcludePad", "[2 3 5 5]"}},
		{"negative stride", func() {
			tensor.AvgPool2D(x, tensor.Pool2DOptions{Kernel: k2, Stride: [2]int{-1, 1}})
		}, []string{"tensor.AvgPool2D", "stride [-1 1]", "[2 3 5 5]"}},
		{"int64", func() { tensor.MaxPool2D(tensor.ZerosInt64(2, 3, 5, 5), tensor.Pool2DOptions{Kernel: k2}) },
			[]string{"tensor.MaxPool2D", "int64", "[2 3 5 5]"}},
	} {
		testutil.MustPanic(t, c.what, c.f, c.parts...)
	}
}
