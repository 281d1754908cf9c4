// Package image turns ordinary picture files (PNG, JPEG, GIF) into model
// inputs, in particular into MNIST-style digit images: [1, 28, 28] float32
// tensors with values in [0, 1], a light digit on a dark background.
//
// # MNIST preprocessing
//
// The MNIST digits were made by scaling each handwritten digit so that its
// longer side is 20 pixels, keeping the aspect ratio, and pasting it into a
// 28×28 frame so that its centre of mass lies at the centre of the frame.
// Preprocess repeats those steps on any image, so that a photo or a drawing
// of a digit looks to a model like the images it was trained on:
//
//  1. grayscale: luminance (ITU-R 601 weights, as image/color.GrayModel);
//     an image with transparent pixels is taken to be ink on a transparent
//     sheet, and its alpha channel is used as the ink instead;
//  2. inversion: when the image's border is light on average, the image is
//     dark ink on light paper and is inverted, giving light-on-dark as MNIST
//     (Options.Invert forces or forbids it);
//  3. contrast: the background level (median of the border pixels) becomes
//     0 and the brightest ink 1;
//  4. crop to the bounding box of the pixels brighter than
//     Options.Threshold;
//  5. scale so that the longer side is Options.Box pixels (area averaging
//     when shrinking, bilinear interpolation when enlarging);
//  6. paste into a Options.Size square, shifted by whole pixels so that the
//     centre of mass falls on pixel (Size/2, Size/2) counted from 0, which is
//     where it falls on average in MNIST (the shift is limited so the digit
//     stays inside the frame); with CenterBox the bounding box is centred
//     instead.
//
// An image with no ink at all (a uniform image) gives an all-zero tensor.
//
// # Errors
//
// Functions that read files return errors that name the file and say what is
// wrong, e.g. "image: notes.txt: not a PNG, JPEG or GIF image".
package image

import (
	"bytes"
	"errors"
	"fmt"
	goimage "image"
	"image/color"
	_ "image/gif"  // register the GIF decoder
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io"
	"math"
	"os"
	"sort"

	"github.com/deepgo/deepgo/tensor"
)

// Invert says when Preprocess inverts an image.
type Invert int

const (
	// InvertAuto inverts images whose border is light on average (dark ink on
	// light paper).
	InvertAuto Invert = iota
	// InvertNever keeps the image as it is (light ink on a dark background).
	InvertNever
	// InvertAlways inverts every image.
	InvertAlways
)

// String returns "auto", "never" or "always".
func (v Invert) String() string {
	switch v {
	case InvertAuto:
		return "auto"
	case InvertNever:
		return "never"
	case InvertAlways:
		return "always"
	}
	return fmt.Sprintf("Invert(%d)", int(v))
}

// Center says how Preprocess places the scaled digit in the output frame.
type Center int

const (
	// CenterMass shifts the digit so that its centre of mass falls on the
	// frame's centre pixel, as MNIST.
	CenterMass Center = iota
	// CenterBox centres the digit's bounding box in the frame.
	CenterBox
)

// String returns "mass" or "box".
func (c Center) String() string {
	switch c {
	case CenterMass:
		return "mass"
	case CenterBox:
		return "box"
	}
	return fmt.Sprintf("Center(%d)", int(c))
}

// Options configures Preprocess. The zero value means MNIST's geometry (see
// MNIST).
type Options struct {
	// Size is the side of the square output image (default 28).
	Size int
	// Box is the length the longer side of the digit is scaled to
	// (default 20). It must not exceed Size.
	Box int
	// Invert says when to invert the image (default InvertAuto).
	Invert Invert
	// Center says how the scaled digit is placed in the frame (default
	// CenterMass).
	Center Center
	// Threshold is the level, on the contrast-stretched [0, 1] scale,
	// above which a pixel counts as ink for the bounding box (default 0.1).
	// Pixels at or below it are set to 0, which also removes faint noise.
	Threshold float32
}

