package tensor

import "fmt"

// This file holds the shape ops: views that share storage (Reshape, Flatten,
// Squeeze, Unsqueeze) and ops that move data (Transpose, Permute, Slice,
// Split, Concat, Stack). All of them work on float32 and int64 tensors; only
// float32 tensors carry gradients.

// elem is the set of storage element types.
type elem interface{ float32 | int64 }

// alloc returns a zeroed tensor of the given dtype and shape (shape is owned).
func alloc(dtype DType, shape []int) *Tensor {
	if dtype == Int64 {
		return &Tensor{shape: shape, ints: make([]int64, numel(shape)), dtype: Int64}
	}
	return &Tensor{shape: shape, data: make([]float32, numel(shape))}
}

// view returns a tensor that shares a's storage under a new shape (owned by
// the result); its gradient is the output gradient viewed with a's shape.
// A view of a step-arena tensor belongs to the arena too.
func view(op string, a *Tensor, shape []int) *Tensor {
	a.mustLive(op)
	out := newViewIn(a.arena, shape)
	out.data, out.ints, out.dtype = a.data, a.ints, a.dtype
	return recordFn(op, out, viewBackward, nil, false, a)
}

// viewBackward is the rule of view: the output gradient's storage under
// the input's shape. The gradient is a Tensor value of the engine's free
// list that does not own its storage (pooled stays false), so the
// engine only recycles g's buffer, once.
func viewBackward(out, g *Tensor) []*Tensor {
	in := out.ctx.inputs[0]
	gv := newGradView(in.shape, g.data)
	out.ctx.gin[0] = gv
	return out.ctx.gin[:1]
}

// Reshape returns a tensor with the same values and a new shape (one dim may be -1).
// It shares storage with a.
func Reshape(a *Tensor, shape ...int) *Tensor {
	return view("Reshape", a, inferShape("Reshape", a.shape, shape))
}

// inferShape resolves a single -1 in to against the element count of from.
func inferShape(op string, from, to []int) []int {
	out := cloneShape(to)
	neg, known := -1, 1
	for i, d := range out {
		switch {
		case d == -1 && neg >= 0:
			panic(fmt.Sprintf("tensor.%s: shape %v has more than one -1 (input shape %v)", op, to, from))
		case d == -1:
			neg = i
		case d < 0:
			panic(fmt.Sprintf("tensor.%s: invalid dimension %d in shape %v (input shape %v)", op, d, to, from))
		default:
			known *= d
		}
	}
	n := numel(from)
	if neg >= 0 {
		if known == 0 || n%known != 0 {
			panic(fmt.Sprintf("tensor.%s: cannot reshape %v (%d elements) to %v", op, from, n, to))
		}
		out[neg] = n / known
	}
	if numel(out) != n {
		panic(fmt.Sprintf("tensor.%s: cannot reshape %v (%d elements) to %v (%d elements)", op, from, n, to, numel(out)))
	}
	return out
}

// Flatten merges dims startDim..endDim (inclusive, negatives count from the end).
// It shares storage with a. A 0-d tensor flattens to shape [1].
func Flatten(a *Tensor, startDim, endDim int) *Tensor {
	rank := len(a.shape)
	if rank == 0 {
		normAxis("Flatten", startDim, 1)
		normAxis("Flatten", endDim, 1)
		return view("Flatten", a, []int{1})
	}
	s := normAxis("Flatten", startDim, rank)
	e := normAxis("Flatten", endDim, rank)
	if s > e {
		panic(fmt.Sprintf("tensor.Flatten: start dim %d comes after end dim %d for shape %v", startDim, endDim, a.shape))
	}
	var buf [4]int // the new shape, on the stack when it fits
	shape := buf[:0]
	shape = append(shape, a.shape[:s]...)
	shape = append(shape, numel(a.shape[s:e+1]))
	shape = append(shape, a.shape[e+1:]...)
	return view("Flatten", a, shape)
}

// Squeeze removes size-1 axes (all of them if none are given). As in PyTorch,
// a named axis whose size is not 1 is left in place. It shares storage with a.
func Squeeze(a *Tensor, axes ...int) *Tensor {
	rank := len(a.shape)
	drop := make([]bool, rank)
	if len(axes) == 0 {
		for i, d := range a.shape {
			drop[i] = d == 1
		}
	} else {
		for _, ax := range axes {
			i := normAxis("Squeeze", ax, rank)
			drop[i] = a.shape[i] == 1
		}
	}
	shape := make([]int, 0, rank)
	for i, d := range a.shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	return view("Squeeze", a, shape)
}

