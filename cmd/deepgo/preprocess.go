package main

import (
	"fmt"

	"github.com/deepgo/deepgo/data/image"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
)

// pixelMax is the intensity of white in the output of the image op: the CLI
// produces 0–255 values, like the raw MNIST bytes, so that a scale op
// (factor 1/255) that follows brings them to [0, 1] for both image files and
// raw pixel tensors.
const pixelMax = 255

// mnistPreprocessing is the preprocessing of an MNIST model: decode an image
// file into the MNIST layout (28×28 grey, light digit on dark, 20-pixel box
// centred by centre of mass), then scale the 0–255 intensities to [0, 1].
func mnistPreprocessing() []model.PreprocessOp {
	return []model.PreprocessOp{
		{Op: model.OpImage, Height: 28, Width: 28, Channels: 1, InvertIfLightBackground: true, Center: "mass"},
		{Op: model.OpScale, Factor: 1.0 / pixelMax},
	}
}

// isImageModel reports whether a package's preprocessing starts with an
// image op (its raw inputs are image files).
func isImageModel(ops []model.PreprocessOp) bool {
	return len(ops) > 0 && ops[0].Op == model.OpImage
}

// loadImage applies an image op to the image file at path, giving a
// [C, H, W] tensor of 0–255 intensities.
func loadImage(op model.PreprocessOp, path string) (*tensor.Tensor, error) {
	if op.Channels != 1 {
		return nil, fmt.Errorf("%s: the model wants %d-channel images; deepgo reads grayscale (1-channel) image models only", path, op.Channels)
	}
	inv := image.InvertNever
	if op.InvertIfLightBackground {
		inv = image.InvertAuto
	}
	var x *tensor.Tensor
	switch op.Center {
	case "mass", "box":
		if op.Height != op.Width {
			return nil, fmt.Errorf("%s: the model's image op is %d×%d; centring a digit needs a square frame", path, op.Height, op.Width)
		}
		opt := image.Options{Size: op.Height, Box: max(1, op.Height*20/28), Invert: inv}
		if op.Center == "box" {
			opt.Center = image.CenterBox
		}
		t, err := image.Load(path, opt)
		if err != nil {
			return nil, err
		}
		x = t
	default: // "" or "none": the whole picture, resized
		img, err := image.DecodeFile(path)
		if err != nil {
			return nil, err
		}
		pix, w, h := image.Gray(img)
		if w == 0 || h == 0 {
			return nil, fmt.Errorf("%s: image is empty (0 pixels)", path)
		}
		if op.InvertIfLightBackground && lightBorder(pix, w, h) {
			for i, v := range pix {
				pix[i] = 1 - v
			}
		}
		x = tensor.FromSlice(image.Resize(pix, w, h, op.Width, op.Height), 1, op.Height, op.Width)
	}
	return tensor.MulScalar(x, pixelMax), nil
}

// lightBorder reports whether the mean of an image's one-pixel frame is
// above one half.
func lightBorder(pix []float32, w, h int) bool {
	var s float64
	n := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if y == 0 || y == h-1 || x == 0 || x == w-1 {
				s += float64(pix[y*w+x])
				n++
			}
		}
	}
	return s/float64(n) > 0.5
}

// applyTensorOps applies the scale and normalize ops to a batch [N, C, ...]
// and returns the result.
func applyTensorOps(ops []model.PreprocessOp, x *tensor.Tensor) (*tensor.Tensor, error) {
	for _, op := range ops {
		switch op.Op {
		case model.OpScale:
			x = tensor.MulScalar(x, float32(op.Factor))
		case model.OpNormalize:
			shape := x.Shape()
			if len(shape) < 2 || (shape[1] != len(op.Mean) && len(op.Mean) != 1) {
				return nil, fmt.Errorf("normalize op has %d channels, the input has shape %v", len(op.Mean), shape)
			}
			bshape := make([]int, len(shape))
			for i := range bshape {
				bshape[i] = 1
			}
			bshape[1] = len(op.Mean)
			mean := make([]float32, len(op.Mean))
			inv := make([]float32, len(op.Std))
			for i := range mean {
				mean[i] = float32(op.Mean[i])
				inv[i] = float32(1 / op.Std[i])
			}
			x = tensor.Mul(tensor.Sub(x, tensor.FromSlice(mean, bshape...)), tensor.FromSlice(inv, bshape...))
		default:
			return nil, fmt.Errorf("preprocessing op %q cannot follow on a tensor", op.Op)
		}
	}
	return x, nil
}

// imageInputs reads image files into one batch [N, C, H, W] ready for the
// model: the package's image op, then its other ops.
func imageInputs(ops []model.PreprocessOp, paths []string) (*tensor.Tensor, error) {
	ts := make([]*tensor.Tensor, len(paths))
	for i, p := range paths {
		t, err := loadImage(ops[0], p)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	return applyTensorOps(ops[1:], tensor.Stack(ts, 0))
}
