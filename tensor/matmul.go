package tensor

import (
	"fmt"

	"github.com/deepgo/deepgo/internal/kernels"
)

// This file holds the matrix products MatMul and Linear. Every product, in
// the forward and the backward pass, is one or more calls to kernels.Sgemm;
// transposed operands are expressed with its transA/transB flags rather than
// materialised.

// gemm calls kernels.Sgemm, skipping empty products (an empty inner dimension
// leaves C as beta·C, and beta here is always 0 on zeroed buffers or 1).
func gemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 || k == 0 {
		return
	}
	kernels.Sgemm(transA, transB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

// MatMul is the matrix product with torch.matmul semantics: 1-D, 2-D, and
// batched N-D operands with broadcast batch dims.
//
//   - 1-D · 1-D is the dot product (a 0-d result);
//   - a 1-D left operand is treated as a row [1, k] and a 1-D right operand
//     as a column [k, 1], and that dimension is removed from the result;
//   - operands of rank 3 or more are stacks of matrices over their leading
//     (batch) dims, which broadcast against each other; a 2-D operand is
//     one matrix shared by every batch.
func MatMul(a, b *Tensor) *Tensor {
	mustFloat("MatMul", a, b)
	ra, rb := len(a.shape), len(b.shape)
	if ra == 0 || rb == 0 {
		panic(fmt.Sprintf("tensor.MatMul: shapes %v and %v: both operands need at least one dimension", a.shape, b.shape))
	}
	as, bs := a.shape, b.shape
	if ra == 1 {
		as = []int{1, as[0]}
	}
	if rb == 1 {
		bs = []int{bs[0], 1}
	}
	m, k := as[len(as)-2], as[len(as)-1]
	n := bs[len(bs)-1]
	if kb := bs[len(bs)-2]; kb != k {
		panic(fmt.Sprintf("tensor.MatMul: shapes %v and %v do not match (inner dims %d and %d)", a.shape, b.shape, k, kb))
	}
	batchA, batchB := as[:len(as)-2], bs[:len(bs)-2]
	batch, ok := broadcastShapes(batchA, batchB)
	if !ok {
		panic(fmt.Sprintf("tensor.MatMul: shapes %v and %v: batch dims %v and %v cannot be broadcast", a.shape, b.shape, batchA, batchB))
	}
	oshape := cloneShape(batch)
	if ra > 1 {
		oshape = append(oshape, m)
	}
	if rb > 1 {
		oshape = append(oshape, n)
	}
	nb := numel(batch)
	ia := broadcastIndex(batchA, batch) // nil: a has every batch itself
	ib := broadcastIndex(batchB, batch)
	bIsOne := numel(batchB) == 1
	pick := func(idx []int32, i int) int {
		if idx == nil {
			return i
		}
		return int(idx[i])
	}

	out := Zeros(oshape...)
	if ia == nil && bIsOne {
		// Every batch of a times the one b: a single [nb·m, k]·[k, n] product.
		gemm(false, false, nb*m, n, k, a.data, k, b.data, n, 0, out.data, n)
	} else {
		for i := 0; i < nb; i++ {
			ao, bo := pick(ia, i)*m*k, pick(ib, i)*k*n
			gemm(false, false, m, n, k, a.data[ao:], k, b.data[bo:], n, 0, out.data[i*m*n:], n)
		}
	}

	return record("MatMul", out, func(g *Tensor) []*Tensor {
		var ga, gb *Tensor
		if a.NeedsGrad() {
			// dA = dC·Bᵀ, summed over the batches that share an A.
			ga = Zeros(a.shape...)
			switch {
			case ia == nil && bIsOne:
				gemm(false, true, nb*m, k, n, g.data, n, b.data, n, 0, ga.data, k)
			default:
				beta := float32(0)
				if ia != nil {
					beta = 1
				}
				for i := 0; i < nb; i++ {
					ao, bo := pick(ia, i)*m*k, pick(ib, i)*k*n
					gemm(false, true, m, k, n, g.data[i*m*n:], n, b.data[bo:], n, beta, ga.data[ao:], k)
				}
			}
		}
		if b.NeedsGrad() {
			// dB = Aᵀ·dC, summed over the batches that share a B.
			gb = Zeros(b.shape...)
			switch {
			case ia == nil && bIsOne:
				gemm(true, false, k, n, nb*m, a.data, k, g.data, n, 0, gb.data, n)
			default:
				beta := float32(0)
				if ib != nil {
					beta = 1
				}
				for i := 0; i < nb; i++ {
					ao, bo := pick(ia, i)*m*k, pick(ib, i)*k*n
					gemm(true, false, k, n, m, a.data[ao:], k, g.data[i*m*n:], n, beta, gb.data[bo:], n)
				}
			}
		}
		return []*Tensor{ga, gb}
	}, a, b)
}

// broadcastShapes returns the NumPy broadcast of a and b, or false.
func broadcastShapes(a, b []int) ([]int, bool) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := range out {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, false
		}
	}
	return out, true
}

