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
	name := op // only formatted when panicking: no allocation otherwise
	// The panics format a copy of x.shape, so that x does not escape.
	mustFloat(op, x)
	if len(x.shape) != 4 {
		panic(fmt.Sprintf("tensor.%s: input must be 4-D [N, C, H, W], got shape %v", name, cloneShape(x.shape)))
	}
	if opt.Kernel[0] < 1 || opt.Kernel[1] < 1 {
		panic(fmt.Sprintf("tensor.%s: kernel %v must be positive (input %v)", name, opt.Kernel, cloneShape(x.shape)))
	}
	if opt.Stride[0] < 0 || opt.Stride[1] < 0 || opt.Padding[0] < 0 || opt.Padding[1] < 0 ||
		opt.Dilation[0] < 0 || opt.Dilation[1] < 0 {
		panic(fmt.Sprintf("tensor.%s: negative stride %v, padding %v or dilation %v (input %v)",
			name, opt.Stride, opt.Padding, opt.Dilation, cloneShape(x.shape)))
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
		panic(fmt.Sprintf("tensor.%s: ExcludePad applies to average pooling only (input %v)", name, cloneShape(x.shape)))
	}
	if !isMax && (g.dh != 1 || g.dw != 1) {
		panic(fmt.Sprintf("tensor.%s: dilation %v is not supported by average pooling (input %v)", name, opt.Dilation, cloneShape(x.shape)))
	}
	if g.ph > g.kh/2 || g.pw > g.kw/2 {
		panic(fmt.Sprintf("tensor.%s: padding %v must be at most half the kernel %v (input %v)", name, opt.Padding, opt.Kernel, cloneShape(x.shape)))
	}
	g.oh = poolOutSize(g.h, g.kh, g.sh, g.ph, g.dh, opt.CeilMode)
	g.ow = poolOutSize(g.w, g.kw, g.sw, g.pw, g.dw, opt.CeilMode)
	if g.oh < 1 || g.ow < 1 {
		panic(fmt.Sprintf("tensor.%s: kernel %v (dilation %v, padding %v) does not fit input %v: output would be %dx%d",
			name, opt.Kernel, opt.Dilation, opt.Padding, cloneShape(x.shape), g.oh, g.ow))
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
	if g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 && g.sh == g.kh && g.sw == g.kw && g.kh*g.kw <= 256 &&
		g.oh*g.kh <= g.h && g.ow*g.kw <= g.w {
		return maxPoolTiled(x, g)
	}
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

// maxPoolTiled is MaxPool2D for windows that tile the input without overlap,
// padding or dilation (stride = kernel), the common case. It records each
// output's winner as its offset in the window (one byte), and works plane by
// plane on all cores; every plane's outputs and gradients belong to one
// chunk, so the result does not depend on the thread count.
func maxPoolTiled(x *Tensor, g poolGeom) *Tensor {
	const op = "MaxPool2D"
	n, c := x.shape[0], x.shape[1]
	out := newOut([]int{n, c, g.oh, g.ow})
	var arg []uint8
	if x.requiresGrad && IsGradEnabled() {
		arg = make([]uint8, len(out.data))
	}
	hw, ohw := g.h*g.w, g.oh*g.ow
	parallelForWork(g.planes, len(x.data), func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			plane := x.data[p*hw : (p+1)*hw]
			o := out.data[p*ohw : (p+1)*ohw]
			var a []uint8
			if arg != nil {
				a = arg[p*ohw : (p+1)*ohw]
			}
			if g.kh == 2 && g.kw == 2 && maxPool2x2(plane, o, a, g.w, g.oh, g.ow) {
				continue
			}
			maxPoolTiledPlane(plane, o, a, &g)
		}
	})
	return record(op, out, func(gy *Tensor) []*Tensor {
		gx := newGrad(false, x.shape...)
		parallelForWork(g.planes, len(x.data), func(p0, p1 int) {
			for p := p0; p < p1; p++ {
				gp := gx.data[p*hw : (p+1)*hw]
				clear(gp)
				gs := gy.data[p*ohw : (p+1)*ohw]
				a := arg[p*ohw : (p+1)*ohw]
				for oy := 0; oy < g.oh; oy++ {
					for ox := 0; ox < g.ow; ox++ {
						i := oy*g.ow + ox
						k := int(a[i])
						ky, kx := k/g.kw, k%g.kw
						gp[(oy*g.kh+ky)*g.w+ox*g.kw+kx] = gs[i]
					}
				}
			}
		})
		return []*Tensor{gx}
	}, x)
}

// maxPoolTiledPlane pools one plane over non-overlapping kh×kw windows,
// recording each winner's offset in its window in a when a is not nil. Ties
// go to the first maximum in row-major order; a NaN wins, the last NaN most.
func maxPoolTiledPlane(plane, o []float32, a []uint8, g *poolGeom) {
	for oy := 0; oy < g.oh; oy++ {
		for ox := 0; ox < g.ow; ox++ {
			base := oy*g.kh*g.w + ox*g.kw
			best, bi := plane[base], 0
			k := 0
			for y := 0; y < g.kh; y++ {
				row := plane[base+y*g.w : base+y*g.w+g.kw]
				for _, v := range row {
					if v > best || v != v {
						best, bi = v, k
					}
					k++
				}
			}
			o[oy*g.ow+ox] = best
			if a != nil {
				a[oy*g.ow+ox] = uint8(bi)
			}
		}
	}
}

// orderKey maps a float32 to an int64 that orders as the float does (with
// -0 equal to +0), and reports 1 when the value is a NaN.
func orderKey(v float32) (int64, uint32) {
	b := math.Float32bits(v)
	mag := b & 0x7fffffff
	m := int64(int32(b) >> 31)
	return (int64(mag) ^ m) - m, (0x7f800000 - mag) >> 31
}

// maxPool2x2 pools one plane of width w over 2×2 windows with stride 2 into
// o (oh×ow), recording each winner's offset (0..3, row-major; ties go to the
// first) in a when a is not nil. It works without data-dependent branches,
// which mispredict constantly on activations. It returns false, leaving the
// plane to maxPoolTiledPlane, when the plane holds a NaN.
func maxPool2x2(plane, o []float32, a []uint8, w, oh, ow int) bool {
	var nan uint32
	for oy := 0; oy < oh; oy++ {
		r0 := plane[2*oy*w : 2*oy*w+2*ow]
		r1 := plane[(2*oy+1)*w : (2*oy+1)*w+2*ow]
		orow := o[oy*ow : (oy+1)*ow]
		for ox := range orow {
			// Keys with 3 − offset in the low bits: the integer maximum is
			// the largest value and, among equal ones, the first.
			k0, n0 := orderKey(r0[2*ox])
			k1, n1 := orderKey(r0[2*ox+1])
			k2, n2 := orderKey(r1[2*ox])
			k3, n3 := orderKey(r1[2*ox+1])
			nan |= n0 | n1 | n2 | n3
			t := max(max(k0<<2|3, k1<<2|2), max(k2<<2|1, k3<<2))
			ti := 3 - int(t&3)
			orow[ox] = [4]float32{r0[2*ox], r0[2*ox+1], r1[2*ox], r1[2*ox+1]}[ti]
			if a != nil {
				a[oy*ow+ox] = uint8(ti)
			}
		}
	}
	return nan == 0
}
