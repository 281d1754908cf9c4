package tensorboard_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/track/tensorboard"
	"github.com/deepgo/deepgo/train"
)

// fitBlobs trains a 2-8-2 MLP on two Gaussian blobs for 3 epochs of 4
// batches with cb.
func fitBlobs(t *testing.T, cb train.Callback) (*train.History, nn.Module) {
	t.Helper()
	r := tensor.NewRNG(1)
	const n = 64
	x := make([]float32, 2*n)
	y := make([]int64, n)
	for i := range n {
		c := int64(i % 2)
		m := float64(2*c - 1)
		x[2*i], x[2*i+1] = float32(m+r.NormFloat64()), float32(m+r.NormFloat64())
		y[i] = c
	}
	ds := data.NewTensorDataset(tensor.FromSlice(x, n, 2), tensor.FromInt64(y, n))
	net := nn.NewSequential(nn.NewLinear(r, 2, 8, true), &nn.ReLU{}, nn.NewLinear(r, 8, 2, true))
	hist, err := train.Fit(context.Background(), net, train.Config{
		Epochs:    3,
		Optimizer: optim.NewAdam(nn.Parameters(net), optim.AdamConfig{LR: 0.01}),
		Loss:      func(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) },
		Train:     data.NewLoader(ds, data.LoaderConfig{BatchSize: 16, Shuffle: true, Seed: 1}),
		Val:       data.NewLoader(ds, data.LoaderConfig{BatchSize: 32}),
		Metrics:   []train.Metric{train.Accuracy()},
		Callbacks: []train.Callback{cb},
		Quiet:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return hist, net
}

func TestCallbackLogsRun(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "runs", "blobs"))
	cb := tensorboard.NewCallback(w)
	var endStep int64 = -1
	cb.OnEnd = func(w *tensorboard.Writer, s *train.State, step int64) error {
		endStep = step
		cm := metrics.NewConfusionMatrix([]int64{0, 1, 1}, []int64{0, 1, 0}, 2)
		return w.Image("eval/confusion_matrix", tensorboard.ConfusionMatrixImage(cm), step)
	}
	hist, net := fitBlobs(t, cb)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	vals := summaries(readEvents(t, w.Path()))

	byTag := map[string][]stepValue{}
	for _, v := range vals {
		byTag[v.Tag] = append(byTag[v.Tag], v)
	}
	// One batch loss per step, at global steps 1..12.
	bl := byTag["batch/loss"]
	if len(bl) != 12 {
		t.Fatalf("%d batch losses, want 12", len(bl))
	}
	for i, v := range bl {
		if v.Step != int64(i+1) || v.Kind != "scalar" || !(v.Scalar > 0) {
			t.Fatalf("batch loss %d: %+v", i, v)
		}
	}
	// Epoch logs equal the History's, as float32.
	for _, name := range append(hist.Names, "lr") {
		got := byTag["epoch/"+name]
		if len(got) != 3 {
			t.Fatalf("epoch/%s: %d values, want 3", name, len(got))
		}
		for e, v := range got {
			want := hist.Epochs[e].LR
			if name != "lr" {
				want = hist.Epochs[e].Logs[name]
			}
			if v.Step != int64(e) || v.Scalar != float32(want) {
				t.Fatalf("epoch/%s at %d: %+v, want %v", name, e, v, float32(want))
			}
		}
	}
	// Weight and gradient histograms of every parameter, each epoch; the
	// last weights histogram matches the final weights.
	for _, p := range nn.NamedParameters(net) {
		for _, kind := range []string{"weights/", "grads/"} {
			got := byTag[kind+p.Name]
			if len(got) != 3 {
				t.Fatalf("%s%s: %d histograms, want 3", kind, p.Name, len(got))
			}
			if got[2].Histo.Num != float64(p.Tensor.Numel()) {
				t.Fatalf("%s%s: num %v, want %d", kind, p.Name, got[2].Histo.Num, p.Tensor.Numel())
			}
		}
		last := byTag["weights/"+p.Name][2].Histo
		want := tensorboard.NewHistogram(p.Tensor.Data())
		if last.Sum != want.Sum || last.Min != want.Min || last.Max != want.Max {
			t.Fatalf("weights/%s: %+v, want %+v", p.Name, last, want)
		}
	}
	if endStep != 2 {
		t.Fatalf("OnEnd step %d, want 2", endStep)
	}
	if im := byTag["eval/confusion_matrix"]; len(im) != 1 || im[0].Kind != "image" || im[0].Step != 2 {
		t.Fatalf("confusion matrix image: %+v", im)
	}
}

func TestCallbackOptionsAndErrors(t *testing.T) {
	w := newWriter(t, t.TempDir())
	cb := &tensorboard.Callback{W: w, BatchEvery: 5, NoHistograms: true}
	fitBlobs(t, cb)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, v := range summaries(readEvents(t, w.Path())) {
		if strings.HasPrefix(v.Tag, "weights/") || strings.HasPrefix(v.Tag, "grads/") {
			t.Fatalf("histogram %s logged with NoHistograms", v.Tag)
		}
		if v.Tag == "batch/loss" && v.Step%5 != 0 {
			t.Fatalf("batch loss at step %d with BatchEvery 5", v.Step)
		}
	}

	// No writer: the run fails at the start.
	_, err := train.Fit(context.Background(), nn.NewLinear(tensor.NewRNG(1), 2, 2, true), train.Config{
		Epochs: 1, Optimizer: optim.NewSGD(nil, optim.SGDConfig{LR: 0.1}),
		Loss:      func(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) },
		Train:     data.NewLoader(data.NewTensorDataset(tensor.Zeros(2, 2), tensor.FromInt64([]int64{0, 1}, 2)), data.LoaderConfig{BatchSize: 2}),
		Callbacks: []train.Callback{&tensorboard.Callback{}}, Quiet: true,
	})
	if err == nil || !strings.Contains(err.Error(), "no Writer") {
		t.Fatalf("no writer: %v", err)
	}

	// A closed writer makes the run fail with ErrClosed.
	w2 := newWriter(t, t.TempDir())
	w2.Close()
	_, err = train.Fit(context.Background(), nn.NewLinear(tensor.NewRNG(1), 2, 2, true), train.Config{
		Epochs: 1, Optimizer: optim.NewSGD(nil, optim.SGDConfig{LR: 0.1}),
		Loss:      func(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) },
		Train:     data.NewLoader(data.NewTensorDataset(tensor.Zeros(2, 2), tensor.FromInt64([]int64{0, 1}, 2)), data.LoaderConfig{BatchSize: 2}),
		Callbacks: []train.Callback{tensorboard.NewCallback(w2)}, Quiet: true,
	})
	if !errors.Is(err, tensorboard.ErrClosed) {
		t.Fatalf("closed writer: %v", err)
	}
}
