package kernels

import "math"

// positiveMask returns all ones when the float32 with bits b is greater than
// zero (positive, not zero, not NaN) and zero otherwise, without a branch on
// the value (a data-dependent branch mispredicts half the time on
// activations).
func positiveMask(b uint32) uint32 {
	var m uint32
	if b-1 < 0x7f800000 { // 0 < b ≤ +Inf as an ordered float
		m = 0xffffffff
	}
	return m
}

// ReLU sets dst[i] = src[i] where src[i] > 0 and 0 elsewhere (NaN gives 0).
// dst and src have the same length and may be the same slice.
func ReLU(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		b := math.Float32bits(v)
		dst[i] = math.Float32frombits(b & positiveMask(b))
	}
}

// ReLUGrad sets dst[i] = g[i] where x[i] > 0 and 0 elsewhere: the gradient
// of ReLU at x (or at its output, which is positive at the same places).
func ReLUGrad(dst, g, x []float32) {
	dst = dst[:len(g)]
	x = x[:len(g)]
	for i, v := range g {
		dst[i] = math.Float32frombits(math.Float32bits(v) & positiveMask(math.Float32bits(x[i])))
	}
}

// AddRowBias adds bias[r] to every element of row r of the rows×cols
// row-major matrix x.
func AddRowBias(x []float32, rows, cols int, bias []float32) {
	bias = bias[:rows]
	for r, bv := range bias {
		row := x[r*cols : (r+1)*cols]
		for i := range row {
			row[i] += bv
		}
	}
}