// Unsqueeze inserts a size-1 axis at position axis (in [-rank-1, rank]; a
// negative axis counts from the end of the result). It shares storage with a.
func Unsqueeze(a *Tensor, axis int) *Tensor {
	rank := len(a.shape)
	ax := normAxis("Unsqueeze", axis, rank+1)
	shape := make([]int, 0, rank+1)
	shape = append(shape, a.shape[:ax]...)
	shape = append(shape, 1)
	shape = append(shape, a.shape[ax:]...)
	return view("Unsqueeze", a, shape)
}

// Transpose swaps two axes (a copy).
func Transpose(a *Tensor, d0, d1 int) *Tensor {
	rank := len(a.shape)
	i := normAxis("Transpose", d0, rank)
	j := normAxis("Transpose", d1, rank)
	perm := make([]int, rank)
	for k := range perm {
		perm[k] = k
	}
	perm[i], perm[j] = perm[j], perm[i]
	return permute("Transpose", a, perm)
}

// Permute reorders axes: output axis i is input axis dims[i] (a copy).
// Negative entries count from the end.
func Permute(a *Tensor, dims ...int) *Tensor {
	rank := len(a.shape)
	if len(dims) != rank {
		panic(fmt.Sprintf("tensor.Permute: %d dims %v for shape %v", len(dims), dims, a.shape))
	}
	perm := make([]int, rank)
	seen := make([]bool, rank)
	for i, d := range dims {
		p := normAxis("Permute", d, rank)
		if seen[p] {
			panic(fmt.Sprintf("tensor.Permute: dims %v repeat axis %d for shape %v", dims, p, a.shape))
		}
		seen[p] = true
		perm[i] = p
	}
	return permute("Permute", a, perm)
}

// permute copies a into the axis order perm (validated) and records the
// inverse permutation as the backward rule.
func permute(op string, a *Tensor, perm []int) *Tensor {
	rank := len(perm)
	identity := true
	for i, p := range perm {
		if p != i {
			identity = false
		}
	}
	if identity {
		return view(op, a, cloneShape(a.shape))
	}
	oshape := make([]int, rank)
	st := make([]int, rank)
	ast := strides(a.shape)
	for i, p := range perm {
		oshape[i] = a.shape[p]
		st[i] = ast[p]
	}
	out := alloc(a.dtype, oshape)
	if a.dtype == Int64 {
		permuteCopy(out.ints, a.ints, oshape, st)
	} else {
		permuteCopy(out.data, a.data, oshape, st)
	}
	return record(op, out, func(g *Tensor) []*Tensor {
		inv := make([]int, rank)
		for i, p := range perm {
			inv[p] = i
		}
		gst := strides(g.shape)
		ist := make([]int, rank)
		for i, p := range inv {
			ist[i] = gst[p]
		}
		ga := Zeros(a.shape...)
		permuteCopy(ga.data, g.data, ga.shape, ist)
		return []*Tensor{ga}
	}, a)
}

// permuteCopy fills dst (row-major, shape oshape) from src read with the
// element strides st, one per output axis.
func permuteCopy[T elem](dst, src []T, oshape, st []int) {
	if len(dst) == 0 {
		return
	}
	rank := len(oshape)
	if rank == 0 {
		dst[0] = src[0]
		return
	}
	last, ls := oshape[rank-1], st[rank-1]
	ctr := make([]int, rank)
	off := 0
	for k := 0; k < len(dst); k += last {
		row := dst[k : k+last]
		if ls == 1 {
			copy(row, src[off:off+last])
		} else {
			o := off
			for j := range row {
				row[j] = src[o]
				o += ls
			}
		}
		for d := rank - 2; d >= 0; d-- {
			ctr[d]++
			off += st[d]
			if ctr[d] < oshape[d] {
				break
			}
			off -= st[d] * ctr[d]
			ctr[d] = 0
		}
	}
}

// outerInner returns the product of the dims before axis and after axis.
func outerInner(shape []int, axis int) (outer, inner int) {
	return numel(shape[:axis]), numel(shape[axis+1:])
}

// Slice takes elements start, start+step, ... < end along axis (a copy).
// Negative start/end count from the end, and both are clamped to the axis
// as in Python slicing; step must be positive.
func Slice(a *Tensor, axis, start, end, step int) *Tensor {
	ax := normAxis("Slice", axis, len(a.shape))
	if step < 1 {
		panic(fmt.Sprintf("tensor.Slice: step %d must be positive (shape %v, axis %d)", step, a.shape, axis))
	}
	n := a.shape[ax]
	clampIdx := func(i int) int {
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n)
	}
	s, e := clampIdx(start), clampIdx(end)
	cnt := 0
	if e > s {
		cnt = (e - s + step - 1) / step
	}
	oshape := cloneShape(a.shape)
	oshape[ax] = cnt
	outer, inner := outerInner(a.shape, ax)
	out := alloc(a.dtype, oshape)
	if a.dtype == Int64 {
		sliceCopy(out.ints, a.ints, outer, inner, n, s, cnt, step, false)
	} else {
		sliceCopy(out.data, a.data, outer, inner, n, s, cnt, step, false)
	}
	return record("Slice", out, func(g *Tensor) []*Tensor {
		ga := Zeros(a.shape...)
		sliceCopy(g.data, ga.data, outer, inner, n, s, cnt, step, true)
		return []*Tensor{ga}
	}, a)
}

