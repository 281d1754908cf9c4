package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// sgWithKernel makes Sgemm use kern for the duration of the test.
func sgWithKernel(t testing.TB, kern *microKernel) {
	t.Helper()
	prev := active
	active = kern
	t.Cleanup(func() { active = prev })
}

// sgWithThreads sets the Sgemm thread limit for the duration of the test and
// lets even small products use every thread.
func sgWithThreads(t testing.TB, n int) {
	t.Helper()
	prev, prevWork := SetThreads(n), parallelMinWork
	parallelMinWork = 1 << 10
	t.Cleanup(func() { SetThreads(prev); parallelMinWork = prevWork })
}

type sgCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra columns in the stored rows (ld > cols)
	padC           int
}

func (tc sgCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g pad=%d/%d/%d",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

func sgRandSlice(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = r.Float32()*2 - 1
	}
	return x
}

// operands builds A, B and C for tc with their leading dimensions.
func (tc sgCase) operands(r *rand.Rand) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	rowsA, colsA := tc.m, tc.k
	if tc.transA {
		rowsA, colsA = tc.k, tc.m
	}
	rowsB, colsB := tc.k, tc.n
	if tc.transB {
		rowsB, colsB = tc.n, tc.k
	}
	lda, ldb, ldc = colsA+tc.padA, colsB+tc.padB, tc.n+tc.padC
	lda, ldb, ldc = max(lda, 1), max(ldb, 1), max(ldc, 1)
	a = sgRandSlice(r, rowsA*lda)
	b = sgRandSlice(r, rowsB*ldb)
	c = sgRandSlice(r, tc.m*ldc)
	return
}

func sgAbs(x []float32) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(math.Abs(float64(v)))
	}
	return y
}

// sgCheck runs Sgemm on tc and compares with sgemmRef, element by element,
// within a bound proportional to k·ε·Σ|alpha·a·b| + ε·|beta·c|.
func sgCheck(t *testing.T, r *rand.Rand, tc sgCase) {
	t.Helper()
	a, lda, b, ldb, c, ldc := tc.operands(r)
	want := append([]float32(nil), c...)
	got := append([]float32(nil), c...)
	if tc.beta == 0 {
		for i := range got {
			got[i] = float32(math.NaN()) // must never be read
		}
	}
	sgemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
	Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)
	// Magnitude bound: |alpha|·|A|·|B| + |beta|·|C|.
	bound := sgAbs(c)
	sgemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, float32(math.Abs(float64(tc.alpha))), sgAbs(a), lda, sgAbs(b), ldb, float32(math.Abs(float64(tc.beta))), bound, ldc)
	const eps = 1.0 / (1 << 23)
	tol := float64(2*tc.k+4) * eps
	bad := 0
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc; j++ {
			idx := i*ldc + j
			if j >= tc.n {
				// Padding between rows of C must be untouched.
				if math.Float32bits(got[idx]) != math.Float32bits(c[idx]) && !(tc.beta == 0 && math.IsNaN(float64(got[idx]))) {
					t.Fatalf("%v: C padding (%d,%d) changed: %g -> %g", tc, i, j, c[idx], got[idx])
				}
				continue
			}
			g, w := float64(got[idx]), float64(want[idx])
			if math.IsNaN(g) || math.Abs(g-w) > tol*float64(bound[idx])+1e-30 {
				if bad < 5 {
					t.Errorf("%v: C(%d,%d) = %g, want %g (bound %g)", tc, i, j, g, w, tol*float64(bound[idx]))
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%v: %d mismatches", tc, bad)
	}
}

func sgKernels(t *testing.T) []*microKernel {
	if len(kernels) == 0 || kernels[len(kernels)-1] != goKernel {
		t.Fatalf("kernel list %v must end with the Go kernel", kernels)
	}
	return kernels
}

func TestSgemmMatchesReference(t *testing.T) {
	sizes := []int{1, 2, 3, 5, 7, 8, 12, 13, 16, 17, 31, 32, 33, 47, 64, 65, 100}
	alphas := []float32{1, -0.5, 2}
	betas := []float32{0, 1, 0.75}
	for _, kern := range sgKernels(t) {
		t.Run(kern.name, func(t *testing.T) {
			sgWithKernel(t, kern)
			r := rand.New(rand.NewPCG(1, uint64(len(kern.name))))
			for it := 0; it < 300; it++ {
				tc := sgCase{
					transA: r.IntN(2) == 1, transB: r.IntN(2) == 1,
					m: sizes[r.IntN(len(sizes))], n: sizes[r.IntN(len(sizes))], k: sizes[r.IntN(len(sizes))],
					alpha: alphas[r.IntN(len(alphas))], beta: betas[r.IntN(len(betas))],
				}
				if r.IntN(3) == 0 {
					tc.padA, tc.padB, tc.padC = r.IntN(5), r.IntN(5), r.IntN(5)
				}
				sgCheck(t, r, tc)
			}
		})
	}
}

// TestSgemmBlocking covers shapes larger than the cache blocks (several k,
// m and n blocks, ragged last blocks), every transpose combination, and both
// the packed and the in-place operand paths.
func TestSgemmBlocking(t *testing.T) {
	shapes := [][3]int{
		{300, 70, 530},    // several k blocks, ragged n edge
		{37, 333, 257},    // small m: B read in place when not transposed
		{150, 45, 300},    // small n: A read in place when transposed
		{161, 129, 1},     // k = 1
		{1, 513, 700},     // a single row
		{700, 1, 300},     // a single column
		{5408 / 8, 32, 9}, // conv-like: tall, narrow, short k
		{21, 10, 2500},    // NT dot-product path with several k blocks
	}
	for _, kern := range sgKernels(t) {
		t.Run(kern.name, func(t *testing.T) {
			sgWithKernel(t, kern)
			r := rand.New(rand.NewPCG(2, 3))
			for _, s := range shapes {
				for tr := 0; tr < 4; tr++ {
					tc := sgCase{transA: tr&1 != 0, transB: tr&2 != 0, m: s[0], n: s[1], k: s[2],
						alpha: 1.5, beta: []float32{0, 1, -2}[tr%3], padA: 3, padB: 1, padC: 2}
					sgCheck(t, r, tc)
				}
			}
		})
	}
}

func TestSgemmThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	for _, threads := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprint(threads), func(t *testing.T) {
			sgWithThreads(t, threads)
			if MaxThreads() != threads {
				t.Fatalf("MaxThreads() = %d after SetThreads(%d)", MaxThreads(), threads)
			}
			for _, s := range [][3]int{{130, 300, 70}, {400, 50, 90}, {64, 64, 64}} {
				for tr := 0; tr < 4; tr++ {
					sgCheck(t, r, sgCase{transA: tr&1 != 0, transB: tr&2 != 0, m: s[0], n: s[1], k: s[2], alpha: 1, beta: 0.5})
				}
			}
		})
	}
}

