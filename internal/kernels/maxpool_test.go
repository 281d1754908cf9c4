package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// maxPoolRef is MaxPool2x2BiasReLU computed in float64 from its
// definition.
func maxPoolRef(r0, r1 []float32, bias float32, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		best := float32(0) // +0
		for _, v := range []float32{r0[2*i], r0[2*i+1], r1[2*i], r1[2*i+1]} {
			if x := v + bias; x > best {
				best = x
			}
		}
		out[i] = best
	}
	return out
}

// TestMaxPool2x2BiasReLU checks the kernel (the AVX2 one where this build
// has it, then the portable one) against its definition, bit for bit, on
// random rows salted with NaN, ±0, ±Inf and ties, for 0 to 40 outputs.
func TestMaxPool2x2BiasReLU(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	special := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), 1, -1}
	for _, portable := range []bool{false, true} {
		if portable && !maxPoolAsm {
			continue // the first round was the portable path already
		}
		for n := 0; n <= 40; n++ {
			for _, bias := range []float32{0, 0.5, -0.25} {
				r0, r1 := make([]float32, 2*n+3), make([]float32, 2*n+3)
				for i := range r0 {
					r0[i], r1[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
					if r.IntN(6) == 0 {
						r0[i] = special[r.IntN(len(special))]
					}
					if r.IntN(6) == 0 {
						r1[i] = r0[i] // a tie
					}
				}
				got := make([]float32, n+1)
				got[n] = 42 // past the end: untouched
				if portable {
					maxPool2x2BiasReLUGo(got[:n], r0, r1, bias)
				} else {
					MaxPool2x2BiasReLU(got[:n], r0, r1, bias)
				}
				want := maxPoolRef(r0, r1, bias, n)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("portable=%v n=%d bias=%v output %d: got %v, want %v (window %v %v %v %v)",
							portable, n, bias, i, got[i], want[i], r0[2*i], r0[2*i+1], r1[2*i], r1[2*i+1])
					}
				}
				if got[n] != 42 {
					t.Fatalf("portable=%v n=%d: wrote past the outputs", portable, n)
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("short rows: no panic")
		}
	}()
	MaxPool2x2BiasReLU(make([]float32, 4), make([]float32, 8), make([]float32, 7), 0)
}
