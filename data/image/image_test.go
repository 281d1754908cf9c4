package image_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	goimage "image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/deepgo/deepgo/data/image"
	"github.com/deepgo/deepgo/internal/testutil"
)

// render draws text in the Go Bold font at the given size (in pixels) on a
// w×h canvas of colour bg, with the glyph's origin at (x, y).
func render(t *testing.T, text string, size float64, fg, bg color.Color, w, h, x, y int) *goimage.RGBA {
	t.Helper()
	f, err := opentype.Parse(gobold.TTF)
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		t.Fatal(err)
	}
	defer face.Close()
	img := goimage.NewRGBA(goimage.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), goimage.NewUniform(bg), goimage.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: goimage.NewUniform(fg), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(text)
	return img
}

// stats returns the centre of mass (in pixel indices) and the bounding box
// of the pixels above 0 of a size×size image.
func stats(p []float32, size int) (cx, cy float64, x0, y0, x1, y1 int) {
	var m float64
	x0, y0, x1, y1 = size, size, -1, -1
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			v := float64(p[y*size+x])
			if v > 0 {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
			m += v
			cx += v * float64(x)
			cy += v * float64(y)
		}
	}
	return cx / m, cy / m, x0, y0, x1, y1
}

func TestPreprocessCentresAndScales(t *testing.T) {
	// A "7" drawn small in the top-left corner of a large dark canvas.
	img := render(t, "7", 40, color.White, color.Black, 200, 150, 5, 40)
	x, err := image.Preprocess(img, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	if got := x.Shape(); len(got) != 3 || got[0] != 1 || got[1] != 28 || got[2] != 28 {
		t.Fatalf("shape %v, want [1 28 28]", got)
	}
	p := x.Data()
	cx, cy, x0, y0, x1, y1 := stats(p, 28)
	if math.Abs(cx-14) > 0.5 || math.Abs(cy-14) > 0.5 {
		t.Errorf("centre of mass (%.2f, %.2f), want (14, 14) within half a pixel", cx, cy)
	}
	if h := y1 - y0 + 1; h != 20 {
		t.Errorf("digit height %d, want 20 (the longer side)", h)
	}
	if w := x1 - x0 + 1; w >= 20 || w < 8 {
		t.Errorf("digit width %d, want the aspect ratio kept (between 8 and 19)", w)
	}
	var peak float32
	for _, v := range p {
		if v < 0 || v > 1 {
			t.Fatalf("value %v outside [0, 1]", v)
		}
		peak = max(peak, v)
	}
	if peak < 0.9 {
		t.Errorf("brightest pixel %v, want the ink near 1", peak)
	}
	// The corners are background.
	for _, i := range []int{0, 27, 27 * 28, 28*28 - 1} {
		if p[i] != 0 {
			t.Errorf("corner pixel %d = %v, want 0", i, p[i])
		}
	}
}

func TestPreprocessInvertsLightBackground(t *testing.T) {
	dark := render(t, "3", 60, color.White, color.Black, 80, 80, 20, 65)
	light := render(t, "3", 60, color.Black, color.White, 80, 80, 20, 65)
	a, err := image.Preprocess(dark, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	b, err := image.Preprocess(light, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	// Dark-on-light is inverted, so both give the same light-on-dark digit.
	testutil.AssertClose(t, "dark-on-light vs light-on-dark", b, a, 0.02, 0.02)
	if b.Data()[0] != 0 {
		t.Errorf("background of the inverted image is %v, want 0", b.Data()[0])
	}
	// Forcing no inversion on the light image gives a blank-ish white frame
	// instead: the ink is then the paper.
	c, err := image.Preprocess(light, image.Options{Invert: image.InvertNever})
	if err != nil {
		t.Fatal(err)
	}
	var diff float64
	for i, v := range c.Data() {
		diff += math.Abs(float64(v - a.Data()[i]))
	}
	if diff < 10 {
		t.Errorf("InvertNever on a light background gave the same result as inversion (diff %v)", diff)
	}
	// InvertAlways on the light image matches auto.
	d, err := image.Preprocess(light, image.Options{Invert: image.InvertAlways})
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "InvertAlways vs auto", d, b, 0, 0)
}

func TestPreprocessGreyBackgroundAndColours(t *testing.T) {
	// Blue ink on light grey paper: the background is stretched to 0.
	img := render(t, "5", 50, color.RGBA{20, 30, 160, 255}, color.RGBA{200, 200, 190, 255}, 90, 70, 25, 55)
	x, err := image.Preprocess(img, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	p := x.Data()
	_, _, x0, y0, x1, y1 := stats(p, 28)
	if max(x1-x0+1, y1-y0+1) != 20 {
		t.Errorf("bounding box %d×%d, want longer side 20", x1-x0+1, y1-y0+1)
	}
	var peak float32
	for _, v := range p {
		peak = max(peak, v)
	}
	if peak < 0.99 {
		t.Errorf("brightest pixel %v, want 1 after contrast stretching", peak)
	}
}

func TestPreprocessTransparent(t *testing.T) {
	// Black ink on a transparent sheet, as a browser canvas exports it.
	img := goimage.NewNRGBA(goimage.Rect(0, 0, 40, 40))
	for y := 5; y < 35; y++ {
		for x := 18; x < 22; x++ {
			img.Set(x, y, color.NRGBA{0, 0, 0, 255})
		}
	}
	x, err := image.Preprocess(img, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	_, _, x0, y0, x1, y1 := stats(x.Data(), 28)
	if y1-y0+1 != 20 || x1-x0+1 < 2 || x1-x0+1 > 4 {
		t.Errorf("bar box %d×%d, want about 3×20", x1-x0+1, y1-y0+1)
	}
}

func TestPreprocessBlank(t *testing.T) {
	img := goimage.NewGray(goimage.Rect(0, 0, 30, 30))
	draw.Draw(img, img.Bounds(), goimage.NewUniform(color.White), goimage.Point{}, draw.Src)
	x, err := image.Preprocess(img, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range x.Data() {
		if v != 0 {
			t.Fatalf("blank image gave a non-zero pixel %v", v)
		}
	}
	if _, err := image.Preprocess(goimage.NewGray(goimage.Rect(0, 0, 0, 5)), image.MNIST); err == nil {
		t.Error("empty image: no error")
	}
	if _, err := image.Preprocess(img, image.Options{Size: 10, Box: 12}); err == nil || !strings.Contains(err.Error(), "box 12") {
		t.Errorf("box larger than size: error %v", err)
	}
}

func TestPreprocessGrayPanics(t *testing.T) {
	testutil.MustPanic(t, "PreprocessGray", func() {
		image.PreprocessGray(make([]float32, 5), 2, 3, image.MNIST)
	}, "image.PreprocessGray", "5 values", "2×3")
	testutil.MustPanic(t, "Resize", func() {
		image.Resize(make([]float32, 6), 2, 3, 0, 4)
	}, "image.Resize", "0×4")
}

func TestResize(t *testing.T) {
	// Shrinking by area averaging keeps the mean.
	src := make([]float32, 6*4)
	for i := range src {
		src[i] = float32(i%5) / 4
	}
	out := image.Resize(src, 6, 4, 3, 2)
	mean := func(p []float32) float64 {
		var s float64
		for _, v := range p {
			s += float64(v)
		}
		return s / float64(len(p))
	}
	if math.Abs(mean(out)-mean(src)) > 1e-6 {
		t.Errorf("area shrink changed the mean: %v → %v", mean(src), mean(out))
	}
	// 2×2 → 1×1 is the average.
	if got := image.Resize([]float32{0, 1, 0.5, 0.5}, 2, 2, 1, 1); math.Abs(float64(got[0])-0.5) > 1e-6 {
		t.Errorf("2×2 → 1×1 = %v, want 0.5", got[0])
	}
	// Enlarging a constant image keeps it constant; a ramp stays monotone.
	up := image.Resize([]float32{0.25, 0.25, 0.25, 0.25}, 2, 2, 5, 7)
	for _, v := range up {
		if math.Abs(float64(v)-0.25) > 1e-6 {
			t.Fatalf("enlarged constant image has %v", v)
		}
	}
	ramp := image.Resize([]float32{0, 1}, 2, 1, 8, 1)
	for i := 1; i < len(ramp); i++ {
		if ramp[i] < ramp[i-1] {
			t.Fatalf("enlarged ramp not monotone: %v", ramp)
		}
	}
	if ramp[0] != 0 || ramp[7] != 1 {
		t.Errorf("enlarged ramp ends %v, %v; want 0, 1", ramp[0], ramp[7])
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	img := render(t, "2", 48, color.Black, color.White, 64, 64, 16, 52)
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	pngPath := filepath.Join(dir, "two.png")
	jpgPath := filepath.Join(dir, "two.jpg")
	txtPath := filepath.Join(dir, "notes.txt")
	cutPath := filepath.Join(dir, "cut.png")
	for p, b := range map[string][]byte{
		pngPath: pngBuf.Bytes(),
		jpgPath: jpgBuf.Bytes(),
		txtPath: []byte("this is not an image\n"),
		cutPath: pngBuf.Bytes()[:pngBuf.Len()/2],
	} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := image.Load(pngPath, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	b, err := image.Load(jpgPath, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	// JPEG artefacts move values a little, not the digit.
	testutil.AssertClose(t, "JPEG vs PNG", b, a, 0.15, 0.15)
	r, err := image.Read(bytes.NewReader(pngBuf.Bytes()), image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "Read vs Load", r, a, 0, 0)

	for _, c := range []struct{ path, want string }{
		{txtPath, "not a PNG, JPEG or GIF image"},
		{cutPath, "png"},
		{filepath.Join(dir, "missing.png"), "no such file"},
	} {
		_, err := image.Load(c.path, image.MNIST)
		if err == nil {
			t.Errorf("%s: no error", c.path)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.path) || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want one line naming the file and %q", c.path, msg, c.want)
		}
	}
	if _, err := image.Load(txtPath, image.MNIST); !errors.Is(err, image.ErrNotImage) {
		t.Errorf("text file: error %v does not wrap ErrNotImage", err)
	}
}

func TestInvertString(t *testing.T) {
	for v, want := range map[image.Invert]string{image.InvertAuto: "auto", image.InvertNever: "never", image.InvertAlways: "always", 7: "Invert(7)"} {
		if v.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(v), v.String(), want)
		}
	}
}

func TestPreprocessCenterBox(t *testing.T) {
	// An "L" has its mass low and left of its box's centre: CenterBox centres
	// the box, CenterMass moves it.
	img := goimage.NewGray(goimage.Rect(0, 0, 60, 60))
	for y := 10; y < 50; y++ {
		for x := 10; x < 16; x++ {
			img.SetGray(x, y, color.Gray{255})
		}
	}
	for y := 44; y < 50; y++ {
		for x := 10; x < 40; x++ {
			img.SetGray(x, y, color.Gray{255})
		}
	}
	box, err := image.Preprocess(img, image.Options{Center: image.CenterBox})
	if err != nil {
		t.Fatal(err)
	}
	_, _, x0, y0, x1, y1 := stats(box.Data(), 28)
	if y0 != 4 || y1 != 23 || x0+x1 != 27 && x0+x1 != 26 && x0+x1 != 28 {
		t.Errorf("CenterBox: box x %d..%d y %d..%d, want the 20-pixel box centred", x0, x1, y0, y1)
	}
	mass, err := image.Preprocess(img, image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	cx, cy, _, _, _, _ := stats(mass.Data(), 28)
	if math.Abs(cx-14) > 0.5 || math.Abs(cy-14) > 0.5 {
		t.Errorf("CenterMass: centre of mass (%.2f, %.2f), want (14, 14)", cx, cy)
	}
	if _, err := image.Preprocess(img, image.Options{Center: 9}); err == nil {
		t.Error("Center 9: no error")
	}
	if image.CenterBox.String() != "box" || image.CenterMass.String() != "mass" || image.Center(9).String() != "Center(9)" {
		t.Error("Center.String")
	}
}

func TestGrayFastPaths(t *testing.T) {
	src := render(t, "8", 30, color.RGBA{200, 210, 190, 255}, color.RGBA{10, 20, 30, 255}, 40, 40, 8, 32)
	want, w, h := image.Gray(src)
	// Gray and YCbCr images take fast paths; sub-images keep their offsets.
	g := goimage.NewGray(src.Bounds())
	draw.Draw(g, g.Bounds(), src, goimage.Point{}, draw.Src)
	yc := goimage.NewYCbCr(src.Bounds(), goimage.YCbCrSubsampleRatio444)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, gg, b, _ := src.At(x, y).RGBA()
			yc.Y[yc.YOffset(x, y)], yc.Cb[yc.COffset(x, y)], yc.Cr[yc.COffset(x, y)] = color.RGBToYCbCr(uint8(r>>8), uint8(gg>>8), uint8(b>>8))
		}
	}
	for name, img := range map[string]goimage.Image{"gray": g, "ycbcr": yc} {
		got, gw, gh := image.Gray(img)
		if gw != w || gh != h {
			t.Fatalf("%s: size %d×%d, want %d×%d", name, gw, gh, w, h)
		}
		for i := range got {
			if d := got[i] - want[i]; d > 0.02 || d < -0.02 {
				t.Fatalf("%s: pixel %d = %v, want %v", name, i, got[i], want[i])
			}
		}
		sub := img.(interface {
			SubImage(goimage.Rectangle) goimage.Image
		}).SubImage(goimage.Rect(5, 7, 25, 30))
		sp, sw, sh := image.Gray(sub)
		if sw != 20 || sh != 23 {
			t.Fatalf("%s sub-image: size %d×%d", name, sw, sh)
		}
		for y := 0; y < sh; y++ {
			for x := 0; x < sw; x++ {
				if sp[y*sw+x] != got[(y+7)*w+x+5] {
					t.Fatalf("%s sub-image pixel (%d, %d) = %v, want %v", name, x, y, sp[y*sw+x], got[(y+7)*w+x+5])
				}
			}
		}
	}
}

func TestDecodeRefusesHugeImages(t *testing.T) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, goimage.NewGray(goimage.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Patch the IHDR chunk to claim 100000×100000 pixels, with a valid CRC.
	binary.BigEndian.PutUint32(b[16:], 100000)
	binary.BigEndian.PutUint32(b[20:], 100000)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	path := filepath.Join(t.TempDir(), "bomb.png")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := image.Load(path, image.MNIST)
	if err == nil || !strings.Contains(err.Error(), "too large") || !strings.Contains(err.Error(), path) {
		t.Errorf("huge image: error %v, want one naming the file and the size", err)
	}
}
