//go:build !linux

package kernels

// osYield does nothing where sched_yield is not available; polling loops
// still yield the Go processor every yieldEvery.
func osYield() {}
