package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

func benchGemm(b *testing.B, transA, transB bool, m, n, k, threads int) {
	prev := SetThreads(threads)
	defer SetThreads(prev)
	r := rand.New(rand.NewPCG(1, 2))
	a, bm, c := sgRandSlice(r, m*k), sgRandSlice(r, k*n), sgRandSlice(r, m*n)
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	Sgemm(transA, transB, m, n, k, 1, a, lda, bm, ldb, 0, c, n)
	b.ResetTimer()
	for b.Loop() {
		Sgemm(transA, transB, m, n, k, 1, a, lda, bm, ldb, 0, c, n)
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

// BenchmarkSgemm measures square products, single- and multi-threaded.
func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{256, 512, 1024, 2048} {
		for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("n=%d/threads=%d", n, threads), func(b *testing.B) {
				benchGemm(b, false, false, n, n, n, threads)
			})
		}
	}
}

// BenchmarkSgemmShapes measures the small shapes of small-model training:
// a dense layer (batch 32, 784→128) forward and backward, and convolution
// products (im2col with 3×3 kernels).
func BenchmarkSgemmShapes(b *testing.B) {
	shapes := []struct {
		name           string
		transA, transB bool
		m, n, k        int
	}{
		{"dense_fwd_32x128x784_NT", false, true, 32, 128, 784},
		{"dense_dx_32x784x128_NN", false, false, 32, 784, 128},
		{"dense_dw_128x784x32_TN", true, false, 128, 784, 32},
		{"conv_5408x32x9_NN", false, false, 5408, 32, 9},
		{"conv_32x5408x9_NN", false, false, 32, 5408, 9},
		{"conv_64x1352x288_NN", false, false, 64, 1352, 288},
		{"conv_dw_32x9x5408_NT", false, true, 32, 9, 5408},
	}
	for _, s := range shapes {
		for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/threads=%d", s.name, threads), func(b *testing.B) {
				benchGemm(b, s.transA, s.transB, s.m, s.n, s.k, threads)
			})
		}
	}
}

// BenchmarkSgemmKernels compares the available micro-kernels on one thread.
func BenchmarkSgemmKernels(b *testing.B) {
	for _, kern := range kernels {
		b.Run(kern.name, func(b *testing.B) {
			sgWithKernel(b, kern)
			benchGemm(b, false, false, 512, 512, 512, 1)
		})
	}
}
