package kernels

import "math"

// sigmoidVec and tanhVec, when not nil, compute 8·blocks values at a time
// (AVX2 + FMA; see asmgen's genVecMath): a float32 exp with about 1.4 ulp
// of relative error, so results differ from the portable loops by a few
// ulp. They are set on amd64 with AVX2 and FMA; tests set them to nil to
// run the portable loops.
var sigmoidVec, tanhVec, geluVec func(dst, src *float32, blocks int)

// geluGradVec, when not nil, is GELUGrad 8·blocks values at a time (AVX2 +
// FMA), set with the others.
var geluGradVec func(dst, grad, x *float32, blocks int)

// Sigmoid sets dst[i] = 1/(1+e^-src[i]). dst and src have the same length
// and may be the same slice.
func Sigmoid(dst, src []float32) {
	mustSameLen("Sigmoid", dst, src)
	if sigmoidVec != nil {
		vecApply(sigmoidVec, dst, src)
		return
	}
	for i, v := range src {
		dst[i] = Sigmoid32(v)
	}
}

// Tanh sets dst[i] = tanh(src[i]). dst and src have the same length and
// may be the same slice.
func Tanh(dst, src []float32) {
	mustSameLen("Tanh", dst, src)
	if tanhVec != nil {
		vecApply(tanhVec, dst, src)
		return
	}
	for i, v := range src {
		dst[i] = float32(math.Tanh(float64(v)))
	}
}

// GELU sets dst[i] = src[i]·Φ(src[i]), Φ the standard normal CDF (the
// exact, erf form; PyTorch's approximate="none"). dst and src have the same
// length and may be the same slice. The vector path uses Cephes' float32
// erf and erfc (a few ulp); the portable one math.Erfc in float64.
func GELU(dst, src []float32) {
	mustSameLen("GELU", dst, src)
	if geluVec != nil {
		vecApply(geluVec, dst, src)
		return
	}
	for i, v := range src {
		x := float64(v)
		dst[i] = float32(0.5 * x * math.Erfc(-x/math.Sqrt2)) // 1+erf(u) = erfc(-u), without cancellation
	}
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

// Sigmoid32 is the portable σ(v), computed in float64 and rounded.
func Sigmoid32(v float32) float32 {
	x := float64(v)
	if x >= 0 {
		return float32(1 / (1 + math.Exp(-x)))
	}
	e := math.Exp(x)
	return float32(e / (1 + e))
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
