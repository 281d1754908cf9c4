package kernels

import "sync"

// Parallel loops that callers spread over the CPU cores, on the worker pool
// Sgemm uses too (pool.go). The rule that keeps results deterministic:
// ParallelFor splits [0, n) into contiguous chunks and every index is
// handled by exactly one call of the body, so a body that writes only the
// outputs of its own indices gives the same result for any number of
// threads and any schedule. Sums across indices must not depend on the
// chunking (give each sum to one index, or cut the work into fixed blocks
// combined in order).

// MinParallelWork is the least amount of work (elements touched, or a
// comparable count) that ParallelFor spreads over a second thread: a
// wake-up costs tens of microseconds on a virtual machine.
const MinParallelWork = 1 << 15

// parCall is one ParallelFor call, recycled through parCalls so that
// ParallelFor itself allocates nothing.
type parCall struct {
	body     func(lo, hi int)
	n, parts int
}

var parCalls = sync.Pool{New: func() any { return new(parCall) }}

// runShare runs chunk i of parts.
func (c *parCall) runShare(i int) {
	c.body(c.n*i/c.parts, c.n*(i+1)/c.parts)
}

// ParallelFor calls body on contiguous chunks that cover [0, n) exactly
// once and returns when all are done. The number of chunks is at most
// MaxThreads and about work/MinParallelWork, where work measures the whole
// loop's cost (elements touched), and fewer when the pool's workers are
// busy (for a ParallelFor or Sgemm inside body, or calls from several
// goroutines); the calling goroutine runs the first chunk, pool workers the
// others. body must be safe to run concurrently on distinct chunks.
func ParallelFor(n, work int, body func(lo, hi int)) {
	threads := min(MaxThreads(), work/MinParallelWork, n)
	if threads <= 1 {
		if n > 0 {
			body(0, n)
		}
		return
	}
	tw := newTeam(threads - 1)
	if len(tw.workers) == 0 {
		tw.wait()
		body(0, n)
		return
	}
	c := parCalls.Get().(*parCall)
	c.body, c.n, c.parts = body, n, len(tw.workers)+1
	tw.start(c)
	c.runShare(0)
	tw.wait()
	c.body = nil
	parCalls.Put(c)
}
