package tensor_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

// matmulCases are the torch.matmul variants in the shape fixtures.
var matmulCases = []struct {
	name   string
	sa, sb []int
}{
	{"dot", []int{5}, []int{5}},
	{"vm", []int{4}, []int{4, 3}},
	{"mv", []int{3, 4}, []int{4}},
	{"mm", []int{3, 4}, []int{4, 5}},
	{"bmm", []int{2, 3, 4}, []int{2, 4, 5}},
	{"bcast_a", []int{2, 1, 3, 4}, []int{3, 4, 5}},
	{"bcast_b", []int{3, 4}, []int{2, 2, 4, 5}},
	{"bcast_both", []int{2, 1, 3, 4}, []int{1, 3, 4, 2}},
	{"vb", []int{4}, []int{2, 4, 3}},
	{"bv", []int{2, 3, 4}, []int{4}},
}

func TestMatMulGolden(t *testing.T) {
	fx := testutil.LoadFixtures(t, shapeFixturePath)
	for _, c := range matmulCases {
		shapeGolden(t, fx, "matmul_"+c.name, 2, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.MatMul(in[0], in[1]) })
	}
	shapeGolden(t, fx, "linear", 3, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Linear(in[0], in[1], in[2]) })
	shapeGolden(t, fx, "linear_nobias", 2, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Linear(in[0], in[1], nil) })
}

func TestMatMulGrad(t *testing.T) {
	for i, c := range matmulCases {
		a := testutil.Rand(uint64(30+i), -1, 1, c.sa...)
		b := testutil.Rand(uint64(60+i), -1, 1, c.sb...)
		testutil.GradCheck(t, "MatMul "+c.name, func(in []*tensor.Tensor) *tensor.Tensor {
			return tensor.MatMul(in[0], in[1])
		}, []*tensor.Tensor{a, b}, 1e-2, 1e-2)
	}
	// Only one side needs a gradient (the other is a constant).
	a := testutil.Rand(90, -1, 1, 2, 3, 4)
	w := testutil.Rand(91, -1, 1, 4, 2).SetRequiresGrad(false)
	testutil.GradCheck(t, "MatMul left only", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.MatMul(in[0], w)
	}, []*tensor.Tensor{a}, 1e-2, 1e-2)
	testutil.GradCheck(t, "MatMul right only", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.MatMul(w.T(), in[0])
	}, []*tensor.Tensor{testutil.Rand(92, -1, 1, 3, 4, 5)}, 1e-2, 1e-2)
}

// naiveMatMul multiplies [B, m, k] by [B, k, n] (or a shared [k, n]) in float64.
func naiveMatMul(a, b []float32, nb, m, n, k int, bShared bool) []float32 {
	out := make([]float32, nb*m*n)
	for s := 0; s < nb; s++ {
		bo := s * k * n
		if bShared {
			bo = 0
		}
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var acc float64
				for p := 0; p < k; p++ {
					acc += float64(a[s*m*k+i*k+p]) * float64(b[bo+p*n+j])
				}
				out[s*m*n+i*n+j] = float32(acc)
			}
		}
	}
	return out
}

// TestMatMulLarger compares odd, larger sizes (both the folded and the
// per-batch Sgemm paths, forward and backward) with a float64 reference.
func TestMatMulLarger(t *testing.T) {
	for _, c := range []struct{ nb, m, n, k int }{{1, 17, 33, 9}, {3, 31, 7, 65}, {2, 64, 48, 40}} {
		name := fmt.Sprintf("%dx%dx%dx%d", c.nb, c.m, c.n, c.k)
		a := testutil.Rand(100, -1, 1, c.nb, c.m, c.k)
		b := testutil.Rand(101, -1, 1, c.nb, c.k, c.n)
		bs := testutil.Rand(102, -1, 1, c.k, c.n)
		tol := 1e-5 * math.Sqrt(float64(c.k))
		want := tensor.FromSlice(naiveMatMul(a.Data(), b.Data(), c.nb, c.m, c.n, c.k, false), c.nb, c.m, c.n)
		testutil.AssertClose(t, name+" batched", tensor.MatMul(a, b), want, tol, tol)
		wantS := tensor.FromSlice(naiveMatMul(a.Data(), bs.Data(), c.nb, c.m, c.n, c.k, true), c.nb, c.m, c.n)
		testutil.AssertClose(t, name+" shared", tensor.MatMul(a, bs), wantS, tol, tol)

		// dA = dC·Bᵀ and dB = Aᵀ·dC, checked with the same reference.
		g := testutil.Rand(103, -1, 1, c.nb, c.m, c.n)
		a.SetGrad(nil)
		b.SetGrad(nil)
		tensor.MatMul(a, b).BackwardWith(g)
		bt := tensor.Transpose(b, 1, 2).Data()
		wantGA := naiveMatMul(g.Data(), bt, c.nb, c.m, c.k, c.n, false)
		testutil.AssertClose(t, name+" dA", a.Grad(), tensor.FromSlice(wantGA, c.nb, c.m, c.k), tol, tol)
		at := tensor.Transpose(a, 1, 2).Data()
		wantGB := naiveMatMul(at, g.Data(), c.nb, c.k, c.n, c.m, false)
		testutil.AssertClose(t, name+" dB", b.Grad(), tensor.FromSlice(wantGB, c.nb, c.k, c.n), tol, tol)
	}
}

