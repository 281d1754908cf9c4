package tensorboard_test

import (
	"image"
	"image/color"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/track/tensorboard"
)

func lum(c color.Color) uint32 {
	r, g, b, _ := c.RGBA()
	return (r + g + b) / 3
}

func TestConfusionMatrixImage(t *testing.T) {
	// 3 classes: class 0 always right, class 1 half right, class 2 never
	// predicted (all predicted as 0).
	pred := []int64{0, 0, 0, 0, 1, 1, 0, 0}
	tgt := []int64{0, 0, 1, 1, 1, 1, 2, 2}
	cm := metrics.NewConfusionMatrix(pred, tgt, 3)
	cm.Labels = []string{"cat", "dog", "bird"}
	img := tensorboard.ConfusionMatrixImage(cm)
	b := img.Bounds()
	if b.Dx() < 3*20 || b.Dy() < 3*20 || b.Dx() > 1000 {
		t.Fatalf("image %v", b)
	}
	// The grid of 40-pixel cells is the bottom-right square of the image.
	const cell = 40
	// Sample each cell's corner (away from the count text).
	at := func(i, j int) color.Color {
		left, top := b.Dx()-3*cell, b.Dy()-3*cell
		return img.At(left+j*cell+1, top+i*cell+1)
	}
	// Row-normalised shades: (0,0)=1, (1,0)=(1,1)=0.5, (2,0)=1, (0,1)=0,
	// (2,2)=0. Darker means larger.
	if !(lum(at(0, 0)) < lum(at(1, 1)) && lum(at(1, 1)) < lum(at(0, 1))) {
		t.Fatalf("shades not ordered: %v %v %v", at(0, 0), at(1, 1), at(0, 1))
	}
	if lum(at(1, 0)) != lum(at(1, 1)) || lum(at(2, 0)) != lum(at(0, 0)) || lum(at(2, 2)) != lum(at(0, 2)) {
		t.Fatal("equal fractions have different shades")
	}
	if c := color.RGBAModel.Convert(at(0, 1)).(color.RGBA); c != (color.RGBA{247, 251, 255, 255}) {
		t.Fatalf("zero cell colour %v", c)
	}
	// Some pixels of the (0,0) cell are the white count text.
	white := 0
	for y := b.Dy() - 3*cell; y < b.Dy()-2*cell; y++ {
		for x := b.Dx() - 3*cell; x < b.Dx()-2*cell; x++ {
			if lum(img.At(x, y)) == 0xffff {
				white++
			}
		}
	}
	if white == 0 {
		t.Fatal("no count drawn in the (0,0) cell")
	}
	// Many classes: small cells, no text, bounded size.
	big := metrics.NewConfusionMatrix(nil, nil, 500)
	if bb := tensorboard.ConfusionMatrixImage(big).Bounds(); bb.Dx() != 500*2 || bb.Dy() != 500*2 {
		t.Fatalf("500 classes: %v", bb)
	}
	testutil.MustPanic(t, "empty matrix", func() {
		tensorboard.ConfusionMatrixImage(&metrics.ConfusionMatrix{})
	}, "tensorboard.ConfusionMatrixImage")
}

func TestMisclassifiedGrid(t *testing.T) {
	if tensorboard.MisclassifiedGrid(nil, 3) != nil {
		t.Fatal("empty grid is not nil")
	}
	tile := image.NewGray(image.Rect(0, 0, 28, 28))
	tile.SetGray(27, 27, color.Gray{255})
	items := make([]tensorboard.Misclassified, 5)
	for i := range items {
		items[i] = tensorboard.Misclassified{Image: tile, True: "3", Pred: "5"}
	}
	g := tensorboard.MisclassifiedGrid(items, 2) // 2 columns, 3 rows
	b := g.Bounds()
	// Tiles are enlarged 2x to 56 px, with captions below.
	if b.Dx() < 2*56 || b.Dx() > 2*70 || b.Dy() < 3*(56+13) || b.Dy() > 3*90 {
		t.Fatalf("grid %v", b)
	}
	// The bright corner pixel of the first tile is enlarged to 2x2.
	bright := 0
	for y := range b.Dy() / 3 {
		for x := range b.Dx() / 2 {
			if c := color.GrayModel.Convert(g.At(x, y)).(color.Gray); c.Y == 255 {
				bright++
			}
		}
	}
	if bright != 4 {
		t.Fatalf("%d bright pixels in the first tile, want 4", bright)
	}
	sq := tensorboard.MisclassifiedGrid(items[:4], 0)
	if sq.Bounds().Dx() != g.Bounds().Dx() {
		t.Fatalf("4 items with cols=0 should make 2 columns: %v vs %v", sq.Bounds(), g.Bounds())
	}
	testutil.MustPanic(t, "nil tile", func() {
		tensorboard.MisclassifiedGrid([]tensorboard.Misclassified{{True: "1"}}, 1)
	}, "tensorboard.MisclassifiedGrid", "item 0")
}

func TestTensorImage(t *testing.T) {
	gray := tensorboard.TensorImage(tensor.FromSlice([]float32{-1, 0, 1, 3}, 1, 2, 2))
	gi, ok := gray.(*image.Gray)
	if !ok || gi.Bounds().Dx() != 2 || gi.Bounds().Dy() != 2 {
		t.Fatalf("got %T %v", gray, gray.Bounds())
	}
	if want := []uint8{0, 64, 128, 255}; string(gi.Pix) != string(want) {
		t.Fatalf("pixels %v, want %v", gi.Pix, want)
	}
	// [3, H, W]: channels first.
	rgb := tensorboard.TensorImage(tensor.FromSlice([]float32{1, 0, 0, 0, 0, 1}, 3, 1, 2))
	if c := color.RGBAModel.Convert(rgb.At(0, 0)).(color.RGBA); c != (color.RGBA{255, 0, 0, 255}) {
		t.Fatalf("pixel (0,0) %v", c)
	}
	if c := color.RGBAModel.Convert(rgb.At(1, 0)).(color.RGBA); c != (color.RGBA{0, 0, 255, 255}) {
		t.Fatalf("pixel (1,0) %v", c)
	}
	flat := tensorboard.TensorImage(tensor.FromSlice([]float32{2, 2}, 1, 2)).(*image.Gray)
	if flat.Pix[0] != 0 || flat.Pix[1] != 0 {
		t.Fatalf("constant tensor %v", flat.Pix)
	}
	testutil.MustPanic(t, "2 channels", func() {
		tensorboard.TensorImage(tensor.FromSlice(make([]float32, 8), 2, 2, 2))
	}, "tensorboard.TensorImage", "[2 2 2]")
	testutil.MustPanic(t, "int64", func() {
		tensorboard.TensorImage(tensor.FromInt64([]int64{1, 2}, 1, 2))
	}, "tensorboard.TensorImage", "[1 2]", "float32")
}
