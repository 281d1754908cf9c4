package tensor

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/internal/kernels"
)

// Conv2DReLU is ReLU(Conv2D(x, w, b, opt)) computed in one pass: each
// sample's convolution output is rectified while it is still in cache, and
// the backward pass applies ReLU's mask the same way. Values and gradients
// equal those of the two ops in sequence.
func Conv2DReLU(x, w, b *Tensor, opt Conv2DOptions) *Tensor {
	return conv2D("Conv2DReLU", x, w, b, opt, true, nil)
}

// Conv2DReLUMaxPool is MaxPool2D(ReLU(Conv2D(x, w, b, conv)), pool) computed
// sample by sample without storing the full-size convolution output, which
// makes it much faster than the three ops for the usual convolutional
// block. Values and gradients equal those of the three ops in sequence. The
// fused path covers pooling windows that tile the input (stride equal to
// the kernel, no padding or dilation, kernel at most 16×16); other pooling
// options run the ops in sequence.
func Conv2DReLUMaxPool(x, w, b *Tensor, conv Conv2DOptions, pool Pool2DOptions) *Tensor {
	const op = "Conv2DReLUMaxPool"
	mustFloat(op, x, w)
	geo, _, cout := convGeometry(op, x, w, b, conv)
	cshape := [4]int{x.shape[0], cout, geo.OH, geo.OW}
	probe := Tensor{shape: cshape[:]} // the convolution's output, for poolGeometry
	g := poolGeometry(op, &probe, pool, true)
	if !g.tiled() {
		return MaxPool2D(Conv2DReLU(x, w, b, conv), pool)
	}
	return conv2D(op, x, w, b, conv, true, &g)
}

// tiled reports whether the pooling windows tile the input without
// overlap, padding, dilation or overhang, with at most 256 elements each.
func (g *poolGeom) tiled() bool {
	return g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 && g.sh == g.kh && g.sw == g.kw &&
		g.kh*g.kw <= 256 && g.oh*g.kh <= g.h && g.ow*g.kw <= g.w
}

// conv2D is the convolution behind Conv2D, Conv2DReLU and
// Conv2DReLUMaxPool: per sample, im2col and one Sgemm per group, then the
// bias, optionally ReLU and optionally a tiled max pool (pool != nil), all
// while the sample's output is in cache. Samples are spread over the cores;
// every output belongs to one sample and every gradient sum over samples
// is taken in fixed blocks of convBlock samples added in order, so results
// do not depend on the number of threads.
func conv2D(op string, x, w, b *Tensor, opt Conv2DOptions, relu bool, pool *poolGeom) *Tensor {
	mustFloat(op, x, w)
	if b != nil {
		mustFloat(op, b)
	}
	geo, groups, cout := convGeometry(op, x, w, b, opt)
	a := arenaOf(x)
	s := newConvState(a)
	s.x, s.w, s.b = x, w, b
	s.geo, s.groups, s.cout, s.relu = geo, groups, cout, relu
	s.n = x.shape[0]
	s.cinG, s.coutG = geo.C/groups, cout/groups
	s.rowsG = s.cinG * geo.KH * geo.KW // rows of the column matrix per group
	s.ncol = geo.ColCols()             // OH·OW
	s.inSize = geo.C * geo.H * geo.W
	s.convSize = cout * s.ncol
	s.colLen = geo.ColRows() * s.ncol
	oshape := [4]int{s.n, cout, geo.OH, geo.OW}
	s.pooledSize = 0
	s.hasPool = pool != nil
	if pool != nil {
		s.pool = *pool
		oshape = [4]int{s.n, cout, pool.oh, pool.ow}
		s.pooledSize = pool.oh * pool.ow
	}
	s.outSize = cout * oshape[2] * oshape[3]
	// A 1×1 window with stride 1 and no padding reads the image as it is.
	s.direct = geo.KH == 1 && geo.KW == 1 && geo.SH == 1 && geo.SW == 1 && geo.PH == 0 && geo.PW == 0
	s.work = s.n * (s.colLen + s.convSize) * max(1, min(s.rowsG, 16))

	out := newOutIn(a, oshape[:])
	s.out = out
	s.arg = s.arg[:0] // pooling winners, for the backward pass
	if pool != nil && IsGradEnabled() && (x.requiresGrad || w.requiresGrad || b.NeedsGrad()) {
		if cap(s.arg) < len(out.data) {
			s.arg = make([]uint8, len(out.data))
		}
		s.arg = s.arg[:len(out.data)]
	}
	parallelForWork(s.n, s.work, s.fwd)
	out = recordFn(op, out, convBackward, s, false, x, w, b)
	if out.ctx == nil && a != nil {
		s.x, s.w, s.b, s.out = nil, nil, nil, nil // nothing left for backward
	}
	return out
}

