package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// kernelFunc computes an r×nr tile of C = alpha·op(A)·op(B) + beta·C, where
// element (i, p) of op(A) is a[p*sa+i] and element (p, j) of op(B) is
// b[p*sb+j]; r is fixed by the function, k ≥ 1, and C is not read when beta
// is 0.
type kernelFunc func(k int, a *float32, sa int, b *float32, sb int, c *float32, ldc int, alpha, beta float32)

// microKernel is one register-blocked micro-kernel with its cache blocking.
type microKernel struct {
	name       string
	mr, nr     int          // full tile
	kc, mc, nc int          // cache blocking; mc is a multiple of mr, nc of nr
	fns        []kernelFunc // fns[r-1] computes r rows, 1 ≤ r ≤ mr
	// dot, when set, holds dot-product kernels for C = A·Bᵀ with A and B
	// read in place: dot[r-1][c-1] computes an r×c tile, r ≤ dotMR, c ≤ dotNR.
	dot *[dotMR][dotNR]dotFunc
}

// dotFunc computes an r×c tile (fixed by the function) of
// C = alpha·A·Bᵀ + beta·C, A and B row-major with rows of length k ≥ 1 and
// strides lda and ldb; C is not read when beta is 0.
type dotFunc func(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

const (
	dotMR = 4 // rows of a dot-product tile
	dotNR = 6 // columns of a dot-product tile
	// dotKC is the k block of the dot-product path: dotNR rows of B of this
	// length stay in L1 while the rows of A stream past.
	dotKC = 1024
)

// kernels lists the usable micro-kernels, best first; active is the one
// Sgemm uses. Tests swap active to exercise every path.
var (
	kernels = availableKernels()
	active  = kernels[0]
)

const (
	// The dot-product path (when the kernel has one) serves op(A)·Bᵀ when C
	// has at most dotMaxM rows or dotMaxN columns; packing Bᵀ would cost
	// about as much as the product there.
	dotMaxM = 64
	dotMaxN = 32
	// directBMaxM: below this many rows of C, a non-transposed B is read in
	// place instead of packed, since each B panel is reused only a few times.
	directBMaxM = 64
	// directAMaxN: below this many columns of C, a transposed A is read in
	// place instead of packed.
	directAMaxN = 64
)

// parallelMinWork is the least m·n·k worth a thread (about 25 µs of
// single-threaded work): every thread packs its own copy of one operand,
// and a worker that has parked takes up to 100 µs to wake (the caller then
// runs that share itself; see pool.go). Tests lower it to exercise the
// parallel path on small shapes.
var parallelMinWork = 1 << 22

// maxThreads is the thread limit set by SetThreads; 0 means GOMAXPROCS.
var maxThreads atomic.Int64

// SetThreads limits the number of threads Sgemm uses to n and returns the
// previous setting; n ≤ 0 restores the default, runtime.GOMAXPROCS(0).
func SetThreads(n int) int {
	if n < 0 {
		n = 0
	}
	return int(maxThreads.Swap(int64(n)))
}

// MaxThreads reports how many threads Sgemm may use: the SetThreads limit,
// or runtime.GOMAXPROCS(0) when none is set.
func MaxThreads() int {
	if n := int(maxThreads.Load()); n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// gemmArgs is one Sgemm call with validated arguments.
type gemmArgs struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
	kern           *microKernel
	kc             int  // k block, the same for every worker
	directA        bool // read op(A) in place (transA only)
	directB        bool // read op(B) in place (!transB only)
	dot            bool // use the dot-product kernels
}

// workspace holds one thread's packing buffers; they only grow.
type workspace struct {
	apack, bpack, tmp []float32
}

func grow(buf *[]float32, n int) []float32 {
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	return (*buf)[:n]
}

// run computes rows [i0, i1) × columns [j0, j1) of C with the path g selects.
func (w *workspace) run(g *gemmArgs, i0, i1, j0, j1 int) {
	if g.dot {
		gemmDot(g, i0, i1, j0, j1)
	} else {
		w.gemm(g, i0, i1, j0, j1)
	}
}

// gemmDot computes rows [i0, i1) × columns [j0, j1) of C = alpha·A·Bᵀ + beta·C
// with the dot-product kernels; i0 is a multiple of dotMR and j0 of dotNR.
func gemmDot(g *gemmArgs, i0, i1, j0, j1 int) {
	dot := g.kern.dot
	for pc := 0; pc < g.k; pc += g.kc {
		kcur := min(g.kc, g.k-pc)
		beta := g.beta
		if pc > 0 {
			beta = 1
		}
		for j := j0; j < j1; j += dotNR {
			nc := min(dotNR, j1-j)
			bp := &g.b[j*g.ldb+pc]
			for i := i0; i < i1; i += dotMR {
				mc := min(dotMR, i1-i)
				dot[mc-1][nc-1](kcur, &g.a[i*g.lda+pc], g.lda, bp, g.ldb, &g.c[i*g.ldc+j], g.ldc, g.alpha, beta)
			}
		}
	}
}

// gemm computes rows [i0, i1) × columns [j0, j1) of C. i0 is a multiple of
// mr and j0 of nr, so tile boundaries, and hence every rounding, do not
// depend on how the work is split.
func (w *workspace) gemm(g *gemmArgs, i0, i1, j0, j1 int) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	tmp := grow(&w.tmp, mr*nr)
	for jc := j0; jc < j1; jc += kern.nc {
		ncur := min(kern.nc, j1-jc)
		for pc := 0; pc < g.k; pc += g.kc {
			kcur := min(g.kc, g.k-pc)
			beta := g.beta
			if pc > 0 {
				beta = 1
			}
			var bp []float32
			if g.directB {
				// Only a ragged last panel needs packing (zero padding).
				if rem := ncur % nr; rem != 0 {
					bp = grow(&w.bpack, kcur*nr)
					packB(bp, g, pc, kcur, jc+ncur-rem, rem, nr)
				}
			} else {
				bp = grow(&w.bpack, (ncur+nr-1)/nr*nr*kcur)
				packB(bp, g, pc, kcur, jc, ncur, nr)
			}
			for ic := i0; ic < i1; ic += kern.mc {
				mcur := min(kern.mc, i1-ic)
				var ap []float32
				if !g.directA {
					ap = grow(&w.apack, mcur*kcur)
					packA(ap, g, ic, mcur, pc, kcur, mr)
				}
				for jr := 0; jr < ncur; jr += nr {
					nrr := min(nr, ncur-jr)
					var bptr *float32
					sb := nr
					switch {
					case !g.directB:
						bptr = &bp[jr*kcur]
					case nrr == nr:
						bptr = &g.b[pc*g.ldb+jc+jr]
						sb = g.ldb
					default:
						bptr = &bp[0]
					}
					for ir := 0; ir < mcur; ir += mr {
						mrr := min(mr, mcur-ir)
						var aptr *float32
						sa := mrr
						if g.directA {
							aptr = &g.a[pc*g.lda+ic+ir]
							sa = g.lda
						} else {
							aptr = &ap[ir*kcur]
						}
						f := kern.fns[mrr-1]
						if nrr == nr {
							f(kcur, aptr, sa, bptr, sb, &g.c[(ic+ir)*g.ldc+jc+jr], g.ldc, g.alpha, beta)
							continue
						}
						// Ragged right edge: compute the whole tile into tmp,
						// then merge the valid columns.
						f(kcur, aptr, sa, bptr, sb, &tmp[0], nr, g.alpha, 0)
						for i := 0; i < mrr; i++ {
							row := (ic+ir+i)*g.ldc + jc + jr
							crow := g.c[row : row+nrr]
							t := tmp[i*nr : i*nr+nrr]
							switch beta {
							case 0:
								copy(crow, t)
							case 1:
								for j, v := range t {
									crow[j] += v
								}
							default:
								for j, v := range t {
									crow[j] = v + beta*crow[j]
								}
							}
						}
					}
				}
			}
		}
	}
}

