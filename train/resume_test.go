package train_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/train"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func readJSONL(t *testing.T, path string) []map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// resumeRun describes one run of the resume tests.
type resumeRun struct {
	initSeed uint64
	sched    bool // a StepLR scheduler instead of ReduceLROnPlateau
	dir      string
	resume   string
	csv      string
	extra    []train.Callback
	dropout  bool // insert a Dropout seeded from initSeed after the hidden layer
}

const resumeEpochs = 3

// fit trains a fresh model with Adam, validation, accuracy, EarlyStopping
// (which never triggers), a plateau or step LR schedule and a Checkpoint.
func (r resumeRun) fit(ctx context.Context) (*nn.Sequential, *train.History, error) {
	m := mlp(r.initSeed, 16)
	if r.dropout {
		m.Layers = append(m.Layers[:2:2], append([]nn.Module{nn.NewDropout(tensor.NewRNG(r.initSeed+1000), 0.3)}, m.Layers[2:]...)...)
	}
	opt := adam(m, 0.02)
	cbs := []train.Callback{&train.EarlyStopping{Monitor: "val_loss", Patience: 100, RestoreBest: true}}
	cfg := train.Config{
		Epochs: resumeEpochs, Optimizer: opt, Loss: ce, Metrics: []train.Metric{train.Accuracy()},
		Train: loader(blobs(1, 100, 1, 0.1), 8, true, 99), Val: loader(blobs(2, 40, 1, 0.1), 16, false, 0),
		ResumeFrom: r.resume, Quiet: true, ClipGradNorm: 5,
	}
	if r.sched {
		cfg.Scheduler = optim.NewStepLR(opt, 1, 0.5)
	} else {
		cbs = append(cbs, train.NewReduceLROnPlateau("val_accuracy", optim.PlateauConfig{Factor: 0.5, Patience: 0}))
	}
	if r.dir != "" {
		cbs = append(cbs, train.NewCheckpoint(r.dir, "val_loss"))
	}
	if r.csv != "" {
		cbs = append(cbs, train.NewCSVLogger(r.csv))
	}
	cfg.Callbacks = append(cbs, r.extra...)
	h, err := train.Fit(ctx, m, cfg)
	return m, h, err
}

func TestInterruptResumeBitwise(t *testing.T) {
	const nb = 13 // ceil(100 / 8)
	for _, sched := range []bool{false, true} {
		ref, refHist, err := resumeRun{initSeed: 4, sched: sched}.fit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		refW := weights(ref)
		for _, at := range [][2]int{{1, 5}, {0, nb}, {2, 1}, {0, 1}} {
			t.Run(fmt.Sprintf("sched=%v/epoch%d.step%d", sched, at[0], at[1]), func(t *testing.T) {
				dir := t.TempDir()
				csvPath := filepath.Join(dir, "log.csv")
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				stop := &train.Funcs{BatchEnd: func(s *train.State) error {
					if s.Epoch == at[0] && s.Step == at[1] {
						cancel()
					}
					return nil
				}}
				_, h, err := resumeRun{initSeed: 4, sched: sched, dir: dir, csv: csvPath, extra: []train.Callback{stop}}.fit(ctx)
				if !errors.Is(err, train.ErrInterrupted) || !errors.Is(err, context.Canceled) {
					t.Fatalf("interrupted Fit returned %v", err)
				}
				if len(h.Epochs) != at[0] {
					t.Fatalf("interrupted history has %d epochs, want %d", len(h.Epochs), at[0])
				}
				ck, err := train.ReadCheckpoint(dir)
				if err != nil {
					t.Fatal(err)
				}
				if ck.Epoch != at[0] || ck.Step != at[1] || ck.GlobalStep != at[0]*nb+at[1] {
					t.Fatalf("checkpoint at epoch %d step %d global %d", ck.Epoch, ck.Step, ck.GlobalStep)
				}
				// Resume into a model initialised differently: everything must
				// come from the checkpoint.
				m, hist, err := resumeRun{initSeed: 77, sched: sched, dir: dir, csv: csvPath, resume: dir}.fit(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				requireSame(t, "resumed vs uninterrupted", refW, weights(m))
				sameHistory(t, refHist, hist)
				if rows := readCSV(t, csvPath); len(rows) != 1+resumeEpochs {
					t.Fatalf("csv after resume has %d rows: %v", len(rows), rows)
				}
			})
		}
	}
}

// TestInterruptResumeWithDropout checks that the dropout generator's state is
// part of the checkpoint: the resumed model's dropout is seeded differently,
// so only the saved state can make the weights match.
func TestInterruptResumeWithDropout(t *testing.T) {
	ref, _, err := resumeRun{initSeed: 4, dropout: true}.fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := &train.Funcs{BatchEnd: func(s *train.State) error {
		if s.Epoch == 1 && s.Step == 5 {
			cancel()
		}
		return nil
	}}
	if _, _, err := (resumeRun{initSeed: 4, dropout: true, dir: dir, extra: []train.Callback{stop}}).fit(ctx); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("interrupted Fit returned %v", err)
	}
	m, _, err := resumeRun{initSeed: 77, dropout: true, dir: dir, resume: dir}.fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, "resumed with dropout vs uninterrupted", weights(ref), weights(m))
	// A model without the dropout module cannot take this checkpoint.
	if _, _, err := (resumeRun{initSeed: 4, resume: dir}).fit(context.Background()); err == nil {
		t.Fatal("resuming a dropout checkpoint into a model without dropout succeeded")
	}
}

