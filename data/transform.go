package data

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/deepgo/deepgo/tensor"
)

// Transform maps an example's input to a new tensor. Random transforms draw
// only from rng, which the Loader derives from (seed, epoch, example index),
// so results are reproducible. A Transform must not modify its input (it may
// share storage with the dataset); it returns a new tensor, or the input
// itself when it changes nothing. Transforms panic on inputs of the wrong
// shape; the Loader reports such panics as errors.
type Transform func(x *tensor.Tensor, rng *rand.Rand) *tensor.Tensor

// Compose chains transforms, applying them left to right. Nil entries are
// skipped.
func Compose(ts ...Transform) Transform {
	return func(x *tensor.Tensor, rng *rand.Rand) *tensor.Tensor {
		for _, t := range ts {
			if t != nil {
				x = t(x, rng)
			}
		}
		return x
	}
}

// Normalize returns (x - mean[c]) / std[c] per channel c of a float32 input
// of shape [C, ...]. With one mean and one std value they apply to every
// element. It panics if a std is not positive or the channel count does not
// match.
func Normalize(mean, std []float32) Transform {
	if len(mean) == 0 || len(mean) != len(std) {
		panic(fmt.Sprintf("data.Normalize: %d means and %d stds", len(mean), len(std)))
	}
	for _, s := range std {
		if !(s > 0) {
			panic(fmt.Sprintf("data.Normalize: std %v must be positive", std))
		}
	}
	mean, std = append([]float32(nil), mean...), append([]float32(nil), std...)
	return func(x *tensor.Tensor, _ *rand.Rand) *tensor.Tensor {
		shape := x.Shape()
		src := x.Data()
		out := make([]float32, len(src))
		if len(mean) == 1 {
			m, inv := mean[0], 1/std[0]
			for i, v := range src {
				out[i] = (v - m) * inv
			}
			return tensor.FromSlice(out, shape...)
		}
		if len(shape) == 0 || shape[0] != len(mean) {
			panic(fmt.Sprintf("data.Normalize: input of shape %v does not have %d channels", shape, len(mean)))
		}
		per := len(src) / len(mean)
		for c := range mean {
			m, inv := mean[c], 1/std[c]
			for i := c * per; i < (c+1)*per; i++ {
				out[i] = (src[i] - m) * inv
			}
		}
		return tensor.FromSlice(out, shape...)
	}
}

// imageDims returns channels, height and width of a [H, W] or [C, H, W] input.
func imageDims(op string, x *tensor.Tensor) (c, h, w int) {
	s := x.Shape()
	switch len(s) {
	case 2:
		return 1, s[0], s[1]
	case 3:
		return s[0], s[1], s[2]
	}
	panic(fmt.Sprintf("data.%s: input of shape %v is not an image [H W] or [C H W]", op, s))
}

// Shift moves a float32 image ([H, W] or [C, H, W]) by dx pixels right and dy
// pixels down, filling uncovered pixels with 0.
func Shift(x *tensor.Tensor, dx, dy int) *tensor.Tensor {
	c, h, w := imageDims("Shift", x)
	src := x.Data()
	out := make([]float32, len(src))
	for ch := 0; ch < c; ch++ {
		base := ch * h * w
		for y := 0; y < h; y++ {
			sy := y - dy
			if sy < 0 || sy >= h {
				continue
			}
			for xx := 0; xx < w; xx++ {
				sx := xx - dx
				if sx < 0 || sx >= w {
					continue
				}
				out[base+y*w+xx] = src[base+sy*w+sx]
			}
		}
	}
	return tensor.FromSlice(out, x.Shape()...)
}

// RandomShift shifts an image by whole pixels, dx and dy drawn uniformly
// from [-maxShift, maxShift]; see Shift.
func RandomShift(maxShift int) Transform {
	if maxShift < 0 {
		panic(fmt.Sprintf("data.RandomShift: negative maximum shift %d", maxShift))
	}
	return func(x *tensor.Tensor, rng *rand.Rand) *tensor.Tensor {
		dx := rng.IntN(2*maxShift+1) - maxShift
		dy := rng.IntN(2*maxShift+1) - maxShift
		return Shift(x, dx, dy)
	}
}

// Rotate turns a float32 image ([H, W] or [C, H, W]) counter-clockwise (as
// displayed, rows going down) by degrees about its centre, sampling with
// bilinear interpolation and filling pixels from outside the image with 0.
func Rotate(x *tensor.Tensor, degrees float64) *tensor.Tensor {
	c, h, w := imageDims("Rotate", x)
	src := x.Data()
	out := make([]float32, len(src))
	th := degrees * math.Pi / 180
	cos, sin := math.Cos(th), math.Sin(th)
	cx, cy := float64(w-1)/2, float64(h-1)/2
	at := func(base, yy, xx int) float64 {
		if yy < 0 || yy >= h || xx < 0 || xx >= w {
			return 0
		}
		return float64(src[base+yy*w+xx])
	}
	for y := 0; y < h; y++ {
		for xx := 0; xx < w; xx++ {
			u, v := float64(xx)-cx, float64(y)-cy
			// inverse of the counter-clockwise rotation, in image coordinates
			sx := u*cos - v*sin + cx
			sy := u*sin + v*cos + cy
			// snap values within rounding error of a pixel centre
			if r := math.Round(sx); math.Abs(sx-r) < 1e-9 {
				sx = r
			}
			if r := math.Round(sy); math.Abs(sy-r) < 1e-9 {
				sy = r
			}
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			fx, fy := sx-float64(x0), sy-float64(y0)
			for ch := 0; ch < c; ch++ {
				base := ch * h * w
				v := (1-fy)*((1-fx)*at(base, y0, x0)+fx*at(base, y0, x0+1)) +
					fy*((1-fx)*at(base, y0+1, x0)+fx*at(base, y0+1, x0+1))
				out[base+y*w+xx] = float32(v)
			}
		}
	}
	return tensor.FromSlice(out, x.Shape()...)
}

// RandomRotation rotates an image by an angle drawn uniformly from
// [-maxDegrees, maxDegrees]; see Rotate.
func RandomRotation(maxDegrees float64) Transform {
	if maxDegrees < 0 || math.IsNaN(maxDegrees) || math.IsInf(maxDegrees, 0) {
		panic(fmt.Sprintf("data.RandomRotation: maximum angle %v must be finite and >= 0", maxDegrees))
	}
	return func(x *tensor.Tensor, rng *rand.Rand) *tensor.Tensor {
		return Rotate(x, (2*rng.Float64()-1)*maxDegrees)
	}
}
