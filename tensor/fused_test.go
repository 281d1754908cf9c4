package tensor_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/kernels"
	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

// leafCopies returns fresh leaves with the values of ts (nil stays nil).
func leafCopies(ts ...*tensor.Tensor) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(ts))
	for i, t := range ts {
		if t != nil {
			out[i] = t.Clone().SetRequiresGrad(true)
		}
	}
	return out
}

// checkSame runs f and ref on separate copies of the inputs with the same
// upstream gradient and checks that outputs and input gradients agree.
func checkSame(t *testing.T, name string, f, ref func(in []*tensor.Tensor) *tensor.Tensor, inputs []*tensor.Tensor, rtol float64) {
	t.Helper()
	a, b := leafCopies(inputs...), leafCopies(inputs...)
	ya, yb := f(a), ref(b)
	testutil.AssertClose(t, name+" value", ya, yb, rtol, 0)
	g := testutil.Rand(99, -1, 1, ya.Shape()...)
	ya.BackwardWith(g)
	yb.BackwardWith(g)
	for i := range a {
		if a[i] == nil {
			continue
		}
		if a[i].Grad() == nil || b[i].Grad() == nil {
			t.Fatalf("%s: input %d got no gradient (fused %v, reference %v)", name, i, a[i].Grad() != nil, b[i].Grad() != nil)
		}
		testutil.AssertClose(t, fmt.Sprintf("%s grad %d", name, i), a[i].Grad(), b[i].Grad(), rtol, 1e-6)
	}
}

func TestConv2DReLUMatchesOps(t *testing.T) {
	cases := []struct {
		name      string
		x, w      []int
		bias      bool
		opt       tensor.Conv2DOptions
		pool      int
		poolExtra tensor.Pool2DOptions
	}{
		{name: "mnist", x: []int{5, 1, 12, 12}, w: []int{6, 1, 3, 3}, bias: true, pool: 2},
		{name: "odd plane", x: []int{3, 2, 9, 8}, w: []int{4, 2, 3, 3}, bias: true, pool: 2},
		{name: "pool3", x: []int{2, 2, 11, 11}, w: []int{3, 2, 3, 3}, bias: false, pool: 3},
		{name: "groups stride pad", x: []int{6, 4, 9, 9}, w: []int{6, 2, 3, 3}, bias: true,
			opt: tensor.Conv2DOptions{Stride: [2]int{2, 1}, Padding: [2]int{1, 1}, Groups: 2}, pool: 2},
		{name: "1x1", x: []int{3, 3, 6, 6}, w: []int{5, 3, 1, 1}, bias: true, pool: 2},
		{name: "overlapping pool falls back", x: []int{2, 1, 8, 8}, w: []int{3, 1, 3, 3}, bias: true,
			pool: 2, poolExtra: tensor.Pool2DOptions{Stride: [2]int{1, 1}}},
		{name: "no pool", x: []int{9, 2, 7, 7}, w: []int{4, 2, 3, 3}, bias: true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := testutil.Rand(uint64(10*i+1), -1, 1, c.x...)
			w := testutil.Rand(uint64(10*i+2), -1, 1, c.w...)
			var b *tensor.Tensor
			if c.bias {
				b = testutil.Rand(uint64(10*i+3), -0.5, 0.5, c.w[0])
			}
			// Ties and zeros: quantise x so windows hold equal values.
			for j, v := range x.Data() {
				x.Data()[j] = float32(math.Round(float64(v)*4)) / 4
			}
			bias := func(in []*tensor.Tensor) *tensor.Tensor { return in[2] }
			checkSame(t, "Conv2DReLU",
				func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Conv2DReLU(in[0], in[1], bias(in), c.opt) },
				func(in []*tensor.Tensor) *tensor.Tensor {
					return tensor.ReLU(tensor.Conv2D(in[0], in[1], bias(in), c.opt))
				},
				[]*tensor.Tensor{x, w, b}, 1e-6)
			if c.pool == 0 {
				return
			}
			popt := c.poolExtra
			popt.Kernel = [2]int{c.pool, c.pool}
			checkSame(t, "Conv2DReLUMaxPool",
				func(in []*tensor.Tensor) *tensor.Tensor {
					return tensor.Conv2DReLUMaxPool(in[0], in[1], bias(in), c.opt, popt)
				},
				func(in []*tensor.Tensor) *tensor.Tensor {
					return tensor.MaxPool2D(tensor.ReLU(tensor.Conv2D(in[0], in[1], bias(in), c.opt)), popt)
				},
				[]*tensor.Tensor{x, w, b}, 1e-6)
		})
	}
}

