package tensor

import "sync"

// Buffer recycling. Gradients of intermediate tensors live only while
// Backward runs, yet they are as large as the activations; allocating them
// afresh every step costs page faults, zeroing and garbage collection. The
// rules that make recycling safe:
//
//   - Only tensors made by newGrad are recycled. Backward rules (and the
//     engine's own sums) use newGrad for the gradients they return; forward
//     outputs never come from newGrad, because the graph and the caller may
//     keep them as long as they like.
//   - The engine releases such a gradient when Backward returns: by then no
//     rule can still use it (gradients are consumed only by later rules of
//     the same Backward call), a leaf's Grad() is always a separate buffer
//     that gradients are added into, and no backward rule keeps its
//     argument or its results beyond its own call.
//   - A released tensor's storage is cut off (data set to nil) and the
//     Tensor value itself goes to a free list that newGrad draws from; a
//     gradient is engine-internal (a leaf's Grad() is a copy), and the
//     engine clears every reference to it (node.gin, its own lists)
//     before releasing it.
//   - Ops may also take scratch space with getBuf and give it back with
//     putBuf before they return.
//
// Buffers are kept per exact length, a few of each, which fits the training
// loop well: every step asks for the same sizes as the one before.

const (
	// maxFreePerSize bounds the number of idle buffers kept per length.
	maxFreePerSize = 8
	// minPooledLen is the least length worth recycling; smaller buffers are
	// cheap for the allocator.
	minPooledLen = 64
)

// maxFreeGrads bounds the number of idle gradient Tensor values kept.
const maxFreeGrads = 256

var bufFree = struct {
	sync.Mutex
	lists map[int][][]float32
	grads []*Tensor // released newGrad tensors, for reuse by newGrad
}{lists: map[int][][]float32{}}

// getBuf returns a buffer of length n with unspecified contents.
func getBuf(n int) []float32 {
	if n >= minPooledLen {
		bufFree.Lock()
		l := bufFree.lists[n]
		if k := len(l); k > 0 {
			b := l[k-1]
			l[k-1] = nil
			bufFree.lists[n] = l[:k-1]
			bufFree.Unlock()
			return b
		}
		bufFree.Unlock()
	}
	return make([]float32, n)
}

// getZeroBuf returns a buffer of length n filled with zeros.
func getZeroBuf(n int) []float32 {
	b := getBuf(n)
	clear(b)
	return b
}

// putBuf gives b back for reuse; the caller must hold no other reference to it.
func putBuf(b []float32) {
	n := len(b)
	if n < minPooledLen || cap(b) != n {
		return
	}
	bufFree.Lock()
	if l := bufFree.lists[n]; len(l) < maxFreePerSize {
		bufFree.lists[n] = append(l, b)
	}
	bufFree.Unlock()
}

// newGrad makes a float32 tensor for a gradient computed during Backward,
// from a recycled buffer that Backward releases when it returns (see the
// rules above). Its contents are zero when zero is set and unspecified
// otherwise.
func newGrad(zero bool, shape ...int) *Tensor {
	n := numel(shape)
	var d []float32
	if zero {
		d = getZeroBuf(n)
	} else {
		d = getBuf(n)
	}
	t := gradTensor(shape)
	t.data, t.pooled = d, true
	return t
}

// newGradView makes a gradient that shares data (another gradient's
// storage) under shape, for the backward rules of views. Backward
// recycles the Tensor value, not the storage.
func newGradView(shape []int, data []float32) *Tensor {
	t := gradTensor(shape)
	t.data, t.gradView = data, true
	return t
}

// gradTensor returns a Tensor value from the gradients' free list (or a
// new one) with the given shape.
func gradTensor(shape []int) *Tensor {
	var t *Tensor
	bufFree.Lock()
	if k := len(bufFree.grads); k > 0 {
		t = bufFree.grads[k-1]
		bufFree.grads[k-1] = nil
		bufFree.grads = bufFree.grads[:k-1]
	}
	bufFree.Unlock()
	if t == nil {
		t = new(Tensor)
	}
	t.setShape(shape)
	return t
}

// putGrads releases gradients made by newGrad: their buffers go back to
// the pool and their Tensor values to a free list for newGrad (the engine
// is their only holder; see the rules above).
func putGrads(gs []*Tensor) {
	for _, g := range gs {
		putBuf(g.data)
		*g = Tensor{}
	}
	bufFree.Lock()
	for _, g := range gs {
		if len(bufFree.grads) >= maxFreeGrads {
			break
		}
		bufFree.grads = append(bufFree.grads, g)
	}
	bufFree.Unlock()
}

// newOut makes a float32 tensor of the given shape for an op's result whose
// every element the op then writes. Its buffer may come from the recycled
// gradients of an earlier Backward call; it never goes back, so the caller
// and the graph may keep it as long as they like.
func newOut(shape []int) *Tensor {
	t := shaped(shape)
	t.data = getBuf(numel(shape))
	return t
}
