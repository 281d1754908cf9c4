package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	goimage "image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomedium"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/train"
)

// result is the outcome of one in-process deepgo invocation.
type result struct {
	code           int
	stdout, stderr string
}

// deepgo runs the command line in-process with the given extra callbacks.
func deepgo(t *testing.T, ctx context.Context, cbs []train.Callback, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, callbacks: cbs}
	code := a.run(ctx, args)
	return result{code, out.String(), errb.String()}
}

// mustRun runs a command line that must succeed.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := deepgo(t, context.Background(), nil, args...)
	if r.code != 0 {
		t.Fatalf("deepgo %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// lastJSON decodes the last line of s as a JSON object.
func lastJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last line of stdout is not a JSON object: %v\n%s", err, s)
	}
	return m
}

// errorLines returns the lines of stderr that are deepgo's error messages.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "deepgo: ") {
			out = append(out, l)
		}
	}
	return out
}

// writeTabularCSV writes n rows of a two-class problem with two numeric
// columns and a categorical one: the class is "hi" when x1 + shift(color) > 0.
// With label false the label column is left out.
func writeTabularCSV(t *testing.T, path string, n int, seed uint64, label bool) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	b.WriteString("x1,x2,color")
	if label {
		b.WriteString(",class")
	}
	b.WriteString("\n")
	colors := []string{"red", "green", "blue"}
	shift := map[string]float64{"red": 1.5, "green": -1.5, "blue": 0}
	var classes []string
	for i := 0; i < n; i++ {
		x1 := r.NormFloat64() * 2
		x2 := 100 + r.NormFloat64()*30 // noise on another scale
		c := colors[r.IntN(3)]
		cls := "lo"
		if x1+shift[c] > 0 {
			cls = "hi"
		}
		classes = append(classes, cls)
		fmt.Fprintf(&b, "%.4f,%.3f,%s", x1, x2, c)
		if label {
			fmt.Fprintf(&b, ",%s", cls)
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return classes
}

func TestTrainTabularPredictEval(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "train.csv")
	writeTabularCSV(t, data, 400, 1, true)
	out := filepath.Join(dir, "model")
	r := mustRun(t, "train", "tabular", "--data", data, "--label-col", "class", "--epochs", "40",
		"--hidden", "16", "--lr", "0.01", "--out", out, "--json")
	res := lastJSON(t, r.stdout)
	if acc, _ := res["val_accuracy"].(float64); acc < 0.9 {
		t.Errorf("validation accuracy %v, want ≥ 0.9 (result %v)", res["val_accuracy"], res)
	}
	if res["epochs"] != float64(40) || res["features"] != float64(5) || res["classes"] != float64(2) {
		t.Errorf("result %v: want 40 epochs, 5 features (2 numeric + 3 one-hot), 2 classes", res)
	}

	// The package records the preprocessing and loads back.
	pkg, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Preprocess) != 2 || pkg.Preprocess[0].Op != model.OpStandardize || pkg.Preprocess[1].Op != model.OpOneHot {
		t.Fatalf("preprocessing %+v, want standardize then one_hot", pkg.Preprocess)
	}
	if got := strings.Join(pkg.Preprocess[0].Columns, ","); got != "x1,x2" {
		t.Errorf("standardized columns %q, want x1,x2", got)
	}
	if got := strings.Join(pkg.Preprocess[1].Categories, ","); pkg.Preprocess[1].Column != "color" || got != "blue,green,red" {
		t.Errorf("one_hot %s %q, want color blue,green,red", pkg.Preprocess[1].Column, got)
	}
	if strings.Join(pkg.Labels, ",") != "hi,lo" {
		t.Errorf("labels %v, want [hi lo]", pkg.Labels)
	}

	// Predict raw rows of a new file without the label column (columns in
	// another order work too, they are found by name).
	fresh := filepath.Join(dir, "new.csv")
	want := writeTabularCSV(t, fresh, 50, 2, false)
	r = mustRun(t, "predict", "--model", out, "--json", fresh)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 50 {
		t.Fatalf("predict printed %d lines, want 50", len(lines))
	}
	right := 0
	for i, l := range lines {
		var p prediction
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatal(err)
		}
		if p.File != fresh || p.Line != i+2 || len(p.Probabilities) != 2 {
			t.Fatalf("prediction %d: %+v", i, p)
		}
		if p.Class == want[i] {
			right++
		}
	}
	if right < 45 {
		t.Errorf("predicted %d/50 new rows right, want ≥ 45", right)
	}
	r = mustRun(t, "predict", "--model", out, fresh)
	if !strings.HasPrefix(r.stdout, fresh+":2: ") || !strings.Contains(r.stdout, "hi:") {
		t.Errorf("text output %q", strings.SplitN(r.stdout, "\n", 2)[0])
	}

	// Eval on a labelled file.
	test := filepath.Join(dir, "test.csv")
	writeTabularCSV(t, test, 200, 3, true)
	r = mustRun(t, "eval", "--model", out, "--data", test, "--json")
	ev := lastJSON(t, r.stdout)
	if acc, _ := ev["accuracy"].(float64); acc < 0.9 || ev["examples"] != float64(200) {
		t.Errorf("eval %v, want accuracy ≥ 0.9 on 200 examples", ev)
	}
	r = mustRun(t, "summary", "--model", out)
	for _, s := range []string{"tabular-mlp", "Linear", "Total params: 130", "one_hot"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("summary lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestTrainTabularValFile(t *testing.T) {
	dir := t.TempDir()
	tr, va := filepath.Join(dir, "tr.csv"), filepath.Join(dir, "va.csv")
	writeTabularCSV(t, tr, 100, 4, true)
	writeTabularCSV(t, va, 30, 5, true)
	r := mustRun(t, "train", "tabular", "--data", tr, "--val", va, "--label-col", "class", "--epochs", "2",
		"--out", filepath.Join(dir, "m"), "--json")
	res := lastJSON(t, r.stdout)
	if res["train_examples"] != float64(100) {
		t.Errorf("with --val all 100 rows train; result %v", res)
	}
	if _, ok := res["val_accuracy"]; !ok {
		t.Errorf("no val_accuracy in %v", res)
	}
	r = deepgo(t, context.Background(), nil, "train", "tabular", "--data", tr, "--val", va, "--val-split", "0.3", "--label-col", "class")
	if r.code != exitUsage || !strings.Contains(r.stderr, "either --val or --val-split") {
		t.Errorf("--val with --val-split: exit %d, %q", r.code, r.stderr)
	}
}

// stopAt is a callback that cancels a context after a given global step.
func stopAt(step int, cancel context.CancelFunc) train.Callback {
	return &train.Funcs{BatchEnd: func(s *train.State) error {
		if s.GlobalStep == step {
			cancel()
		}
		return nil
	}}
}

func TestInterruptAndResume(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "train.csv")
	writeTabularCSV(t, data, 200, 6, true)
	args := func(out string) []string {
		return []string{"train", "tabular", "--data", data, "--label-col", "class", "--epochs", "3",
			"--batch-size", "16", "--hidden", "8", "--seed", "9", "--out", out, "--json"}
	}
	// Reference: an uninterrupted run.
	ref := filepath.Join(dir, "ref")
	mustRun(t, args(ref)...)

	// The same run, cancelled after step 13 of 30 (in epoch 1).
	out := filepath.Join(dir, "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := deepgo(t, ctx, []train.Callback{stopAt(13, cancel)}, args(out)...)
	if r.code != exitInterrupted {
		t.Fatalf("interrupted run: exit %d, want %d; stderr %s", r.code, exitInterrupted, r.stderr)
	}
	errs := errorLines(r.stderr)
	ckpt := out + ".ckpt"
	if len(errs) != 1 || !strings.Contains(errs[0], "interrupted") || !strings.Contains(errs[0], "--resume "+ckpt) {
		t.Fatalf("interrupted run: error lines %q, want one naming the interruption and the resume command", errs)
	}
	if _, err := os.Stat(filepath.Join(out, model.ManifestFile)); err == nil {
		t.Error("an interrupted run saved a model package")
	}
	// Resume with no other flags: the recorded settings are used.
	r = mustRun(t, "train", "tabular", "--resume", ckpt, "--json")
	res := lastJSON(t, r.stdout)
	if res["epochs"] != float64(3) || res["out"] != out {
		t.Errorf("resumed result %v: want 3 epochs saved to %s", res, out)
	}
	a, err := model.Load(ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := nn.StateDict(a.Module), nn.StateDict(b.Module)
	for k, v := range sa {
		wa, wb := v.Data(), sb[k].Data()
		for i := range wa {
			if wa[i] != wb[i] {
				t.Fatalf("%s[%d]: resumed %v, uninterrupted %v: resume is not exact", k, i, wb[i], wa[i])
			}
		}
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "train.csv")
	writeTabularCSV(t, data, 60, 8, true)
	tab := filepath.Join(dir, "tab")
	mustRun(t, "train", "tabular", "--data", data, "--label-col", "class", "--epochs", "1", "--out", tab)

	// A model.json with an unknown layer type.
	bad := filepath.Join(dir, "badlayer")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	mj, err := os.ReadFile(filepath.Join(tab, model.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bad, model.ManifestFile), bytes.Replace(mj, []byte(`"type": "ReLU"`), []byte(`"type": "Swish9"`), 1))
	w, err := os.ReadFile(filepath.Join(tab, model.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bad, model.WeightsFile), w)

	// A damaged checkpoint.
	ck := tab + ".ckpt"
	ckModel := filepath.Join(ck, "last", "model.safetensors")
	cm, err := os.ReadFile(ckModel)
	if err != nil {
		t.Fatal(err)
	}
	cm[len(cm)-1] ^= 0xff
	writeFile(t, ckModel, cm)

	// MNIST files, one of them truncated.
	mn := filepath.Join(dir, "mnist")
	writeFakeMNIST(t, mn, 20, 10)
	trunc := filepath.Join(mn, "train-images-idx3-ubyte.gz")
	ti, err := os.ReadFile(trunc)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, trunc, ti[:len(ti)-100])

	txt := filepath.Join(dir, "notes.txt")
	writeFile(t, txt, []byte("hello\n"))
	png := filepath.Join(dir, "digit.png")
	writeFile(t, png, encodePNG(t, renderDigit(t, goregular.TTF, "3", 40, color.Black, color.White, 60, 60, 15, 50)))
	short := filepath.Join(dir, "short.csv")
	writeFile(t, short, []byte("x1,color\n1,red\n"))

	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"not an image", []string{"predict", "--model", "MNIST", txt}, 1, []string{txt, "not a PNG, JPEG or GIF image"}},
		{"missing image", []string{"predict", "--model", "MNIST", png, filepath.Join(dir, "nope.png")}, 1, []string{"nope.png", "no such file"}},
		{"missing model", []string{"predict", "--model", filepath.Join(dir, "none"), png}, 1, []string{filepath.Join(dir, "none", "model.json"), "no such file"}},
		{"unknown layer", []string{"summary", "--model", bad}, 1, []string{filepath.Join(bad, "model.json"), "unknown layer type \"Swish9\""}},
		{"corrupt checkpoint", []string{"train", "tabular", "--resume", ck}, 1, []string{"model.safetensors"}},
		{"checkpoint of another task", []string{"train", "mnist", "--resume", ck}, 1, []string{ck, `"tabular" run, not mnist`}},
		{"truncated IDX", []string{"train", "mnist", "--data", mn, "--out", filepath.Join(dir, "m")}, 1, []string{mn, filepath.Base(trunc), "truncated"}},
		{"missing CSV", []string{"train", "tabular", "--data", filepath.Join(dir, "no.csv"), "--label-col", "class"}, 1, []string{"no.csv", "no such file"}},
		{"CSV lacks column", []string{"predict", "--model", tab, short}, 1, []string{short, `"x2"`}},
		{"bad label column", []string{"train", "tabular", "--data", data, "--label-col", "klass"}, 2, []string{data, `"klass"`}},
		{"image to tabular", []string{"eval", "--model", tab}, 2, []string{"--data"}},
		{"no model flag", []string{"summary"}, 2, []string{"--model"}},
		{"unknown flag", []string{"train", "mnist", "--epoch", "3"}, 2, []string{"unknown flag: --epoch"}},
		{"bad arch", []string{"train", "mnist", "--model", "rnn", "--data", mn}, 2, []string{`"rnn"`}},
		{"unknown command", []string{"serve"}, 2, []string{"serve"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			for i, a := range args {
				if a == "MNIST" {
					args = append([]string(nil), args...)
					args[i] = mnistModel(t)
				}
			}
			r := deepgo(t, context.Background(), nil, args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, c.code, r.stderr)
			}
			errs := errorLines(r.stderr)
			if len(errs) != 1 {
				t.Fatalf("%d error lines, want 1: %q", len(errs), r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(errs[0], w) {
					t.Errorf("error %q does not mention %q", errs[0], w)
				}
			}
			for _, bad := range []string{"panic", "goroutine", ".go:"} {
				if strings.Contains(r.stderr, bad) {
					t.Errorf("stderr has %q: %q", bad, r.stderr)
				}
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	r := mustRun(t, "version")
	if !strings.HasPrefix(r.stdout, "deepgo ") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("version printed %q", r.stdout)
	}
	r = mustRun(t, "--help")
	for _, c := range []string{"train", "eval", "predict", "summary", "version"} {
		if !strings.Contains(r.stdout, c) {
			t.Errorf("help lacks %q", c)
		}
	}
	if strings.Contains(r.stdout, "limit") {
		t.Error("hidden flags shown in help")
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\r\n c \n"); got != "a; b; c" {
		t.Errorf("oneLine = %q", got)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFakeMNIST writes the four MNIST files (uncompressed IDX under the
// .gz names, which the reader accepts) with random pixels.
func writeFakeMNIST(t *testing.T, dir string, ntrain, ntest int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	idx := func(n int, dims ...int) []byte {
		var b bytes.Buffer
		b.Write([]byte{0, 0, 8, byte(len(dims))})
		size := 1
		for _, d := range dims {
			b.Write([]byte{byte(d >> 24), byte(d >> 16), byte(d >> 8), byte(d)})
			size *= d
		}
		for i := 0; i < size; i++ {
			v := byte(r.IntN(256))
			if len(dims) == 1 {
				v %= 10
			}
			b.WriteByte(v)
		}
		return b.Bytes()
	}
	writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), idx(ntrain, ntrain, 28, 28))
	writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), idx(ntrain, ntrain))
	writeFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), idx(ntest, ntest, 28, 28))
	writeFile(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), idx(ntest, ntest))
}