func TestConv2DReLUMaxPoolGradCheck(t *testing.T) {
	x := testutil.Rand(5, -1, 1, 2, 2, 6, 6)
	w := testutil.Rand(6, -1, 1, 3, 2, 3, 3)
	b := testutil.Rand(7, 0.2, 0.6, 3)
	testutil.GradCheck(t, "Conv2DReLUMaxPool", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Conv2DReLUMaxPool(in[0], in[1], in[2], tensor.Conv2DOptions{Padding: [2]int{1, 1}},
			tensor.Pool2DOptions{Kernel: [2]int{2, 2}})
	}, []*tensor.Tensor{x, w, b}, 1e-3, 2e-2)
}

func TestLinearReLUMatchesOps(t *testing.T) {
	x := testutil.Rand(1, -1, 1, 7, 5)
	w := testutil.Rand(2, -1, 1, 4, 5)
	b := testutil.Rand(3, -1, 1, 4)
	checkSame(t, "LinearReLU",
		func(in []*tensor.Tensor) *tensor.Tensor { return tensor.LinearReLU(in[0], in[1], in[2]) },
		func(in []*tensor.Tensor) *tensor.Tensor { return tensor.ReLU(tensor.Linear(in[0], in[1], in[2])) },
		[]*tensor.Tensor{x, w, b}, 1e-6)
}

func TestFusedOpsPanicNamingOp(t *testing.T) {
	x := tensor.Zeros(1, 2, 5, 5)
	w := tensor.Zeros(3, 1, 3, 3)
	testutil.MustPanic(t, "Conv2DReLU channels", func() { tensor.Conv2DReLU(x, w, nil, tensor.Conv2DOptions{}) },
		"tensor.Conv2DReLU", "[1 2 5 5]", "[3 1 3 3]")
	testutil.MustPanic(t, "Conv2DReLUMaxPool channels", func() {
		tensor.Conv2DReLUMaxPool(x, w, nil, tensor.Conv2DOptions{}, tensor.Pool2DOptions{Kernel: [2]int{2, 2}})
	}, "tensor.Conv2DReLUMaxPool", "[1 2 5 5]")
	w2 := tensor.Zeros(3, 2, 3, 3)
	testutil.MustPanic(t, "Conv2DReLUMaxPool kernel", func() {
		tensor.Conv2DReLUMaxPool(x, w2, nil, tensor.Conv2DOptions{}, tensor.Pool2DOptions{Kernel: [2]int{4, 4}})
	}, "tensor.Conv2DReLUMaxPool", "[1 3 3 3]")
	testutil.MustPanic(t, "LinearReLU", func() { tensor.LinearReLU(tensor.Zeros(2, 3), tensor.Zeros(4, 5), nil) },
		"tensor.LinearReLU", "[2 3]", "[4 5]")
}

// naiveMaxPool is the tiled max pool written plainly: first maximum wins,
// a NaN wins over numbers and the last NaN over earlier ones.
func naiveMaxPool(x *tensor.Tensor, k int) (*tensor.Tensor, []int) {
	s := x.Shape()
	oh, ow := s[2]/k, s[3]/k
	out := tensor.Zeros(s[0], s[1], oh, ow)
	var arg []int
	for n := 0; n < s[0]; n++ {
		for c := 0; c < s[1]; c++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					best, bi := float32(math.Inf(-1)), -1
					for y := oy * k; y < oy*k+k; y++ {
						for xx := ox * k; xx < ox*k+k; xx++ {
							v := x.At(n, c, y, xx)
							if bi < 0 || v > best || v != v {
								best, bi = v, ((n*s[1]+c)*s[2]+y)*s[3]+xx
							}
						}
					}
					out.Set(best, n, c, oy, ox)
					arg = append(arg, bi)
				}
			}
		}
	}
	return out, arg
}

