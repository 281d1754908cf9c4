package tensor

import (
	"fmt"

	"github.com/deepgo/deepgo/internal/kernels"
)

// Conv2DOptions configures Conv2D; zero values mean stride 1, padding 0,
// dilation 1, groups 1.
type Conv2DOptions struct {
	Stride   [2]int
	Padding  [2]int
	Dilation [2]int
	Groups   int
}

// Conv2D convolves x [N, Cin, H, W] with w [Cout, Cin/groups, kH, kW] and adds
// bias b [Cout] (nil for none), as torch.nn.functional.conv2d. The result has
// shape [N, Cout, OH, OW] with OH = (H + 2·padH - dilH·(kH-1) - 1)/strideH + 1
// (and likewise OW). It panics when the shapes or options do not fit.
//
// Each sample is unfolded with im2col into a (Cin·kH·kW)×(OH·OW) matrix and
// multiplied by the weight matrix per group with kernels.Sgemm; the backward
// pass reuses the same unfolding for the weight gradient and folds the input
// gradient back with col2im.
func Conv2D(x, w, b *Tensor, opt Conv2DOptions) *Tensor {
	const op = "Conv2D"
	mustFloat(op, x, w)
	if b != nil {
		mustFloat(op, b)
	}
	geo, groups, cout := convGeometry(x, w, b, opt)
	n := x.shape[0]
	cin := geo.C
	cinG, coutG := cin/groups, cout/groups
	kk := geo.KH * geo.KW
	rowsG := cinG * kk    // rows of the column matrix per group
	ncol := geo.ColCols() // OH·OW
	inSize := cin * geo.H * geo.W
	outSize := cout * ncol

	out := Zeros(n, cout, geo.OH, geo.OW)
	col := make([]float32, geo.ColRows()*ncol)
	for s := 0; s < n; s++ {
		kernels.Im2Col(geo, x.data[s*inSize:(s+1)*inSize], col)
		o := out.data[s*outSize : (s+1)*outSize]
		for g := 0; g < groups; g++ {
			// out[g] (coutG×ncol) = w[g] (coutG×rowsG) · col[g] (rowsG×ncol)
			kernels.Sgemm(false, false, coutG, ncol, rowsG, 1,
				w.data[g*coutG*rowsG:], rowsG,
				col[g*rowsG*ncol:], ncol,
				0, o[g*coutG*ncol:], ncol)
		}
		if b != nil {
			for c := 0; c < cout; c++ {
				bv := b.data[c]
				row := o[c*ncol : (c+1)*ncol]
				for i := range row {
					row[i] += bv
				}
			}
		}
	}

	return record(op, out, func(gy *Tensor) []*Tensor {
		var gx, gw, gb *Tensor
		if b.NeedsGrad() {
			gb = Zeros(cout)
			for s := 0; s < n; s++ {
				gs := gy.data[s*outSize : (s+1)*outSize]
				for c := 0; c < cout; c++ {
					var acc float32
					for _, v := range gs[c*ncol : (c+1)*ncol] {
						acc += v
					}
					gb.data[c] += acc
				}
			}
		}
		needX, needW := x.NeedsGrad(), w.NeedsGrad()
		if !needX && !needW {
			return []*Tensor{nil, nil, gb}
		}
		if needX {
			gx = Zeros(x.shape...)
		}
		if needW {
			gw = Zeros(w.shape...)
		}
		col := make([]float32, geo.ColRows()*ncol)
		for s := 0; s < n; s++ {
			gs := gy.data[s*outSize : (s+1)*outSize]
			if needW {
				kernels.Im2Col(geo, x.data[s*inSize:(s+1)*inSize], col)
				for g := 0; g < groups; g++ {
					// gw[g] (coutG×rowsG) += gy[g] (coutG×ncol) · col[g]ᵀ (ncol×rowsG)
					kernels.Sgemm(false, true, coutG, rowsG, ncol, 1,
						gs[g*coutG*ncol:], ncol,
						col[g*rowsG*ncol:], ncol,
						1, gw.data[g*coutG*rowsG:], rowsG)
				}
			}
			if needX {
				for g := 0; g < groups; g++ {
					// dcol[g] (rowsG×ncol) = w[g]ᵀ (rowsG×coutG) · gy[g] (coutG×ncol)
					kernels.Sgemm(true, false, rowsG, ncol, coutG, 1,
						w.data[g*coutG*rowsG:], rowsG,
						gs[g*coutG*ncol:], ncol,
						0, col[g*rowsG*ncol:], ncol)
				}
				kernels.Col2Im(geo, col, gx.data[s*inSize:(s+1)*inSize])
			}
		}
		return []*Tensor{gx, gw, gb}
	}, x, w, b)
}