// TestSgemmDeterministic checks that results are bitwise identical for every
// thread count and on repetition, for every transposition and for shapes
// split along n (the first three) and along m (the last).
func TestSgemmDeterministic(t *testing.T) {
	shapes := [][3]int{{250, 190, 600}, {40, 700, 300}, {700, 40, 300}, {130, 70, 90}}
	for _, kern := range sgKernels(t) {
		t.Run(kern.name, func(t *testing.T) {
			sgWithKernel(t, kern)
			sgWithThreads(t, 0)
			r := rand.New(rand.NewPCG(6, 7))
			for i := range 4 * len(shapes) {
				s := shapes[i/4]
				tc := sgCase{m: s[0], n: s[1], k: s[2], alpha: 0.5, beta: 0.25, transA: i&1 != 0, transB: i&2 != 0}
				a, lda, b, ldb, c0, ldc := tc.operands(r)
				var first []float32
				for _, threads := range []int{1, 2, 3, 1, 2} {
					SetThreads(threads)
					c := append([]float32(nil), c0...)
					Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
					if first == nil {
						first = c
						continue
					}
					for j := range c {
						if math.Float32bits(c[j]) != math.Float32bits(first[j]) {
							t.Fatalf("%v threads=%d: C[%d] = %g, first run gave %g", tc, threads, j, c[j], first[j])
						}
					}
				}
			}
		})
	}
}

// TestSgemmDeterministic512 checks the benchmark shape, 512×512×512, with the
// default kernel and thread threshold: 2 threads give the bits of 1.
func TestSgemmDeterministic512(t *testing.T) {
	const n = 512
	r := rand.New(rand.NewPCG(14, 15))
	a, b := sgRandSlice(r, n*n), sgRandSlice(r, n*n)
	prev := SetThreads(1)
	defer SetThreads(prev)
	want := make([]float32, n*n)
	Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, want, n)
	SetThreads(2)
	for rep := 0; rep < 3; rep++ {
		got := make([]float32, n*n)
		Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, got, n)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("rep %d: C[%d] = %g on 2 threads, %g on 1", rep, i, got[i], want[i])
			}
		}
	}
}

