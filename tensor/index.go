package tensor

import "fmt"

// This file holds the indexing ops: Gather, IndexSelect, Where and
// MaskedFill. Index and condition tensors never receive gradients.

// Gather picks a[..., index[...], ...] along axis (torch.gather): index is int64
// with a's rank and the output has index's shape. Along every other axis d,
// index.Size(d) must not exceed a.Size(d); index values must lie in
// [0, a.Size(axis)). The gradient scatter-adds into a, so repeated indices
// accumulate. a may be float32 or int64.
func Gather(a *Tensor, axis int, index *Tensor) *Tensor {
	rank := len(a.shape)
	ax := normAxis("Gather", axis, rank)
	if index.dtype != Int64 {
		panic(fmt.Sprintf("tensor.Gather: index must be int64, got %v (input shape %v, index shape %v)", index.dtype, a.shape, index.shape))
	}
	if len(index.shape) != rank {
		panic(fmt.Sprintf("tensor.Gather: index shape %v must have the rank of input shape %v", index.shape, a.shape))
	}
	for d := range rank {
		if d != ax && index.shape[d] > a.shape[d] {
			panic(fmt.Sprintf("tensor.Gather: index shape %v exceeds input shape %v outside axis %d", index.shape, a.shape, axis))
		}
	}
	n := a.shape[ax]
	ast := strides(a.shape)
	src := make([]int, len(index.ints))
	ctr := make([]int, rank)
	base := 0
	for k, iv := range index.ints {
		if iv < 0 || iv >= int64(n) {
			panic(fmt.Sprintf("tensor.Gather: index %d out of range [0, %d) on axis %d (input shape %v, index shape %v)", iv, n, axis, a.shape, index.shape))
		}
		src[k] = base + int(iv)*ast[ax]
		for d := rank - 1; d >= 0; d-- {
			ctr[d]++
			if d != ax {
				base += ast[d]
			}
			if ctr[d] < index.shape[d] {
				break
			}
			if d != ax {
				base -= ast[d] * ctr[d]
			}
			ctr[d] = 0
		}
	}
	out := alloc(a.dtype, cloneShape(index.shape))
	if a.dtype == Int64 {
		for k, o := range src {
			out.ints[k] = a.ints[o]
		}
	} else {
		for k, o := range src {
			out.data[k] = a.data[o]
		}
	}
	return record("Gather", out, func(g *Tensor) []*Tensor {
		ga := Zeros(a.shape...)
		for k, o := range src {
			ga.data[o] += g.data[k]
		}
		return []*Tensor{ga}
	}, a)
}

// IndexSelect picks whole slices of a along axis at the int64 positions in
// index (1-D, or 0-d for one position), as torch.index_select: the result has
// a's shape with that axis replaced by len(index). The gradient adds each
// output slice back into the slice it came from, so repeated positions
// accumulate. a may be float32 or int64.
func IndexSelect(a *Tensor, axis int, index *Tensor) *Tensor {
	ax := normAxis("IndexSelect", axis, len(a.shape))
	if index.dtype != Int64 || len(index.shape) > 1 {
		panic(fmt.Sprintf("tensor.IndexSelect: index must be a 1-d int64 tensor, got %v of shape %v (input shape %v)", index.dtype, index.shape, a.shape))
	}
	n := a.shape[ax]
	pos := make([]int, len(index.ints))
	for i, iv := range index.ints {
		if iv < 0 || iv >= int64(n) {
			panic(fmt.Sprintf("tensor.IndexSelect: index %d out of range [0, %d) on axis %d of shape %v", iv, n, axis, a.shape))
		}
		pos[i] = int(iv)
	}
	oshape := cloneShape(a.shape)
	oshape[ax] = len(pos)
	outer, inner := outerInner(a.shape, ax)
	out := alloc(a.dtype, oshape)
	if a.dtype == Int64 {
		selectCopy(out.ints, a.ints, outer, inner, n, pos)
	} else {
		selectCopy(out.data, a.data, outer, inner, n, pos)
	}
	return record("IndexSelect", out, func(g *Tensor) []*Tensor {
		// An embedding table's rows are added straight into its gradient
		// (gradSink): no table-sized buffer per step.
		ga := gradSink(a)
		sink := ga != nil
		if !sink {
			ga = Zeros(a.shape...)
		}
		m := len(pos)
		for o := 0; o < outer; o++ {
			for i, p := range pos {
				dst := ga.data[(o*n+p)*inner : (o*n+p+1)*inner]
				for j, v := range g.data[(o*m+i)*inner : (o*m+i+1)*inner] {
					dst[j] += v
				}
			}
		}
		if sink {
			return []*Tensor{nil}
		}
		return []*Tensor{ga}
	}, a)
}

// selectCopy copies slices pos of src [outer, n, inner] into dst [outer, len(pos), inner].
func selectCopy[T elem](dst, src []T, outer, inner, n int, pos []int) {
	m := len(pos)
	for o := 0; o < outer; o++ {
		for i, p := range pos {
			copy(dst[(o*m+i)*inner:(o*m+i+1)*inner], src[(o*n+p)*inner:(o*n+p+1)*inner])
		}
	}
}