// convState is a convolution's geometry and saved operands, shared by its
// forward chunks and kept in the node for its backward rule. The chunk
// functions are bound to the state once, so a state that comes back from
// a step arena runs without allocating.
type convState struct {
	x, w, b, out  *Tensor
	geo           kernels.ConvGeom
	pool          poolGeom
	hasPool, relu bool
	direct        bool
	groups, cout  int
	n, cinG       int
	coutG, rowsG  int
	ncol, inSize  int
	convSize      int
	colLen        int
	outSize       int
	pooledSize    int
	work          int
	arg           []uint8

	// The backward pass's working state, set while it runs.
	gy, gx              *Tensor
	pw, pb              []float32
	needX, needW, needB bool
	wLen                int

	fwd, bwd func(lo, hi int) // s.forward and s.backward, bound once
}

// newConvState returns a convolution state: from arena a (reused after
// its Reset) or new.
func newConvState(a *Arena) *convState {
	var s *convState
	if a != nil {
		if a.convN == len(a.convs) {
			a.convs = append(a.convs, new(convState))
		}
		s = a.convs[a.convN]
		a.convN++
	} else {
		s = new(convState)
	}
	if s.fwd == nil {
		s.fwd, s.bwd = s.forward, s.backward
	}
	return s
}

// release drops the state's references when its arena is reset.
func (s *convState) release() {
	s.x, s.w, s.b, s.out, s.gy, s.gx = nil, nil, nil, nil, nil, nil
}

// sampleCol returns sample s's column matrix: im2col into col, or the
// image itself for a direct (1×1) convolution.
func (s *convState) sampleCol(i int, col []float32) []float32 {
	img := s.x.data[i*s.inSize : (i+1)*s.inSize]
	if s.direct {
		return img
	}
	kernels.Im2Col(s.geo, img, col)
	return col
}

// colScratch returns a buffer for one column matrix (nil when direct).
func (s *convState) colScratch() []float32 {
	if s.direct {
		return nil
	}
	return getBuf(s.colLen)
}

// forward computes the outputs of samples [s0, s1).
func (s *convState) forward(s0, s1 int) {
	col := s.colScratch()
	var buf []float32
	pool := &s.pool
	if s.hasPool {
		buf = getBuf(s.convSize)
	}
	cout, ncol, outSize, pooledSize := s.cout, s.ncol, s.outSize, s.pooledSize
	coutG, rowsG := s.coutG, s.rowsG
	w, b, out, arg := s.w, s.b, s.out, s.arg
	for i := s0; i < s1; i++ {
		c := s.sampleCol(i, col)
		o := out.data[i*outSize : (i+1)*outSize]
		if s.hasPool {
			o = buf
		}
		for g := 0; g < s.groups; g++ {
			// out[g] (coutG×ncol) = w[g] (coutG×rowsG) · col[g] (rowsG×ncol)
			gemm(false, false, coutG, ncol, rowsG, w.data[g*coutG*rowsG:], rowsG,
				c[g*rowsG*ncol:], ncol, 0, o[g*coutG*ncol:], ncol)
		}
		if rowsG == 0 {
			clear(o)
		}
		if s.hasPool && pool.kh == 2 && pool.kw == 2 {
			// Bias, ReLU and pooling in one sweep over the plane.
			po := out.data[i*outSize : (i+1)*outSize]
			for ch := 0; ch < cout; ch++ {
				var bv float32
				if b != nil {
					bv = b.data[ch]
				}
				var a []uint8
				if len(arg) > 0 {
					a = arg[i*outSize+ch*pooledSize : i*outSize+(ch+1)*pooledSize]
				}
				maxPoolBiasReLU2x2(o[ch*ncol:(ch+1)*ncol], po[ch*pooledSize:(ch+1)*pooledSize], a, bv, pool.w, pool.oh, pool.ow)
			}
			continue
		}
		if b != nil {
			kernels.AddRowBias(o, cout, ncol, b.data)
		}
		if s.relu {
			kernels.ReLU(o, o)
		}
		if s.hasPool {
			po := out.data[i*outSize : (i+1)*outSize]
			for ch := 0; ch < cout; ch++ {
				plane := o[ch*ncol : (ch+1)*ncol]
				pp := po[ch*pooledSize : (ch+1)*pooledSize]
				var a []uint8
				if len(arg) > 0 {
					a = arg[i*outSize+ch*pooledSize : i*outSize+(ch+1)*pooledSize]
				}
				if pool.kh == 2 && pool.kw == 2 && maxPool2x2(plane, pp, a, pool.w, pool.oh, pool.ow) {
					continue
				}
				maxPoolTiledPlane(plane, pp, a, pool)
			}
		}
	}
	putBuf(col)
	putBuf(buf)
}