// TestSgemmKernelsAgree checks that all micro-kernels produce the same bits:
// they share one summation order and rounding sequence. Ragged edges merge
// through Go code and may differ in the last bit, so the shape is tile-exact.
func TestSgemmKernelsAgree(t *testing.T) {
	ks := sgKernels(t)
	asm := ks[:len(ks)-1] // the Go kernel may round the beta term differently
	if len(asm) < 2 {
		t.Skip("fewer than two assembly kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(8, 9))
	tc := sgCase{m: 96, n: 96, k: 333, alpha: 1.25, beta: 0.5}
	a, lda, b, ldb, c0, ldc := tc.operands(r)
	var first []float32
	for _, kern := range asm {
		active = kern
		c := append([]float32(nil), c0...)
		Sgemm(false, false, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		if first == nil {
			first = c
			continue
		}
		for i := range c {
			if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
				t.Fatalf("kernel %s: C[%d] = %g, %s gave %g", kern.name, i, c[i], asm[0].name, first[i])
			}
		}
	}
	active = ks[0]
}

func TestSgemmSpecialCases(t *testing.T) {
	nan := float32(math.NaN())
	// k = 0: C = beta·C.
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0.5, c, 2)
	if c[0] != 0.5 || c[3] != 2 {
		t.Errorf("k=0, beta=0.5: C = %v, want [0.5 1 1.5 2]", c)
	}
	// alpha = 0, beta = 0: C cleared without reading it or A/B (NaNs in A stay out).
	c = []float32{nan, nan, nan, nan}
	a := []float32{nan, nan, nan, nan}
	Sgemm(false, false, 2, 2, 2, 0, a, 2, a, 2, 0, c, 2)
	for i, v := range c {
		if v != 0 {
			t.Errorf("alpha=0, beta=0: C[%d] = %g, want 0", i, v)
		}
	}
	// Empty products do nothing, whatever the leading dimensions.
	Sgemm(true, true, 0, 0, 5, 1, nil, 1, nil, 5, 0, nil, 1)
	Sgemm(false, false, 0, 3, 0, 1, nil, 0, nil, 0, 0, nil, 3)
	// k = 0 with lda = ldb = 0 (empty A and B) and beta = 0 clears C.
	c = []float32{nan, nan}
	Sgemm(false, false, 1, 2, 0, 1, nil, 0, nil, 0, 0, c, 2)
	if c[0] != 0 || c[1] != 0 {
		t.Errorf("k=0, beta=0: C = %v, want zeros", c)
	}
	// beta = -0 counts as zero: C is not read.
	for _, kern := range sgKernels(t) {
		active = kern
		c = []float32{nan, nan, nan, nan}
		Sgemm(false, false, 2, 2, 1, 1, []float32{1, 2}, 1, []float32{3, 4}, 2, float32(math.Copysign(0, -1)), c, 2)
		if want := []float32{3, 4, 6, 8}; fmt.Sprint(c) != fmt.Sprint(want) {
			t.Errorf("%s: beta=-0: C = %v, want %v", kern.name, c, want)
		}
	}
	active = kernels[0]
}

func sgemmMustPanic(t *testing.T, what string, f func(), parts ...string) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s: did not panic", what)
			return
		}
		msg := fmt.Sprint(r)
		for _, p := range append([]string{"kernels.Sgemm"}, parts...) {
			if !strings.Contains(msg, p) {
				t.Errorf("%s: panic %q does not mention %q", what, msg, p)
			}
		}
	}()
	f()
}

func TestSgemmPanics(t *testing.T) {
	x := make([]float32, 12)
	sgemmMustPanic(t, "negative m", func() { Sgemm(false, false, -1, 2, 2, 1, x, 2, x, 2, 0, x, 2) }, "m=-1")
	sgemmMustPanic(t, "short A", func() { Sgemm(false, false, 4, 3, 4, 1, x, 4, x, 3, 0, x, 3) }, "A of shape [4 4]", "16")
	sgemmMustPanic(t, "short transposed B", func() { Sgemm(false, true, 2, 5, 3, 1, x, 3, x, 3, 0, x, 5) }, "B of shape [5 3]")
	sgemmMustPanic(t, "small lda", func() { Sgemm(true, false, 3, 2, 2, 1, x, 2, x, 2, 0, x, 2) }, "lda=2", "[2 3]")
	sgemmMustPanic(t, "small ldc", func() { Sgemm(false, false, 2, 3, 2, 1, x, 2, x, 3, 0, x, 2) }, "ldc=2")
	sgemmMustPanic(t, "short C", func() { Sgemm(false, false, 3, 3, 2, 1, x, 2, x, 3, 0, x[:8], 3) }, "C of shape [3 3]")
}

