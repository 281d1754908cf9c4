// Package kernels holds deepgo's hot loops on []float32: matrix multiply,
// im2col/col2im and vectorised elementwise work. Callers in package tensor go
// through the functions here only, so faster implementations replace these
// without touching the ops.
package kernels

import (
	"fmt"
	"strings"
)

//go:generate go run -C asmgen . -out ../sgemm_amd64.s -stubs ../sgemm_stubs_amd64.go -pkg kernels

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ. op(A) is m×k, op(B) is k×n, C is m×n; lda, ldb, ldc are
// the row strides of A, B and C as stored. When beta is 0, C is not read.
//
// It is a cache-blocked, packed implementation with assembly micro-kernels
// (AVX-512 or AVX2+FMA, chosen at start-up; portable Go elsewhere or with the
// purego build tag) and runs on up to MaxThreads threads. Results are
// bitwise reproducible: they do not depend on the thread count or scheduling.
// Sgemm is safe for concurrent use on distinct C. It panics, naming itself,
// on negative sizes, too-small leading dimensions or too-short slices.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels.Sgemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	checkMatrix("A", a, rowsA, colsA, lda)
	checkMatrix("B", b, rowsB, colsB, ldb)
	checkMatrix("C", c, m, n, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		for i := 0; i < m; i++ {
			crow := c[i*ldc : i*ldc+n]
			switch beta {
			case 0:
				clear(crow)
			case 1:
			default:
				for j := range crow {
					crow[j] *= beta
				}
			}
		}
		return
	}
	g := gemmArgs{
		transA: transA, transB: transB, m: m, n: n, k: k,
		alpha: alpha, beta: beta,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
		kern: active,
	}
	sgemm(&g)
}

// checkMatrix panics unless x can hold a rows×cols row-major matrix with
// row stride ld; an empty matrix (rows or cols 0) accepts any x and ld.
func checkMatrix(name string, x []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("kernels.Sgemm: ld%s=%d < %d for %s of shape [%d %d]", strings.ToLower(name), ld, cols, name, rows, cols))
	}
	if len(x) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("kernels.Sgemm: %s of shape [%d %d] with ld %d needs %d elements, has %d", name, rows, cols, ld, (rows-1)*ld+cols, len(x)))
	}
}

// sgemmRef is the straightforward reference implementation.
func sgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(crow)
		} else if beta != 1 {
			for j := range crow {
				crow[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			av *= alpha
			if av == 0 {
				continue
			}
			if !transB {
				brow := b[p*ldb : p*ldb+n]
				for j, bv := range brow {
					crow[j] += av * bv
				}
			} else {
				for j := 0; j < n; j++ {
					crow[j] += av * b[j*ldb+p]
				}
			}
		}
	}
}
