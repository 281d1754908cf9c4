package kernels

import (
	"sync"
	"sync/atomic"
)

// A worker pool for loops that callers spread over the CPU cores (Sgemm has
// its own). The rule that keeps results deterministic: ParallelFor splits
// [0, n) into contiguous chunks and every index is handled by exactly one
// call of the body, so a body that writes only the outputs of its own
// indices gives the same result for any number of threads and any
// schedule. Sums across indices must not depend on the chunking (give each
// sum to one index, or cut the work into fixed blocks combined in order).

// MinParallelWork is the least amount of work (elements touched, or a
// comparable count) that ParallelFor spreads over a second thread: a
// wake-up costs tens of microseconds on a virtual machine.
const MinParallelWork = 1 << 15

var (
	parOnce  sync.Once
	parCh    chan *parTask
	parTasks = sync.Pool{New: func() any { return new(parTask) }}
	parCalls = sync.Pool{New: func() any { return &parCall{done: make(chan struct{}, 1)} }}
)

// parTask is one chunk [lo, hi) of a parallel loop.
type parTask struct {
	body   func(lo, hi int)
	lo, hi int
	call   *parCall
}

// parCall tracks the chunks of one ParallelFor still running elsewhere; the
// last one to finish sends on done. It is recycled, so ParallelFor itself
// allocates nothing.
type parCall struct {
	pending atomic.Int32
	done    chan struct{}
}

// run executes t and recycles it.
func (t *parTask) run() {
	body, lo, hi, c := t.body, t.lo, t.hi, t.call
	*t = parTask{}
	parTasks.Put(t)
	body(lo, hi)
	if c.pending.Add(-1) == 0 {
		c.done <- struct{}{}
	}
}

func parWorker() {
	for t := range parCh {
		t.run()
	}
}

// ParallelFor calls body on contiguous chunks that cover [0, n) exactly
// once and returns when all are done. The number of chunks is at most
// MaxThreads and about work/MinParallelWork, where work measures the whole
// loop's cost (elements touched); the calling goroutine runs the first
// chunk, persistent workers the others. body must be safe to run
// concurrently on distinct chunks.
func ParallelFor(n, work int, body func(lo, hi int)) {
	threads := min(MaxThreads(), work/MinParallelWork, n)
	if threads <= 1 {
		if n > 0 {
			body(0, n)
		}
		return
	}
	parOnce.Do(func() {
		parCh = make(chan *parTask, 64)
		// Enough workers for any thread limit up to the core count; more
		// chunks than workers simply queue.
		for range max(MaxThreads(), 2) - 1 {
			go parWorker()
		}
	})
	c := parCalls.Get().(*parCall)
	c.pending.Store(int32(threads - 1))
	for t := 1; t < threads; t++ {
		pt := parTasks.Get().(*parTask)
		*pt = parTask{body: body, lo: n * t / threads, hi: n * (t + 1) / threads, call: c}
		parCh <- pt
	}
	body(0, n/threads)
	// Help with queued chunks while waiting, so that a body that itself
	// calls ParallelFor cannot leave every worker waiting on another.
	for {
		select {
		case <-c.done:
			parCalls.Put(c)
			return
		case t := <-parCh:
			t.run()
		}
	}
}