// truth returns, for every element of shape out, whether the broadcast
// condition c (float32 or int64) is nonzero there. It walks out row by row
// (rowWalk): a row reads a run of c or repeats one element of it.
func truth(c *Tensor, out []int) []bool {
	m := make([]bool, numel(out))
	nz := func(i int) bool {
		if c.dtype == Int64 {
			return c.ints[i] != 0
		}
		return c.data[i] != 0
	}
	if len(out) == 0 { // a scalar: one element
		m[0] = nz(0)
		return m
	}
	w := newRowWalk(out, c.shape, nil)
	for r := 0; r < w.rows; r++ {
		row := m[r*w.dl : (r+1)*w.dl]
		if w.inner[0] == 1 {
			for j := range row {
				row[j] = nz(w.off[0] + j)
			}
		} else if nz(w.off[0]) {
			for j := range row {
				row[j] = true
			}
		}
		w.next()
	}
	return m
}

// broadcastAll broadcasts several shapes, panicking with every shape named.
func broadcastAll(op string, names []string, shapes ...[]int) []int {
	n := 0
	for _, s := range shapes {
		n = max(n, len(s))
	}
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		for j, d := range s {
			i := n - len(s) + j
			switch {
			case d == out[i] || d == 1:
			case out[i] == 1:
				out[i] = d
			default:
				msg := fmt.Sprintf("tensor.%s: shapes", op)
				for k, s := range shapes {
					msg += fmt.Sprintf(" %s %v", names[k], s)
				}
				panic(msg + " cannot be broadcast")
			}
		}
	}
	return out
}

// Where picks a where cond is nonzero and b elsewhere, with broadcasting of
// all three. cond may be float32 or int64 and gets no gradient; a and b are
// float32.
func Where(cond, a, b *Tensor) *Tensor {
	mustFloat("Where", a, b)
	shape := broadcastAll("Where", []string{"cond", "a", "b"}, cond.shape, a.shape, b.shape)
	if run, ok := whereRun(cond, a, b, shape); ok {
		return whereRuns(cond, a, b, shape, run)
	}
	mask := truth(cond, shape)
	ia := broadcastIndex(a.shape, shape)
	ib := broadcastIndex(b.shape, shape)
	out := newOut(shape) // every element is written
	for k, t := range mask {
		switch {
		case t && ia == nil:
			out.data[k] = a.data[k]
		case t:
			out.data[k] = a.data[ia[k]]
		case ib == nil:
			out.data[k] = b.data[k]
		default:
			out.data[k] = b.data[ib[k]]
		}
	}
	return record("Where", out, func(g *Tensor) []*Tensor {
		var ga, gb *Tensor
		if a.NeedsGrad() {
			ga = Zeros(shape...)
			for k, t := range mask {
				if t {
					ga.data[k] = g.data[k]
				}
			}
		}
		if b.NeedsGrad() {
			gb = Zeros(shape...)
			for k, t := range mask {
				if !t {
					gb.data[k] = g.data[k]
				}
			}
		}
		return []*Tensor{ga, gb}
	}, a, b)
}

// whereRun reports whether a and b have the output shape and cond has a
// leadRun layout, and returns its run length.
func whereRun(cond, a, b *Tensor, shape []int) (int, bool) {
	if !SameShape(a.shape, shape) || !SameShape(b.shape, shape) {
		return 0, false
	}
	return leadRun(cond.shape, shape)
}

// leadRun reports whether a tensor of shape c, broadcast to shape, matches
// it on its leading dimensions and is 1 on the others (a row mask such as
// [N, 1] for [N, H], or the full shape), and returns the number of
// consecutive elements of shape that one element of c covers.
func leadRun(c, shape []int) (int, bool) {
	off := len(shape) - len(c)
	lead := true
	run := 1
	for i, d := range shape {
		ci := 1
		if i >= off {
			ci = c[i-off]
		}
		switch {
		case lead && ci == d:
		case ci == 1:
			lead = false
			run *= d
		default:
			return 0, false
		}
	}
	return run, true
}

// whereRuns is Where for the layouts of whereRun: each element of cond
// copies a run of run elements from a or from b.
func whereRuns(cond, a, b *Tensor, shape []int, run int) *Tensor {
	sel := truth(cond, cond.shape)
	out := newOut(shape)
	for r, t := range sel {
		src := b.data
		if t {
			src = a.data
		}
		copy(out.data[r*run:(r+1)*run], src[r*run:(r+1)*run])
	}
	return record("Where", out, func(g *Tensor) []*Tensor {
		pick := func(want bool) *Tensor {
			gx := Zeros(shape...)
			for r, t := range sel {
				if t == want {
					copy(gx.data[r*run:(r+1)*run], g.data[r*run:(r+1)*run])
				}
			}
			return gx
		}
		var ga, gb *Tensor
		if a.NeedsGrad() {
			ga = pick(true)
		}
		if b.NeedsGrad() {
			gb = pick(false)
		}
		return []*Tensor{ga, gb}
	}, a, b)
}

// MaskedFill returns a with value where mask is nonzero (mask, float32 or
// int64, broadcasts to a's shape). Filled positions get no gradient.
func MaskedFill(a, mask *Tensor, value float32) *Tensor {
	mustFloat("MaskedFill", a)
	shape := broadcastAll("MaskedFill", []string{"input", "mask"}, a.shape, mask.shape)
	if !SameShape(shape, a.shape) {
		panic(fmt.Sprintf("tensor.MaskedFill: mask shape %v cannot be broadcast to input shape %v", mask.shape, a.shape))
	}
	m := truth(mask, a.shape)
	out := newOut(a.shape) // every element is written
	for k, t := range m {
		if t {
			out.data[k] = value
		} else {
			out.data[k] = a.data[k]
		}
	}
	return record("MaskedFill", out, func(g *Tensor) []*Tensor {
		ga := Zeros(a.shape...)
		for k, t := range m {
			if !t {
				ga.data[k] = g.data[k]
			}
		}
		return []*Tensor{ga}
	}, a)
}