// convGeometry validates Conv2D's operands and options and returns the
// per-sample window geometry, the group count and the output channel count.
func convGeometry(x, w, b *Tensor, opt Conv2DOptions) (kernels.ConvGeom, int, int) {
	const op = "tensor.Conv2D"
	if len(x.shape) != 4 {
		panic(fmt.Sprintf("%s: input must be 4-D [N, Cin, H, W], got shape %v", op, x.shape))
	}
	if len(w.shape) != 4 {
		panic(fmt.Sprintf("%s: weight must be 4-D [Cout, Cin/groups, kH, kW], got shape %v (input %v)", op, w.shape, x.shape))
	}
	for i := 0; i < 2; i++ {
		if opt.Stride[i] < 0 || opt.Padding[i] < 0 || opt.Dilation[i] < 0 {
			panic(fmt.Sprintf("%s: negative stride %v, padding %v or dilation %v (input %v, weight %v)",
				op, opt.Stride, opt.Padding, opt.Dilation, x.shape, w.shape))
		}
	}
	if opt.Groups < 0 {
		panic(fmt.Sprintf("%s: negative groups %d (input %v, weight %v)", op, opt.Groups, x.shape, w.shape))
	}
	groups := max(opt.Groups, 1)
	stride := [2]int{max(opt.Stride[0], 1), max(opt.Stride[1], 1)}
	dil := [2]int{max(opt.Dilation[0], 1), max(opt.Dilation[1], 1)}
	cin, cout := x.shape[1], w.shape[0]
	if cin%groups != 0 || cout%groups != 0 {
		panic(fmt.Sprintf("%s: groups %d must divide input channels and output channels (input %v, weight %v)",
			op, groups, x.shape, w.shape))
	}
	if w.shape[1]*groups != cin {
		panic(fmt.Sprintf("%s: input %v has %d channels but weight %v with groups %d expects %d",
			op, x.shape, cin, w.shape, groups, w.shape[1]*groups))
	}
	if b != nil && (len(b.shape) != 1 || b.shape[0] != cout) {
		panic(fmt.Sprintf("%s: bias shape %v, want [%d] for weight %v", op, b.shape, cout, w.shape))
	}
	g := kernels.ConvGeom{
		C: cin, H: x.shape[2], W: x.shape[3],
		KH: w.shape[2], KW: w.shape[3],
		SH: stride[0], SW: stride[1],
		PH: opt.Padding[0], PW: opt.Padding[1],
		DH: dil[0], DW: dil[1],
	}
	if g.KH < 1 || g.KW < 1 {
		panic(fmt.Sprintf("%s: empty kernel in weight %v", op, w.shape))
	}
	g.OH = kernels.OutSize(g.H, g.KH, g.SH, g.PH, g.DH)
	g.OW = kernels.OutSize(g.W, g.KW, g.SW, g.PW, g.DW)
	if g.OH < 1 || g.OW < 1 {
		panic(fmt.Sprintf("%s: kernel %dx%d (dilation %v) does not fit input %v with padding %v (weight %v)",
			op, g.KH, g.KW, dil, x.shape, opt.Padding, w.shape))
	}
	return g, groups, cout
}