// packA packs rows [ic, ic+mc) × k-range [pc, pc+kc) of op(A) into panels
// of mr rows: panel q holds element (q*mr+i, p) at q*mr*kc + p*r + i, where
// r = mr except for a shorter last panel.
func packA(dst []float32, g *gemmArgs, ic, mc, pc, kc, mr int) {
	a, lda := g.a, g.lda
	for ir := 0; ir < mc; ir += mr {
		r := min(mr, mc-ir)
		d := dst[ir*kc : ir*kc+r*kc]
		if g.transA {
			// op(A)(i, p) = a[p*lda+i]: each k step is a contiguous run.
			for p := 0; p < kc; p++ {
				src := (pc+p)*lda + ic + ir
				copy(d[p*r:p*r+r], a[src:src+r])
			}
			continue
		}
		// op(A)(i, p) = a[i*lda+p]: rows of a become columns of the panel.
		packTransposed(d, a, (ic+ir)*lda+pc, lda, r, kc, r)
	}
}

// packB packs k-range [pc, pc+kc) × columns [jc, jc+nc) of op(B) into panels
// of nr columns, zero-padding the last: panel q holds element (p, q*nr+j) at
// q*nr*kc + p*nr + j.
func packB(dst []float32, g *gemmArgs, pc, kc, jc, nc, nr int) {
	b, ldb := g.b, g.ldb
	if !g.transB {
		// op(B)(p, j) = b[p*ldb+j]: deal each row piece out to the panels,
		// so that b is read row by row, sequentially.
		full := nc / nr * nr
		for p := 0; p < kc; p++ {
			src := b[(pc+p)*ldb+jc:][:nc]
			o := p * nr
			for jr := 0; jr < full; jr += nr {
				copy(dst[jr*kc+o:][:nr], src[jr:jr+nr])
			}
			if full < nc {
				d := dst[full*kc+o:][:nr]
				copy(d, src[full:])
				clear(d[nc-full:])
			}
		}
		return
	}
	for jr := 0; jr < nc; jr += nr {
		w := min(nr, nc-jr)
		d := dst[jr*kc : jr*kc+nr*kc]
		// op(B)(p, j) = b[j*ldb+p]: rows of b become columns of the panel.
		packTransposed(d, b, (jc+jr)*ldb+pc, ldb, w, kc, nr)
		if w < nr {
			for p := 0; p < kc; p++ {
				clear(d[p*nr+w : p*nr+nr])
			}
		}
	}
}

