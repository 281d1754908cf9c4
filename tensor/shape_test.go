package tensor_test

import (
	"fmt"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

const shapeFixturePath = "tensor/testdata/torch_tensor_shape.safetensors"

// shapeGolden checks op against the PyTorch case name in the shape fixtures:
// inputs name.in0..in{n-1}, output name.out, and the gradient name.grad<i> of
// sum(out * name.r) for each input.
func shapeGolden(t *testing.T, fx *testutil.Fixtures, name string, nIn int, op func(in []*tensor.Tensor) *tensor.Tensor) {
	t.Helper()
	ins := make([]*tensor.Tensor, nIn)
	for i := range ins {
		ins[i] = fx.Get(t, fmt.Sprintf("%s.in%d", name, i)).SetRequiresGrad(true)
	}
	out := op(ins)
	testutil.AssertClose(t, name+" forward", out, fx.Get(t, name+".out"), 1e-5, 1e-6)
	out.BackwardWith(fx.Get(t, name+".r"))
	for i, in := range ins {
		testutil.AssertClose(t, fmt.Sprintf("%s grad %d", name, i), in.Grad(), fx.Get(t, fmt.Sprintf("%s.grad%d", name, i)), 1e-5, 1e-6)
	}
}

// seq returns a float32 tensor holding 0, 1, 2, ... with the given shape.
func seq(shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	return tensor.FromSlice(v, shape...)
}

func assertShape(t *testing.T, what string, got *tensor.Tensor, want ...int) {
	t.Helper()
	if !tensor.SameShape(got.Shape(), want) {
		t.Errorf("%s: shape %v, want %v", what, got.Shape(), want)
	}
}

func assertValues(t *testing.T, what string, got *tensor.Tensor, want ...float32) {
	t.Helper()
	d := got.Float().Data()
	if len(d) != len(want) {
		t.Errorf("%s: %d values %v, want %v", what, len(d), d, want)
		return
	}
	for i := range d {
		if d[i] != want[i] {
			t.Errorf("%s: values %v, want %v", what, d, want)
			return
		}
	}
}

func TestReshapeSharesStorage(t *testing.T) {
	a := seq(2, 3, 4)
	r := tensor.Reshape(a, 4, -1)
	assertShape(t, "Reshape(4,-1)", r, 4, 6)
	r.Data()[5] = 100
	if a.At(0, 1, 1) != 100 {
		t.Errorf("Reshape does not share storage: a[0,1,1] = %v", a.At(0, 1, 1))
	}
	assertShape(t, "method Reshape", a.Reshape(-1), 24)
	assertShape(t, "Reshape to 0-d", tensor.Reshape(tensor.Ones(1, 1), []int{}...), []int{}...)

	ids := tensor.FromInt64([]int64{1, 2, 3, 4, 5, 6}, 6)
	ri := tensor.Reshape(ids, 3, 2)
	if ri.DType() != tensor.Int64 || ri.At(2, 1) != 6 {
		t.Errorf("int64 Reshape: %v", ri)
	}
}

func TestShapeViewsGrad(t *testing.T) {
	x := testutil.Rand(1, -1, 1, 2, 3, 4)
	testutil.GradCheck(t, "Reshape", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Reshape(in[0], 3, -1, 2)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	testutil.GradCheck(t, "Flatten", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Flatten(in[0], 1, -1)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	y := testutil.Rand(2, -1, 1, 1, 3, 1, 2)
	testutil.GradCheck(t, "Squeeze", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Squeeze(in[0])
	}, []*tensor.Tensor{y}, 1e-2, 1e-2)
	testutil.GradCheck(t, "Unsqueeze", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Mul(tensor.Unsqueeze(in[0], -1), in[0].Unsqueeze(0))
	}, []*tensor.Tensor{testutil.Rand(3, -1, 1, 3)}, 1e-2, 1e-2)
}

func TestFlattenSqueezeUnsqueezeShapes(t *testing.T) {
	a := seq(2, 3, 4, 5)
	assertShape(t, "Flatten(1,2)", tensor.Flatten(a, 1, 2), 2, 12, 5)
	assertShape(t, "Flatten(0,-1)", a.Flatten(0, -1), 120)
	assertShape(t, "Flatten(2,2)", tensor.Flatten(a, 2, 2), 2, 3, 4, 5)
	assertShape(t, "Flatten 0-d", tensor.Flatten(tensor.Scalar(3), 0, -1), 1)

	b := seq(1, 3, 1, 2)
	assertShape(t, "Squeeze()", tensor.Squeeze(b), 3, 2)
	assertShape(t, "Squeeze(2)", b.Squeeze(2), 1, 3, 2)
	assertShape(t, "Squeeze(-4, 2)", tensor.Squeeze(b, -4, 2), 3, 2)
	assertShape(t, "Squeeze(1) keeps size-3 axis", tensor.Squeeze(b, 1), 1, 3, 1, 2)

	c := seq(3, 2)
	assertShape(t, "Unsqueeze(0)", tensor.Unsqueeze(c, 0), 1, 3, 2)
	assertShape(t, "Unsqueeze(2)", c.Unsqueeze(2), 3, 2, 1)
	assertShape(t, "Unsqueeze(-1)", tensor.Unsqueeze(c, -1), 3, 2, 1)
	assertShape(t, "Unsqueeze(-3)", tensor.Unsqueeze(c, -3), 1, 3, 2)
	assertValues(t, "Unsqueeze values", tensor.Unsqueeze(c, 1), 0, 1, 2, 3, 4, 5)
}

func TestShapeViewErrors(t *testing.T) {
	a := seq(2, 3)
	testutil.MustPanic(t, "Reshape mismatch", func() { tensor.Reshape(a, 4, 2) }, "Reshape", "[2 3]", "[4 2]")
	testutil.MustPanic(t, "Reshape two -1", func() { tensor.Reshape(a, -1, -1) }, "Reshape", "[2 3]", "[-1 -1]")
	testutil.MustPanic(t, "Reshape -1 no fit", func() { tensor.Reshape(a, 4, -1) }, "Reshape", "[2 3]", "[4 -1]")
	testutil.MustPanic(t, "Flatten reversed", func() { tensor.Flatten(a, 1, 0) }, "Flatten", "[2 3]")
	testutil.MustPanic(t, "Flatten axis", func() { tensor.Flatten(a, 0, 2) }, "Flatten", "axis 2")
	testutil.MustPanic(t, "Squeeze axis", func() { tensor.Squeeze(a, 2) }, "Squeeze", "axis 2")
	testutil.MustPanic(t, "Unsqueeze axis", func() { tensor.Unsqueeze(a, 3) }, "Unsqueeze", "axis 3")
}

func TestTransposePermuteValues(t *testing.T) {
	a := seq(2, 3)
	tr := a.T()
	assertShape(t, "T", tr, 3, 2)
	assertValues(t, "T", tr, 0, 3, 1, 4, 2, 5)
	assertValues(t, "Transpose(-1,0)", tensor.Transpose(a, -1, 0), 0, 3, 1, 4, 2, 5)
	v := seq(4)
	if v.T() != v {
		t.Errorf("T of a 1-d tensor should return it unchanged")
	}

	x := seq(2, 3, 4, 5)
	p := tensor.Permute(x, 0, 2, 3, 1)
	assertShape(t, "Permute", p, 2, 4, 5, 3)
	for i := range 2 {
		for j := range 3 {
			for k := range 4 {
				for l := range 5 {
					if p.At(i, k, l, j) != x.At(i, j, k, l) {
						t.Fatalf("Permute: p[%d,%d,%d,%d] = %v, want %v", i, k, l, j, p.At(i, k, l, j), x.At(i, j, k, l))
					}
				}
			}
		}
	}
	q := x.Transpose(1, 3)
	assertShape(t, "Transpose(1,3)", q, 2, 5, 4, 3)
	if q.At(1, 4, 2, 0) != x.At(1, 0, 2, 4) {
		t.Errorf("Transpose(1,3) value mismatch")
	}
	id := x.Permute(0, 1, 2, 3)
	assertShape(t, "identity Permute", id, 2, 3, 4, 5)
	if id == x || id.At(1, 2, 3, 4) != x.At(1, 2, 3, 4) {
		t.Errorf("identity Permute should be a new tensor with the same values")
	}

	ids := tensor.FromInt64([]int64{1, 2, 3, 4, 5, 6}, 2, 3)
	assertValues(t, "int64 T", ids.T(), 1, 4, 2, 5, 3, 6)
}

func TestTransposePermuteGrad(t *testing.T) {
	x := testutil.Rand(4, -1, 1, 2, 3, 4, 5)
	testutil.GradCheck(t, "Permute 4-D", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Permute(in[0], 3, 0, 2, 1)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	testutil.GradCheck(t, "Permute negative dims", func(in []*tensor.Tensor) *tensor.Tensor {
		return in[0].Permute(-1, -3, -2, -4)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	m := testutil.Rand(5, -1, 1, 3, 4)
	testutil.GradCheck(t, "T", func(in []*tensor.Tensor) *tensor.Tensor {
		return in[0].T()
	}, []*tensor.Tensor{m}, 1e-2, 1e-2)
	testutil.GradCheck(t, "Transpose", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Transpose(in[0], 0, 2)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
}

func TestTransposePermuteErrors(t *testing.T) {
	x := seq(2, 3, 4)
	testutil.MustPanic(t, "Permute count", func() { tensor.Permute(x, 0, 1) }, "Permute", "[0 1]", "[2 3 4]")
	testutil.MustPanic(t, "Permute repeat", func() { tensor.Permute(x, 0, 1, 1) }, "Permute", "[0 1 1]", "[2 3 4]")
	testutil.MustPanic(t, "Permute axis", func() { tensor.Permute(x, 0, 1, 3) }, "Permute", "axis 3")
	testutil.MustPanic(t, "Transpose axis", func() { tensor.Transpose(x, 0, 5) }, "Transpose", "axis 5")
	testutil.MustPanic(t, "T of 3-d", func() { x.T() }, "tensor.T", "[2 3 4]")
}

func TestSliceValues(t *testing.T) {
	a := seq(10)
	assertValues(t, "Slice 1:8:3", tensor.Slice(a, 0, 1, 8, 3), 1, 4, 7)
	assertValues(t, "Slice -3:end", a.Slice(0, -3, 10, 1), 7, 8, 9)
	assertValues(t, "Slice 2:-5:2", tensor.Slice(a, 0, 2, -5, 2), 2, 4)
	assertValues(t, "Slice clamps", tensor.Slice(a, 0, -100, 100, 4), 0, 4, 8)
	assertShape(t, "Slice empty", tensor.Slice(a, 0, 6, 2, 1), 0)

	m := seq(3, 4)
	s := tensor.Slice(m, 1, 1, 4, 2)
	assertShape(t, "Slice axis 1", s, 3, 2)
	assertValues(t, "Slice axis 1", s, 1, 3, 5, 7, 9, 11)
	assertValues(t, "Slice axis -2", m.Slice(-2, 1, 2, 1), 4, 5, 6, 7)

	ids := tensor.FromInt64([]int64{5, 6, 7, 8}, 4)
	assertValues(t, "int64 Slice", tensor.Slice(ids, 0, 0, 4, 2), 5, 7)
}

func TestSliceGrad(t *testing.T) {
	x := testutil.Rand(6, -1, 1, 3, 8, 2)
	testutil.GradCheck(t, "Slice step 3", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Slice(in[0], 1, 1, -1, 3)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	testutil.GradCheck(t, "Slice step 1", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Slice(in[0], -1, 1, 2, 1)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	testutil.GradCheck(t, "Slice twice", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Add(tensor.Slice(in[0], 1, 0, 3, 1), tensor.Slice(in[0], 1, 2, 8, 2))
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	testutil.MustPanic(t, "Slice step 0", func() { tensor.Slice(x, 1, 0, 4, 0) }, "Slice", "step 0", "[3 8 2]")
	testutil.MustPanic(t, "Slice axis", func() { tensor.Slice(x, 3, 0, 4, 1) }, "Slice", "axis 3")
}

func TestSplit(t *testing.T) {
	a := seq(2, 5)
	ps := tensor.Split(a, 1, 2, 3)
	if len(ps) != 2 {
		t.Fatalf("Split into %d pieces, want 2", len(ps))
	}
	assertValues(t, "Split piece 0", ps[0], 0, 1, 5, 6)
	assertValues(t, "Split piece 1", ps[1], 2, 3, 4, 7, 8, 9)
	cs := tensor.Split(a, -1, 2)
	if len(cs) != 3 {
		t.Fatalf("Split chunk 2 into %d pieces, want 3", len(cs))
	}
	assertShape(t, "last chunk", cs[2], 2, 1)
	assertValues(t, "last chunk", cs[2], 4, 9)

	x := testutil.Rand(7, -1, 1, 3, 5)
	testutil.GradCheck(t, "Split", func(in []*tensor.Tensor) *tensor.Tensor {
		p := tensor.Split(in[0], 1, 1, 3, 1)
		return tensor.Concat([]*tensor.Tensor{p[2], tensor.Mul(p[0], p[0]), p[1]}, 1)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	testutil.MustPanic(t, "Split sizes", func() { tensor.Split(a, 1, 2, 2) }, "Split", "[2 2]", "[2 5]")
	testutil.MustPanic(t, "Split negative", func() { tensor.Split(a, 1, 6, -1) }, "Split", "[2 5]")
}

func TestConcatStack(t *testing.T) {
	a, b := seq(2, 1), tensor.Full(9, 2, 2)
	c := tensor.Concat([]*tensor.Tensor{a, b}, 1)
	assertShape(t, "Concat", c, 2, 3)
	assertValues(t, "Concat", c, 0, 9, 9, 1, 9, 9)
	assertValues(t, "Concat axis 0", tensor.Concat([]*tensor.Tensor{seq(1, 2), seq(2, 2)}, 0), 0, 1, 0, 1, 2, 3)

	s := tensor.Stack([]*tensor.Tensor{seq(2), tensor.Full(7, 2)}, 0)
	assertShape(t, "Stack 0", s, 2, 2)
	assertValues(t, "Stack 0", s, 0, 1, 7, 7)
	s1 := tensor.Stack([]*tensor.Tensor{seq(2), tensor.Full(7, 2)}, -1)
	assertShape(t, "Stack -1", s1, 2, 2)
	assertValues(t, "Stack -1", s1, 0, 7, 1, 7)

	ids := tensor.Concat([]*tensor.Tensor{tensor.FromInt64([]int64{1}, 1), tensor.FromInt64([]int64{2, 3}, 2)}, 0)
	if ids.DType() != tensor.Int64 {
		t.Errorf("int64 Concat gave %v", ids.DType())
	}
	assertValues(t, "int64 Concat", ids, 1, 2, 3)

	x, y := testutil.Rand(8, -1, 1, 2, 3, 2), testutil.Rand(9, -1, 1, 2, 1, 2)
	testutil.GradCheck(t, "Concat", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Concat([]*tensor.Tensor{in[0], in[1], in[0]}, -2)
	}, []*tensor.Tensor{x, y}, 1e-2, 1e-2)
	z := testutil.Rand(10, -1, 1, 2, 3, 2)
	testutil.GradCheck(t, "Stack", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Stack([]*tensor.Tensor{in[0], in[1]}, 2)
	}, []*tensor.Tensor{x, z}, 1e-2, 1e-2)
	// Only one input needs a gradient.
	frozen := seq(2, 3, 2)
	testutil.GradCheck(t, "Stack frozen", func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Stack([]*tensor.Tensor{frozen, in[0]}, 0)
	}, []*tensor.Tensor{x}, 1e-2, 1e-2)
}

func TestConcatStackErrors(t *testing.T) {
	a, b := seq(2, 3), seq(3, 3)
	testutil.MustPanic(t, "Concat mismatch", func() { tensor.Concat([]*tensor.Tensor{a, b}, 1) }, "Concat", "[2 3]", "[3 3]")
	testutil.MustPanic(t, "Concat rank", func() { tensor.Concat([]*tensor.Tensor{a, seq(6)}, 0) }, "Concat", "[2 3]", "[6]")
	testutil.MustPanic(t, "Concat dtype", func() {
		tensor.Concat([]*tensor.Tensor{seq(2), tensor.FromInt64([]int64{1, 2}, 2)}, 0)
	}, "Concat", "float32", "int64")
	testutil.MustPanic(t, "Concat empty", func() { tensor.Concat(nil, 0) }, "Concat")
	testutil.MustPanic(t, "Stack mismatch", func() { tensor.Stack([]*tensor.Tensor{a, b}, 0) }, "Stack", "[2 3]", "[3 3]")
	testutil.MustPanic(t, "Stack axis", func() { tensor.Stack([]*tensor.Tensor{a, a}, 3) }, "Stack", "axis 3")
}

func TestShapeGolden(t *testing.T) {
	fx := testutil.LoadFixtures(t, shapeFixturePath)
	shapeGolden(t, fx, "concat", 3, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Concat(in, 1) })
	shapeGolden(t, fx, "stack", 3, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Stack(in, 1) })
	shapeGolden(t, fx, "stack_last", 2, func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Stack(in, -1) })
	shapeGolden(t, fx, "permute", 1, func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Permute(0, 2, 3, 1) })
	shapeGolden(t, fx, "slice", 1, func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Slice(1, 1, -1, 2) })
}

func TestShapeOpsNoGrad(t *testing.T) {
	x := testutil.Rand(11, -1, 1, 2, 3)
	tensor.NoGrad(func() {
		for name, y := range map[string]*tensor.Tensor{
			"Reshape": x.Reshape(3, 2), "Permute": x.Permute(1, 0), "Slice": x.Slice(1, 0, 2, 1),
			"Concat": tensor.Concat([]*tensor.Tensor{x, x}, 0), "Stack": tensor.Stack([]*tensor.Tensor{x}, 0),
		} {
			if y.RequiresGrad() || !y.IsLeaf() {
				t.Errorf("%s under NoGrad recorded a graph", name)
			}
		}
	})
	if y := x.Reshape(6); y.Op() != "Reshape" || !y.RequiresGrad() {
		t.Errorf("Reshape did not record: op %q", y.Op())
	}
}
