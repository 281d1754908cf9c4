package optim

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/tensor"
)

// ClipGradNorm rescales the gradients of params in place so that their
// total norm (of order normType, over all gradients as if concatenated; use
// 2 for the usual L2 norm, math.Inf(1) for the max norm) is at most maxNorm,
// and returns the total norm before clipping, as
// torch.nn.utils.clip_grad_norm_: every gradient is multiplied by
// min(1, maxNorm/(total+1e-6)). Parameters whose gradient is nil are
// skipped; with none, it returns 0. A NaN or infinite total norm propagates
// into the gradients, as in PyTorch. It panics unless normType > 0 and
// maxNorm >= 0.
func ClipGradNorm(params []*tensor.Tensor, maxNorm, normType float64) float64 {
	if !(normType > 0) {
		panic(fmt.Sprintf("optim.ClipGradNorm: normType must be > 0 or +Inf, got %v", normType))
	}
	if !(maxNorm >= 0) {
		panic(fmt.Sprintf("optim.ClipGradNorm: maxNorm must be >= 0, got %v", maxNorm))
	}
	var total float64
	found := false
	for _, p := range params {
		g := p.Grad()
		if g == nil {
			continue
		}
		found = true
		d := g.Data()
		switch {
		case math.IsInf(normType, 1):
			for _, v := range d {
				a := math.Abs(float64(v))
				if a > total || a != a {
					total = a
				}
				if total != total {
					break
				}
			}
		case normType == 2:
			for _, v := range d {
				total += float64(v) * float64(v)
			}
		case normType == 1:
			for _, v := range d {
				total += math.Abs(float64(v))
			}
		default:
			for _, v := range d {
				total += math.Pow(math.Abs(float64(v)), normType)
			}
		}
		if total != total {
			break
		}
	}
	if !found {
		return 0
	}
	switch {
	case math.IsInf(normType, 1) || normType == 1:
	case normType == 2:
		total = math.Sqrt(total)
	default:
		total = math.Pow(total, 1/normType)
	}
	coef := maxNorm / (total + 1e-6)
	if coef >= 1 {
		return total
	}
	c := float32(coef)
	for _, p := range params {
		if g := p.Grad(); g != nil {
			d := g.Data()
			for k := range d {
				d[k] *= c
			}
		}
	}
	return total
}

// ClipGradValue clamps every gradient element of params to [-clip, clip] in
// place (torch.nn.utils.clip_grad_value_); nil gradients are skipped and NaN
// elements stay NaN. It panics unless clip >= 0.
func ClipGradValue(params []*tensor.Tensor, clip float64) {
	if !(clip >= 0) {
		panic(fmt.Sprintf("optim.ClipGradValue: clip must be >= 0, got %v", clip))
	}
	c := float32(clip)
	for _, p := range params {
		g := p.Grad()
		if g == nil {
			continue
		}
		d := g.Data()
		for k, v := range d {
			if v > c {
				d[k] = c
			} else if v < -c {
				d[k] = -c
			}
		}
	}
}
