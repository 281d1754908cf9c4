package kernels

import "math"

// sigmoidVec, tanhVec and geluVec, when not nil, compute 8·blocks values
// at a time (AVX2 + FMA; see asmgen's genVecMath) from a float32 exp (about
// 1.4 ulp of relative error) and erf, so results differ from the portable
// loops by a few ulp. They are set on amd64 with AVX2 and FMA; tests set
// them to nil to run the portable loops.
var sigmoidVec, tanhVec, geluVec func(dst, src *float32, blocks int)

// geluGradVec, when not nil, is GELUGrad 8·blocks values at a time (AVX2 +
// FMA), set with the others.
var geluGradVec func(dst, grad, x *float32, blocks int)

// Sigmoid sets dst[i] = 1/(1+e^-src[i]). dst and src have the same length
// and may be the same slice.
func Sigmoid(dst, src []float32) { unaryVec("Sigmoid", sigmoidVec, dst, src, sigmoid64) }

// Tanh sets dst[i] = tanh(src[i]). dst and src have the same length and
// may be the same slice.
func Tanh(dst, src []float32) {
	unaryVec("Tanh", tanhVec, dst, src, math.Tanh)
}

// GELU sets dst[i] = src[i]·Φ(src[i]), Φ the standard normal CDF (the
// exact, erf form; PyTorch's approximate="none"). dst and src have the same
// length and may be the same slice. The vector path uses Cephes' float32
// erf and erfc (a few ulp); the portable one math.Erfc in float64.
func GELU(dst, src []float32) {
	unaryVec("GELU", geluVec, dst, src, func(x float64) float64 {
		return 0.5 * x * math.Erfc(-x/math.Sqrt2) // 1+erf(u) = erfc(-u), without cancellation
	})
}

// unaryVec applies an element-wise function: through the 8-wide kernel vec
// when this build has it, else through its float64 form f, rounded.
func unaryVec(op string, vec func(dst, src *float32, blocks int), dst, src []float32, f func(float64) float64) {
	mustSameLen(op, dst, src)
	if vec != nil {
		vecApply(vec, dst, src)
		return
	}
	for i, v := range src {
		dst[i] = float32(f(float64(v)))
	}
}

// sigmoid64 is σ(x) without overflow at either end.
func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// GELUGrad sets dst[i] = grad[i]·(Φ(x[i]) + x[i]·φ(x[i])), the gradient of
// GELU at x times the output gradient grad; φ is the standard normal
// density. All three have the same length; dst may be grad or x.
func GELUGrad(dst, grad, x []float32) {
	mustSameLen("GELUGrad", dst, grad)
	mustSameLen("GELUGrad", dst, x)
	if geluGradVec != nil {
		n := len(x)
		full := n / 8 * 8
		if full > 0 {
			geluGradVec(&dst[0], &grad[0], &x[0], full/8)
		}
		if full < n {
			var bg, bx [8]float32
			copy(bg[:], grad[full:])
			copy(bx[:], x[full:])
			geluGradVec(&bx[0], &bg[0], &bx[0], 1)
			copy(dst[full:], bx[:n-full])
		}
		return
	}
	const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)
	for i, v := range grad {
		xv := float64(x[i])
		cdf := 0.5 * math.Erfc(-xv/math.Sqrt2)
		pdf := invSqrt2Pi * math.Exp(-0.5*xv*xv)
		dst[i] = float32(float64(v) * (cdf + xv*pdf))
	}
}

// vecApply runs an 8-wide kernel over src into dst; the last partial block
// goes through a buffer, so that every element is computed the same way.
func vecApply(f func(dst, src *float32, blocks int), dst, src []float32) {
	n := len(src)
	full := n / 8 * 8
	if full > 0 {
		f(&dst[0], &src[0], full/8)
	}
	if full < n {
		var buf [8]float32
		copy(buf[:], src[full:])
		f(&buf[0], &buf[0], 1)
		copy(dst[full:], buf[:n-full])
	}
}

func mustSameLen(op string, dst, src []float32) {
	if len(dst) != len(src) {
		panic("kernels." + op + ": dst and src lengths differ")
	}
}
