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
	idx := broadcastIndex(target, g.shape)
	for k, v := range g.data {
		out.data[idx[k]] += v
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

// binary applies f elementwise with broadcasting. Same-shape and scalar
// operands take fast paths.
func binary(op string, a, b *Tensor, f func(x, y float32) float32) *Tensor {
	mustFloat(op, a, b)
	if SameShape(a.shape, b.shape) {
		out := Zeros(a.shape...)
		for i := range out.data {
			out.data[i] = f(a.data[i], b.data[i])
		}
		return out
	}
	shape := BroadcastShapes(op, a.shape, b.shape)
	out := Zeros(shape...)
	switch {
	case len(b.data) == 1:
		y := b.data[0]
		if SameShape(a.shape, shape) {
			for i := range out.data {
				out.data[i] = f(a.data[i], y)
			}
			return out
		}
	case len(a.data) == 1:
		x := a.data[0]
		if SameShape(b.shape, shape) {
			for i := range out.data {
				out.data[i] = f(x, b.data[i])
			}
			return out
		}
	}
	ia := broadcastIndex(a.shape, shape)
	ib := broadcastIndex(b.shape, shape)
	for k := range out.data {
		i, j := k, k
		if ia != nil {
			i = int(ia[k])
		}
		if ib != nil {
			j = int(ib[k])
		}
		out.data[k] = f(a.data[i], b.data[j])
	}
	return out
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