// sliceCopy moves the strided slice between the sliced tensor (sl, shape
// [outer, cnt, inner]) and the full tensor (full, shape [outer, n, inner]):
// full → sl, or sl → full (accumulating) when back is true.
func sliceCopy[T elem](sl, full []T, outer, inner, n, start, cnt, step int, back bool) {
	if step == 1 {
		blk := cnt * inner
		for o := 0; o < outer; o++ {
			f := full[(o*n+start)*inner : (o*n+start)*inner+blk]
			d := sl[o*blk : (o+1)*blk]
			if back {
				for i, v := range d {
					f[i] += v
				}
			} else {
				copy(d, f)
			}
		}
		return
	}
	for o := 0; o < outer; o++ {
		for c := 0; c < cnt; c++ {
			fo := (o*n + start + c*step) * inner
			f := full[fo : fo+inner]
			d := sl[(o*cnt+c)*inner : (o*cnt+c+1)*inner]
			if back {
				for i, v := range d {
					f[i] += v
				}
			} else {
				copy(d, f)
			}
		}
	}
}

// Split cuts a along axis into pieces of the given sizes, which must add up
// to the axis length. With a single size that is smaller than the axis it is
// the chunk size, as torch.split(a, n, dim): the last piece may be shorter.
func Split(a *Tensor, axis int, sizes ...int) []*Tensor {
	ax := normAxis("Split", axis, len(a.shape))
	n := a.shape[ax]
	if len(sizes) == 1 && sizes[0] > 0 && sizes[0] < n {
		c := sizes[0]
		sizes = nil
		for off := 0; off < n; off += c {
			sizes = append(sizes, min(c, n-off))
		}
	}
	total := 0
	for _, s := range sizes {
		if s < 0 {
			panic(fmt.Sprintf("tensor.Split: negative size in %v for shape %v axis %d", sizes, a.shape, axis))
		}
		total += s
	}
	if total != n || len(sizes) == 0 {
		panic(fmt.Sprintf("tensor.Split: sizes %v do not add up to %d, the length of axis %d of shape %v", sizes, n, axis, a.shape))
	}
	out := make([]*Tensor, len(sizes))
	off := 0
	for i, s := range sizes {
		out[i] = Slice(a, ax, off, off+s, 1)
		off += s
	}
	return out
}

// shapesOf lists the shapes of ts for error messages.
func shapesOf(ts []*Tensor) [][]int {
	s := make([][]int, len(ts))
	for i, t := range ts {
		s[i] = t.shape
	}
	return s
}

// Concat joins tensors along an existing axis. All tensors need the same
// dtype, rank and sizes except along axis.
func Concat(ts []*Tensor, axis int) *Tensor {
	if len(ts) == 0 {
		panic("tensor.Concat: no tensors to join")
	}
	first := ts[0]
	rank := len(first.shape)
	if rank == 0 {
		panic(fmt.Sprintf("tensor.Concat: cannot join 0-d tensors (shapes %v)", shapesOf(ts)))
	}
	ax := normAxis("Concat", axis, rank)
	oshape := cloneShape(first.shape)
	oshape[ax] = 0
	for _, t := range ts {
		if t.dtype != first.dtype {
			panic(fmt.Sprintf("tensor.Concat: mixed dtypes %v and %v (shapes %v)", first.dtype, t.dtype, shapesOf(ts)))
		}
		if len(t.shape) != rank {
			panic(fmt.Sprintf("tensor.Concat: shapes %v differ in rank", shapesOf(ts)))
		}
		for d := range rank {
			if d != ax && t.shape[d] != first.shape[d] {
				panic(fmt.Sprintf("tensor.Concat: shapes %v differ outside axis %d", shapesOf(ts), axis))
			}
		}
		oshape[ax] += t.shape[ax]
	}
	outer, inner := outerInner(oshape, ax)
	chunks := make([]int, len(ts))
	for i, t := range ts {
		chunks[i] = t.shape[ax] * inner
	}
	return join("Concat", ts, oshape, outer, chunks)
}

