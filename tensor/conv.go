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
// gradient back with col2im. Samples are spread over the cores; the result
// is the same for any number of threads (see conv2D).
func Conv2D(x, w, b *Tensor, opt Conv2DOptions) *Tensor {
	return conv2D("Conv2D", x, w, b, opt, false, nil)
}

// convBlock is the number of samples whose weight and bias gradients the
// convolution's backward pass sums in one block.
const convBlock = 4

// convGeometry validates Conv2D's operands and options and returns the
// per-sample window geometry, the group count and the output channel count.
func convGeometry(name string, x, w, b *Tensor, opt Conv2DOptions) (kernels.ConvGeom, int, int) {
	op := name // only formatted when panicking: no allocation otherwise
	if len(x.shape) != 4 {
		panic(fmt.Sprintf("tensor.%s: input must be 4-D [N, Cin, H, W], got shape %v", op, x.shape))
	}
	if len(w.shape) != 4 {
		panic(fmt.Sprintf("tensor.%s: weight must be 4-D [Cout, Cin/groups, kH, kW], got shape %v (input %v)", op, w.shape, x.shape))
	}
	for i := 0; i < 2; i++ {
		if opt.Stride[i] < 0 || opt.Padding[i] < 0 || opt.Dilation[i] < 0 {
			panic(fmt.Sprintf("tensor.%s: negative stride %v, padding %v or dilation %v (input %v, weight %v)",
				op, opt.Stride, opt.Padding, opt.Dilation, x.shape, w.shape))
		}
	}
	if opt.Groups < 0 {
		panic(fmt.Sprintf("tensor.%s: negative groups %d (input %v, weight %v)", op, opt.Groups, x.shape, w.shape))
	}
	groups := max(opt.Groups, 1)
	stride := [2]int{max(opt.Stride[0], 1), max(opt.Stride[1], 1)}
	dil := [2]int{max(opt.Dilation[0], 1), max(opt.Dilation[1], 1)}
	cin, cout := x.shape[1], w.shape[0]
	if cin%groups != 0 || cout%groups != 0 {
		panic(fmt.Sprintf("tensor.%s: groups %d must divide input channels and output channels (input %v, weight %v)",
			op, groups, x.shape, w.shape))
	}
	if w.shape[1]*groups != cin {
		panic(fmt.Sprintf("tensor.%s: input %v has %d channels but weight %v with groups %d expects %d",
			op, x.shape, cin, w.shape, groups, w.shape[1]*groups))
	}
	if b != nil && (len(b.shape) != 1 || b.shape[0] != cout) {
		panic(fmt.Sprintf("tensor.%s: bias shape %v, want [%d] for weight %v", op, b.shape, cout, w.shape))
	}
	g := kernels.ConvGeom{
		C: cin, H: x.shape[2], W: x.shape[3],
		KH: w.shape[2], KW: w.shape[3],
		SH: stride[0], SW: stride[1],
		PH: opt.Padding[0], PW: opt.Padding[1],
		DH: dil[0], DW: dil[1],
	}
	if g.KH < 1 || g.KW < 1 {
		panic(fmt.Sprintf("tensor.%s: empty kernel in weight %v", op, w.shape))
	}
	g.OH = kernels.OutSize(g.H, g.KH, g.SH, g.PH, g.DH)
	g.OW = kernels.OutSize(g.W, g.KW, g.SW, g.PW, g.DW)
	if g.OH < 1 || g.OW < 1 {
		panic(fmt.Sprintf("tensor.%s: kernel %dx%d (dilation %v) does not fit input %v with padding %v (weight %v)",
			op, g.KH, g.KW, dil, x.shape, opt.Padding, w.shape))
	}
	return g, groups, cout
}
