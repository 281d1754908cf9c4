package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// maxPoolRef is MaxPool2x2BiasReLU (with winners) computed from its definition: the
// largest rectified value and the first offset holding it.
func maxPoolRef(r0, r1 []float32, bias float32, n int) ([]float32, []uint8) {
	out, arg := make([]float32, n), make([]uint8, n)
	for i := range out {
		best, at := float32(0), uint8(0) // +0
		for k, v := range []float32{r0[2*i], r0[2*i+1], r1[2*i], r1[2*i+1]} {
			if x := v + bias; x > best {
				best, at = x, uint8(k)
			}
		}
		out[i], arg[i] = best, at
	}
	return out, arg
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
				got, gotA := make([]float32, n+1), make([]float32, n+1)
				arg := make([]uint8, n+1)
				got[n], gotA[n], arg[n] = 42, 42, 42 // past the end: untouched
				if portable {
					maxPool2x2BiasReLUGo(got[:n], nil, r0, r1, bias)
					maxPool2x2BiasReLUGo(gotA[:n], arg[:n], r0, r1, bias)
				} else {
					MaxPool2x2BiasReLU(got[:n], nil, r0, r1, bias)
					MaxPool2x2BiasReLU(gotA[:n], arg[:n], r0, r1, bias)
				}
				want, wantA := maxPoolRef(r0, r1, bias, n)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(gotA[i]) != math.Float32bits(want[i]) || arg[i] != wantA[i] {
						t.Fatalf("portable=%v n=%d bias=%v output %d: got %v, %v with offset %d, want %v at %d (window %v %v %v %v)",
							portable, n, bias, i, got[i], gotA[i], arg[i], want[i], wantA[i], r0[2*i], r0[2*i+1], r1[2*i], r1[2*i+1])
					}
				}
				if got[n] != 42 || gotA[n] != 42 || arg[n] != 42 {
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
	MaxPool2x2BiasReLU(make([]float32, 4), nil, make([]float32, 8), make([]float32, 7), 0)
}

func TestMaxPool2x2BiasReLUShortOffsets(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("short offsets: no panic")
		}
	}()
	MaxPool2x2BiasReLU(make([]float32, 4), make([]uint8, 3), make([]float32, 8), make([]float32, 8), 0)
}
