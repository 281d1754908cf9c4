package data_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

func TestNormalize(t *testing.T) {
	x := tensor.FromSlice([]float32{1, 2, 3, 4}, 2, 1, 2)
	got := data.Normalize([]float32{1, 2}, []float32{2, 0.5})(x, nil)
	want := []float32{0, 0.5, 2, 4}
	if !slices.Equal(got.Data(), want) {
		t.Errorf("per channel: %v, want %v", got.Data(), want)
	}
	got = data.Normalize([]float32{1}, []float32{4})(x, nil)
	if !slices.Equal(got.Data(), []float32{0, 0.25, 0.5, 0.75}) {
		t.Errorf("global: %v", got.Data())
	}
	if !slices.Equal(x.Data(), []float32{1, 2, 3, 4}) {
		t.Errorf("Normalize modified its input: %v", x.Data())
	}
	testutil.MustPanic(t, "channels", func() {
		data.Normalize([]float32{0, 0, 0}, []float32{1, 1, 1})(x, nil)
	}, "data.Normalize", "[2 1 2]", "3 channels")
	testutil.MustPanic(t, "std", func() { data.Normalize([]float32{0}, []float32{0}) }, "data.Normalize", "positive")
}

func TestShift(t *testing.T) {
	x := tensor.FromSlice([]float32{
		1, 2, 3,
		4, 5, 6,
		7, 8, 9}, 3, 3)
	got := data.Shift(x, 1, -1)
	want := []float32{
		0, 4, 5,
		0, 7, 8,
		0, 0, 0}
	if !slices.Equal(got.Data(), want) {
		t.Errorf("Shift(1,-1) = %v, want %v", got.Data(), want)
	}
	testutil.MustPanic(t, "shape", func() { data.Shift(tensor.Zeros(4), 1, 1) }, "data.Shift", "[4]")
}

func TestRotate(t *testing.T) {
	x := tensor.FromSlice([]float32{
		1, 2, 3,
		4, 5, 6,
		7, 8, 9}, 1, 3, 3)
	// Counter-clockwise by 90 degrees: the right column becomes the top row.
	got := data.Rotate(x, 90)
	want := []float32{
		3, 6, 9,
		2, 5, 8,
		1, 4, 7}
	testutil.AssertClose(t, "Rotate 90", got, tensor.FromSlice(want, 1, 3, 3), 0, 1e-5)
	testutil.AssertClose(t, "Rotate 0", data.Rotate(x, 0), x, 0, 0)
	testutil.AssertClose(t, "Rotate 360", data.Rotate(x, 360), x, 0, 1e-5)
	testutil.AssertClose(t, "Rotate -90 of 90", data.Rotate(got, -90), x, 0, 1e-5)
	// 45 degrees: the centre stays, the corner (0,0) samples from outside.
	r45 := data.Rotate(x, 45)
	if r45.At(0, 1, 1) != 5 {
		t.Errorf("centre moved: %v", r45.At(0, 1, 1))
	}
	// Output (0,1) = u=-1,v=0 maps to source (cx - cos45, cy - sin45) =
	// (1-0.7071, 1-0.7071): bilinear mix of 1,2,4,5.
	f := 1 - math.Sqrt2/2
	wantV := (1-f)*((1-f)*1+f*2) + f*((1-f)*4+f*5)
	if d := math.Abs(float64(r45.At(0, 1, 0)) - wantV); d > 1e-5 {
		t.Errorf("Rotate 45 at (1,0) = %v, want %v", r45.At(0, 1, 0), wantV)
	}
}

func TestRandomAugmentations(t *testing.T) {
	img := make([]float32, 28*28)
	img[14*28+14] = 1
	x := tensor.FromSlice(img, 1, 28, 28)
	aug := data.Compose(data.RandomShift(2), nil, data.RandomRotation(10))
	a := aug(x, rand.New(rand.NewPCG(1, 2)))
	b := aug(x, rand.New(rand.NewPCG(1, 2)))
	if !slices.Equal(a.Data(), b.Data()) {
		t.Errorf("same rng state gave different augmentations")
	}
	if !tensor.SameShape(a.Shape(), x.Shape()) {
		t.Errorf("shape %v", a.Shape())
	}
	moved := 0
	for s := uint64(0); s < 20; s++ {
		y := data.RandomShift(3)(x, rand.New(rand.NewPCG(s, 0)))
		// The single bright pixel lands within 3 pixels of the centre.
		found := false
		for r := 11; r <= 17; r++ {
			for c := 11; c <= 17; c++ {
				if y.At(0, r, c) == 1 {
					found = true
					if r != 14 || c != 14 {
						moved++
					}
				}
			}
		}
		if !found {
			t.Fatalf("seed %d: shifted pixel left the ±3 window", s)
		}
	}
	if moved == 0 {
		t.Errorf("RandomShift never moved the image")
	}
	testutil.MustPanic(t, "negative", func() { data.RandomShift(-1) }, "data.RandomShift", "-1")
	testutil.MustPanic(t, "nan", func() { data.RandomRotation(math.NaN()) }, "data.RandomRotation")
}
