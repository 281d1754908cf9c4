package tensor

import "github.com/deepgo/deepgo/internal/kernels"

// parallelForWork spreads body over [0, n) on the kernels' worker pool; work
// is the loop's total cost in elements touched. Ops that use it write each
// output element from exactly one index, or sum in fixed blocks, so their
// results do not depend on the number of threads (see kernels.ParallelFor).
func parallelForWork(n, work int, body func(lo, hi int)) {
	kernels.ParallelFor(n, work, body)
}