// MNIST is the classic MNIST preprocessing: a 20-pixel box centred by centre
// of mass in a 28×28 frame, automatic inversion.
var MNIST = Options{Size: 28, Box: 20, Invert: InvertAuto, Threshold: 0.1}

// withDefaults fills in zero fields and checks the geometry.
func (o Options) withDefaults() (Options, error) {
	if o.Size == 0 {
		o.Size = MNIST.Size
	}
	if o.Box == 0 {
		o.Box = min(MNIST.Box, o.Size)
	}
	if o.Threshold == 0 {
		o.Threshold = MNIST.Threshold
	}
	if o.Size < 1 || o.Box < 1 || o.Box > o.Size {
		return o, fmt.Errorf("image: bad options: size %d, box %d (need 1 <= box <= size)", o.Size, o.Box)
	}
	if o.Threshold < 0 || o.Threshold >= 1 {
		return o, fmt.Errorf("image: bad options: threshold %v (need 0 <= threshold < 1)", o.Threshold)
	}
	if o.Invert < InvertAuto || o.Invert > InvertAlways {
		return o, fmt.Errorf("image: bad options: %v", o.Invert)
	}
	if o.Center < CenterMass || o.Center > CenterBox {
		return o, fmt.Errorf("image: bad options: %v", o.Center)
	}
	return o, nil
}

// ErrNotImage is wrapped by the errors of Decode, Read and Load when the
// data is not an image in a known format.
var ErrNotImage = errors.New("not a PNG, JPEG or GIF image")

// MaxPixels bounds the size of the images Decode accepts (width × height),
// so that a small file claiming huge dimensions cannot exhaust memory.
const MaxPixels = 64 << 20

// Decode decodes a PNG, JPEG or GIF image (the first frame of a GIF).
// The error wraps ErrNotImage when the format is not recognised. Images of
// more than MaxPixels pixels are refused before they are decoded.
func Decode(r io.Reader) (goimage.Image, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	cfg, format, err := goimage.DecodeConfig(bytes.NewReader(b))
	if errors.Is(err, goimage.ErrFormat) {
		return nil, ErrNotImage
	}
	if err == nil && int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%s image of %d×%d pixels is too large (at most %d pixels)", format, cfg.Width, cfg.Height, MaxPixels)
	}
	img, format, err := goimage.Decode(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, goimage.ErrFormat) {
			return nil, ErrNotImage
		}
		if format == "" {
			return nil, fmt.Errorf("decoding image: %w", err)
		}
		return nil, fmt.Errorf("decoding %s: %w", format, err)
	}
	return img, nil
}

// DecodeFile decodes the image file at path; errors name the file.
func DecodeFile(path string) (goimage.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	img, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("image: %s: %w", path, err)
	}
	return img, nil
}

// Read decodes an image from r and preprocesses it with opt (see Preprocess).
func Read(r io.Reader, opt Options) (*tensor.Tensor, error) {
	img, err := Decode(r)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return Preprocess(img, opt)
}

// Load reads the image file at path and preprocesses it with opt (see
// Preprocess), giving a float32 tensor [1, Size, Size] in [0, 1]. Errors name
// the file.
func Load(path string, opt Options) (*tensor.Tensor, error) {
	img, err := DecodeFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Preprocess(img, opt)
	if err != nil {
		return nil, fmt.Errorf("image: %s: %w", path, err)
	}
	return t, nil
}

