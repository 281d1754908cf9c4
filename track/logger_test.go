package track_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/track"
	"github.com/deepgo/deepgo/train"
)

// fitSetup is a small classification problem: n points of dimension in,
// classes classes, an MLP and an Adam optimizer.
func fitSetup(n, in, hidden, classes, batch int) (nn.Module, optim.Optimizer, *data.Loader) {
	r := tensor.NewRNG(1)
	x := tensor.RandN(r, n, in)
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(r.IntN(classes))
	}
	ld := data.NewLoader(data.NewTensorDataset(x, tensor.FromInt64(y, n)), data.LoaderConfig{BatchSize: batch, Shuffle: true, Seed: 1})
	mr := tensor.NewRNG(2)
	m := nn.NewSequential(nn.NewLinear(mr, in, hidden, true), &nn.ReLU{}, nn.NewLinear(mr, hidden, classes, true))
	return m, optim.NewAdam(nn.Parameters(m), optim.AdamConfig{LR: 1e-3}), ld
}

func ce(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) }

func TestLoggerRecordsFit(t *testing.T) {
	forEach(t, func(t *testing.T, s track.Store) {
		m, opt, ld := fitSetup(64, 4, 8, 3, 16) // 4 steps per epoch
		l := track.NewLogger(s, "fit", "fit-run", map[string]string{"lr": "0.001", "epochs": "3"})
		l.Tags = map[string]string{"model": "mlp"}
		_, err := train.Fit(context.Background(), m, train.Config{
			Epochs: 3, Optimizer: opt, Loss: ce, Train: ld, Val: ld,
			Metrics: []train.Metric{train.Accuracy()}, Callbacks: []train.Callback{l}, Quiet: true,
		})
		must(t, err)
		must(t, l.LogMetrics(map[string]float64{"test_acc": 0.5, "test_loss": math.Inf(1)}, 3))
		must(t, l.Close())
		must(t, l.Err())
		r, err := s.GetRun(ctx, l.RunID())
		must(t, err)
		if r.Status != track.StatusFinished || r.Name != "fit-run" || r.Params["lr"] != "0.001" || r.Tags["model"] != "mlp" || r.Tags["global_steps"] != "12" {
			t.Fatalf("run %+v", r)
		}
		for _, k := range []string{"sys.go_version", "sys.cpu", "sys.gomaxprocs", "sys.hostname", "sys.os"} {
			if r.Tags[k] == "" {
				t.Fatalf("system tag %s missing: %v", k, r.Tags)
			}
		}
		if r.Tags["sys.gomaxprocs"] != strconv.Itoa(runtime.GOMAXPROCS(0)) {
			t.Fatalf("sys.gomaxprocs %q", r.Tags["sys.gomaxprocs"])
		}
		h, err := s.MetricHistory(ctx, r.ID)
		must(t, err)
		if len(h["batch_loss"]) != 12 {
			t.Fatalf("%d batch losses, want 12", len(h["batch_loss"]))
		}
		for i, p := range h["batch_loss"] {
			if p.Step != int64(i+1) || !(p.Value > 0) {
				t.Fatalf("batch_loss %d: %+v", i, p)
			}
		}
		for _, k := range []string{"loss", "accuracy", "val_loss", "val_accuracy"} {
			if len(h[k]) != 3 || h[k][0].Step != 0 || h[k][2].Step != 2 {
				t.Fatalf("epoch metric %s: %+v (have %v)", k, h[k], keys(h))
			}
		}
		if !math.IsInf(r.Metrics["test_loss"].Value, 1) || r.Metrics["test_acc"].Value != 0.5 {
			t.Fatalf("final metrics %+v", r.Metrics)
		}
	})
}

func keys(h map[string][]track.Metric) []string {
	var k []string
	for n := range h {
		k = append(k, n)
	}
	return k
}

func TestLoggerStatusOnInterruptAndError(t *testing.T) {
	s := open(t, sqliteBackend.newURL(t))
	m, opt, ld := fitSetup(64, 4, 8, 3, 16)

	// Interrupted (Ctrl-C) after the 6th step: KILLED, the 6 losses kept.
	cctx, cancel := context.WithCancel(context.Background())
	stop := &train.Funcs{BatchEnd: func(st *train.State) error {
		if st.GlobalStep == 6 {
			cancel()
		}
		return nil
	}}
	l := track.NewLogger(s, "", "", nil)
	_, err := train.Fit(cctx, m, train.Config{Epochs: 5, Optimizer: opt, Loss: ce, Train: ld, Callbacks: []train.Callback{l, stop}, Quiet: true})
	if !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("Fit: %v", err)
	}
	r, err := s.GetRun(ctx, l.RunID())
	must(t, err)
	h, err := s.MetricHistory(ctx, r.ID, "batch_loss")
	must(t, err)
	if r.Status != track.StatusKilled || len(h["batch_loss"]) != 6 {
		t.Fatalf("interrupted run: %s with %d losses", r.Status, len(h["batch_loss"]))
	}

	// Failed: FAILED, and the error is kept as a tag.
	boom := &train.Funcs{EpochEnd: func(*train.State) error { return fmt.Errorf("boom at the end") }}
	l = track.NewLogger(s, "", "", nil)
	_, err = train.Fit(context.Background(), m, train.Config{Epochs: 2, Optimizer: opt, Loss: ce, Train: ld, Callbacks: []train.Callback{l, boom}, Quiet: true})
	if err == nil {
		t.Fatal("Fit did not fail")
	}
	r, err = s.GetRun(ctx, l.RunID())
	must(t, err)
	if r.Status != track.StatusFailed || !strings.Contains(r.Tags["error"], "boom at the end") {
		t.Fatalf("failed run: %s, tags %v", r.Status, r.Tags)
	}
}

func TestLoggerBadInput(t *testing.T) {
	s := open(t, sqliteBackend.newURL(t))
	l := track.NewLogger(s, "", "", map[string]string{"bad\x01key": "v"})
	wantErr(t, l.OnTrainBegin(&train.State{}), track.ErrInvalid, "control character")

	l = track.NewLogger(s, "", "", map[string]string{"lr": "1"})
	wantErr(t, l.LogMetric("x", 1, 0), nil, "not started")
	must(t, l.Start(ctx))
	wantErr(t, l.LogMetric("lo\rss", 1, 0), track.ErrInvalid, "control character")
	wantErr(t, l.LogParams(map[string]string{"lr": "2"}), track.ErrConflict, `"1"`, `"2"`)
	must(t, l.LogMetric("nan", math.NaN(), 0))
	must(t, l.Flush())
	must(t, l.Close())
	must(t, l.Close()) // idempotent
	// Epoch logs with a bad key are reported, not fatal.
	var mu sync.Mutex
	var reported []error
	l = track.NewLogger(s, "", "", nil)
	l.OnError = func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }
	must(t, l.OnTrainBegin(&train.State{}))
	must(t, l.OnEpochEnd(&train.State{Logs: train.Logs{"ok": 1, "tab\tbad": 2}}))
	must(t, l.OnTrainEnd(&train.State{}))
	if len(reported) != 1 || !errors.Is(l.Err(), track.ErrInvalid) {
		t.Fatalf("reported %v, Err %v", reported, l.Err())
	}
	r, err := s.GetRun(ctx, l.RunID())
	must(t, err)
	if _, ok := r.Metrics["ok"]; !ok || r.Status != track.StatusFinished {
		t.Fatalf("run %+v", r)
	}
}
