package kernels

import (
	"sync/atomic"
	"testing"
)

func TestParallelForCoversEachIndexOnce(t *testing.T) {
	defer SetThreads(SetThreads(4))
	for _, n := range []int{0, 1, 3, 17, 1000} {
		hits := make([]int32, n)
		ParallelFor(n, 1<<30, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&hits[i], 1)
			}
		})
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d: index %d handled %d times", n, i, h)
			}
		}
	}
}

// TestParallelForNested checks that a body may itself call ParallelFor
// without every worker waiting on another.
func TestParallelForNested(t *testing.T) {
	defer SetThreads(SetThreads(2))
	var total atomic.Int64
	ParallelFor(8, 1<<30, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ParallelFor(8, 1<<30, func(lo, hi int) { total.Add(int64(hi - lo)) })
		}
	})
	if total.Load() != 64 {
		t.Fatalf("nested loops covered %d indices, want 64", total.Load())
	}
}
