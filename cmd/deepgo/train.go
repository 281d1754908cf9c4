package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/train"
)

func (a *app) trainCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "train",
		Short: "Train a model and save it as a model package",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("train needs a task: mnist, tabular or text")}
		},
	}
	c.AddCommand(a.trainMNISTCmd(), a.trainTabularCmd(), a.trainTextCmd())
	return c
}

// runFile is the file in a checkpoint directory that records the settings
// of the run, so that --resume needs no other flags.
const runFile = "deepgo-run.json"

// fitJob is one training run: the network, the data, and the settings that
// define it.
type fitJob struct {
	Net       nn.Module
	Train     data.Dataset
	Val       data.Dataset
	Epochs    int
	BatchSize int
	LR        float64
	Seed      uint64
	CkptDir   string
	Resume    string
	// Task names the command for the resume hint ("mnist", "tabular").
	Task string
	// Transform augments training examples (nil for none).
	Transform data.Transform
	// Schedule is the learning-rate schedule: "cosine" anneals from LR to 0
	// over Epochs; "" or "none" keeps LR constant.
	Schedule string
}

// fitResult is what a finished run reports.
type fitResult struct {
	History *train.History
	Seconds float64
}

// fit trains job.Net with Adam and cross-entropy, with a progress bar on
// stderr and a Checkpoint callback writing to job.CkptDir.
func (a *app) fit(ctx context.Context, job fitJob) (*fitResult, error) {
	opt := optim.NewAdam(nn.Parameters(job.Net), optim.AdamConfig{LR: job.LR})
	cfg := train.Config{
		Epochs:    job.Epochs,
		Optimizer: opt,
		Loss:      func(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) },
		Train: data.NewLoader(job.Train, data.LoaderConfig{
			BatchSize: job.BatchSize, Shuffle: true, Seed: job.Seed, Workers: 1, Prefetch: 4,
			Transform: job.Transform,
		}),
		Metrics:    []train.Metric{train.Accuracy()},
		Progress:   a.stderr,
		ResumeFrom: job.Resume,
	}
	switch job.Schedule {
	case "", "none":
	case "cosine":
		cfg.Scheduler = optim.NewCosineAnnealingLR(opt, job.Epochs, 0)
	default:
		return nil, usageError{fmt.Errorf("--schedule %q: want cosine or none", job.Schedule)}
	}
	monitor := ""
	if job.Val != nil && job.Val.Len() > 0 {
		cfg.Val = data.NewLoader(job.Val, data.LoaderConfig{BatchSize: max(job.BatchSize, 256)})
		monitor = "val_accuracy"
	}
	ck := train.NewCheckpoint(job.CkptDir, monitor)
	cfg.Callbacks = append([]train.Callback{ck}, a.callbacks...)
	start := time.Now()
	hist, err := train.Fit(ctx, job.Net, cfg)
	secs := time.Since(start).Seconds()
	if errors.Is(err, train.ErrInterrupted) {
		return nil, fmt.Errorf("%w; checkpoint saved in %s, continue with: deepgo train %s --resume %s",
			err, ck.LastDir(), job.Task, job.CkptDir)
	}
	if err != nil {
		return nil, err
	}
	return &fitResult{History: hist, Seconds: secs}, nil
}

// saveRunConfig records the run's settings (any JSON value) in the
// checkpoint directory.
func saveRunConfig(dir string, v any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, runFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, runFile))
}

// resumeRun applies --resume: when resume is set, it merges the settings
// recorded in that checkpoint into run (flags given on the command line win)
// after checking that the checkpoint is of a task run, and sets *ckptDir to
// the checkpoint directory unless --checkpoint-dir was given.
func resumeRun[T any](cmd *cobra.Command, resume, task string, run *T, taskOf func(T) string, ckptDir *string) error {
	if resume == "" {
		return nil
	}
	var rec T
	dir, found, err := loadRunConfig(resume, &rec)
	if err != nil {
		return err
	}
	if found {
		if got := taskOf(rec); got != task {
			return fmt.Errorf("%s: the checkpoint is of a %q run, not %s", resume, got, task)
		}
		mergeUnchanged(cmd, run, rec)
	}
	if *ckptDir == "" {
		*ckptDir = dir
	}
	return nil
}

// resumeFlags registers --resume and --checkpoint-dir.
func resumeFlags(f *pflag.FlagSet, resume, ckptDir *string) {
	f.StringVar(resume, "resume", "", "continue the run checkpointed in this directory")
	f.StringVar(ckptDir, "checkpoint-dir", "", "where to write checkpoints (default OUT.ckpt)")
}

// checkFitFlags checks the training flags every train command has, in the
// order --epochs, --batch-size, --lr, --val-split.
func checkFitFlags(epochs, batchSize int, lr, valSplit float64) error {
	switch {
	case epochs <= 0:
		return usageError{fmt.Errorf("--epochs %d: want at least 1", epochs)}
	case batchSize <= 0:
		return usageError{fmt.Errorf("--batch-size %d: want at least 1", batchSize)}
	case !(lr > 0) || math.IsInf(lr, 0):
		return usageError{fmt.Errorf("--lr %v: want a positive number", lr)}
	case !(valSplit >= 0 && valSplit < 1):
		return usageError{fmt.Errorf("--val-split %v: want a fraction in [0, 1)", valSplit)}
	}
	return nil
}

// loadRunConfig reads the settings recorded by saveRunConfig for a --resume
// path (the checkpoint directory, or its "last" or "best" subdirectory) into
// v. It returns the checkpoint directory, and found = false when the path
// has no record (a checkpoint written by other means).
func loadRunConfig(resume string, v any) (dir string, found bool, err error) {
	for _, d := range []string{resume, filepath.Dir(resume)} {
		p := filepath.Join(d, runFile)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return "", false, fmt.Errorf("%s: damaged run record: %v", p, err)
		}
		return d, true, nil
	}
	if _, err := os.Stat(resume); err != nil {
		return "", false, fmt.Errorf("--resume: %w", err)
	}
	return resume, false, nil
}

// lastLogs returns the final epoch's logs, prefixing training keys with
// "train_" (val_ keys stay as they are).
func lastLogs(h *train.History) map[string]float64 {
	out := map[string]float64{}
	if h == nil || len(h.Epochs) == 0 {
		return out
	}
	for k, v := range h.Epochs[len(h.Epochs)-1].Logs {
		if !strings.HasPrefix(k, "val_") {
			k = "train_" + k
		}
		out[k] = v
	}
	return out
}

// writeJSON writes v as one line of JSON to the app's stdout.
func (a *app) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// checkpointDir is --checkpoint-dir, or the output directory with ".ckpt"
// appended (beside it, since saving a package replaces its directory).
func checkpointDir(flag, out string) string {
	if flag != "" {
		return flag
	}
	return filepath.Clean(out) + ".ckpt"
}

// mergeUnchanged copies into run (a pointer to a struct) the fields of rec
// (a struct of the same type) whose flag, named by the field's `flag` tag,
// was not given on the command line: a resumed run keeps its recorded
// settings unless overridden.
func mergeUnchanged(cmd *cobra.Command, run, rec any) {
	dst := reflect.ValueOf(run).Elem()
	src := reflect.ValueOf(rec)
	for i := 0; i < dst.NumField(); i++ {
		name := dst.Type().Field(i).Tag.Get("flag")
		if name != "" && !cmd.Flags().Changed(name) {
			dst.Field(i).Set(src.Field(i))
		}
	}
}