// convBackward is the rule of conv2D.
func convBackward(out, gy *Tensor) []*Tensor {
	s := out.ctx.aux.(*convState)
	x, w, b := s.x, s.w, s.b
	var gx, gw, gb *Tensor
	s.needX, s.needW, s.needB = x.NeedsGrad(), w.NeedsGrad(), b.NeedsGrad()
	s.wLen = len(w.data)
	nblk := (s.n + convBlock - 1) / convBlock
	if s.needX {
		gx = newGrad(true, x.shape...)
	}
	// Sums over samples (weight and bias gradients) go into one partial
	// sum per block of samples, added up in block order below.
	// Parameters' gradients go straight into their Grad() when they
	// have one (gradSink).
	var wSink, bSink *Tensor
	s.pw, s.pb = nil, nil
	if s.needW {
		if wSink = gradSink(w); wSink == nil {
			gw = newGrad(false, w.shape...)
		}
		s.pw = getZeroBuf(nblk * s.wLen)
	}
	if s.needB {
		if bSink = gradSink(b); bSink == nil {
			gb = newGrad(false, s.cout)
		}
		s.pb = getZeroBuf(nblk * s.cout)
	}
	s.gy, s.gx = gy, gx
	parallelForWork(nblk, s.work, s.bwd)
	s.gy, s.gx = nil, nil
	if wSink != nil {
		sumBlocks(wSink, s.pw, nblk, true)
	} else {
		sumBlocks(gw, s.pw, nblk, false)
	}
	if bSink != nil {
		sumBlocks(bSink, s.pb, nblk, true)
	} else {
		sumBlocks(gb, s.pb, nblk, false)
	}
	s.pw, s.pb = nil, nil
	gin := &out.ctx.gin
	gin[0], gin[1], gin[2] = gx, gw, gb
	return gin[:3]
}

// backward computes the gradient contributions of sample blocks [k0, k1).
func (s *convState) backward(k0, k1 int) {
	var col, dcol, dense []float32
	if s.needW {
		col = s.colScratch()
	}
	if s.needX {
		dcol = getBuf(s.colLen)
	}
	if s.relu || s.hasPool {
		dense = getBuf(s.convSize)
	}
	cout, ncol, outSize, inSize := s.cout, s.ncol, s.outSize, s.inSize
	coutG, rowsG, wLen := s.coutG, s.rowsG, s.wLen
	w, gy, gx, out := s.w, s.gy, s.gx, s.out
	for k := k0; k < k1; k++ {
		for i := k * convBlock; i < min(s.n, (k+1)*convBlock); i++ {
			// d is the gradient of the sample's convolution output.
			d := gy.data[i*outSize : (i+1)*outSize]
			o := out.data[i*outSize : (i+1)*outSize]
			var bp []float32
			if s.needB {
				bp = s.pb[k*cout : (k+1)*cout]
			}
			switch {
			case s.hasPool:
				if poolGradDense(dense, d, o, s.arg[i*outSize:(i+1)*outSize], &s.pool, cout, s.relu, bp) {
					bp = nil // the bias sums are done
				}
				d = dense
			case s.relu:
				kernels.ReLUGrad(dense, d, o)
				d = dense
			}
			if s.needB && bp != nil {
				for ch := range bp {
					var acc float32
					for _, v := range d[ch*ncol : (ch+1)*ncol] {
						acc += v
					}
					bp[ch] += acc
				}
			}
			if s.needW {
				c := s.sampleCol(i, col)
				wp := s.pw[k*wLen : (k+1)*wLen]
				for g := 0; g < s.groups; g++ {
					// gw[g] (coutG×rowsG) += d[g] (coutG×ncol) · col[g]ᵀ (ncol×rowsG)
					gemm(false, true, coutG, rowsG, ncol, d[g*coutG*ncol:], ncol,
						c[g*rowsG*ncol:], ncol, 1, wp[g*coutG*rowsG:], rowsG)
				}
			}
			if s.needX {
				for g := 0; g < s.groups; g++ {
					// dcol[g] (rowsG×ncol) = w[g]ᵀ (rowsG×coutG) · d[g] (coutG×ncol)
					gemm(true, false, rowsG, ncol, coutG, w.data[g*coutG*rowsG:], rowsG,
						d[g*coutG*ncol:], ncol, 0, dcol[g*rowsG*ncol:], ncol)
				}
				if coutG == 0 {
					clear(dcol)
				}
				kernels.Col2Im(s.geo, dcol, gx.data[i*inSize:(i+1)*inSize])
			}
		}
	}
	putBuf(col)
	putBuf(dcol)
	putBuf(dense)
}