func TestSgemmNoAllocs(t *testing.T) {
	if sgRace {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	r := rand.New(rand.NewPCG(10, 11))
	for _, threads := range []int{1, 2} {
		sgWithThreads(t, threads)
		for _, s := range [][3]int{{32, 128, 784}, {200, 200, 200}} {
			tc := sgCase{m: s[0], n: s[1], k: s[2], alpha: 1, transB: true}
			a, lda, b, ldb, c, ldc := tc.operands(r)
			run := func() { Sgemm(false, true, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, 0, c, ldc) }
			run() // warm the pools and workers
			if n := testing.AllocsPerRun(20, run); n != 0 {
				t.Errorf("threads=%d %v: %v allocations per call, want 0", threads, s, n)
			}
		}
	}
}

func TestSetThreads(t *testing.T) {
	prev := SetThreads(3)
	defer SetThreads(prev)
	if got := SetThreads(-5); got != 3 {
		t.Errorf("SetThreads returned %d, want previous limit 3", got)
	}
	if MaxThreads() < 1 {
		t.Errorf("MaxThreads() = %d with default limit, want ≥ 1", MaxThreads())
	}
}

// TestSgemmConcurrent runs parallel products from several goroutines at once
// through the shared worker pool.
func TestSgemmConcurrent(t *testing.T) {
	sgWithThreads(t, 2)
	r := rand.New(rand.NewPCG(12, 13))
	tc := sgCase{m: 150, n: 170, k: 120, alpha: 1, transA: true}
	a, lda, b, ldb, c0, ldc := tc.operands(r)
	want := append([]float32(nil), c0...)
	Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, 0, want, ldc)
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			c := make([]float32, len(c0))
			for it := 0; it < 5; it++ {
				Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, 0, c, ldc)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
						errs <- fmt.Sprintf("C[%d] = %g, want %g", i, c[i], want[i])
						return
					}
				}
			}
			errs <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

// TestPackTransposedPaths checks the register-transposing pack (packT8 and
// packT4, when this build has them) against the portable loop element for
// element, over row counts that take every mix of 8- and 4-row groups and
// the scalar rest, column counts with and without a tail, and padded
// strides; then a whole product with each path.
func TestPackTransposedPaths(t *testing.T) {
	if packT8 == nil {
		t.Log("no assembly pack on this build: checking the portable loop against itself")
	}
	r := rand.New(rand.NewPCG(21, 22))
	for w := 1; w <= 33; w++ {
		for _, kc := range []int{1, 7, 8, 9, 16, 31, 40, 256} {
			for _, pad := range []int{0, 3} {
				ld, stride, base := kc+pad+1, w+pad, pad
				src := sgRandSlice(r, base+w*ld)
				want := make([]float32, kc*stride)
				got := make([]float32, kc*stride)
				for i := range want {
					want[i], got[i] = -7, -7 // padding between panels stays untouched
				}
				packTransposedGo(want, src, base, ld, w, kc, stride)
				packTransposed(got, src, base, ld, w, kc, stride)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("w=%d kc=%d pad=%d: d[%d] = %g, want %g", w, kc, pad, i, got[i], want[i])
					}
				}
			}
		}
	}

	// A product whose packing transposes A (rows of 12 or 6) and Bᵀ.
	tc := sgCase{transB: true, m: 77, n: 70, k: 261, alpha: 1, beta: 0, padA: 2, padB: 1}
	a, lda, b, ldb, c0, ldc := tc.operands(r)
	run := func() []float32 {
		c := append([]float32(nil), c0...)
		Sgemm(false, true, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		return c
	}
	fast := run()
	p8, p4 := packT8, packT4
	packT8, packT4 = nil, nil
	slow := run()
	packT8, packT4 = p8, p4
	for i := range fast {
		if math.Float32bits(fast[i]) != math.Float32bits(slow[i]) {
			t.Fatalf("C[%d] = %g with the assembly pack, %g without", i, fast[i], slow[i])
		}
	}
}