// Stack joins tensors of one shape and dtype along a new axis (in
// [-rank-1, rank]).
func Stack(ts []*Tensor, axis int) *Tensor {
	if len(ts) == 0 {
		panic("tensor.Stack: no tensors to join")
	}
	first := ts[0]
	for _, t := range ts {
		if t.dtype != first.dtype {
			panic(fmt.Sprintf("tensor.Stack: mixed dtypes %v and %v (shapes %v)", first.dtype, t.dtype, shapesOf(ts)))
		}
		if !SameShape(t.shape, first.shape) {
			panic(fmt.Sprintf("tensor.Stack: shapes %v are not all equal", shapesOf(ts)))
		}
	}
	rank := len(first.shape)
	ax := normAxis("Stack", axis, rank+1)
	oshape := make([]int, 0, rank+1)
	oshape = append(oshape, first.shape[:ax]...)
	oshape = append(oshape, len(ts))
	oshape = append(oshape, first.shape[ax:]...)
	outer := numel(first.shape[:ax])
	inner := numel(first.shape[ax:])
	chunks := make([]int, len(ts))
	for i := range chunks {
		chunks[i] = inner
	}
	return join("Stack", ts, oshape, outer, chunks)
}

// join interleaves the inputs into out: for each of outer blocks, chunks[i]
// consecutive values of input i in turn. The backward rule splits the same way.
func join(op string, ts []*Tensor, oshape []int, outer int, chunks []int) *Tensor {
	out := alloc(ts[0].dtype, oshape)
	if out.dtype == Int64 {
		srcs := make([][]int64, len(ts))
		for i, t := range ts {
			srcs[i] = t.ints
		}
		joinCopy(out.ints, srcs, outer, chunks, false)
	} else {
		srcs := make([][]float32, len(ts))
		for i, t := range ts {
			srcs[i] = t.data
		}
		joinCopy(out.data, srcs, outer, chunks, false)
	}
	inputs := append([]*Tensor(nil), ts...)
	return record(op, out, func(g *Tensor) []*Tensor {
		grads := make([]*Tensor, len(inputs))
		parts := make([][]float32, len(inputs))
		for i, t := range inputs {
			if t.NeedsGrad() {
				grads[i] = Zeros(t.shape...)
				parts[i] = grads[i].data
			}
		}
		joinCopy(g.data, parts, outer, chunks, true)
		return grads
	}, inputs...)
}

// joinCopy copies the parts into whole (or whole into the parts when split
// is true; nil parts are skipped).
func joinCopy[T elem](whole []T, parts [][]T, outer int, chunks []int, split bool) {
	off := 0
	for o := 0; o < outer; o++ {
		for i, p := range parts {
			c := chunks[i]
			if p != nil {
				if split {
					copy(p[o*c:(o+1)*c], whole[off:off+c])
				} else {
					copy(whole[off:off+c], p[o*c:(o+1)*c])
				}
			}
			off += c
		}
	}
}

// Unbind returns the slices of a along axis, each with that axis removed
// (torch.unbind): out[i] holds a's index i on axis. In the backward pass the
// slices' gradients are gathered into one tensor of a's shape, so that
// cutting a sequence of T steps costs one pass over a, not T (as T Slice
// calls would, each with a gradient of a's full size).
func Unbind(a *Tensor, axis int) []*Tensor {
	ax := normAxis("Unbind", axis, len(a.shape))
	n := a.shape[ax]
	oshape := make([]int, 0, len(a.shape)-1)
	oshape = append(oshape, a.shape[:ax]...)
	oshape = append(oshape, a.shape[ax+1:]...)
	outer, inner := outerInner(a.shape, ax)
	outs := make([]*Tensor, n)
	for i := range outs {
		out := alloc(a.dtype, oshape)
		if a.dtype == Int64 {
			sliceCopy(out.ints, a.ints, outer, inner, n, i, 1, 1, false)
		} else {
			sliceCopy(out.data, a.data, outer, inner, n, i, 1, 1, false)
		}
		outs[i] = out
	}
	if !shouldRecord([]*Tensor{a}) {
		return outs
	}
	// The slices hang from hub, a one-element tensor that stands for a.
	// Each slice's rule copies its gradient into buf and hands hub a zero;
	// hub's rule runs after all of them (they are its consumers) and hands
	// buf on to a (and forgets it, for a later Backward through the same
	// graph).
	var buf *Tensor
	hub := record("Unbind", Zeros(1), func(*Tensor) []*Tensor {
		g := buf
		buf = nil
		return []*Tensor{g}
	}, a)
	zero := Zeros(1)
	for i, out := range outs {
		outs[i] = record("Unbind", out, func(g *Tensor) []*Tensor {
			if buf == nil {
				buf = Zeros(a.shape...)
			}
			sliceCopy(g.data, buf.data, outer, inner, n, i, 1, 1, true)
			return []*Tensor{zero}
		}, hub)
	}
	return outs
}
