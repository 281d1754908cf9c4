package tensorboard

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/tensor"
)

// Text metrics of basicfont.Face7x13.
const (
	glyphW  = 7
	glyphH  = 13
	ascent  = 11
	textPad = 3
)

func drawText(dst draw.Image, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: dst, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y+ascent)}
	d.DrawString(s)
}

func textWidth(s string) int { return glyphW * len([]rune(s)) }

// heat maps f in [0, 1] from white to dark blue (matplotlib's "Blues").
func heat(f float64) color.RGBA {
	lerp := func(a, b uint8) uint8 { return uint8(math.Round(float64(a) + f*(float64(b)-float64(a)))) }
	return color.RGBA{lerp(247, 8), lerp(251, 48), lerp(255, 107), 255}
}

func classLabel(labels []string, i int) string {
	if i < len(labels) && labels[i] != "" {
		return labels[i]
	}
	return strconv.Itoa(i)
}

// ConfusionMatrixImage renders cm as a heat map: true classes are rows (top
// to bottom), predicted classes columns (left to right), and each cell's
// shade is its count divided by its row's total (the class's recall on the
// diagonal), from white (0) to dark blue (1). Cells are min(40, 960/n)
// pixels square (at least 2) for n classes, so the grid is at most about
// 1000 pixels wide. When the cells are large enough for the text (up to
// about 70 classes) they show their counts, and a margin on the left and at
// the top labels the rows and columns with cm.Labels (or the class indices).
// A matrix with no classes panics.
func ConfusionMatrixImage(cm *metrics.ConfusionMatrix) *image.RGBA {
	n := cm.NumClasses()
	if n == 0 {
		panic("tensorboard.ConfusionMatrixImage: confusion matrix has no classes")
	}
	var maxCount int64
	for _, row := range cm.Counts {
		for _, v := range row {
			maxCount = max(maxCount, v)
		}
	}
	cell := max(min(40, 960/n), 2)
	text := cell >= max(glyphH+2, textWidth(strconv.FormatInt(maxCount, 10))+2)
	left, top := 0, 0
	if text {
		for i := range n {
			left = max(left, textWidth(classLabel(cm.Labels, i)))
		}
		left = max(left, textWidth("true"))
		left += 2 * textPad
		top = glyphH + 2*textPad
		// Column labels that do not fit in a cell are left out.
	}
	img := image.NewRGBA(image.Rect(0, 0, left+n*cell, top+n*cell))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for i, row := range cm.Counts {
		var tot int64
		for _, v := range row {
			tot += v
		}
		for j, v := range row {
			f := 0.0
			if tot > 0 {
				f = float64(v) / float64(tot)
			}
			r := image.Rect(left+j*cell, top+i*cell, left+(j+1)*cell, top+(i+1)*cell)
			draw.Draw(img, r, image.NewUniform(heat(f)), image.Point{}, draw.Src)
			if text {
				s := strconv.FormatInt(v, 10)
				fg := color.Color(color.Black)
				if f > 0.5 {
					fg = color.White
				}
				drawText(img, r.Min.X+(cell-textWidth(s))/2, r.Min.Y+(cell-glyphH)/2, s, fg)
			}
		}
	}
	if text {
		drawText(img, textPad, textPad, "true", color.Black)
		for i := range n {
			s := classLabel(cm.Labels, i)
			drawText(img, textPad, top+i*cell+(cell-glyphH)/2, s, color.Black)
			if textWidth(s) <= cell {
				drawText(img, left+i*cell+(cell-textWidth(s))/2, textPad, s, color.Black)
			}
		}
	}
	return img
}

// Misclassified is one wrongly classified example for MisclassifiedGrid.
type Misclassified struct {
	// Image is the example's input as an image (see TensorImage).
	Image image.Image
	// True and Pred name the true and the predicted class.
	True, Pred string
}