// twoEpochs trains 2 epochs with a Checkpoint in dir and returns its weights.
func twoEpochs(t *testing.T, dir string) map[string][]float32 {
	t.Helper()
	m := mlp(1, 8)
	_, err := train.Fit(context.Background(), m, train.Config{
		Epochs: 2, Optimizer: adam(m, 0.01), Loss: ce,
		Train: loader(blobs(1, 20, 1, 0), 5, true, 1), Callbacks: []train.Callback{train.NewCheckpoint(dir, "loss")}, Quiet: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return weights(m)
}

// resumeFrom resumes the run of twoEpochs from path, checkpointing into dir.
func resumeFrom(dir, path string, epochs int) (*nn.Sequential, error) {
	m := mlp(9, 8)
	_, err := train.Fit(context.Background(), m, train.Config{
		Epochs: epochs, Optimizer: adam(m, 0.01), Loss: ce,
		Train: loader(blobs(1, 20, 1, 0), 5, true, 1), Callbacks: []train.Callback{train.NewCheckpoint(dir, "loss")},
		ResumeFrom: path, Quiet: true,
	})
	return m, err
}

func TestCheckpointFiles(t *testing.T) {
	dir := t.TempDir()
	w := twoEpochs(t, dir)
	for _, sub := range []string{"last", "best"} {
		for _, f := range []string{"state.json", "model.safetensors", "optimizer.safetensors", "callback-0.safetensors"} {
			if _, err := os.Stat(filepath.Join(dir, sub, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The weights file is a plain state dict that nn.Load reads.
	m := mlp(9, 8)
	if err := nn.Load(filepath.Join(dir, "last", "model.safetensors"), m, true); err != nil {
		t.Fatal(err)
	}
	requireSame(t, "nn.Load of last/model.safetensors", w, weights(m))
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("leftover %s after successful saves", e.Name())
		}
	}
	// Resuming a finished run trains nothing and keeps the weights.
	m2, err := resumeFrom(dir, filepath.Join(dir, "last"), 2)
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, "resume of a finished run", w, weights(m2))
}

func TestCheckpointLeftoverTempIgnored(t *testing.T) {
	dir := t.TempDir()
	twoEpochs(t, dir)
	junk := filepath.Join(dir, ".last.tmp-123")
	if err := os.MkdirAll(junk, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(junk, "state.json"), []byte(`{"format": "garb`), 0o644)
	os.WriteFile(filepath.Join(junk, "model.safetensors"), []byte("xx"), 0o644)
	ck, err := train.ReadCheckpoint(dir)
	if err != nil || ck.Epoch != 2 || ck.Dir != filepath.Join(dir, "last") {
		t.Fatalf("ReadCheckpoint with a leftover temp: %v, %+v", err, ck)
	}
	if _, err := resumeFrom(dir, dir, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(junk); err == nil {
		t.Fatal("the stale temporary directory was not cleaned up")
	}
	if ck, err := train.ReadCheckpoint(dir); err != nil || ck.Epoch != 3 {
		t.Fatalf("after resuming to 3 epochs: %v %+v", err, ck)
	}
}

func TestCheckpointFailedSaveKeepsGood(t *testing.T) {
	dir := t.TempDir()
	twoEpochs(t, dir)
	before, err := os.ReadFile(filepath.Join(dir, "last", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	injected := errors.New("injected crash")
	train.SetBeforeInstall(func(tmp string) error {
		// Leave a half-written file behind as a crash would.
		os.Truncate(filepath.Join(tmp, "model.safetensors"), 10)
		return injected
	})
	defer train.SetBeforeInstall(nil)
	if _, err := resumeFrom(dir, dir, 3); !errors.Is(err, injected) {
		t.Fatalf("save failure not reported: %v", err)
	}
	train.SetBeforeInstall(nil)
	after, err := os.ReadFile(filepath.Join(dir, "last", "state.json"))
	if err != nil || string(after) != string(before) {
		t.Fatalf("the good checkpoint was replaced (err %v)", err)
	}
	if ck, err := train.ReadCheckpoint(dir); err != nil || ck.Epoch != 2 {
		t.Fatalf("good checkpoint unreadable: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("failed save left %s", e.Name())
		}
	}
}

func TestCheckpointInterruptedSwap(t *testing.T) {
	dir := t.TempDir()
	w := twoEpochs(t, dir)
	// A crash between the two renames leaves only .last.old.
	if err := os.Rename(filepath.Join(dir, "last"), filepath.Join(dir, ".last.old")); err != nil {
		t.Fatal(err)
	}
	ck, err := train.ReadCheckpoint(dir)
	if err != nil || ck.Dir != filepath.Join(dir, ".last.old") {
		t.Fatalf("fallback to .last.old: %v", err)
	}
	m, err := resumeFrom(dir, dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, "weights from .last.old", w, weights(m))
}

func TestCheckpointDamaged(t *testing.T) {
	for _, tc := range []struct {
		file, want string
		damage     func(path string) error
	}{
		{"model.safetensors", "truncated", func(p string) error { return os.Truncate(p, 100) }},
		{"optimizer.safetensors", "SHA-256", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-1] ^= 1
			return os.WriteFile(p, b, 0o644)
		}},
		{"callback-0.safetensors", "no such file", os.Remove},
		{"state.json", "damaged", func(p string) error { return os.Truncate(p, 50) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			dir := t.TempDir()
			twoEpochs(t, dir)
			path := filepath.Join(dir, "last", tc.file)
			if err := tc.damage(path); err != nil {
				t.Fatal(err)
			}
			_, err := resumeFrom(dir, dir, 3)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v should name %s and say %q", err, path, tc.want)
			}
		})
	}
	if _, err := resumeFrom(t.TempDir(), t.TempDir(), 3); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Fatalf("empty dir: %v", err)
	}
}

func TestResumeMismatch(t *testing.T) {
	dir := t.TempDir()
	twoEpochs(t, dir)
	m := mlp(9, 8)
	_, err := train.Fit(context.Background(), m, train.Config{
		Epochs: 3, Optimizer: adam(m, 0.01), Loss: ce,
		Train:     loader(blobs(1, 20, 1, 0), 5, true, 2), // another shuffle seed
		Callbacks: []train.Callback{train.NewCheckpoint(dir, "loss")}, ResumeFrom: dir, Quiet: true,
	})
	if err == nil || !strings.Contains(err.Error(), "loader differs") {
		t.Fatalf("loader mismatch: %v", err)
	}
	m = mlp(9, 8, 8)
	_, err = train.Fit(context.Background(), m, train.Config{
		Epochs: 3, Optimizer: adam(m, 0.01), Loss: ce, Train: loader(blobs(1, 20, 1, 0), 5, true, 1),
		Callbacks: []train.Callback{train.NewCheckpoint(dir, "loss")}, ResumeFrom: dir, Quiet: true,
	})
	if err == nil || !strings.Contains(err.Error(), "cannot resume") {
		t.Fatalf("architecture mismatch: %v", err)
	}
}

func TestCheckpointEverySteps(t *testing.T) {
	dir := t.TempDir()
	var seen []int
	peek := &train.Funcs{BatchEnd: func(s *train.State) error {
		if ck, err := train.ReadCheckpoint(dir); err == nil {
			seen = append(seen, ck.GlobalStep)
		}
		return nil
	}}
	m := mlp(1, 4)
	_, err := train.Fit(context.Background(), m, train.Config{
		Epochs: 2, Optimizer: adam(m, 0.01), Loss: ce, Train: loader(blobs(1, 16, 1, 0), 4, false, 0),
		Callbacks: []train.Callback{&train.Checkpoint{Dir: dir, EverySteps: 3}, peek}, Quiet: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	// peek runs before the Checkpoint at each step: it sees the save of
	// step 3 from step 4 on, the epoch-end save (step 4) in epoch 1, then 6.
	if got := fmt.Sprint(seen); got != "[3 4 4 6 6]" {
		t.Fatalf("checkpoints seen at each step: %s", got)
	}
}
