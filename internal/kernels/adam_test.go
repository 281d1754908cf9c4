package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamUpdateMatchesLoop checks that AdamUpdate (the assembly path where
// the CPU has it) gives the bits of the portable loop, for lengths with and
// without a tail, and that the update is Adam's.
func TestAdamUpdateMatchesLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const b1, b2 = 0.9, 0.999
	num, epsC := float32(-1e-3*0.3), float32(1e-8*0.05)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 100, 1029} {
		mk := func(scale float32) []float32 {
			s := make([]float32, n)
			for i := range s {
				s[i] = (r.Float32()*2 - 1) * scale
			}
			return s
		}
		w, g, m, v := mk(1), mk(0.1), mk(0.01), mk(0.001)
		for i := range v {
			v[i] = float32(math.Abs(float64(v[i])))
		}
		if n > 3 {
			g[1], v[2] = 0, 0
		}
		w2, m2, v2 := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
		w0, m0, v0 := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
		AdamUpdate(w, g, m, v, b1, b2, 1-b1, 1-b2, num, epsC)
		adamGo(w2, g, m2, v2, b1, b2, 1-b1, 1-b2, num, epsC)
		for i := range w {
			if math.Float32bits(w[i]) != math.Float32bits(w2[i]) || math.Float32bits(m[i]) != math.Float32bits(m2[i]) || math.Float32bits(v[i]) != math.Float32bits(v2[i]) {
				t.Fatalf("n=%d, element %d: AdamUpdate gives w,m,v = %v,%v,%v, the loop %v,%v,%v (asm %v)", n, i, w[i], m[i], v[i], w2[i], m2[i], v2[i], adamAsm)
			}
			// Against the formula in float64.
			gm := float64(m0[i])*b1 + (1-b1)*float64(g[i])
			gv := float64(v0[i])*b2 + (1-b2)*float64(g[i])*float64(g[i])
			want := float64(w0[i]) + float64(num)*gm/(math.Sqrt(gv)+float64(epsC))
			if d := math.Abs(float64(w[i]) - want); d > 1e-6*math.Max(1, math.Abs(want)) {
				t.Fatalf("n=%d, element %d: w = %v, want %v", n, i, w[i], want)
			}
		}
	}
}

func TestAdamUpdateAllocs(t *testing.T) {
	w, g, m, v := make([]float32, 100), make([]float32, 100), make([]float32, 100), make([]float32, 100)
	if n := testing.AllocsPerRun(10, func() { AdamUpdate(w, g, m, v, 0.9, 0.999, 0.1, 0.001, -1e-3, 1e-8) }); n != 0 {
		t.Fatalf("AdamUpdate made %v allocations", n)
	}
}
