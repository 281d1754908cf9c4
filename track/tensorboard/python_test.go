package tensorboard_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/track/tensorboard"
)

const python = "/usr/bin/python3"

// needPythonReader skips the test unless protoc and the python3 crc32c and
// protobuf modules are installed.
func needPythonReader(t *testing.T) {
	t.Helper()
	const hint = "independent TensorBoard reader check needs Debian packages python3-crc32c python3-protobuf protobuf-compiler (apt-get install -y python3-crc32c python3-protobuf protobuf-compiler)"
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Skipf("%s: protoc not found", hint)
	}
	if out, err := exec.Command(python, "-c", "import crc32c, google.protobuf").CombinedOutput(); err != nil {
		t.Skipf("%s: %v: %s", hint, err, strings.TrimSpace(string(out)))
	}
}

// pyNum is a float from read_events.py, where non-finite values are strings.
type pyNum float64

func (n *pyNum) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*n = pyNum(math.NaN())
	case `"Infinity"`:
		*n = pyNum(math.Inf(1))
	case `"-Infinity"`:
		*n = pyNum(math.Inf(-1))
	default:
		var f float64
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		*n = pyNum(f)
	}
	return nil
}

type pyReport struct {
	Records     int    `json:"records"`
	FileVersion string `json:"file_version"`
	Writer      string `json:"writer"`
	Scalars     []struct {
		Tag      string  `json:"tag"`
		Step     int64   `json:"step"`
		WallTime float64 `json:"wall_time"`
		Value    pyNum   `json:"value"`
	} `json:"scalars"`
	Histograms []struct {
		Tag         string    `json:"tag"`
		Step        int64     `json:"step"`
		Min         pyNum     `json:"min"`
		Max         pyNum     `json:"max"`
		Num         float64   `json:"num"`
		Sum         pyNum     `json:"sum"`
		SumSquares  pyNum     `json:"sum_squares"`
		BucketLimit []pyNum   `json:"bucket_limit"`
		Bucket      []float64 `json:"bucket"`
	} `json:"histograms"`
	Images []struct {
		Tag        string `json:"tag"`
		Step       int64  `json:"step"`
		Height     int    `json:"height"`
		Width      int    `json:"width"`
		Colorspace int    `json:"colorspace"`
		PNGWidth   int    `json:"png_width"`
		PNGHeight  int    `json:"png_height"`
	} `json:"images"`
}

