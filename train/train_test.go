package train_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/train"
)

func TestFitLearnsBlobs(t *testing.T) {
	m := mlp(1, 16)
	hist, err := train.Fit(context.Background(), m, train.Config{
		Epochs:    5,
		Optimizer: adam(m, 0.01),
		Loss:      ce,
		Train:     loader(blobs(10, 256, 1.5, 0), 32, true, 3),
		Val:       loader(blobs(11, 128, 1.5, 0), 64, false, 0),
		Metrics:   []train.Metric{train.Accuracy()},
		Quiet:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Epochs) != 5 {
		t.Fatalf("history has %d epochs, want 5", len(hist.Epochs))
	}
	want := []string{"loss", "accuracy", "val_loss", "val_accuracy"}
	if strings.Join(hist.Names, ",") != strings.Join(want, ",") {
		t.Fatalf("names %v, want %v", hist.Names, want)
	}
	loss := hist.Get("loss")
	if !(loss[4] < loss[0]) {
		t.Fatalf("training loss did not decrease: %v", loss)
	}
	if va := hist.Get("val_accuracy")[4]; !(va > 0.9) {
		t.Fatalf("val accuracy %v, want > 0.9", va)
	}
	if a := hist.Get("accuracy")[4]; !(a > 0.9) {
		t.Fatalf("train accuracy %v, want > 0.9", a)
	}
	if e, _ := hist.Best("val_loss", "min"); e < 0 {
		t.Fatal("History.Best found no epoch")
	}
	// Evaluate agrees with the last validation logs (same weights, same data).
	logs, err := train.Evaluate(context.Background(), m, loader(blobs(11, 128, 1.5, 0), 64, false, 0), ce, []train.Metric{train.Accuracy()})
	if err != nil {
		t.Fatal(err)
	}
	if logs["loss"] != hist.Get("val_loss")[4] || logs["accuracy"] != hist.Get("val_accuracy")[4] {
		t.Fatalf("Evaluate %v, last val logs %v", logs, hist.Epochs[4].Logs)
	}
}

func TestSameSeedSameWeights(t *testing.T) {
	run := func(loaderSeed uint64) map[string][]float32 {
		m := mlp(5, 8)
		_, err := train.Fit(context.Background(), m, train.Config{
			Epochs: 2, Optimizer: adam(m, 0.01), Loss: ce,
			Train: loader(blobs(1, 100, 1, 0.1), 10, true, loaderSeed), Quiet: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return weights(m)
	}
	a, b := run(42), run(42)
	requireSame(t, "same seed", a, b)
	if ok, _ := sameWeights(a, run(43)); ok {
		t.Fatal("a different shuffle seed gave identical weights")
	}
}

// probe records the mode and gradient recording of each forward call.
type probe struct {
	nn.Mode
	L    *nn.Linear
	seen []string
}

func (p *probe) Forward(x *tensor.Tensor) *tensor.Tensor {
	p.seen = append(p.seen, fmt.Sprintf("train=%v grad=%v", p.Training(), tensor.IsGradEnabled()))
	return p.L.Forward(x)
}

func TestValidationUsesEvalAndNoGrad(t *testing.T) {
	p := &probe{L: nn.NewLinear(tensor.NewRNG(1), 2, 2, true)}
	var during []string
	cb := &train.Funcs{EpochEnd: func(s *train.State) error {
		during = append(during, strings.Join(p.seen, ";"))
		p.seen = nil
		return nil
	}}
	_, err := train.Fit(context.Background(), p, train.Config{
		Epochs: 2, Optimizer: adam(p, 0.01), Loss: ce,
		Train: loader(blobs(1, 8, 1, 0), 4, false, 0), Val: loader(blobs(2, 6, 1, 0), 3, false, 0),
		Callbacks: []train.Callback{cb}, Quiet: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "train=true grad=true;train=true grad=true;train=false grad=false;train=false grad=false"
	for e, got := range during {
		if got != want {
			t.Fatalf("epoch %d forward calls: %s, want %s", e, got, want)
		}
	}
	if len(during) != 2 || !p.Training() {
		t.Fatalf("epochs %d, training mode after Fit %v", len(during), p.Training())
	}
}

// recorder logs every event with a prefix.
type recorder struct {
	name string
	log  *[]string
	dir  string // if set, notes whether dir/last exists at epoch end
}

func (r *recorder) add(format string, a ...any) {
	*r.log = append(*r.log, r.name+" "+fmt.Sprintf(format, a...))
}
func (r *recorder) OnTrainBegin(s *train.State) error { r.add("train_begin"); return nil }
func (r *recorder) OnEpochBegin(s *train.State) error {
	r.add("epoch_begin %d", s.Epoch)
	return nil
}
func (r *recorder) OnBatchEnd(s *train.State) error {
	r.add("batch_end %d.%d g%d loss=%v", s.Epoch, s.Step, s.GlobalStep, s.Logs["loss"] > 0)
	return nil
}
func (r *recorder) OnEpochEnd(s *train.State) error {
	_, hasVal := s.Logs["val_loss"]
	extra := ""
	if r.dir != "" {
		_, err := os.Stat(filepath.Join(r.dir, "last"))
		extra = fmt.Sprintf(" ckpt=%v", err == nil)
	}
	r.add("epoch_end %d val=%v hist=%d%s", s.Epoch, hasVal, len(s.History.Epochs), extra)
	return nil
}
func (r *recorder) OnTrainEnd(s *train.State) error {
	r.add("train_end interrupted=%v err=%v", s.Interrupted, s.Err != nil)
	return nil
}

func TestCallbackOrder(t *testing.T) {
	dir := t.TempDir()
	var log []string
	a := &recorder{name: "A", log: &log}
	b := &recorder{name: "B", log: &log, dir: dir}
	m := mlp(1, 4)
	// The Checkpoint comes first in the list but runs after the others.
	_, err := train.Fit(context.Background(), m, train.Config{
		Epochs: 2, Optimizer: adam(m, 0.01), Loss: ce,
		Train: loader(blobs(1, 6, 1, 0), 3, true, 1), Val: loader(blobs(2, 4, 1, 0), 4, false, 0),
		Callbacks: []train.Callback{train.NewCheckpoint(dir, ""), a, b}, Quiet: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	both := func(format string, args ...any) {
		for _, n := range []string{"A", "B"} {
			want = append(want, n+" "+fmt.Sprintf(format, args...))
		}
	}
	both("train_begin")
	g := 0
	for e := range 2 {
		both("epoch_begin %d", e)
		for st := 1; st <= 2; st++ {
			g++
			both("batch_end %d.%d g%d loss=true", e, st, g)
		}
		want = append(want, fmt.Sprintf("A epoch_end %d val=true hist=%d", e, e+1))
		want = append(want, fmt.Sprintf("B epoch_end %d val=true hist=%d ckpt=%v", e, e+1, e > 0))
	}
	both("train_end interrupted=false err=false")
	if strings.Join(log, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
}

func TestStopTrainingAndCallbackError(t *testing.T) {
	m := mlp(1, 4)
	cfg := train.Config{
		Epochs: 5, Optimizer: adam(m, 0.01), Loss: ce,
		Train: loader(blobs(1, 8, 1, 0), 4, false, 0), Quiet: true,
	}
	cfg.Callbacks = []train.Callback{&train.Funcs{EpochEnd: func(s *train.State) error {
		s.StopTraining = s.Epoch == 1
		return nil
	}}}
	hist, err := train.Fit(context.Background(), m, cfg)
	if err != nil || len(hist.Epochs) != 2 {
		t.Fatalf("StopTraining at epoch 1: %d epochs, err %v", len(hist.Epochs), err)
	}

	boom := errors.New("boom")
	var endErr error
	cfg.Callbacks = []train.Callback{&train.Funcs{
		BatchEnd: func(s *train.State) error {
			if s.GlobalStep == 3 {
				return boom
			}
			return nil
		},
		TrainEnd: func(s *train.State) error { endErr = s.Err; return nil },
	}}
	hist, err = train.Fit(context.Background(), m, cfg)
	if !errors.Is(err, boom) || !errors.Is(endErr, boom) {
		t.Fatalf("callback error: Fit returned %v, OnTrainEnd saw %v", err, endErr)
	}
	if errors.Is(err, train.ErrInterrupted) || len(hist.Epochs) != 1 {
		t.Fatalf("callback error: %v, %d epochs", err, len(hist.Epochs))
	}
}

func TestConfigErrors(t *testing.T) {
	m := mlp(1, 4)
	ok := train.Config{Epochs: 1, Optimizer: adam(m, 0.01), Loss: ce, Train: loader(blobs(1, 4, 1, 0), 2, false, 0), Quiet: true}
	cases := map[string]func(c *train.Config){
		"Epochs":       func(c *train.Config) { c.Epochs = 0 },
		"Optimizer":    func(c *train.Config) { c.Optimizer = nil },
		"Loss":         func(c *train.Config) { c.Loss = nil },
		"Train":        func(c *train.Config) { c.Train = nil },
		"metric":       func(c *train.Config) { c.Metrics = []train.Metric{{Name: "x"}} },
		"duplicated":   func(c *train.Config) { c.Metrics = []train.Metric{train.Accuracy(), train.Accuracy()} },
		"callback":     func(c *train.Config) { c.Callbacks = []train.Callback{nil} },
		"ClipGradNorm": func(c *train.Config) { c.ClipGradNorm = -1 },
		"not in the logs": func(c *train.Config) {
			c.Callbacks = []train.Callback{train.NewEarlyStopping("val_loss", 1)}
		},
		"mode": func(c *train.Config) {
			c.Callbacks = []train.Callback{&train.EarlyStopping{Monitor: "loss", Mode: "up"}}
		},
		"Factor": func(c *train.Config) {
			c.Callbacks = []train.Callback{train.NewReduceLROnPlateau("loss", optim.PlateauConfig{Factor: 2})}
		},
	}
	for want, mod := range cases {
		c := ok
		mod(&c)
		if _, err := train.Fit(context.Background(), m, c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v", want, err)
		}
	}
	if _, err := train.Fit(context.Background(), nil, ok); err == nil {
		t.Error("nil model: no error")
	}
	if _, err := train.Fit(context.Background(), m, ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestEarlyStoppingRestoresBest(t *testing.T) {
	m := mlp(3, 64, 64)
	const patience = 5
	es := train.NewEarlyStopping("val_loss", patience)
	var snaps []map[string][]float32
	snap := &train.Funcs{EpochEnd: func(s *train.State) error {
		snaps = append(snaps, weights(s.Model))
		return nil
	}}
	hist, err := train.Fit(context.Background(), m, train.Config{
		Epochs:    300,
		Optimizer: adam(m, 0.01),
		Loss:      ce,
		// A tiny, noisy training set: the model memorises it and the
		// validation loss on clean data rises after a few epochs.
		Train:     loader(blobs(7, 16, 1, 0.25), 16, false, 0),
		Val:       loader(blobs(8, 200, 1, 0), 200, false, 0),
		Callbacks: []train.Callback{snap, es},
		Quiet:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := len(hist.Epochs)
	if n >= 300 || es.StoppedEpoch() != n-1 {
		t.Fatalf("did not stop early: %d epochs, stopped at %d", n, es.StoppedEpoch())
	}
	best, bestV := hist.Best("val_loss", "min")
	if best != es.BestEpoch() || bestV != es.Best() {
		t.Fatalf("best epoch %d (%v), EarlyStopping says %d (%v)", best, bestV, es.BestEpoch(), es.Best())
	}
	if best == 0 {
		t.Fatal("the best epoch is the first: the run did not improve before overfitting")
	}
	if n-1-best != patience {
		t.Fatalf("stopped %d epochs after the best, want %d", n-1-best, patience)
	}
	final := weights(m)
	requireSame(t, "restored weights vs best-epoch snapshot", snaps[best], final)
	if ok, _ := sameWeights(snaps[n-1], final); ok {
		t.Fatal("final weights equal the last epoch's: nothing was restored")
	}
	t.Logf("stopped after %d epochs, best epoch %d val_loss %.4f", n, best, bestV)
}

func TestReduceLROnPlateauCallback(t *testing.T) {
	m := mlp(1, 4)
	opt := optim.NewSGD(nn.Parameters(m), optim.SGDConfig{LR: 0.1})
	constant := train.Metric{Name: "const", Fn: func(_, _ *tensor.Tensor) float64 { return 1 }}
	plateau := train.NewReduceLROnPlateau("const", optim.PlateauConfig{Mode: "min", Factor: 0.5, Patience: 0})
	hist, err := train.Fit(context.Background(), m, train.Config{
		Epochs: 4, Optimizer: opt, Loss: ce, Metrics: []train.Metric{constant},
		Train: loader(blobs(1, 8, 1, 0), 4, false, 0), Callbacks: []train.Callback{plateau}, Quiet: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var lrs []float64
	for _, e := range hist.Epochs {
		lrs = append(lrs, e.LR)
	}
	if fmt.Sprint(lrs) != "[0.1 0.1 0.05 0.025]" || opt.LR() != 0.0125 {
		t.Fatalf("epoch LRs %v, final %v", lrs, opt.LR())
	}
	if plateau.Plateau().LastEpoch() != 4 {
		t.Fatalf("plateau stepped %d times", plateau.Plateau().LastEpoch())
	}
}

func TestLoggers(t *testing.T) {
	dir := t.TempDir()
	csvPath, jsonPath := filepath.Join(dir, "log.csv"), filepath.Join(dir, "log.jsonl")
	m := mlp(1, 4)
	hist, err := train.Fit(context.Background(), m, train.Config{
		Epochs: 3, Optimizer: adam(m, 0.01), Loss: ce, Metrics: []train.Metric{train.Accuracy()},
		Train: loader(blobs(1, 8, 1, 0), 4, false, 0), Val: loader(blobs(2, 4, 1, 0), 4, false, 0),
		Callbacks: []train.Callback{train.NewCSVLogger(csvPath), train.NewJSONLLogger(jsonPath)}, Quiet: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, csvPath)
	if len(rows) != 4 || strings.Join(rows[0], ",") != "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds" {
		t.Fatalf("csv: %v", rows)
	}
	for e := range 3 {
		if rows[e+1][0] != fmt.Sprint(e) || rows[e+1][3] != fmt.Sprint(hist.Get("val_loss")[e]) || rows[e+1][5] != "0.01" {
			t.Fatalf("csv row %d: %v, history %+v", e, rows[e+1], hist.Epochs[e])
		}
	}
	lines := readJSONL(t, jsonPath)
	if len(lines) != 3 {
		t.Fatalf("jsonl has %d lines", len(lines))
	}
	for e, l := range lines {
		if l["epoch"] != float64(e) || l["loss"] != hist.Get("loss")[e] || l["val_accuracy"] != hist.Get("val_accuracy")[e] {
			t.Fatalf("jsonl line %d: %v", e, l)
		}
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	m := mlp(1, 4)
	cfg := train.Config{
		Epochs: 3, Optimizer: adam(m, 0.01), Loss: ce, Metrics: []train.Metric{train.Accuracy()},
		Train: loader(blobs(1, 8, 1, 0), 4, false, 0), Val: loader(blobs(2, 4, 1, 0), 4, false, 0),
		Progress: &buf,
	}
	if _, err := train.Fit(context.Background(), m, cfg); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 || strings.Contains(buf.String(), "\r") {
		t.Fatalf("non-terminal output should be one line per epoch:\n%q", buf.String())
	}
	for e, l := range lines {
		for _, want := range []string{fmt.Sprintf("Epoch %d/3", e+1), "steps/s", " loss ", "val_accuracy"} {
			if !strings.Contains(l, want) {
				t.Fatalf("line %q lacks %q", l, want)
			}
		}
	}

	buf.Reset()
	cfg.Quiet = true
	cfg.Callbacks = []train.Callback{&train.ProgressBar{W: &buf, Live: true, Interval: time.Nanosecond}}
	if _, err := train.Fit(context.Background(), m, cfg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"\r\x1b[KEpoch 1/3 [", "ETA", "steps/s", "2/2", "accuracy"} {
		if !strings.Contains(out, want) {
			t.Fatalf("live output lacks %q:\n%q", want, out)
		}
	}
	if strings.Count(out, "\n") != 3 {
		t.Fatalf("live output has %d newlines, want 3", strings.Count(out, "\n"))
	}
}

func TestTerminateOnNaN(t *testing.T) {
	m := mlp(1, 4)
	nanLoss := func(out, y *tensor.Tensor) *tensor.Tensor {
		return tensor.MulScalar(ce(out, y), float32(math.NaN()))
	}
	hist, err := train.Fit(context.Background(), m, train.Config{
		Epochs: 3, Optimizer: adam(m, 0.01), Loss: nanLoss,
		Train: loader(blobs(1, 8, 1, 0), 4, false, 0), Callbacks: []train.Callback{train.TerminateOnNaN{}}, Quiet: true,
	})
	if err == nil || !strings.Contains(err.Error(), "NaN at epoch 0, step 1") || len(hist.Epochs) != 0 {
		t.Fatalf("TerminateOnNaN: %v", err)
	}
	// NaN logs survive a JSON round trip (checkpoints store the History).
	b, err := json.Marshal(train.Logs{"loss": math.NaN(), "acc": math.Inf(1), "x": 0.5})
	if err != nil {
		t.Fatal(err)
	}
	var back train.Logs
	if err := json.Unmarshal(b, &back); err != nil || !math.IsNaN(back["loss"]) || !math.IsInf(back["acc"], 1) || back["x"] != 0.5 {
		t.Fatalf("Logs JSON round trip: %s -> %v (%v)", b, back, err)
	}
}