// renderDigit draws text with a TrueType font at size pixels on a w×h canvas
// of colour bg, the glyph origin at (x, y).
func renderDigit(t *testing.T, ttf []byte, text string, size float64, fg, bg color.Color, w, h, x, y int) goimage.Image {
	t.Helper()
	f, err := opentype.Parse(ttf)
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

func encodePNG(t *testing.T, img goimage.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t *testing.T, img goimage.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// digitFiles writes the digits 0-9 as image files drawn with Go fonts at
// several sizes and positions, some dark-on-light and some light-on-dark,
// some PNG and some JPEG, and returns their paths (digit i at index i).
func digitFiles(t *testing.T, dir string) []string {
	t.Helper()
	fonts := [][]byte{goregular.TTF, gobold.TTF, gomedium.TTF}
	sizes := []float64{28, 36, 48, 64, 90}
	var paths []string
	for d := 0; d < 10; d++ {
		size := sizes[d%len(sizes)]
		w, h := int(size*1.6)+10*d, int(size*1.5)+5*d
		x, y := 5+3*d, int(size*1.15)
		fg, bg := color.Color(color.Black), color.Color(color.White)
		if d%2 == 1 {
			fg, bg = color.RGBA{240, 240, 220, 255}, color.RGBA{30, 20, 60, 255}
		}
		img := renderDigit(t, fonts[d%len(fonts)], fmt.Sprint(d), size, fg, bg, w, h, x, y)
		name := fmt.Sprintf("digit%d.png", d)
		b := encodePNG(t, img)
		if d%3 == 2 {
			name = fmt.Sprintf("digit%d.jpg", d)
			b = encodeJPEG(t, img)
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, b)
		paths = append(paths, p)
	}
	return paths
}