func runPythonReader(t *testing.T, path string) (pyReport, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(python, filepath.Join("testdata", "read_events.py"), path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return pyReport{}, fmt.Errorf("read_events.py: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var rep pyReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("read_events.py output: %v: %s", err, stdout.String())
	}
	return rep, nil
}

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// TestIndependentReader writes an event file with Go and reads it with
// Python's protobuf (from testdata/event.proto, compiled by protoc) and the
// crc32c module: every CRC, every event, every scalar, histogram and image.
func TestIndependentReader(t *testing.T) {
	needPythonReader(t)
	w := newWriter(t, filepath.Join(t.TempDir(), "runs", "py"))
	type sc struct {
		tag  string
		v    float64
		step int64
	}
	var scalars []sc
	for i := range 50 {
		scalars = append(scalars, sc{"batch/loss", 2.3 * math.Exp(-float64(i)/10), int64(i)})
	}
	scalars = append(scalars, sc{"epoch/accuracy", 0.1 + 1e-7, 0}, sc{"edge/nan", math.NaN(), 1},
		sc{"edge/inf", math.Inf(1), 2}, sc{"edge/neg", -1e-40, -3}, sc{"edge/big step", 1, 1 << 50})
	for _, s := range scalars {
		if err := w.Scalar(s.tag, s.v, s.step); err != nil {
			t.Fatal(err)
		}
	}
	hvals := [][]float32{{}, {0}, {-1, 1, 2, 3, 1e-13, -1e30, 3e38, float32(math.NaN())}}
	r := uint32(1)
	var many []float32
	for range 1000 {
		r = r*1664525 + 1013904223
		many = append(many, float32(int32(r))/float32(1<<31))
	}
	hvals = append(hvals, many)
	for i, v := range hvals {
		if err := w.Histogram(fmt.Sprintf("hist/%d", i), v, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	cm := metrics.NewConfusionMatrix([]int64{0, 1, 2, 2, 1}, []int64{0, 1, 2, 1, 1}, 3)
	rgb := image.NewRGBA(image.Rect(0, 0, 7, 9))
	for i := range rgb.Pix {
		rgb.Pix[i] = 255
	}
	imgs := []image.Image{tensorboard.ConfusionMatrixImage(cm), image.NewGray(image.Rect(0, 0, 28, 28)), rgb, image.NewNRGBA(image.Rect(0, 0, 3, 2))}
	imgs[3].(*image.NRGBA).Set(0, 0, color.NRGBA{1, 2, 3, 4})
	for i, img := range imgs {
		if err := w.Image(fmt.Sprintf("img/%d", i), img, int64(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	rep, err := runPythonReader(t, w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if rep.FileVersion != "brain.Event:2" || rep.Writer != "deepgo" {
		t.Fatalf("file version %q, writer %q", rep.FileVersion, rep.Writer)
	}
	if want := 1 + len(scalars) + len(hvals) + len(imgs); rep.Records != want {
		t.Fatalf("%d records, want %d", rep.Records, want)
	}
	if len(rep.Scalars) != len(scalars) {
		t.Fatalf("%d scalars, want %d", len(rep.Scalars), len(scalars))
	}
	for i, s := range scalars {
		g := rep.Scalars[i]
		if g.Tag != s.tag || g.Step != s.step || !sameFloat(float64(g.Value), float64(float32(s.v))) || g.WallTime <= 0 {
			t.Errorf("scalar %d: %+v, want %s=%v at %d", i, g, s.tag, float32(s.v), s.step)
		}
	}
	if len(rep.Histograms) != len(hvals) {
		t.Fatalf("%d histograms", len(rep.Histograms))
	}
	for i, v := range hvals {
		g, want := rep.Histograms[i], tensorboard.NewHistogram(v)
		if g.Tag != fmt.Sprintf("hist/%d", i) || g.Step != int64(i) || float64(g.Min) != want.Min || float64(g.Max) != want.Max ||
			g.Num != want.Num || float64(g.Sum) != want.Sum || float64(g.SumSquares) != want.SumSquares ||
			len(g.Bucket) != len(want.Bucket) || len(g.BucketLimit) != len(want.BucketLimit) {
			t.Fatalf("histogram %d: %+v\nwant %+v", i, g, want)
		}
		var n float64
		for k := range g.Bucket {
			if g.Bucket[k] != want.Bucket[k] || float64(g.BucketLimit[k]) != want.BucketLimit[k] {
				t.Fatalf("histogram %d bucket %d: %v/%v, want %v/%v", i, k, g.Bucket[k], g.BucketLimit[k], want.Bucket[k], want.BucketLimit[k])
			}
			n += g.Bucket[k]
		}
		finite := 0
		for _, x := range v {
			if !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) {
				finite++
			}
		}
		if n != float64(finite) || g.Num != float64(finite) {
			t.Fatalf("histogram %d: buckets hold %v and num is %v, want %d finite values", i, n, g.Num, finite)
		}
	}
	if len(rep.Images) != len(imgs) {
		t.Fatalf("%d images", len(rep.Images))
	}
	for i, img := range imgs {
		g, b := rep.Images[i], img.Bounds()
		if g.Width != b.Dx() || g.Height != b.Dy() || g.PNGWidth != b.Dx() || g.PNGHeight != b.Dy() ||
			g.Colorspace != tensorboard.Colorspace(img) || g.Step != int64(100+i) || g.Tag != fmt.Sprintf("img/%d", i) {
			t.Errorf("image %d: %+v, want %dx%d", i, g, b.Dx(), b.Dy())
		}
	}
}

// TestIndependentReaderRejectsDamage checks that the Python reader is not
// vacuous: it fails on a flipped data byte and on a truncated file.
func TestIndependentReaderRejectsDamage(t *testing.T) {
	needPythonReader(t)
	w := newWriter(t, t.TempDir())
	if err := w.Scalar("x", 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	flipped := bytes.Clone(b)
	flipped[len(flipped)-6] ^= 1 // inside the last record's data
	// A valid record holding an Event field the .proto does not declare
	// (session_log, 7) must fail the unknown-field check.
	first, err := tensorboard.ReadRecords(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	unknown := append(frame(first[0]), frame([]byte{7<<3 | 2, 0})...)
	cases := map[string][]byte{"flipped": flipped, "truncated": b[:len(b)-2], "unknown": unknown}
	want := map[string]string{"flipped": "CRC", "truncated": "truncated", "unknown": "unknown fields"}
	for name, content := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := runPythonReader(t, p); err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s file: %v", name, err)
		}
	}
}
