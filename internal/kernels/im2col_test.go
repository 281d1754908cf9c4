package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// testGeoms covers strides, padding, dilation, non-square kernels and outputs
// where some taps never touch the image.
func testGeoms() []ConvGeom {
	var gs []ConvGeom
	for _, p := range []struct{ c, h, w, kh, kw, sh, sw, ph, pw, dh, dw int }{
		{1, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1},
		{2, 5, 6, 3, 3, 1, 1, 0, 0, 1, 1},
		{3, 7, 6, 3, 2, 2, 2, 1, 1, 1, 1},
		{2, 8, 7, 3, 3, 1, 2, 2, 1, 2, 2},
		{1, 3, 3, 3, 3, 3, 3, 2, 2, 1, 1},
		{2, 2, 12, 2, 4, 1, 3, 3, 0, 1, 3},
		{1, 5, 5, 5, 5, 1, 1, 4, 4, 1, 1},
	} {
		g := ConvGeom{C: p.c, H: p.h, W: p.w, KH: p.kh, KW: p.kw, SH: p.sh, SW: p.sw, PH: p.ph, PW: p.pw, DH: p.dh, DW: p.dw}
		g.OH = OutSize(g.H, g.KH, g.SH, g.PH, g.DH)
		g.OW = OutSize(g.W, g.KW, g.SW, g.PW, g.DW)
		gs = append(gs, g)
	}
	return gs
}

func randSlice(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.Float64()*2 - 1)
	}
	return v
}

// im2colRef is the definition of Im2Col, one element at a time.
func im2colRef(g ConvGeom, img []float32) []float32 {
	col := make([]float32, g.ColRows()*g.ColCols())
	for c := 0; c < g.C; c++ {
		for i := 0; i < g.KH; i++ {
			for j := 0; j < g.KW; j++ {
				r := (c*g.KH+i)*g.KW + j
				for oy := 0; oy < g.OH; oy++ {
					for ox := 0; ox < g.OW; ox++ {
						iy := oy*g.SH - g.PH + i*g.DH
						ix := ox*g.SW - g.PW + j*g.DW
						var v float32
						if iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
							v = img[(c*g.H+iy)*g.W+ix]
						}
						col[r*g.ColCols()+oy*g.OW+ox] = v
					}
				}
			}
		}
	}
	return col
}

func TestOutSize(t *testing.T) {
	for _, c := range []struct{ in, k, s, p, d, want int }{
		{5, 3, 1, 0, 1, 3},
		{5, 3, 2, 1, 1, 3},
		{7, 3, 2, 0, 2, 2},
		{2, 3, 1, 0, 1, 0},
		{4, 2, 3, 0, 1, 1},
	} {
		if got := OutSize(c.in, c.k, c.s, c.p, c.d); got != c.want {
			t.Errorf("OutSize(%d, k=%d, s=%d, p=%d, d=%d) = %d, want %d", c.in, c.k, c.s, c.p, c.d, got, c.want)
		}
	}
}

func TestIm2ColMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, g := range testGeoms() {
		t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
			img := randSlice(rng, g.C*g.H*g.W)
			want := im2colRef(g, img)
			col := randSlice(rng, len(want)) // garbage must be overwritten
			Im2Col(g, img, col)
			for i := range want {
				if col[i] != want[i] {
					t.Fatalf("col[%d] = %v, want %v", i, col[i], want[i])
				}
			}
		})
	}
}

// TestCol2ImIsAdjoint checks <Im2Col(x), y> == <x, Col2Im(y)> and that
// Col2Im accumulates into its destination.
func TestCol2ImIsAdjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, g := range testGeoms() {
		t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
			x := randSlice(rng, g.C*g.H*g.W)
			y := randSlice(rng, g.ColRows()*g.ColCols())
			col := make([]float32, len(y))
			Im2Col(g, x, col)
			var lhs float64
			for i := range y {
				lhs += float64(col[i]) * float64(y[i])
			}
			base := randSlice(rng, len(x))
			img := append([]float32(nil), base...)
			Col2Im(g, y, img)
			var rhs float64
			for i := range x {
				rhs += float64(x[i]) * float64(img[i]-base[i])
			}
			if math.Abs(lhs-rhs) > 1e-4*math.Max(1, math.Abs(lhs)) {
				t.Fatalf("<im2col(x), y> = %v, <x, col2im(y)> = %v", lhs, rhs)
			}
			// Element by element against the reference scatter.
			want := append([]float32(nil), base...)
			for c := 0; c < g.C; c++ {
				for i := 0; i < g.KH; i++ {
					for j := 0; j < g.KW; j++ {
						r := (c*g.KH+i)*g.KW + j
						for oy := 0; oy < g.OH; oy++ {
							for ox := 0; ox < g.OW; ox++ {
								iy := oy*g.SH - g.PH + i*g.DH
								ix := ox*g.SW - g.PW + j*g.DW
								if iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
									want[(c*g.H+iy)*g.W+ix] += y[r*g.ColCols()+oy*g.OW+ox]
								}
							}
						}
					}
				}
			}
			for i := range want {
				if math.Abs(float64(img[i]-want[i])) > 1e-5 {
					t.Fatalf("img[%d] = %v, want %v", i, img[i], want[i])
				}
			}
		})
	}
}

func TestValidRange(t *testing.T) {
	for _, c := range []struct{ off, s, size, n, o0, o1 int }{
		{0, 1, 5, 5, 0, 5},
		{-2, 1, 5, 7, 2, 7},
		{-3, 2, 5, 4, 2, 4},
		{2, 3, 5, 4, 0, 1},
		{6, 1, 5, 3, 0, 0},
		{-9, 2, 5, 3, 3, 3},
	} {
		o0, o1 := validRange(c.off, c.s, c.size, c.n)
		if o0 != c.o0 || o1 != c.o1 {
			t.Errorf("validRange(off=%d, s=%d, size=%d, n=%d) = [%d, %d), want [%d, %d)", c.off, c.s, c.size, c.n, o0, o1, c.o0, c.o1)
		}
	}
}