// Linear returns x·wᵀ + b (b may be nil) for x [..., in], w [out, in] and
// b [out]: the fused op behind nn.Linear. The result has shape [..., out].
func Linear(x, w, b *Tensor) *Tensor { return linear("Linear", x, w, b, false) }

// LinearReLU is ReLU(Linear(x, w, b)) in one op, with the same values and
// gradients as the two in sequence.
func LinearReLU(x, w, b *Tensor) *Tensor { return linear("LinearReLU", x, w, b, true) }

func linear(op string, x, w, b *Tensor, relu bool) *Tensor {
	mustFloat(op, x, w)
	if len(w.shape) != 2 || len(x.shape) == 0 || x.shape[len(x.shape)-1] != w.shape[1] {
		panic(fmt.Sprintf("tensor.%s: input shape %v and weight shape %v do not match (want input [..., in] and weight [out, in])", op, x.shape, w.shape))
	}
	nOut, nIn := w.shape[0], w.shape[1]
	if b != nil {
		mustFloat(op, b)
		if len(b.shape) != 1 || b.shape[0] != nOut {
			panic(fmt.Sprintf("tensor.%s: bias shape %v does not match weight shape %v (want [%d])", op, b.shape, w.shape, nOut))
		}
	}
	rows := numel(x.shape[:len(x.shape)-1])
	var sbuf [4]int // the output shape, on the stack when it fits
	oshape := append(sbuf[:0], x.shape...)
	oshape[len(oshape)-1] = nOut
	out := newOutIn(arenaOf(x), oshape)
	var bd []float32
	if b != nil {
		bd = b.data
	}
	linearInto(out.data, x.data, w.data, bd, rows, nIn, nOut)
	if relu {
		kernels.ReLU(out.data, out.data)
	}
	return recordFn(op, out, linearBackward, nil, relu, x, w, b)
}

// linearInto sets dst (rows×nOut) to x·wᵀ + b for x rows×nIn and w
// nOut×nIn (b nil: no bias): every row is seeded with the bias and the
// product accumulates onto it. Every element of dst is written.
func linearInto(dst, x, w, b []float32, rows, nIn, nOut int) {
	if b == nil && nIn == 0 {
		clear(dst[:rows*nOut]) // an empty product leaves the output as it is
	}
	beta := float32(0)
	if b != nil {
		for r := 0; r < rows; r++ {
			copy(dst[r*nOut:(r+1)*nOut], b)
		}
		beta = 1
	}
	gemm(false, true, rows, nOut, nIn, x, nIn, w, nIn, beta, dst, nOut)
}

// linearBackward is the rule of Linear and LinearReLU (flag set).
func linearBackward(out, g *Tensor) []*Tensor {
	x, w, b := out.ctx.inputs[0], out.ctx.inputs[1], out.ctx.inputs[2]
	nOut, nIn := w.shape[0], w.shape[1]
	rows := numel(x.shape[:len(x.shape)-1])
	gd := g.data
	var gr []float32
	if out.ctx.flag {
		gr = getBuf(len(gd)) // scratch: only this rule sees it
		kernels.ReLUGrad(gr, gd, out.data)
		gd = gr
	}
	var gx, gw, gb *Tensor
	// The products overwrite their outputs unless the inner size is 0.
	if x.NeedsGrad() {
		gx = newGrad(nOut == 0, x.shape...)
		gemm(false, false, rows, nIn, nOut, gd, nOut, w.data, nIn, 0, gx.data, nIn)
	}
	if w.NeedsGrad() {
		if sink := gradSink(w); sink != nil {
			gemm(true, false, nOut, nIn, rows, gd, nOut, x.data, nIn, 1, sink.data, nIn)
		} else {
			gw = newGrad(rows == 0, w.shape...)
			gemm(true, false, nOut, nIn, rows, gd, nOut, x.data, nIn, 0, gw.data, nIn)
		}
	}
	if b.NeedsGrad() {
		sink := gradSink(b)
		if sink == nil {
			gb = newGrad(true, nOut)
			sink = gb
		}
		bd := sink.data[:nOut]
		for r := 0; r < rows; r++ {
			for j, v := range gd[r*nOut : (r+1)*nOut] {
				bd[j] += v
			}
		}
	}
	putBuf(gr)
	gin := &out.ctx.gin
	gin[0], gin[1], gin[2] = gx, gw, gb
	return gin[:3]
}
