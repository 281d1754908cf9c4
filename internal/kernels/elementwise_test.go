package kernels

import (
	"math"
	"testing"
)

func TestReLUAndGrad(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	src := []float32{-2, -0.5, negZero, 0, 0.25, 3, inf, -inf, nan, -nan, 1e-45, -1e-45}
	want := []float32{0, 0, 0, 0, 0.25, 3, inf, 0, 0, 0, 1e-45, 0}
	dst := make([]float32, len(src))
	ReLU(dst, src)
	for i := range want {
		if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
			t.Errorf("ReLU(%v) = %v, want %v", src[i], dst[i], want[i])
		}
	}
	g := make([]float32, len(src))
	for i := range g {
		g[i] = float32(i + 1)
	}
	ReLUGrad(dst, g, src)
	for i := range src {
		w := float32(0)
		if src[i] > 0 {
			w = g[i]
		}
		if dst[i] != w {
			t.Errorf("ReLUGrad at x=%v: %v, want %v", src[i], dst[i], w)
		}
	}
}

func TestAddRowBias(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6}
	AddRowBias(x, 2, 3, []float32{10, -1})
	want := []float32{11, 12, 13, 3, 4, 5}
	for i := range want {
		if x[i] != want[i] {
			t.Fatalf("AddRowBias: got %v, want %v", x, want)
		}
	}
}