func TestMatMulEdgeCases(t *testing.T) {
	z := tensor.MatMul(tensor.Zeros(2, 0), tensor.Zeros(0, 3))
	assertShape(t, "empty inner", z, 2, 3)
	assertValues(t, "empty inner", z, 0, 0, 0, 0, 0, 0)
	assertShape(t, "empty batch", tensor.MatMul(tensor.Zeros(0, 2, 3), tensor.Zeros(3, 4)), 0, 2, 4)
	d := tensor.MatMul(seq(3), seq(3))
	assertShape(t, "dot", d)
	if d.Item() != 5 {
		t.Errorf("dot = %v, want 5", d.Item())
	}
	// method forms chain: x·wᵀ via T and via Linear agree
	x, w := seq(2, 3), tensor.FromSlice([]float32{1, 0, -1, 2, 1, 0}, 2, 3)
	assertValues(t, "x.MatMul(w.T())", x.MatMul(w.T()), -2, 1, -2, 10)
	assertValues(t, "Linear", tensor.Linear(x, w, tensor.FromSlice([]float32{1, -1}, 2)), -1, 0, -1, 9)
	assertValues(t, "Linear empty in", tensor.Linear(tensor.Zeros(2, 0), tensor.Zeros(2, 0), tensor.FromSlice([]float32{1, -1}, 2)), 1, -1, 1, -1)
}

func TestLinearGrad(t *testing.T) {
	x := testutil.Rand(110, -1, 1, 2, 3, 4)
	w := testutil.Rand(111, -1, 1, 5, 4)
	b := testutil.Rand(112, -1, 1, 5)
	testutil.GradCheck(t, "Linear", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Linear(in[0], in[1], in[2])
	}, []*tensor.Tensor{x, w, b}, 1e-2, 1e-2)
	testutil.GradCheck(t, "Linear no bias 1-d", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Linear(in[0], in[1], nil)
	}, []*tensor.Tensor{testutil.Rand(113, -1, 1, 4), w}, 1e-2, 1e-2)
	// Linear agrees with MatMul + Add.
	testutil.AssertClose(t, "Linear vs MatMul", tensor.Linear(x, w, b), tensor.Add(tensor.MatMul(x, w.T()), b), 1e-5, 1e-6)
}

func TestMatMulErrors(t *testing.T) {
	testutil.MustPanic(t, "MatMul inner", func() { tensor.MatMul(seq(2, 3), seq(4, 5)) }, "MatMul", "[2 3]", "[4 5]")
	testutil.MustPanic(t, "MatMul vectors", func() { tensor.MatMul(seq(3), seq(4)) }, "MatMul", "[3]", "[4]")
	testutil.MustPanic(t, "MatMul batch", func() { tensor.MatMul(seq(2, 3, 4), seq(3, 4, 5)) }, "MatMul", "[2 3 4]", "[3 4 5]")
	testutil.MustPanic(t, "MatMul 0-d", func() { tensor.MatMul(tensor.Scalar(1), seq(2)) }, "MatMul", "[]", "[2]")
	testutil.MustPanic(t, "MatMul int64", func() { tensor.MatMul(tensor.ZerosInt64(2, 2), seq(2, 2)) }, "MatMul", "int64")
	testutil.MustPanic(t, "Linear in", func() { tensor.Linear(seq(2, 3), seq(5, 4), nil) }, "Linear", "[2 3]", "[5 4]")
	testutil.MustPanic(t, "Linear weight rank", func() { tensor.Linear(seq(2, 4), seq(4), nil) }, "Linear", "[2 4]", "[4]")
	testutil.MustPanic(t, "Linear bias", func() { tensor.Linear(seq(2, 4), seq(5, 4), seq(4)) }, "Linear", "[4]", "[5 4]")
}