func TestMaxPoolTiledMatchesNaive(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	for _, k := range []int{2, 3} {
		x := testutil.Rand(uint64(k), -2, 2, 2, 3, 7, 8)
		d := x.Data()
		for i := range d {
			d[i] = float32(math.Round(float64(d[i]))) // many ties
		}
		copy(d[0:], []float32{negZero, 0, 0, negZero})
		d[20], d[21], d[30] = nan, inf, nan
		d[60] = float32(math.Inf(-1))
		want, arg := naiveMaxPool(x, k)
		xx := x.Clone().SetRequiresGrad(true)
		got := tensor.MaxPool2D(xx, tensor.Pool2DOptions{Kernel: [2]int{k, k}})
		gd, wd := got.Data(), want.Data()
		for i := range wd {
			if math.Float32bits(gd[i]) != math.Float32bits(wd[i]) && !(gd[i] != gd[i] && wd[i] != wd[i]) {
				t.Fatalf("k=%d: output %d = %v, want %v", k, i, gd[i], wd[i])
			}
		}
		g := testutil.Rand(3, 1, 2, got.Shape()...)
		got.BackwardWith(g)
		wantG := make([]float32, x.Numel())
		for i, a := range arg {
			wantG[a] += g.Data()[i]
		}
		testutil.AssertClose(t, fmt.Sprintf("k=%d grad", k), xx.Grad(), tensor.FromSlice(wantG, x.Shape()...), 0, 0)
	}
}

// TestConvDeterministicAcrossThreads checks that the parallel convolution
// gives bit-identical values and gradients on one thread and on several.
func TestConvDeterministicAcrossThreads(t *testing.T) {
	run := func(threads int) []*tensor.Tensor {
		defer kernels.SetThreads(kernels.SetThreads(threads))
		in := leafCopies(testutil.Rand(1, 0, 1, 37, 1, 28, 28), testutil.Rand(2, -1, 1, 32, 1, 3, 3), testutil.Rand(3, -1, 1, 32))
		y := tensor.Conv2DReLUMaxPool(in[0], in[1], in[2], tensor.Conv2DOptions{}, tensor.Pool2DOptions{Kernel: [2]int{2, 2}})
		tensor.Sum(tensor.Mul(y, y)).Backward()
		return []*tensor.Tensor{y, in[0].Grad(), in[1].Grad(), in[2].Grad()}
	}
	one, four := run(1), run(4)
	for i := range one {
		testutil.AssertClose(t, fmt.Sprintf("result %d", i), four[i], one[i], 0, 0)
	}
}

// TestRecycledGradientsKeepResults runs a graph twice and checks that
// recycling gradient buffers between Backward calls corrupts neither the
// forward outputs a caller keeps nor the accumulated gradients.
func TestRecycledGradientsKeepResults(t *testing.T) {
	x := testutil.Rand(1, -1, 1, 4, 1, 10, 10)
	w := testutil.Rand(2, -1, 1, 3, 1, 3, 3).SetRequiresGrad(true)
	lw := testutil.Rand(3, -1, 1, 5, 48).SetRequiresGrad(true)
	step := func() (*tensor.Tensor, *tensor.Tensor) {
		h := tensor.Conv2DReLUMaxPool(x, w, nil, tensor.Conv2DOptions{}, tensor.Pool2DOptions{Kernel: [2]int{2, 2}})
		h = tensor.ReLU(tensor.Flatten(h, 1, -1))
		y := tensor.Linear(h, lw, nil)
		l := tensor.Sum(tensor.Mul(y, y))
		l.Backward()
		return y, l
	}
	y1, l1 := step()
	keep := y1.Clone()
	g1 := w.Grad().Clone()
	w.SetGrad(nil)
	lw.SetGrad(nil)
	y2, l2 := step()
	testutil.AssertClose(t, "kept output", y1, keep, 0, 0)
	testutil.AssertClose(t, "second output", y2, keep, 0, 0)
	testutil.AssertClose(t, "second grad", w.Grad(), g1, 0, 0)
	if l1.Item() != l2.Item() {
		t.Fatalf("loss changed: %v then %v", l1.Item(), l2.Item())
	}
	// Backward again on the first graph accumulates the same gradient.
	l1.Backward()
	testutil.AssertClose(t, "accumulated grad", w.Grad(), tensor.MulScalar(g1, 2), 1e-6, 0)
}
