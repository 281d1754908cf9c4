package tensor

import "fmt"

// BroadcastShapes returns the NumPy broadcast of two shapes, panicking with the
// op name and both shapes when they are incompatible.
func BroadcastShapes(op string, a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			panic(fmt.Sprintf("tensor.%s: shapes %v and %v cannot be broadcast", op, a, b))
		}
	}
	return out
}

// broadcastIndex maps every flat index of shape out to the flat index of an
// operand of shape in (right-aligned, size-1 dims repeat). It returns nil when
// in equals out (identity mapping).
func broadcastIndex(in, out []int) []int32 {
	if SameShape(in, out) {
		return nil
	}
	n := numel(out)
	idx := make([]int32, n)
	rank := len(out)
	// strides of in, aligned to out, 0 where broadcast
	st := make([]int, rank)
	acc := 1
	for i := rank - 1; i >= 0; i-- {
		j := len(in) - rank + i
		if j >= 0 {
			if in[j] != 1 {
				st[i] = acc
			}
			acc *= in[j]
		}
	}
	ctr := make([]int, rank)
	off := 0
	for k := 0; k < n; k++ {
		idx[k] = int32(off)
		for d := rank - 1; d >= 0; d-- {
			ctr[d]++
			off += st[d]
			if ctr[d] < out[d] {
				break
			}
			off -= st[d] * ctr[d]
			ctr[d] = 0
		}
	}
	return idx
}

// rowWalk walks a shape out row by row (a row is the last dimension, of
// length D = out[len(out)-1]) and keeps, for up to two operands of
// broadcastable shapes, the flat offset of the data that row reads and the
// operand's stride along the row: 1, or 0 where the operand repeats one
// value. It replaces a per-element index table (broadcastIndex) by one
// counter update per row.
type rowWalk struct {
	out      []int
	st       [2][]int // per-dimension strides of each operand aligned to out, 0 where broadcast
	ctr      []int
	off      [2]int // offsets of the current row
	inner    [2]int // strides along the row
	rows, dl int
}

func newRowWalk(out []int, a, b []int) *rowWalk {
	rank := len(out)
	w := &rowWalk{out: out, ctr: make([]int, rank), dl: out[rank-1]}
	for k, in := range [2][]int{a, b} {
		st := make([]int, rank)
		acc := 1
		for i := rank - 1; i >= 0; i-- {
			if j := len(in) - rank + i; j >= 0 {
				if in[j] != 1 {
					st[i] = acc
				}
				acc *= in[j]
			}
		}
		w.st[k] = st
		w.inner[k] = st[rank-1]
	}
	if w.dl > 0 {
		w.rows = numel(out) / w.dl
	}
	return w
}

// next moves to the next row.
func (w *rowWalk) next() {
	for d := len(w.out) - 2; d >= 0; d-- {
		w.ctr[d]++
		w.off[0] += w.st[0][d]
		w.off[1] += w.st[1][d]
		if w.ctr[d] < w.out[d] {
			return
		}
		w.off[0] -= w.st[0][d] * w.ctr[d]
		w.off[1] -= w.st[1][d] * w.ctr[d]
		w.ctr[d] = 0
	}
}

// SumTo sums g over broadcast dimensions so that the result has shape target.
// It is the adjoint of broadcasting and is used by the backward rules.
func SumTo(g *Tensor, target []int) *Tensor {
	if SameShape(g.shape, target) {
		return g
	}
	if len(target) > len(g.shape) {
		panic(fmt.Sprintf("tensor.SumTo: cannot reduce shape %v to %v", g.shape, target))
	}
	out := Zeros(target...)
	// validate
	lead := len(g.shape) - len(target)
	for i, d := range target {
		if d != 1 && d != g.shape[lead+i] {
			panic(fmt.Sprintf("tensor.SumTo: cannot reduce shape %v to %v", g.shape, target))
		}
	}
	// Row by row, adding in the same order as element by element.
	w := newRowWalk(g.shape, target, nil)
	for r := 0; r < w.rows; r++ {
		row := g.data[r*w.dl : (r+1)*w.dl]
		if w.inner[0] == 1 {
			o := out.data[w.off[0] : w.off[0]+w.dl]
			for j, v := range row {
				o[j] += v
			}
		} else {
			acc := out.data[w.off[0]]
			for _, v := range row {
				acc += v
			}
			out.data[w.off[0]] = acc
		}
		w.next()
	}
	return out
}

