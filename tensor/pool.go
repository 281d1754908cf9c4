package tensor

import (
	"fmt"
	"math"
)

// Pool2DOptions configures pooling; Stride zero means Stride = Kernel.
//
// Output sizes follow PyTorch: with padding p, dilation d and stride s an
// axis of length in gives (in + 2p - d·(k-1) - 1)/s + 1 windows, rounded up
// instead of down when CeilMode is set, except that a last window starting
// beyond the input and its left padding is dropped. Padding may be at most
// half the kernel size.
type Pool2DOptions struct {
	Kernel   [2]int
	Stride   [2]int
	Padding  [2]int
	Dilation [2]int // max pooling only; zero means 1
	CeilMode bool
	// ExcludePad (average pooling only) divides by the number of real
	// elements in a window instead of PyTorch's default count_include_pad.
	ExcludePad bool
}

// poolGeom is the validated geometry of a pooling op on x [N, C, H, W].
type poolGeom struct {
	planes     int // N·C
	h, w       int
	kh, kw     int
	sh, sw     int
	ph, pw     int
	dh, dw     int
	oh, ow     int
	excludePad bool
}

// poolOutSize is PyTorch's pooling_output_shape.
func poolOutSize(in, k, s, p, d int, ceil bool) int {
	num := in + 2*p - d*(k-1) - 1
	if ceil {
		num += s - 1
	}
	out := floorDiv(num, s) + 1
	if ceil && (out-1)*s >= in+p {
		out--
	}
	return out
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// poolGeometry validates x and opt for the pooling op named op.
func poolGeometry(op string, x *Tensor, opt Pool2DOptions, isMax bool) poolGeom {
	name := "tensor." + op
	mustFloat(op, x)
	if len(x.shape) != 4 {
		panic(fmt.Sprintf("%s: input must be 4-D [N, C, H, W], got shape %v", name, x.shape))
	}
	if opt.Kernel[0] < 1 || opt.Kernel[1] < 1 {
		panic(fmt.Sprintf("%s: kernel %v must be positive (input %v)", name, opt.Kernel, x.shape))
	}
	if opt.Stride[0] < 0 || opt.Stride[1] < 0 || opt.Padding[0] < 0 || opt.Padding[1] < 0 ||
		opt.Dilation[0] < 0 || opt.Dilation[1] < 0 {
		panic(fmt.Sprintf("%s: negative stride %v, padding %v or dilation %v (input %v)",
			name, opt.Stride, opt.Padding, opt.Dilation, x.shape))
	}
	g := poolGeom{
		planes: x.shape[0] * x.shape[1],
		h:      x.shape[2], w: x.shape[3],
		kh: opt.Kernel[0], kw: opt.Kernel[1],
		sh: opt.Stride[0], sw: opt.Stride[1],
		ph: opt.Padding[0], pw: opt.Padding[1],
		dh: max1(opt.Dilation[0]), dw: max1(opt.Dilation[1]),
		excludePad: opt.ExcludePad,
	}
	if g.sh == 0 {
		g.sh = g.kh
	}
	if g.sw == 0 {
		g.sw = g.kw
	}
	if isMax && opt.ExcludePad {
		panic(fmt.Sprintf("%s: ExcludePad applies to average pooling only (input %v)", name, x.shape))
	}
	if !isMax && (g.dh != 1 || g.dw != 1) {
		panic(fmt.Sprintf("%s: dilation %v is not supported by average pooling (input %v)", name, opt.Dilation, x.shape))
	}
	if g.ph > g.kh/2 || g.pw > g.kw/2 {
		panic(fmt.Sprintf("%s: padding %v must be at most half the kernel %v (input %v)", name, opt.Padding, opt.Kernel, x.shape))
	}
	g.oh = poolOutSize(g.h, g.kh, g.sh, g.ph, g.dh, opt.CeilMode)
	g.ow = poolOutSize(g.w, g.kw, g.sw, g.pw, g.dw, opt.CeilMode)
	if g.oh < 1 || g.ow < 1 {
		panic(fmt.Sprintf("%s: kernel %v (dilation %v, padding %v) does not fit input %v: output would be %dx%d",
			name, opt.Kernel, opt.Dilation, opt.Padding, x.shape, g.oh, g.ow))
	}
	return g
}

func max1(v int) int {
	if v < 1 {
		return 1
	}
	return v
}

// MaxPool2D takes the maximum over windows of x [N, C, H, W], giving
// [N, C, OH, OW], as torch.nn.functional.max_pool2d: padding counts as -inf,
// and the gradient goes to the first maximal element of each window in
// row-major order. A NaN in a window wins over any number (the gradient then
// goes to the window's last NaN, as PyTorch's CPU kernel does).
func MaxPool2D(x *Tensor, opt Pool2DOptions) *Tensor {
	const op = "MaxPool2D"
	g := poolGeometry(op, x, opt, true)
	n, c := x.shape[0], x.shape[1]
	out := Zeros(n, c, g.oh, g.ow)
	// arg[i] is the flat index in x of the element output i took, or -1
	// for a window that holds no element.
	var arg []int
	if x.requiresGrad {
		arg = make([]int, len(out.data))
	}
	hw, ohw := g.h*g.w, g.oh*g.ow
	negInf := float32(math.Inf(-1))
	for p := 0; p < g.planes; p++ {
		plane := x.data[p*hw : (p+1)*hw]
		o := out.data[p*ohw : (p+1)*ohw]
		for oy := 0; oy < g.oh; oy++ {
			y0 := oy*g.sh - g.ph
			y1 := min(y0+(g.kh-1)*g.dh+1, g.h)
			for y0 < 0 {
				y0 += g.dh
			}
			for ox := 0; ox < g.ow; ox++ {
				x0 := ox*g.sw - g.pw
				x1 := min(x0+(g.kw-1)*g.dw+1, g.w)
				for x0 < 0 {
					x0 += g.dw
				}
				best, bi := negInf, -1
				if y0 < y1 && x0 < x1 {
					bi = y0*g.w + x0
				}
				for y := y0; y < y1; y += g.dh {
					row := plane[y*g.w : (y+1)*g.w]
					for xx := x0; xx < x1; xx += g.dw {
						if v := row[xx]; v > best || v != v {
							best, bi = v, y*g.w+xx
						}
					}
				}
				o[oy*g.ow+ox] = best
				if arg != nil {
					if bi >= 0 {
						bi += p * hw
					}
					arg[p*ohw+oy*g.ow+ox] = bi
				}
			}
		}
	}
	return record(op, out, func(gy *Tensor) []*Tensor {
		gx := Zeros(x.shape...)
		for i, v := range gy.data {
			if k := arg[i]; k >= 0 {
				gx.data[k] += v
			}
		}
		return []*Tensor{gx}
	}, x)
}

// AvgPool2D averages windows of x [N, C, H, W], giving [N, C, OH, OW], as
// torch.nn.functional.avg_pool2d. By default the divisor counts padding
// positions (count_include_pad=True, limited to the padded input when
// CeilMode makes a window overhang it); with ExcludePad it counts only the real
// elements in the window. Dilation must be unset or 1.
func AvgPool2D(x *Tensor, opt Pool2DOptions) *Tensor {
	const op = "AvgPool2D"
	g := poolGeometry(op, x, opt, false)
	n, c := x.shape[0], x.shape[1]
	out := Zeros(n, c, g.oh, g.ow)
	hw, ohw := g.h*g.w, g.oh*g.ow
	for p := 0; p < g.planes; p++ {
		plane := x.data[p*hw : (p+1)*hw]
		o := out.data[p*ohw : (p+1)*ohw]
		for oy := 0; oy < g.oh; oy++ {
			for ox := 0; ox < g.ow; ox++ {
				y0, y1, x0, x1, div := g.avgWindow(oy, ox)
				if div == 0 {
					continue
				}
				var s float32
				for y := y0; y < y1; y++ {
					for _, v := range plane[y*g.w+x0 : y*g.w+x1] {
						s += v
					}
				}
				o[oy*g.ow+ox] = s / float32(div)
			}
		}
	}
	return record(op, out, func(gy *Tensor) []*Tensor {
		gx := Zeros(x.shape...)
		for p := 0; p < g.planes; p++ {
			plane := gx.data[p*hw : (p+1)*hw]
			gs := gy.data[p*ohw : (p+1)*ohw]
			for oy := 0; oy < g.oh; oy++ {
				for ox := 0; ox < g.ow; ox++ {
					y0, y1, x0, x1, div := g.avgWindow(oy, ox)
					if div == 0 {
						continue
					}
					v := gs[oy*g.ow+ox] / float32(div)
					for y := y0; y < y1; y++ {
						row := plane[y*g.w+x0 : y*g.w+x1]
						for i := range row {
							row[i] += v
						}
					}
				}
			}
		}
		return []*Tensor{gx}
	}, x)
}

// avgWindow returns the input rows [y0, y1) and columns [x0, x1) that output
// (oy, ox) averages and its divisor (0 when the window holds no element), as
// PyTorch's avg_pool2d.
func (g *poolGeom) avgWindow(oy, ox int) (y0, y1, x0, x1, div int) {
	y0, x0 = oy*g.sh-g.ph, ox*g.sw-g.pw
	y1, x1 = min(y0+g.kh, g.h+g.ph), min(x0+g.kw, g.w+g.pw)
	poolSize := (y1 - y0) * (x1 - x0)
	y0, x0 = max(y0, 0), max(x0, 0)
	y1, x1 = min(y1, g.h), min(x1, g.w)
	if y0 >= y1 || x0 >= x1 {
		return y0, y1, x0, x1, 0
	}
	if g.excludePad {
		return y0, y1, x0, x1, (y1 - y0) * (x1 - x0)
	}
	return y0, y1, x0, x1, poolSize
}
