package kernels

// ConvGeom describes the window geometry of a 2-D convolution over one image
// of C channels and H×W pixels: a KH×KW kernel moved with strides SH, SW,
// zero padding PH, PW on each side and dilations DH, DW, giving an OH×OW
// output. Every field must be set (strides and dilations at least 1).
type ConvGeom struct {
	C, H, W int
	KH, KW  int
	SH, SW  int
	PH, PW  int
	DH, DW  int
	OH, OW  int
}

// OutSize returns the number of window positions along one axis of length in
// for kernel k, stride s, padding p and dilation d (floor mode), as
// (in + 2p - d(k-1) - 1)/s + 1. The result is below 1 when the dilated kernel
// does not fit the padded input.
func OutSize(in, k, s, p, d int) int {
	span := in + 2*p - d*(k-1) - 1
	if span < 0 {
		return 0
	}
	return span/s + 1
}

// ColRows returns the number of rows of the column matrix, C·KH·KW.
func (g ConvGeom) ColRows() int { return g.C * g.KH * g.KW }

// ColCols returns the number of columns of the column matrix, OH·OW.
func (g ConvGeom) ColCols() int { return g.OH * g.OW }

// Im2Col unfolds the image img (C×H×W, row-major) into col, a row-major
// (C·KH·KW)×(OH·OW) matrix: row (c·KH + i)·KW + j holds, for every output
// position, the input pixel that kernel tap (i, j) of channel c reads, or 0
// where the tap falls in the padding. col is overwritten entirely.
func Im2Col(g ConvGeom, img, col []float32) {
	ncol := g.OH * g.OW
	hw := g.H * g.W
	if ncol == 0 || g.ColRows() == 0 || hw == 0 {
		clear(col[:g.ColRows()*ncol])
		return
	}
	_ = img[g.C*hw-1]
	_ = col[g.ColRows()*ncol-1]
	row := 0
	for c := 0; c < g.C; c++ {
		plane := img[c*hw : (c+1)*hw]
		for i := 0; i < g.KH; i++ {
			for j := 0; j < g.KW; j++ {
				dst := col[row*ncol : (row+1)*ncol]
				row++
				// Output columns whose tap lands inside the image along x:
				// ox in [x0, x1).
				off := j*g.DW - g.PW
				x0, x1 := validRange(off, g.SW, g.W, g.OW)
				for oy := 0; oy < g.OH; oy++ {
					d := dst[oy*g.OW : (oy+1)*g.OW]
					iy := oy*g.SH - g.PH + i*g.DH
					if iy < 0 || iy >= g.H {
						clear(d)
						continue
					}
					src := plane[iy*g.W : (iy+1)*g.W]
					clear(d[:x0])
					if g.SW == 1 {
						copy(d[x0:x1], src[x0+off:x1+off])
					} else {
						ix := x0*g.SW + off
						for ox := x0; ox < x1; ox++ {
							d[ox] = src[ix]
							ix += g.SW
						}
					}
					clear(d[x1:])
				}
			}
		}
	}
}

// Col2Im is the adjoint of Im2Col: it adds every entry of col, a row-major
// (C·KH·KW)×(OH·OW) matrix, into the image pixel (C×H×W) that Im2Col would
// have copied it from, dropping entries that fall in the padding. img is
// accumulated into, not overwritten: clear it first for a plain fold.
func Col2Im(g ConvGeom, col, img []float32) {
	ncol := g.OH * g.OW
	hw := g.H * g.W
	if ncol == 0 || g.ColRows() == 0 || hw == 0 {
		return
	}
	_ = img[g.C*hw-1]
	_ = col[g.ColRows()*ncol-1]
	row := 0
	for c := 0; c < g.C; c++ {
		plane := img[c*hw : (c+1)*hw]
		for i := 0; i < g.KH; i++ {
			for j := 0; j < g.KW; j++ {
				srcRow := col[row*ncol : (row+1)*ncol]
				row++
				off := j*g.DW - g.PW
				x0, x1 := validRange(off, g.SW, g.W, g.OW)
				if x0 >= x1 {
					continue
				}
				for oy := 0; oy < g.OH; oy++ {
					iy := oy*g.SH - g.PH + i*g.DH
					if iy < 0 || iy >= g.H {
						continue
					}
					s := srcRow[oy*g.OW : (oy+1)*g.OW]
					dst := plane[iy*g.W : (iy+1)*g.W]
					if g.SW == 1 {
						d := dst[x0+off : x1+off]
						for k, v := range s[x0:x1] {
							d[k] += v
						}
					} else {
						ix := x0*g.SW + off
						for ox := x0; ox < x1; ox++ {
							dst[ix] += s[ox]
							ix += g.SW
						}
					}
				}
			}
		}
	}
}

// validRange returns [o0, o1), the output positions o in [0, n) for which
// o·s + off lies in [0, size). It returns o0 == o1 when there are none.
func validRange(off, s, size, n int) (int, int) {
	o0 := 0
	if off < 0 {
		o0 = (-off + s - 1) / s
	}
	o1 := 0
	if size-off > 0 {
		o1 = (size - off + s - 1) / s // first o with o·s + off >= size
	}
	o0 = min(o0, n)
	o1 = min(o1, n)
	if o1 < o0 {
		o1 = o0
	}
	return o0, o1
}
