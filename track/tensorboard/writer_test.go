package tensorboard_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deepgo/deepgo/track/tensorboard"
)

func newWriter(t *testing.T, dir string) *tensorboard.Writer {
	t.Helper()
	w, err := tensorboard.NewWriterOptions(dir, tensorboard.Options{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestFileNameAndFirstEvent(t *testing.T) {
	root := t.TempDir()
	dir, err := tensorboard.RunDir(filepath.Join(root, "runs"), "exp1")
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := newWriter(t, dir), newWriter(t, dir)
	if w1.Path() == w2.Path() {
		t.Fatalf("two writers share the file %s", w1.Path())
	}
	if w1.Dir() != dir {
		t.Fatalf("Dir %q, want %q", w1.Dir(), dir)
	}
	re := regexp.MustCompile(`^events\.out\.tfevents\.\d{10}\.[A-Za-z0-9._-]+\.\d+\.\d+$`)
	for _, w := range []*tensorboard.Writer{w1, w2} {
		if base := filepath.Base(w.Path()); !re.MatchString(base) {
			t.Fatalf("file name %q does not match %v", base, re)
		}
	}
	// The first record is on disk as soon as the writer exists.
	evs := readEvents(t, w1.Path())
	if len(evs) != 1 || evs[0].Writer != "deepgo" || evs[0].WallTime <= 0 || evs[0].Step != 0 {
		t.Fatalf("first events: %+v", evs)
	}
	w3, err := tensorboard.NewWriterOptions(dir, tensorboard.Options{FlushInterval: -1, Suffix: ".v2"})
	if err != nil {
		t.Fatal(err)
	}
	defer w3.Close()
	if !strings.HasSuffix(w3.Path(), ".v2") {
		t.Fatalf("suffix missing: %s", w3.Path())
	}
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`, "a\nb"} {
		if _, err := tensorboard.RunDir(root, bad); err == nil {
			t.Errorf("RunDir(%q): no error", bad)
		}
	}
}

func TestNewWriterErrors(t *testing.T) {
	if _, err := tensorboard.NewWriter(""); err == nil {
		t.Error("empty dir: no error")
	}
	// A directory path that is a file.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tensorboard.NewWriter(filepath.Join(f, "run")); err == nil {
		t.Error("dir under a file: no error")
	}
	if _, err := tensorboard.NewWriterOptions(t.TempDir(), tensorboard.Options{Suffix: "/x"}); err == nil {
		t.Error("suffix with a slash: no error")
	}
}

func TestScalarsRoundTrip(t *testing.T) {
	w := newWriter(t, t.TempDir())
	type pt struct {
		tag  string
		v    float64
		step int64
	}
	pts := []pt{
		{"loss", 2.302585092994046, 0}, {"loss", 0.1, 1}, {"loss", 1e-30, 2},
		{"acc", 0.984375, 7}, {"acc", -3.5, -1}, {"big", 1e38, 1 << 40},
		{"nan", math.NaN(), 3}, {"inf", math.Inf(1), 4}, {"ninf", math.Inf(-1), 5},
		{"unicodé/τ", 42, 6},
	}
	for _, p := range pts {
		if err := w.Scalar(p.tag, p.v, p.step); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := summaries(readEvents(t, w.Path()))
	if len(got) != len(pts) {
		t.Fatalf("%d values, want %d", len(got), len(pts))
	}
	for i, p := range pts {
		g := got[i]
		want := float32(p.v)
		same := g.Scalar == want || (math.IsNaN(float64(want)) && math.IsNaN(float64(g.Scalar)))
		if g.Kind != "scalar" || g.Tag != p.tag || g.Step != p.step || !same {
			t.Errorf("value %d: %+v, want %s=%v at %d", i, g, p.tag, want, p.step)
		}
	}
}

func TestBadTagsAndClosedWriter(t *testing.T) {
	w := newWriter(t, t.TempDir())
	for _, tag := range []string{"", "a\x00b", "tab\there", string([]byte{0xff, 0xfe})} {
		if err := w.Scalar(tag, 1, 0); err == nil {
			t.Errorf("Scalar(%q): no error", tag)
		}
		if err := w.Histogram(tag, []float32{1}, 0); err == nil {
			t.Errorf("Histogram(%q): no error", tag)
		}
	}
	if err := w.Image("img", nil, 0); err == nil {
		t.Error("nil image: no error")
	}
	if err := w.Image("img", image.NewGray(image.Rect(0, 0, 0, 5)), 0); err == nil {
		t.Error("empty image: no error")
	}
	if err := w.HistogramStats("h", tensorboard.HistogramStats{BucketLimit: []float64{1}}, 0); err == nil {
		t.Error("mismatched buckets: no error")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Scalar("x", 1, 0); !errors.Is(err, tensorboard.ErrClosed) {
		t.Fatalf("Scalar after Close: %v", err)
	}
	if err := w.Flush(); !errors.Is(err, tensorboard.ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	// Nothing but the first event was written.
	if evs := readEvents(t, w.Path()); len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
}

func TestDefaultBucketLimits(t *testing.T) {
	l := tensorboard.DefaultBucketLimits()
	// 774 positive edges from 1e-12 by 1.1 below 1e20, plus DBL_MAX; the
	// same negated; and 0.
	n := 0
	for v := 1e-12; v < 1e20; v *= 1.1 {
		n++
	}
	if n != 774 || len(l) != 2*(n+1)+1 {
		t.Fatalf("%d edges, want %d", len(l), 2*(n+1)+1)
	}
	mid := len(l) / 2
	if l[0] != -math.MaxFloat64 || l[len(l)-1] != math.MaxFloat64 || l[mid] != 0 || l[mid+1] != 1e-12 || l[mid-1] != -1e-12 {
		t.Fatalf("edges %v ... %v ... %v", l[:2], l[mid-1:mid+2], l[len(l)-2:])
	}
	for i := 1; i < len(l); i++ {
		if !(l[i] > l[i-1]) {
			t.Fatalf("edges not increasing at %d: %v, %v", i, l[i-1], l[i])
		}
	}
	l[0] = 5
	if tensorboard.DefaultBucketLimits()[0] == 5 {
		t.Fatal("DefaultBucketLimits returns shared storage")
	}
}

func TestNewHistogram(t *testing.T) {
	vals := []float32{-2, -1, 0, 0, 0.5, 1, 1, 3, float32(math.NaN()), float32(math.Inf(1))}
	h := tensorboard.NewHistogram(vals)
	if h.Num != 8 || h.Min != -2 || h.Max != 3 || h.Sum != 2.5 || h.SumSquares != 4+1+0.25+1+1+9 {
		t.Fatalf("stats %+v", h)
	}
	if len(h.Bucket) != len(h.BucketLimit) {
		t.Fatal("bucket lengths differ")
	}
	// Every value lies in the bucket [limit[i-1], limit[i]) that counts it:
	// recount from the encoded buckets.
	var total float64
	for i, c := range h.Bucket {
		lo := math.Inf(-1)
		if i > 0 {
			lo = h.BucketLimit[i-1]
		}
		want := 0.0
		for _, v := range vals {
			if f := float64(v); f >= lo && f < h.BucketLimit[i] {
				want++
			}
		}
		if c != want {
			t.Fatalf("bucket %d [%v, %v): %v, want %v", i, lo, h.BucketLimit[i], c, want)
		}
		total += c
		// Runs of empty buckets are merged: no two empty buckets in a row.
		if i > 0 && c == 0 && h.Bucket[i-1] == 0 {
			t.Fatalf("empty buckets %d and %d not merged", i-1, i)
		}
	}
	if total != 8 {
		t.Fatalf("buckets hold %v values", total)
	}
	if h.BucketLimit[len(h.BucketLimit)-1] != math.MaxFloat64 {
		t.Fatalf("last limit %v", h.BucketLimit[len(h.BucketLimit)-1])
	}
	// 0 falls in the bucket whose limit is the first edge above 0.
	for i, lim := range h.BucketLimit {
		if lim == 1e-12 {
			if h.Bucket[i] != 2 {
				t.Fatalf("bucket ending at 1e-12 has %v, want the two zeros", h.Bucket[i])
			}
		}
	}
	e := tensorboard.NewHistogram(nil)
	if e.Num != 0 || len(e.Bucket) != 1 || e.Bucket[0] != 0 || e.BucketLimit[0] != math.MaxFloat64 {
		t.Fatalf("empty histogram %+v", e)
	}
}

func TestHistogramAndImageRoundTrip(t *testing.T) {
	w := newWriter(t, t.TempDir())
	vals := []float32{0.1, -0.2, 0.3, 5, -7}
	if err := w.Histogram("weights/fc.weight", vals, 3); err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(image.Rect(0, 0, 5, 3))
	gray.Pix[4] = 200
	rgba := image.NewRGBA(image.Rect(0, 0, 4, 6))
	for i := range rgba.Pix {
		rgba.Pix[i] = 255
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	nrgba.Set(1, 1, color.NRGBA{10, 20, 30, 40})
	for i, img := range []image.Image{gray, rgba, nrgba} {
		if err := w.Image(fmt.Sprintf("img/%d", i), img, int64(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := summaries(readEvents(t, w.Path()))
	if len(got) != 4 {
		t.Fatalf("%d values", len(got))
	}
	want := tensorboard.NewHistogram(vals)
	h := got[0]
	if h.Kind != "histo" || h.Tag != "weights/fc.weight" || h.Step != 3 || fmt.Sprint(h.Histo) != fmt.Sprint(want) {
		t.Fatalf("histogram %+v, want %+v", h, want)
	}
	for i, tc := range []struct {
		img image.Image
		cs  int64
	}{{gray, 1}, {rgba, 3}, {nrgba, 4}} {
		g := got[1+i]
		b := tc.img.Bounds()
		if g.Kind != "image" || g.Step != int64(10+i) || g.Image.Width != int64(b.Dx()) || g.Image.Height != int64(b.Dy()) || g.Image.Colorspace != tc.cs {
			t.Fatalf("image %d: %+v", i, g)
		}
		dec, err := png.Decode(bytes.NewReader(g.Image.PNG))
		if err != nil {
			t.Fatal(err)
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r1, g1, b1, a1 := dec.At(x, y).RGBA()
				r2, g2, b2, a2 := tc.img.At(x, y).RGBA()
				if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
					t.Fatalf("image %d pixel (%d,%d) differs", i, x, y)
				}
			}
		}
	}
}

func TestConcurrentWrites(t *testing.T) {
	w, err := tensorboard.NewWriterOptions(t.TempDir(), tensorboard.Options{FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, per = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				var err error
				switch i % 3 {
				case 0, 1:
					err = w.Scalar(fmt.Sprintf("g%d", g), float64(i), int64(i))
				case 2:
					err = w.Histogram(fmt.Sprintf("h%d", g), []float32{float32(i)}, int64(i))
				}
				if err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					if err := w.Flush(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := summaries(readEvents(t, w.Path()))
	if len(got) != goroutines*per {
		t.Fatalf("%d values, want %d", len(got), goroutines*per)
	}
	// Each goroutine's values arrive complete and in order.
	next := map[string]int64{}
	for _, v := range got {
		key := v.Tag[1:]
		if v.Step != next[key] {
			t.Fatalf("goroutine %s: step %d, want %d", key, v.Step, next[key])
		}
		if v.Kind == "scalar" && float64(v.Scalar) != float64(v.Step) {
			t.Fatalf("value %v at step %d", v.Scalar, v.Step)
		}
		next[key]++
	}
}