// packT8 and packT4, when not nil, transpose 8 or 4 rows of src into the
// columns of a panel, 8 columns at a time, in registers (see asmgen's
// genPackT): packT8(d, ds, src, ld, blocks) sets d[(8q+p)*ds+i] =
// src[i*ld+8q+p] for i < 8, p < 8, q < blocks. They are set on amd64 with
// AVX; tests set them to nil to run the portable loop.
var packT8, packT4 func(d *float32, ds int, src *float32, ld int, blocks int)

// packTransposed sets d[p*stride+i] = src[base+i*ld+p] for i < w, p < kc
// (stride ≥ w). Blocks of 8 columns of 8 or 4 rows go through packT8 and
// packT4 when set (a ragged group of 4-7 rows as two overlapping groups of
// 4, which write the same values twice); the rest through packTransposedGo.
// Only copies: the result is the same on every path.
func packTransposed(d, src []float32, base, ld, w, kc, stride int) {
	blocks := kc / 8
	if packT8 == nil || w < 4 || blocks == 0 {
		packTransposedGo(d, src, base, ld, w, kc, stride)
		return
	}
	// The assembly does not check bounds: check the last element each side
	// touches (a failure here is a bug in the caller).
	_ = src[base+(w-1)*ld+kc-1]
	_ = d[(kc-1)*stride+w-1]
	i := 0
	for ; i+8 <= w; i += 8 {
		packT8(&d[i], stride, &src[base+i*ld], ld, blocks)
	}
	for ; i < w; i += 4 {
		i = min(i, w-4)
		packT4(&d[i], stride, &src[base+i*ld], ld, blocks)
	}
	if p0 := blocks * 8; p0 < kc {
		packTransposedGo(d[p0*stride:], src, base+p0, ld, w, kc-p0, stride)
	}
}