// BroadcastTo expands t to shape (copying values); differentiable.
func BroadcastTo(t *Tensor, shape []int) *Tensor {
	mustFloat("BroadcastTo", t)
	bs := BroadcastShapes("BroadcastTo", t.shape, shape)
	if !SameShape(bs, shape) {
		panic(fmt.Sprintf("tensor.BroadcastTo: shape %v cannot be broadcast to %v", t.shape, shape))
	}
	if SameShape(t.shape, shape) {
		return t
	}
	out := Zeros(shape...)
	idx := broadcastIndex(t.shape, shape)
	for k := range out.data {
		out.data[k] = t.data[idx[k]]
	}
	return record("BroadcastTo", out, func(g *Tensor) []*Tensor {
		return []*Tensor{g} // record reduces to t's shape
	}, t)
}

// binOp names the element-wise operations that binaryK runs as plain loops
// (the compiler inlines them); opFunc calls f for each element.
type binOp uint8

const (
	opFunc binOp = iota
	opAdd
	opSub
	opMul
	opDiv
)

// binary applies f elementwise with broadcasting. Same-shape and scalar
// operands take fast paths.
func binary(op string, a, b *Tensor, f func(x, y float32) float32) *Tensor {
	return binaryK(op, opFunc, a, b, f)
}

// binaryK is binary for the operation k (f is used only for opFunc).
func binaryK(op string, k binOp, a, b *Tensor, f func(x, y float32) float32) *Tensor {
	mustFloat(op, a, b)
	if SameShape(a.shape, b.shape) {
		out := Zeros(a.shape...)
		binRow(k, f, out.data, a.data, b.data, 0, 0)
		return out
	}
	shape := BroadcastShapes(op, a.shape, b.shape)
	out := Zeros(shape...)
	switch {
	case len(b.data) == 1 && SameShape(a.shape, shape):
		binRow(k, f, out.data, a.data, nil, 0, b.data[0])
		return out
	case len(a.data) == 1 && SameShape(b.shape, shape):
		binRow(k, f, out.data, nil, b.data, a.data[0], 0)
		return out
	}
	w := newRowWalk(shape, a.shape, b.shape)
	dl := w.dl
	for r := 0; r < w.rows; r++ {
		o := out.data[r*dl : (r+1)*dl]
		oa, ob := w.off[0], w.off[1]
		var ad, bd []float32
		var x, y float32
		if w.inner[0] == 1 {
			ad = a.data[oa : oa+dl]
		} else {
			x = a.data[oa]
		}
		if w.inner[1] == 1 {
			bd = b.data[ob : ob+dl]
		} else {
			y = b.data[ob]
		}
		binRow(k, f, o, ad, bd, x, y)
		w.next()
	}
	return out
}

// binRow sets o[j] to the operation k of a_j and b_j, where a_j is ad[j],
// or x when ad is nil, and b_j is bd[j], or y when bd is nil.
func binRow(k binOp, f func(x, y float32) float32, o, ad, bd []float32, x, y float32) {
	switch {
	case ad != nil && bd != nil:
		ad, bd = ad[:len(o)], bd[:len(o)]
		switch k {
		case opAdd:
			for j := range o {
				o[j] = ad[j] + bd[j]
			}
		case opSub:
			for j := range o {
				o[j] = ad[j] - bd[j]
			}
		case opMul:
			for j := range o {
				o[j] = ad[j] * bd[j]
			}
		case opDiv:
			for j := range o {
				o[j] = ad[j] / bd[j]
			}
		default:
			for j := range o {
				o[j] = f(ad[j], bd[j])
			}
		}
	case ad != nil:
		ad = ad[:len(o)]
		switch k {
		case opAdd:
			for j := range o {
				o[j] = ad[j] + y
			}
		case opSub:
			for j := range o {
				o[j] = ad[j] - y
			}
		case opMul:
			for j := range o {
				o[j] = ad[j] * y
			}
		case opDiv:
			for j := range o {
				o[j] = ad[j] / y
			}
		default:
			for j := range o {
				o[j] = f(ad[j], y)
			}
		}
	case bd != nil:
		bd = bd[:len(o)]
		switch k {
		case opAdd:
			for j := range o {
				o[j] = x + bd[j]
			}
		case opSub:
			for j := range o {
				o[j] = x - bd[j]
			}
		case opMul:
			for j := range o {
				o[j] = x * bd[j]
			}
		case opDiv:
			for j := range o {
				o[j] = x / bd[j]
			}
		default:
			for j := range o {
				o[j] = f(x, bd[j])
			}
		}
	default:
		var v float32
		switch k {
		case opAdd:
			v = x + y
		case opSub:
			v = x - y
		case opMul:
			v = x * y
		case opDiv:
			v = x / y
		default:
			v = f(x, y)
		}
		for j := range o {
			o[j] = v
		}
	}
}

// unary applies f elementwise.
func unary(op string, a *Tensor, f func(x float32) float32) *Tensor {
	mustFloat(op, a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		out.data[i] = f(v)
	}
	return out
}