// sumBlocks sets dst to the sum of the nblk partial sums in partial, in
// order (adds that sum to dst when add is set), and recycles partial. It
// does nothing when dst is nil.
func sumBlocks(dst *Tensor, partial []float32, nblk int, add bool) {
	if dst == nil {
		return
	}
	whole := partial
	m := len(dst.data)
	d := dst.data
	if !add {
		copy(d, partial[:m])
		partial = partial[m:]
		nblk--
	}
	for k := 0; k < nblk; k++ {
		for i, v := range partial[k*m : (k+1)*m] {
			d[i] += v
		}
	}
	putBuf(whole)
}

// poolGradDense spreads the gradient gp of one sample's pooled output
// (cout planes) back over the full-size planes in dense, through the
// recorded winners arg. With relu set, a winner whose pooled value out is
// not positive gets no gradient (ReLU's mask: the pooled value is the
// rectified value at the winner). On the 2×2 path it also adds each plane's
// gradient sum to bsum (when bsum is not nil) and reports true.
func poolGradDense(dense, gp, out []float32, arg []uint8, g *poolGeom, cout int, relu bool, bsum []float32) bool {
	hw, ohw := g.h*g.w, g.oh*g.ow
	if len(arg) < cout*ohw || len(gp) < cout*ohw || len(dense) < cout*hw {
		panic(fmt.Sprintf("tensor.Conv2DReLUMaxPool: internal size mismatch (%d planes of %dx%d)", cout, g.h, g.w))
	}
	if relu && g.kh == 2 && g.kw == 2 && g.h == 2*g.oh && g.w == 2*g.ow {
		for ch := 0; ch < cout; ch++ {
			s := poolReLUGrad2x2(dense[ch*hw:(ch+1)*hw], gp[ch*ohw:(ch+1)*ohw], out[ch*ohw:(ch+1)*ohw], arg[ch*ohw:(ch+1)*ohw], g.w, g.oh, g.ow)
			if bsum != nil {
				bsum[ch] += s
			}
		}
		return true
	}
	clear(dense)
	for ch := 0; ch < cout; ch++ {
		dp := dense[ch*hw : (ch+1)*hw]
		for oy := 0; oy < g.oh; oy++ {
			for ox := 0; ox < g.ow; ox++ {
				i := ch*ohw + oy*g.ow + ox
				v := gp[i]
				if relu && !(out[i] > 0) {
					continue
				}
				k := int(arg[i])
				ky, kx := k/g.kw, k%g.kw
				dp[(oy*g.kh+ky)*g.w+ox*g.kw+kx] = v
			}
		}
	}
	return false
}

// maxPoolBiasReLU2x2 pools ReLU(plane + bias) over 2×2 windows with stride
// 2 into o (oh×ow) and records each winner's offset (0..3, row-major, ties
// to the first) in a when a is not nil. ReLU turns NaN into 0. Each output
// row is one kernel call (8 outputs at a time where the machine allows).
func maxPoolBiasReLU2x2(plane, o []float32, a []uint8, bias float32, w, oh, ow int) {
	for oy := 0; oy < oh; oy++ {
		orow := o[oy*ow : (oy+1)*ow]
		r0 := plane[2*oy*w : 2*oy*w+2*ow]
		r1 := plane[(2*oy+1)*w : (2*oy+1)*w+2*ow]
		var arow []uint8
		if a != nil {
			arow = a[oy*ow : (oy+1)*ow]
		}
		kernels.MaxPool2x2BiasReLU(orow, arow, r0, r1, bias)
	}
}

// poolReLUGrad2x2 writes the gradient of one full-size plane (2·oh × 2·ow,
// width w) from the gradient gp of its 2×2 max-pooled, rectified output
// out: each window's winner (arg) gets gp where out is positive, every
// other element 0. It returns the sum of the plane's gradient.
func poolReLUGrad2x2(dense, gp, out []float32, arg []uint8, w, oh, ow int) float32 {
	clear(dense[:2*oh*w])
	var sum float32
	for oy := 0; oy < oh; oy++ {
		rows := dense[2*oy*w : (2*oy+2)*w]
		g := gp[oy*ow : (oy+1)*ow]
		o := out[oy*ow : (oy+1)*ow][:len(g)]
		ar := arg[oy*ow : (oy+1)*ow][:len(g)]
		for ox, gv := range g {
			ob := math.Float32bits(o[ox])
			var m uint32
			if ob-1 < 0x7f800000 { // out > 0
				m = 0xffffffff
			}
			v := math.Float32frombits(math.Float32bits(gv) & m)
			sum += v
			k := int(ar[ox])
			rows[(k>>1)*w+2*ox+k&1] = v
		}
	}
	return sum
}
