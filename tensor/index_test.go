package tensor_test

import (
	"fmt"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

func TestGatherValues(t *testing.T) {
	a := seq(2, 3)
	idx := tensor.FromInt64([]int64{2, 0, 2, 1}, 2, 2)
	g := tensor.Gather(a, 1, idx)
	assertShape(t, "Gather axis 1", g, 2, 2)
	assertValues(t, "Gather axis 1", g, 2, 0, 5, 4)
	g0 := tensor.Gather(a, 0, tensor.FromInt64([]int64{1, 0, 1}, 1, 3))
	assertValues(t, "Gather axis 0", g0, 3, 1, 5)
	// index smaller than a outside the axis
	gs := tensor.Gather(seq(3, 4), -1, tensor.FromInt64([]int64{3, 3, 0, 1}, 2, 2))
	assertValues(t, "Gather small index", gs, 3, 3, 4, 5)

	labels := tensor.FromInt64([]int64{10, 20, 30, 40}, 2, 2)
	gi := tensor.Gather(labels, 1, tensor.FromInt64([]int64{1, 1, 0, 0}, 2, 2))
	if gi.DType() != tensor.Int64 {
		t.Errorf("int64 Gather gave %v", gi.DType())
	}
	assertValues(t, "int64 Gather", gi, 20, 20, 30, 30)
}

func TestGatherGrad(t *testing.T) {
	x := testutil.Rand(21, -1, 1, 3, 4, 2)
	// repeated indices along axis 1 must accumulate
	idx := tensor.FromInt64([]int64{
		0, 0, 0, 0, 3, 1, 3, 3, 3, 3,
		1, 1, 1, 1, 1, 2, 0, 0, 2, 2,
		3, 2, 3, 2, 3, 2, 0, 1, 0, 0,
	}, 3, 5, 2)
	testutil.GradCheck(t, "Gather repeated", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Gather(in[0], 1, idx)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	// The gradient of a row gathered 4 times is 4× the upstream gradient.
	y := tensor.FromSlice([]float32{1, 2, 3}, 1, 3).SetRequiresGrad(true)
	tensor.Sum(tensor.Gather(y, 1, tensor.FromInt64([]int64{2, 2, 2, 2, 0}, 1, 5))).Backward()
	assertValues(t, "Gather repeated grad", y.Grad(), 1, 0, 4)
	if idx.Grad() != nil || idx.RequiresGrad() {
		t.Errorf("index tensor got a gradient")
	}
}

func TestIndexSelect(t *testing.T) {
	a := seq(3, 2)
	s := tensor.IndexSelect(a, 0, tensor.FromInt64([]int64{2, 0, 2}, 3))
	assertShape(t, "IndexSelect axis 0", s, 3, 2)
	assertValues(t, "IndexSelect axis 0", s, 4, 5, 0, 1, 4, 5)
	s1 := tensor.IndexSelect(a, -1, tensor.FromInt64([]int64{1}, 1))
	assertShape(t, "IndexSelect axis -1", s1, 3, 1)
	assertValues(t, "IndexSelect axis -1", s1, 1, 3, 5)
	emb := tensor.IndexSelect(tensor.FromInt64([]int64{7, 8, 9}, 3), 0, tensor.FromInt64([]int64{2, 2}, 2))
	assertValues(t, "int64 IndexSelect", emb, 9, 9)

	x := testutil.Rand(22, -1, 1, 4, 3, 2)
	for _, ax := range []int{0, 1, 2} {
		idx := tensor.FromInt64([]int64{1, 0, 1, 1, 0}, 5)
		testutil.GradCheck(t, "IndexSelect repeated", func(in []*tensor.Tensor) *tensor.Tensor {
			return tensor.IndexSelect(in[0], ax, idx)
		}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	}

	// A leaf that already has a gradient (an embedding table after the
	// first step) gets the rows added straight into it: a second backward
	// doubles it, a third after zeroing gives it again.
	w := testutil.Rand(29, -1, 1, 5, 3).SetRequiresGrad(true)
	idx := tensor.FromInt64([]int64{4, 1, 4, 0}, 4)
	gy := testutil.Rand(30, -1, 1, 4, 3)
	step := func() { tensor.Sum(tensor.Mul(tensor.IndexSelect(w, 0, idx), gy)).Backward() }
	step()
	g1 := w.Grad().Clone()
	want := make([]float32, 15)
	for i, p := range idx.Int64s() {
		for j := range 3 {
			want[int(p)*3+j] += gy.Data()[i*3+j]
		}
	}
	testutil.AssertClose(t, "IndexSelect grad", g1, tensor.FromSlice(want, 5, 3), 1e-6, 0)
	step()
	testutil.AssertClose(t, "IndexSelect accumulated grad", w.Grad(), tensor.MulScalar(g1, 2), 1e-6, 0)
	clear(w.Grad().Data())
	step()
	testutil.AssertClose(t, "IndexSelect grad after zeroing", w.Grad(), g1, 0, 0)
}

func TestIndexErrors(t *testing.T) {
	a := seq(2, 3)
	testutil.MustPanic(t, "Gather range", func() {
		tensor.Gather(a, 1, tensor.FromInt64([]int64{3}, 1, 1))
	}, "Gather", "index 3", "[2 3]", "[1 1]")
	testutil.MustPanic(t, "Gather negative", func() {
		tensor.Gather(a, 1, tensor.FromInt64([]int64{-1}, 1, 1))
	}, "Gather", "index -1")
	testutil.MustPanic(t, "Gather rank", func() {
		tensor.Gather(a, 1, tensor.FromInt64([]int64{0, 1}, 2))
	}, "Gather", "[2]", "[2 3]")
	testutil.MustPanic(t, "Gather too big", func() {
		tensor.Gather(a, 1, tensor.ZerosInt64(3, 1))
	}, "Gather", "[3 1]", "[2 3]")
	testutil.MustPanic(t, "Gather float index", func() {
		tensor.Gather(a, 1, tensor.Zeros(2, 3))
	}, "Gather", "int64", "float32")
	testutil.MustPanic(t, "IndexSelect range", func() {
		tensor.IndexSelect(a, 0, tensor.FromInt64([]int64{0, 2}, 2))
	}, "IndexSelect", "index 2", "[2 3]")
	testutil.MustPanic(t, "IndexSelect 2-d index", func() {
		tensor.IndexSelect(a, 0, tensor.ZerosInt64(1, 1))
	}, "IndexSelect", "[1 1]", "[2 3]")
	testutil.MustPanic(t, "IndexSelect axis", func() {
		tensor.IndexSelect(a, 2, tensor.ZerosInt64(1))
	}, "IndexSelect", "axis 2")
}

func TestWhere(t *testing.T) {
	cond := tensor.FromInt64([]int64{1, 0, 2}, 3)
	w := tensor.Where(cond, seq(2, 3), tensor.Full(-1, 1))
	assertShape(t, "Where", w, 2, 3)
	assertValues(t, "Where", w, 0, -1, 2, 3, -1, 5)
	fc := tensor.FromSlice([]float32{0, 0.5}, 2, 1)
	assertValues(t, "Where float cond", tensor.Where(fc, tensor.Full(1, 2), tensor.Full(2, 2)), 2, 2, 1, 1)

	c := tensor.FromSlice([]float32{1, 0, 0, 1, 1, 0}, 2, 1, 3)
	a, b := testutil.Rand(23, -1, 1, 4, 1), testutil.Rand(24, -1, 1, 2, 4, 3)
	testutil.GradCheck(t, "Where broadcast", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Where(c, in[0], in[1])
	}, []*tensor.Tensor{a, b}, 1e-2, 1e-2)

	// A float condition that requires grad must not receive one.
	cg := tensor.FromSlice([]float32{1, 0}, 2).SetRequiresGrad(true)
	x := testutil.Rand(25, -1, 1, 2)
	tensor.Sum(tensor.Where(cg, x, tensor.Zeros(2))).Backward()
	if cg.Grad() != nil {
		t.Errorf("Where condition got a gradient")
	}
	if g := x.Grad(); g == nil || g.Data()[0] != 1 || g.Data()[1] != 0 {
		t.Errorf("Where grad of a: %v, want [1 0]", g)
	}

	// Row masks and full-shape conditions (the recurrent layers' masking)
	// take a run-copying path, a column mask the general one: values and
	// gradients as the definition.
	for _, tc := range []struct{ cond, shape []int }{
		{[]int{3, 1}, []int{3, 4}}, {[]int{2, 3, 1}, []int{2, 3, 5}}, {[]int{2, 3}, []int{2, 3}},
		{[]int{3}, []int{2, 3}}, {[]int{1, 1}, []int{2, 2}},
	} {
		c := testutil.Rand(26, -1, 1, tc.cond...)
		cd := c.Data()
		for i := range cd {
			if cd[i] < 0 {
				cd[i] = 0
			}
		}
		a, b := testutil.Rand(27, -1, 1, tc.shape...), testutil.Rand(28, -1, 1, tc.shape...)
		got := tensor.Where(c, a, b).Data()
		cb := tensor.Add(c, tensor.Zeros(tc.shape...)).Data() // c broadcast to the shape
		for k := range got {
			want := b.Data()[k]
			if cb[k] != 0 {
				want = a.Data()[k]
			}
			if got[k] != want {
				t.Fatalf("Where cond %v shape %v: element %d = %v, want %v", tc.cond, tc.shape, k, got[k], want)
			}
		}
		testutil.GradCheck(t, fmt.Sprintf("Where cond %v shape %v", tc.cond, tc.shape), func(in []*tensor.Tensor) *tensor.Tensor {
			return tensor.Where(c, in[0], in[1])
		}, []*tensor.Tensor{a, b}, 1e-2, 1e-2)
	}

	testutil.MustPanic(t, "Where shapes", func() {
		tensor.Where(tensor.ZerosInt64(3), seq(2, 3), seq(4))
	}, "Where", "cond [3]", "a [2 3]", "b [4]")
	testutil.MustPanic(t, "Where int64 values", func() {
		tensor.Where(tensor.ZerosInt64(3), tensor.ZerosInt64(3), seq(3))
	}, "Where", "int64")
}

func TestMaskedFill(t *testing.T) {
	mask := tensor.FromInt64([]int64{1, 0}, 2, 1)
	m := tensor.MaskedFill(seq(2, 2), mask, -9)
	assertValues(t, "MaskedFill", m, -9, -9, 2, 3)
	x := testutil.Rand(26, -1, 1, 3, 2, 4)
	fm := tensor.FromSlice([]float32{0, 1, 1, 0}, 4)
	testutil.GradCheck(t, "MaskedFill", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.MaskedFill(in[0], fm, 3)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	// A mask on the leading dimensions ([3, 2, 1] over [3, 2, 4], as masked
	// pooling uses) fills whole rows.
	rm := tensor.FromSlice([]float32{1, 0, 0, 1, 0, 0}, 3, 2, 1)
	got := tensor.MaskedFill(x, rm, 3).Data()
	for k, v := range got {
		want := x.Data()[k]
		if rm.Data()[k/4] != 0 {
			want = 3
		}
		if v != want {
			t.Fatalf("MaskedFill row mask: element %d = %v, want %v", k, v, want)
		}
	}
	testutil.GradCheck(t, "MaskedFill row mask", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.MaskedFill(in[0], rm, 3)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	// 0-d input and mask.
	assertValues(t, "MaskedFill 0-d", tensor.MaskedFill(tensor.Scalar(2), tensor.Scalar(1), 7), 7)
	assertValues(t, "MaskedFill 0-d kept", tensor.MaskedFill(tensor.Scalar(2), tensor.Scalar(0), 7), 2)
	testutil.MustPanic(t, "MaskedFill grows", func() {
		tensor.MaskedFill(seq(2), tensor.ZerosInt64(3, 2), 0)
	}, "MaskedFill", "[3 2]", "[2]")
	testutil.MustPanic(t, "MaskedFill incompatible", func() {
		tensor.MaskedFill(seq(2, 3), tensor.ZerosInt64(2), 0)
	}, "MaskedFill", "[2 3]", "[2]")
}

func TestIndexGolden(t *testing.T) {
	fx := testutil.LoadFixtures(t, shapeFixturePath)
	for _, c := range []struct {
		name string
		axis int
	}{{"gather1", 1}, {"gather2", -1}} {
		idx := fx.Get(t, c.name+".index")
		shapeGolden(t, fx, c.name, 1, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Gather(in[0], c.axis, idx) })
	}
	for _, c := range []struct {
		name string
		axis int
	}{{"index_select0", 0}, {"index_select2", 2}} {
		idx := fx.Get(t, c.name+".index")
		shapeGolden(t, fx, c.name, 1, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.IndexSelect(in[0], c.axis, idx) })
	}
	for _, name := range []string{"where_int", "where_float"} {
		cond := fx.Get(t, name+".cond")
		shapeGolden(t, fx, name, 2, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Where(cond, in[0], in[1]) })
	}
	mask := fx.Get(t, "masked_fill.mask")
	shapeGolden(t, fx, "masked_fill", 1, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.MaskedFill(in[0], mask, -7.5) })
}
