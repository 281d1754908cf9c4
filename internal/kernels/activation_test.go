package kernels

import (
	"math"
	"testing"
)

// activationPaths runs f once with the vector kernels (when this build has
// them) and once with the portable loops.
func activationPaths(t *testing.T, f func(t *testing.T, path string)) {
	sv, tv, gv, ggv := sigmoidVec, tanhVec, geluVec, geluGradVec
	if sv != nil {
		f(t, "vector")
	} else {
		t.Log("no vector activation kernels in this build")
	}
	sigmoidVec, tanhVec, geluVec, geluGradVec = nil, nil, nil, nil
	defer func() { sigmoidVec, tanhVec, geluVec, geluGradVec = sv, tv, gv, ggv }()
	f(t, "portable")
}

// TestActivationAccuracy checks Sigmoid and Tanh against float64 references
// over a dense grid of [-100, 100] (every length, so that the buffered last
// block is covered too): within 4 ulp of the float32-rounded reference (16
// for GELU and its derivative), or 1e-37 absolutely near zero (1e-7 for the
// derivative); NaN gives NaN, ±Inf the limits of Sigmoid and Tanh.
func TestActivationAccuracy(t *testing.T) {
	const n = 200001
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i-n/2) / 1000
	}
	src = append(src, 1e-30, -1e-30, 0, float32(math.Copysign(0, -1)), 1e-6, 0.62499, 0.625, 0.62501, 88.5, -88.5, 1e30, -1e30)
	refs := map[string]func(float64) float64{
		"Sigmoid": func(x float64) float64 { return 1 / (1 + math.Exp(-x)) },
		"Tanh":    math.Tanh,
		"GELU":    func(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) },
		"GELUGrad": func(x float64) float64 {
			return 0.5*math.Erfc(-x/math.Sqrt2) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
		},
	}
	fns := map[string]func(dst, src []float32){"Sigmoid": Sigmoid, "Tanh": Tanh, "GELU": GELU,
		"GELUGrad": func(dst, src []float32) {
			ones := make([]float32, len(src))
			for i := range ones {
				ones[i] = 1
			}
			GELUGrad(dst, ones, src)
		}}
	// Allowed error in ulp, or absolutely: Φ for negative x below -1.4 is
	// ½ + ½·erf with erf near -1 (some cancellation: up to 13 ulp seen),
	// and GELU's derivative Φ(x) + x·φ(x) crosses zero near x = -0.75,
	// where its two terms (about ±0.2) cancel.
	ulps := map[string]float64{"Sigmoid": 4, "Tanh": 4, "GELU": 16, "GELUGrad": 16}
	abs := map[string]float64{"Sigmoid": 1e-37, "Tanh": 1e-37, "GELU": 1e-37, "GELUGrad": 1e-7}
	activationPaths(t, func(t *testing.T, path string) {
		for name, f := range fns {
			for _, m := range []int{len(src), 1, 7, 8, 9, 17} {
				in := src[len(src)-m:]
				out := make([]float32, m)
				f(out, in)
				for i, x := range in {
					want := float32(refs[name](float64(x)))
					got := out[i]
					ulp := math.Abs(float64(math.Nextafter32(want, float32(math.Inf(1))) - want))
					if d := math.Abs(float64(got - want)); d > ulps[name]*ulp && d > abs[name] {
						t.Fatalf("%s %s(%g) = %g, want %g (%.1f ulp)", path, name, x, got, want, d/ulp)
					}
				}
			}
			special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
			out := make([]float32, 3)
			f(out, special)
			if name == "GELU" || name == "GELUGrad" {
				// GELU(±Inf) is +Inf and NaN (-Inf·0) in float64 too; only NaN in matters.
				if !math.IsNaN(float64(out[0])) {
					t.Errorf("%s %s(NaN) = %v, want NaN", path, name, out[0])
				}
				continue
			}
			lim := map[string][2]float32{"Sigmoid": {1, 0}, "Tanh": {1, -1}}[name]
			if !math.IsNaN(float64(out[0])) || out[1] != lim[0] || math.Abs(float64(out[2]-lim[1])) > 1e-37 {
				t.Errorf("%s %s(NaN, +Inf, -Inf) = %v, want NaN, %g, %g", path, name, out, lim[0], lim[1])
			}
		}
	})
}

// TestActivationInPlace checks dst == src.
func TestActivationInPlace(t *testing.T) {
	activationPaths(t, func(t *testing.T, path string) {
		x := []float32{-3, -1, 0, 0.5, 2, 4, 6, 8, 10, 12, 0.1}
		want := make([]float32, len(x))
		Tanh(want, x)
		Tanh(x, x)
		for i := range x {
			if x[i] != want[i] {
				t.Fatalf("%s: in-place Tanh[%d] = %g, want %g", path, i, x[i], want[i])
			}
		}
	})
}

func BenchmarkSigmoid(b *testing.B) {
	src := make([]float32, 4096)
	for i := range src {
		src[i] = float32(i)/400 - 5
	}
	dst := make([]float32, len(src))
	for b.Loop() {
		Sigmoid(dst, src)
	}
}