// packTransposedGo is packTransposed in portable Go, reading four rows of
// src at a time so that reads stay sequential.
func packTransposedGo(d, src []float32, base, ld, w, kc, stride int) {
	i := 0
	for ; i+4 <= w; i += 4 {
		r0 := src[base+i*ld:][:kc]
		r1 := src[base+(i+1)*ld:][:len(r0)]
		r2 := src[base+(i+2)*ld:][:len(r0)]
		r3 := src[base+(i+3)*ld:][:len(r0)]
		o := i
		for p, v := range r0 {
			dd := d[o : o+4 : o+4]
			dd[0] = v
			dd[1] = r1[p]
			dd[2] = r2[p]
			dd[3] = r3[p]
			o += stride
		}
	}
	for ; i < w; i++ {
		row := src[base+i*ld:][:kc]
		o := i
		for _, v := range row {
			d[o] = v
			o += stride
		}
	}
}

var (
	wsPool   = sync.Pool{New: func() any { return new(workspace) }}
	callPool = sync.Pool{New: func() any { return new(call) }}
)

// task is one thread's share of a parallel Sgemm: rows [i0, i1) × columns
// [j0, j1) of C.
type task struct {
	i0, i1, j0, j1 int
}

// call is the per-call state of a parallel Sgemm, recycled through callPool.
type call struct {
	g     gemmArgs
	tasks []task
}

// runShare computes task i with a workspace of the running thread.
func (cl *call) runShare(i int) {
	t := &cl.tasks[i]
	w := wsPool.Get().(*workspace)
	w.run(&cl.g, t.i0, t.i1, t.j0, t.j1)
	wsPool.Put(w)
}

// sgemm runs a validated, non-trivial product (m, n, k ≥ 1, alpha ≠ 0).
func sgemm(g *gemmArgs) {
	kern := g.kern
	tr, tc, kc := kern.mr, kern.nr, kern.kc // tile and k block
	g.dot = kern.dot != nil && g.transB && !g.transA && (g.m <= dotMaxM || g.n <= dotMaxN)
	if g.dot {
		tr, tc, kc = dotMR, dotNR, dotKC
	}
	nk := (g.k + kc - 1) / kc
	g.kc = (g.k + nk - 1) / nk // balanced k blocks
	g.directA = g.transA && g.n <= directAMaxN
	g.directB = !g.transB && g.m <= directBMaxM

	threads := min(MaxThreads(), max(1, g.m*g.n*g.k/parallelMinWork))
	tm := (g.m + tr - 1) / tr // tiles along m
	tn := (g.n + tc - 1) / tc // tiles along n
	var tw *team
	if threads > 1 {
		_, threads = splitTiles(tm, tn, threads)
		tw = newTeam(threads - 1)
		threads = len(tw.workers) + 1
	}
	if threads <= 1 {
		if tw != nil {
			tw.wait()
		}
		w := wsPool.Get().(*workspace)
		w.run(g, 0, g.m, 0, g.n)
		wsPool.Put(w)
		return
	}
	splitN, threads := splitTiles(tm, tn, threads)
	tw.trim(threads - 1)

	cl := callPool.Get().(*call)
	cl.g = *g
	if cap(cl.tasks) < threads {
		cl.tasks = make([]task, threads)
	}
	tasks := cl.tasks[:threads]
	tiles := tn
	if !splitN {
		tiles = tm
	}
	for t := range tasks {
		lo, hi := tiles*t/threads, tiles*(t+1)/threads
		tk := task{i0: 0, i1: g.m, j0: 0, j1: g.n}
		if splitN {
			tk.j0, tk.j1 = lo*tc, min(hi*tc, g.n)
		} else {
			tk.i0, tk.i1 = lo*tr, min(hi*tr, g.m)
		}
		tasks[t] = tk
	}
	cl.tasks = tasks
	tw.start(cl)
	cl.runShare(0)
	tw.wait()
	cl.g = gemmArgs{} // drop references to the caller's matrices
	clear(tasks)
	callPool.Put(cl)
}

// splitTiles picks the dimension to split among threads threads, given tm
// tile rows and tn tile columns: the one whose tiles divide most evenly. It
// returns whether that is n, and the number of parts (at most its tiles).
func splitTiles(tm, tn, threads int) (splitN bool, parts int) {
	en := float64(tn) / float64((tn+threads-1)/threads*threads)
	em := float64(tm) / float64((tm+threads-1)/threads*threads)
	if en >= em {
		return true, min(threads, tn)
	}
	return false, min(threads, tm)
}
