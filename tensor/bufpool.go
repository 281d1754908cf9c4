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
//   - A released tensor's storage is cut off (data set to nil), so a bug
//     that keeps one shows up as a panic rather than as wrong numbers.
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

var bufFree = struct {
	sync.Mutex
	lists map[int][][]float32
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
	t := shaped(shape)
	t.data, t.pooled = d, true
	return t
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