// Gray converts img to grayscale values in [0, 1], row-major, returning them
// with the width and height. An image with any pixel that is not fully opaque
// is treated as ink on a transparent sheet: its alpha channel is returned
// (opaque = 1), whatever the colours. Otherwise the luminance is returned
// (white = 1).
func Gray(img goimage.Image) (pix []float32, w, h int) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	switch m := img.(type) {
	case *goimage.Gray:
		pix = make([]float32, w*h)
		for y := 0; y < h; y++ {
			o := m.PixOffset(b.Min.X, b.Min.Y+y)
			for x, v := range m.Pix[o : o+w] {
				pix[y*w+x] = float32(v) / 255
			}
		}
		return pix, w, h
	case *goimage.YCbCr: // JPEG: Y is the luminance
		pix = make([]float32, w*h)
		for y := 0; y < h; y++ {
			o := m.YOffset(b.Min.X, b.Min.Y+y)
			for x, v := range m.Y[o : o+w] {
				pix[y*w+x] = float32(v) / 255
			}
		}
		return pix, w, h
	}
	pix = make([]float32, w*h)
	lum := make([]float32, w*h)
	transparent := false
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := img.At(b.Min.X+x, b.Min.Y+y)
			_, _, _, a := c.RGBA()
			if a != 0xffff {
				transparent = true
			}
			pix[y*w+x] = float32(a) / 0xffff
			g := color.Gray16Model.Convert(c).(color.Gray16)
			lum[y*w+x] = float32(g.Y) / 0xffff
		}
	}
	if transparent {
		return pix, w, h
	}
	return lum, w, h
}

// Preprocess applies the MNIST preprocessing described in the package
// documentation to img and returns a float32 tensor [1, Size, Size] with
// values in [0, 1]. It fails only for bad options or an empty image.
func Preprocess(img goimage.Image, opt Options) (*tensor.Tensor, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	pix, w, h := Gray(img)
	if w == 0 || h == 0 {
		return nil, errors.New("image is empty (0 pixels)")
	}
	return tensor.FromSlice(PreprocessGray(pix, w, h, opt), 1, opt.Size, opt.Size), nil
}

// PreprocessGray is Preprocess on grayscale values in [0, 1] (row-major,
// w×h, white = 1, as returned by Gray); it returns the Size×Size result.
// The input is not modified. It panics if len(pix) != w*h or on bad options.
func PreprocessGray(pix []float32, w, h int, opt Options) []float32 {
	opt, err := opt.withDefaults()
	if err != nil {
		panic("image.PreprocessGray: " + err.Error())
	}
	if len(pix) != w*h || w <= 0 || h <= 0 {
		panic(fmt.Sprintf("image.PreprocessGray: %d values for a %d×%d image", len(pix), w, h))
	}
	g := make([]float32, len(pix))
	for i, v := range pix {
		g[i] = clamp01(v)
	}
	border := borderValues(g, w, h)
	invert := opt.Invert == InvertAlways
	if opt.Invert == InvertAuto {
		var s float64
		for _, v := range border {
			s += float64(v)
		}
		invert = s/float64(len(border)) > 0.5
	}
	if invert {
		for i, v := range g {
			g[i] = 1 - v
		}
		for i, v := range border {
			border[i] = 1 - v
		}
	}

	// Contrast: background (median of the border) → 0, brightest ink → 1.
	sort.Slice(border, func(i, j int) bool { return border[i] < border[j] })
	bg := border[len(border)/2]
	peak := float32(0)
	for _, v := range g {
		peak = max(peak, v)
	}
	out := make([]float32, opt.Size*opt.Size)
	if peak-bg < 1e-3 {
		return out // uniform image: no ink
	}
	scale := 1 / (peak - bg)
	x0, y0, x1, y1 := w, h, -1, -1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := clamp01((g[y*w+x] - bg) * scale)
			if v <= opt.Threshold {
				v = 0
			} else {
				x0, y0 = min(x0, x), min(y0, y)
				x1, y1 = max(x1, x), max(y1, y)
			}
			g[y*w+x] = v
		}
	}
	if x1 < 0 {
		return out
	}

	// Crop and scale the longer side to Box.
	cw, ch := x1-x0+1, y1-y0+1
	crop := make([]float32, cw*ch)
	for y := 0; y < ch; y++ {
		copy(crop[y*cw:(y+1)*cw], g[(y0+y)*w+x0:(y0+y)*w+x1+1])
	}
	var sw, sh int
	if cw >= ch {
		sw = opt.Box
		sh = max(1, int(math.Round(float64(ch)*float64(opt.Box)/float64(cw))))
	} else {
		sh = opt.Box
		sw = max(1, int(math.Round(float64(cw)*float64(opt.Box)/float64(ch))))
	}
	small := Resize(crop, cw, ch, sw, sh)

	// Paste so that the centre of mass lands on (Size/2, Size/2).
	var m, mx, my float64
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			v := float64(small[y*sw+x])
			m += v
			mx += v * float64(x)
			my += v * float64(y)
		}
	}
	c := float64(opt.Size / 2)
	ox, oy := (opt.Size-sw)/2, (opt.Size-sh)/2
	if m > 0 && opt.Center == CenterMass {
		ox = int(math.Round(c - mx/m))
		oy = int(math.Round(c - my/m))
	}
	ox = min(max(ox, 0), opt.Size-sw)
	oy = min(max(oy, 0), opt.Size-sh)
	for y := 0; y < sh; y++ {
		copy(out[(oy+y)*opt.Size+ox:(oy+y)*opt.Size+ox+sw], small[y*sw:(y+1)*sw])
	}
	return out
}

