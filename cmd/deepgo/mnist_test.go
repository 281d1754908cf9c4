package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/monitor"
)

// The MNIST model shared by the tests: the reference CNN trained for one
// epoch on the first 20000 training images (seed 1), evaluated on the first
// 2000 test images. Training it takes about ten seconds on two cores.
var shared struct {
	once sync.Once
	dir  string
	res  map[string]any
	err  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// mnistModel returns the directory of the shared MNIST model, training it
// on first use.
func mnistModel(t *testing.T) string {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "deepgo-mnist-test-")
		if err != nil {
			shared.err = err.Error()
			return
		}
		shared.dir = dir
		out := filepath.Join(dir, "mnist-model")
		r := deepgo(t, context.Background(), nil, "train", "mnist", "--epochs", "1", "--limit", "20000",
			"--test-limit", "2000", "--seed", "1", "--out", out, "--json")
		if r.code != 0 {
			shared.err = r.stderr
			return
		}
		var res map[string]any
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
			shared.err = "bad JSON result: " + r.stdout
			return
		}
		shared.res = res
	})
	if shared.err != "" {
		t.Fatalf("training the shared MNIST model failed: %s", shared.err)
	}
	return filepath.Join(shared.dir, "mnist-model")
}

func TestTrainMNISTResult(t *testing.T) {
	dir := mnistModel(t)
	res := shared.res
	if acc, _ := res["test_accuracy"].(float64); acc < 0.92 {
		// PyTorch 1.13 reaches 0.93-0.94 on these images with this setup.
		t.Errorf("test accuracy after one epoch on 20000 images: %v, want ≥ 0.92", res["test_accuracy"])
	}
	for _, k := range []string{"test_loss", "seconds", "train_loss", "train_accuracy"} {
		if _, ok := res[k].(float64); !ok {
			t.Errorf("result lacks %s: %v", k, res)
		}
	}
	if res["epochs"] != float64(1) || res["train_examples"] != float64(20000) || res["test_examples"] != float64(2000) {
		t.Errorf("result %v: want 1 epoch, 20000 training and 2000 test examples", res)
	}
	pkg, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pkg.Labels, "") != "0123456789" {
		t.Errorf("labels %v", pkg.Labels)
	}
	if len(pkg.Preprocess) != 2 || pkg.Preprocess[0].Op != model.OpImage || pkg.Preprocess[1].Op != model.OpScale {
		t.Errorf("preprocessing %+v, want image then scale", pkg.Preprocess)
	}
	if !isMNISTModel(pkg) {
		t.Error("the saved package is not recognised as an MNIST model")
	}
	if prof, err := monitor.FromPackage(pkg); err != nil {
		t.Errorf("the package carries no drift-monitor profile: %v", err)
	} else if err := prof.Validate(); err != nil {
		t.Errorf("the package's monitor profile is invalid: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir+".ckpt", "last", "state.json")); err != nil {
		t.Errorf("no checkpoint beside the package: %v", err)
	}

	// eval reproduces the test accuracy on the same images.
	r := mustRun(t, "eval", "--model", dir, "--limit", "2000", "--json")
	ev := lastJSON(t, r.stdout)
	if ev["accuracy"] != res["test_accuracy"] || ev["examples"] != float64(2000) {
		t.Errorf("eval %v, training reported %v on the same 2000 images", ev, res["test_accuracy"])
	}
	r = mustRun(t, "summary", "--model", dir)
	for _, s := range []string{"Conv2D", "MaxPool2D", "[1 32 26 26]", "Total params: 347,146", "labels 0 1 2 3 4 5 6 7 8 9"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("summary lacks %q:\n%s", s, r.stdout)
		}
	}
}

// TestPredictRenderedDigits checks the whole image path on digits drawn
// with fonts, which MNIST never saw: at least 9 of 10 must be recognised.
func TestPredictRenderedDigits(t *testing.T) {
	dir := mnistModel(t)
	paths := digitFiles(t, t.TempDir())
	r := mustRun(t, append([]string{"predict", "--model", dir, "--json"}, paths...)...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d predictions, want 10:\n%s", len(lines), r.stdout)
	}
	right := 0
	for i, l := range lines {
		var p prediction
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatal(err)
		}
		if p.File != paths[i] || len(p.Probabilities) != 10 {
			t.Fatalf("prediction %d: %+v", i, p)
		}
		var sum float64
		for _, q := range p.Probabilities {
			sum += q
		}
		if sum < 0.999 || sum > 1.001 || p.Probability != p.Probabilities[p.Index] {
			t.Errorf("%s: probabilities %v sum to %v", p.File, p.Probabilities, sum)
		}
		if p.Index == i && p.Class == string(rune('0'+i)) {
			right++
		}
		t.Logf("%s: predicted %s (%.3f)", filepath.Base(p.File), p.Class, p.Probability)
	}
	if right < 9 {
		t.Errorf("%d of 10 rendered digits recognised, want ≥ 9", right)
	}
	// Text output: one line per file with the class and ten probabilities.
	r = mustRun(t, "predict", "--model", dir, paths[0], paths[1])
	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(out) != 2 || !strings.HasPrefix(out[0], paths[0]+": ") || strings.Count(out[0], ":0.") < 5 {
		t.Errorf("text output %q", r.stdout)
	}
}