// MisclassifiedGrid tiles the examples' images into a grid with cols
// columns (cols <= 0: about square), each image enlarged by an integer
// factor to at least 56 pixels wide and captioned "t<true> p<pred>" below.
// It returns nil when items is empty.
func MisclassifiedGrid(items []Misclassified, cols int) *image.RGBA {
	if len(items) == 0 {
		return nil
	}
	if cols <= 0 {
		cols = int(math.Ceil(math.Sqrt(float64(len(items)))))
	}
	cols = min(cols, len(items))
	rows := (len(items) + cols - 1) / cols
	// Every tile has the size of the largest scaled image and caption.
	tw, th := 0, 0
	scales := make([]int, len(items))
	for k, it := range items {
		if it.Image == nil || it.Image.Bounds().Empty() {
			panic(fmt.Sprintf("tensorboard.MisclassifiedGrid: item %d has no image", k))
		}
		b := it.Image.Bounds()
		s := max(1, (56+b.Dx()-1)/b.Dx())
		scales[k] = s
		tw = max(tw, b.Dx()*s, textWidth(caption(it)))
		th = max(th, b.Dy()*s)
	}
	const pad = 4
	cellW, cellH := tw+pad, th+glyphH+2+pad
	img := image.NewRGBA(image.Rect(0, 0, cols*cellW+pad, rows*cellH+pad))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{32, 32, 32, 255}), image.Point{}, draw.Src)
	for k, it := range items {
		x0, y0 := pad+(k%cols)*cellW, pad+(k/cols)*cellH
		b, s := it.Image.Bounds(), scales[k]
		ox := x0 + (tw-b.Dx()*s)/2
		for y := 0; y < b.Dy()*s; y++ {
			for x := 0; x < b.Dx()*s; x++ {
				img.Set(ox+x, y0+y, it.Image.At(b.Min.X+x/s, b.Min.Y+y/s))
			}
		}
		c := caption(it)
		drawText(img, x0+(tw-textWidth(c))/2, y0+th+1, c, color.RGBA{255, 200, 80, 255})
	}
	return img
}

func caption(m Misclassified) string { return "t" + m.True + " p" + m.Pred }

// TensorImage converts a float32 tensor of shape [H, W], [1, H, W] (gray)
// or [3, H, W] (RGB, channels first) into an image, scaling the tensor's
// range [min, max] linearly to [0, 255] (a constant tensor is black). Other
// shapes and int64 tensors panic.
func TensorImage(t *tensor.Tensor) image.Image {
	shape := t.Shape()
	c := 1
	switch {
	case len(shape) == 2:
	case len(shape) == 3 && (shape[0] == 1 || shape[0] == 3):
		c = shape[0]
	default:
		panic(fmt.Sprintf("tensorboard.TensorImage: shape %v, want [H W], [1 H W] or [3 H W]", shape))
	}
	h, w := shape[len(shape)-2], shape[len(shape)-1]
	if h == 0 || w == 0 {
		panic(fmt.Sprintf("tensorboard.TensorImage: empty image of shape %v", shape))
	}
	if t.DType() != tensor.Float32 {
		panic(fmt.Sprintf("tensorboard.TensorImage: tensor of shape %v is %v, want float32", shape, t.DType()))
	}
	d := t.Data()
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range d {
		if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
			lo, hi = min(lo, f), max(hi, f)
		}
	}
	scale := 0.0
	if hi > lo {
		scale = 255 / (hi - lo)
	}
	px := func(v float32) uint8 {
		f := (float64(v) - lo) * scale
		if !(f > 0) {
			return 0
		}
		return uint8(math.Round(min(f, 255)))
	}
	if c == 1 {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i, v := range d {
			img.Pix[i] = px(v)
		}
		return img
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			o := img.PixOffset(x, y)
			for ch := range 3 {
				img.Pix[o+ch] = px(d[ch*h*w+y*w+x])
			}
			img.Pix[o+3] = 255
		}
	}
	return img
}
