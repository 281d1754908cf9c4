package tensor

import (
	"fmt"
	"math"
)

// LayerNorm normalises every run of the last d elements of x (d is the
// product of the normalised dimensions): (x − mean) / sqrt(var + eps) with
// the biased variance, then times w and plus b where they are given (d
// elements each; nil for none), as torch.nn.functional.layer_norm. It is one
// op: the row statistics are taken in float64, and the backward pass uses
// the closed form (dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = g·w).
func LayerNorm(x, w, b *Tensor, d int, eps float32) *Tensor {
	mustFloat("LayerNorm", x)
	n := len(x.data)
	if d <= 0 || n%d != 0 {
		panic(fmt.Sprintf("tensor.LayerNorm: %d normalised elements do not divide input shape %v", d, x.shape))
	}
	for _, p := range []*Tensor{w, b} {
		if p == nil {
			continue
		}
		mustFloat("LayerNorm", p)
		if len(p.data) != d {
			panic(fmt.Sprintf("tensor.LayerNorm: weight or bias shape %v does not hold the %d normalised elements of input shape %v", p.shape, d, x.shape))
		}
	}
	rows := n / d
	out := newOut(x.shape)
	grad := shouldRecord([]*Tensor{x, w, b})
	var xhat, rstd []float32
	if grad {
		xhat, rstd = make([]float32, n), make([]float32, rows)
	}
	for r := range rows {
		row := x.data[r*d : (r+1)*d]
		var s float64
		for _, v := range row {
			s += float64(v)
		}
		mean := s / float64(d)
		var q float64
		for _, v := range row {
			dv := float64(v) - mean
			q += dv * dv
		}
		rs := 1 / math.Sqrt(q/float64(d)+float64(eps))
		o := out.data[r*d : (r+1)*d]
		for i, v := range row {
			h := float32((float64(v) - mean) * rs)
			if grad {
				xhat[r*d+i] = h
			}
			if w != nil {
				h *= w.data[i]
			}
			if b != nil {
				h += b.data[i]
			}
			o[i] = h
		}
		if grad {
			rstd[r] = float32(rs)
		}
	}
	if !grad {
		return out
	}
	return record("LayerNorm", out, func(g *Tensor) []*Tensor {
		var gx, gw, gb *Tensor
		if w.NeedsGrad() {
			gw = Zeros(w.shape...)
			for r := range rows {
				gr, xh := g.data[r*d:(r+1)*d], xhat[r*d:(r+1)*d]
				for i, v := range gr {
					gw.data[i] += v * xh[i]
				}
			}
		}
		if b.NeedsGrad() {
			gb = Zeros(b.shape...)
			for r := range rows {
				for i, v := range g.data[r*d : (r+1)*d] {
					gb.data[i] += v
				}
			}
		}
		if x.NeedsGrad() {
			gx = Zeros(x.shape...)
			for r := range rows {
				gr, xh := g.data[r*d:(r+1)*d], xhat[r*d:(r+1)*d]
				var s1, s2 float64
				for i, v := range gr {
					if w != nil {
						v *= w.data[i]
					}
					s1 += float64(v)
					s2 += float64(v) * float64(xh[i])
				}
				m1, m2 := float32(s1/float64(d)), float32(s2/float64(d))
				rs := rstd[r]
				dst := gx.data[r*d : (r+1)*d]
				for i, v := range gr {
					if w != nil {
						v *= w.data[i]
					}
					dst[i] = rs * (v - m1 - xh[i]*m2)
				}
			}
		}
		return []*Tensor{gx, gw, gb}
	}, x, w, b)
}
