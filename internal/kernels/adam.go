package kernels

import "math"

// AdamUpdate applies the common case of Adam's update (no weight decay,
// no AMSGrad) to every element k of w, in place:
//
//	m[k] = m[k]·b1 + omb1·g[k]
//	v[k] = v[k]·b2 + (omb2·g[k])·g[k]
//	w[k] += (num·m[k]) / (√v[k] + epsC)
//
// with each operation rounded to float32 in that order (no fused
// multiply-add), so the vectorised path and the portable loop give the same
// bits. The caller folds the learning rate and the bias corrections into
// num and epsC. g, m and v must be at least as long as w.
func AdamUpdate(w, g, m, v []float32, b1, b2, omb1, omb2, num, epsC float32) {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	k := 0
	if adamAsm && n >= 16 {
		k = n &^ 15
		adamAVX512(&w[0], &g[0], &m[0], &v[0], k, b1, b2, omb1, omb2, num, epsC)
	}
	adamGo(w[k:], g[k:], m[k:], v[k:], b1, b2, omb1, omb2, num, epsC)
}

// adamGo is AdamUpdate's portable loop.
func adamGo(w, g, m, v []float32, b1, b2, omb1, omb2, num, epsC float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for k := range w {
		gk := g[k]
		mk := m[k]*b1 + omb1*gk
		vk := v[k]*b2 + omb2*gk*gk
		m[k], v[k] = mk, vk
		w[k] += num * mk / (float32(math.Sqrt(float64(vk))) + epsC)
	}
}