// Resize scales a w×h grayscale image to nw×nh: each axis is shrunk by area
// averaging (every source pixel contributes in proportion to the part of it
// an output pixel covers) or enlarged by linear interpolation between pixel
// centres. It panics if len(pix) != w*h or a size is not positive.
func Resize(pix []float32, w, h, nw, nh int) []float32 {
	if len(pix) != w*h || w <= 0 || h <= 0 || nw <= 0 || nh <= 0 {
		panic(fmt.Sprintf("image.Resize: %d values for a %d×%d image resized to %d×%d", len(pix), w, h, nw, nh))
	}
	// Separable: rows first, then columns.
	wx := resampleWeights(w, nw)
	wy := resampleWeights(h, nh)
	tmp := make([]float32, nw*h)
	for y := 0; y < h; y++ {
		row := pix[y*w : (y+1)*w]
		for x, ws := range wx {
			var s float32
			for _, t := range ws {
				s += t.w * row[t.i]
			}
			tmp[y*nw+x] = s
		}
	}
	out := make([]float32, nw*nh)
	for y, ws := range wy {
		for x := 0; x < nw; x++ {
			var s float32
			for _, t := range ws {
				s += t.w * tmp[t.i*nw+x]
			}
			out[y*nw+x] = clamp01(s)
		}
	}
	return out
}

// tap is one source index and its weight in an output sample.
type tap struct {
	i int
	w float32
}

// resampleWeights returns, for each of the m output samples of an axis of n
// source samples, the source taps and weights (summing to 1).
func resampleWeights(n, m int) [][]tap {
	out := make([][]tap, m)
	s := float64(n) / float64(m) // source pixels per output pixel
	for j := range out {
		if s >= 1 {
			// Area: output pixel j covers [j·s, (j+1)·s) of the source.
			lo, hi := float64(j)*s, float64(j+1)*s
			for i := int(lo); i < n && float64(i) < hi; i++ {
				cover := math.Min(hi, float64(i+1)) - math.Max(lo, float64(i))
				if cover > 1e-9 {
					out[j] = append(out[j], tap{i, float32(cover / s)})
				}
			}
			continue
		}
		// Linear: sample the source at the output pixel's centre.
		x := (float64(j)+0.5)*s - 0.5
		x = math.Min(math.Max(x, 0), float64(n-1))
		i0 := int(math.Floor(x))
		f := x - float64(i0)
		if i0+1 < n && f > 1e-9 {
			out[j] = []tap{{i0, float32(1 - f)}, {i0 + 1, float32(f)}}
		} else {
			out[j] = []tap{{i0, 1}}
		}
	}
	return out
}

// borderValues returns the pixels of the one-pixel frame around the image.
func borderValues(g []float32, w, h int) []float32 {
	var b []float32
	for x := 0; x < w; x++ {
		b = append(b, g[x])
		if h > 1 {
			b = append(b, g[(h-1)*w+x])
		}
	}
	for y := 1; y < h-1; y++ {
		b = append(b, g[y*w])
		if w > 1 {
			b = append(b, g[y*w+w-1])
		}
	}
	return b
}

func clamp01(v float32) float32 {
	if v < 0 || v != v {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}
