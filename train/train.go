// Package train is deepgo's Keras-style training loop: Fit runs epochs of
// forward, loss, backward and optimizer step over a data.Loader, evaluates a
// validation loader after each epoch, keeps a History of per-epoch metrics
// and drives Callbacks (EarlyStopping, Checkpoint, ReduceLROnPlateau,
// CSVLogger, JSONLLogger, a progress bar).
//
// # The loop
//
// For each epoch e, Fit calls OnEpochBegin, then for each batch of
// Train.Epoch(e): zero the gradients, forward, loss, backward, optional
// gradient clipping, optimizer step, and OnBatchEnd. After the last batch it
// evaluates Val (if any) under tensor.NoGrad with the model in eval mode
// (nn.Eval), puts the model back in training mode (nn.Train), steps the
// Scheduler (if any), appends the epoch's logs to the History and calls
// OnEpochEnd. A callback may set State.StopTraining to end the run after the
// current epoch; a callback error aborts the run.
//
// Every batch, training and validation, runs in a step arena
// (tensor.Arena): the batch input is adopted by the arena, so the model
// output, the loss and the intermediate results take their storage from
// it, and the arena is reset once the loss and the metrics have been read
// (before OnBatchEnd). A warmed-up step then allocates almost nothing.
// Values and gradients are bitwise those of a run without the arena.
// Loss and Metric functions must not keep the tensors they receive;
// Config.NoArena turns the arena off.
//
// Logs are named "loss" and each Metric's Name for training (batch-size
// weighted means over the epoch, exact for mean-reduced losses and for
// accuracy), and "val_loss", "val_<name>" for validation.
//
// # Interruption and resume
//
// When the context is cancelled (the CLI cancels it on SIGINT), Fit finishes
// the current step, calls OnTrainEnd with State.Interrupted set (a Checkpoint
// callback then writes a resumable checkpoint of the exact position) and
// returns an error for which errors.Is(err, ErrInterrupted) and
// errors.Is(err, ctx.Err()) hold. Setting Config.ResumeFrom to a checkpoint
// directory continues such a run: model weights, optimizer, scheduler and
// callback state, the History, the epoch and batch position and the running
// sums of the interrupted epoch are restored, and the loader resumes with
// data.Loader.EpochFrom, whose order is a pure function of (seed, epoch).
// An interrupted-then-resumed run therefore ends with bitwise the same
// weights and History values as an uninterrupted one.
//
// Random state held inside the model (the *tensor.RNG of every module that
// implements nn.RandomSourcer, such as nn.Dropout) is saved in the checkpoint
// too, so models with dropout also resume exactly.
//
// # Checkpoints
//
// A checkpoint is a directory holding model.safetensors (nn.SaveStateDict,
// loadable with nn.Load), optimizer.safetensors, scheduler.safetensors and
// callback-<i>.safetensors (optim.SaveState) and state.json (position,
// History, loader settings, running sums and the size and SHA-256 of every
// other file). It is written into a temporary sibling directory and renamed
// into place, so a crash never leaves a half-written checkpoint where a good
// one was; ReadCheckpoint verifies sizes and hashes and names the damaged file.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

// ErrInterrupted is returned (wrapped) by Fit when its context was cancelled.
var ErrInterrupted = errors.New("train: interrupted")

// LossFunc maps a model output and a target to a scalar loss, e.g.
// func(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) }.
type LossFunc func(out, target *tensor.Tensor) *tensor.Tensor

// Metric is a named per-batch measure of the model's output. Fit reports
// its batch-size weighted mean over an epoch.
type Metric struct {
	// Name is the log key ("accuracy"); the validation value is "val_"+Name.
	Name string
	// Fn computes the metric of one batch from the model output and targets.
	Fn func(logits, targets *tensor.Tensor) float64
}

// Accuracy is the classification accuracy of logits [N, C] against int64
// class targets [N], named "accuracy".
func Accuracy() Metric {
	return Metric{Name: "accuracy", Fn: func(logits, targets *tensor.Tensor) float64 {
		return metrics.AccuracyLogits(logits, targets.Int64s())
	}}
}

// Config describes a training run.
type Config struct {
	// Epochs is the total number of epochs (including any already done by
	// the run being resumed). Required.
	Epochs int
	// Optimizer updates the model's parameters. Required.
	Optimizer optim.Optimizer
	// Loss is the training objective. Required.
	Loss LossFunc
	// Train yields the training batches. Required.
	Train *data.Loader
	// Val, if not nil, is evaluated after every epoch.
	Val *data.Loader
	// Metrics are computed on training and validation batches besides the loss.
	Metrics []Metric
	// Callbacks receive the loop's events in order; Checkpoint callbacks are
	// always called after the others at each event, so that a checkpoint
	// holds the state the other callbacks left.
	Callbacks []Callback
	// Scheduler, if not nil, is stepped once after every epoch (after
	// validation, before OnEpochEnd). Its state is checkpointed.
	Scheduler optim.LRScheduler
	// ClipGradNorm, if > 0, clips the L2 norm of all gradients to this value
	// before every step (optim.ClipGradNorm).
	ClipGradNorm float64
	// Progress is where the progress bar is drawn; nil means os.Stderr. The
	// bar is redrawn in place on a terminal and is one line per epoch
	// otherwise.
	Progress io.Writer
	// Quiet disables the progress bar.
	Quiet bool
	// NoArena turns off the step arena (tensor.Arena) that Fit and the
	// validation pass use for every batch. With the arena, the tensors of
	// a batch (the model output, the loss, every intermediate result) are
	// dead once the batch is done: Loss and Metrics must not keep them
	// (their returned float64 values are what counts). Set NoArena when a
	// custom Loss or Metric keeps tensors across batches.
	NoArena bool
	// ResumeFrom, if not empty, is a checkpoint directory (or a Checkpoint
	// callback's Dir, meaning its "last" checkpoint) to continue from.
	ResumeFrom string
}

// Logs maps metric names to values.
type Logs map[string]float64

// EpochLog is the record of one epoch.
type EpochLog struct {
	// Epoch is the 0-based epoch number.
	Epoch int `json:"epoch"`
	// Logs holds the epoch's training and validation metrics.
	Logs Logs `json:"logs"`
	// LR is the optimizer's learning rate when the epoch started.
	LR float64 `json:"lr"`
	// Steps is the number of optimizer steps in the epoch.
	Steps int `json:"steps"`
	// Seconds is the wall time of the epoch (of its resumed part after a resume).
	Seconds float64 `json:"seconds"`
}

// History is the per-epoch record of a run, in Keras's spirit.
type History struct {
	// Names lists the log keys in display order: loss, the metrics, then
	// their val_ counterparts.
	Names []string `json:"names"`
	// Epochs holds one entry per completed epoch.
	Epochs []EpochLog `json:"epochs"`
}

// Get returns the values of one log key, one per epoch (NaN where absent).
func (h *History) Get(name string) []float64 {
	out := make([]float64, len(h.Epochs))
	for i, e := range h.Epochs {
		v, ok := e.Logs[name]
		if !ok {
			v = math.NaN()
		}
		out[i] = v
	}
	return out
}

// Best returns the index of the epoch with the lowest ("min") or highest
// ("max") value of name, and that value; (-1, NaN) when there is none.
func (h *History) Best(name, mode string) (epoch int, value float64) {
	epoch, value = -1, math.NaN()
	for i, v := range h.Get(name) {
		if math.IsNaN(v) {
			continue
		}
		if epoch < 0 || (mode == "max" && v > value) || (mode != "max" && v < value) {
			epoch, value = i, v
		}
	}
	return epoch, value
}

// State is what callbacks see: the model, the optimizer and the loop's
// position. Callbacks may read everything, set StopTraining, and change the
// optimizer's LR; the Logs map is only valid during the call.
type State struct {
	// Model is the model being trained.
	Model nn.Module
	// Optimizer is the run's optimizer.
	Optimizer optim.Optimizer
	// Epoch is the current 0-based epoch.
	Epoch int
	// Epochs is the configured total number of epochs.
	Epochs int
	// Step is the number of batches done in the current epoch.
	Step int
	// StepsPerEpoch is the number of batches per epoch.
	StepsPerEpoch int
	// GlobalStep is the number of optimizer steps since the run began,
	// counting those before a resume.
	GlobalStep int
	// BatchLoss is the loss of the last batch (in OnBatchEnd).
	BatchLoss float64
	// BatchSize is the number of examples in the last batch.
	BatchSize int
	// Logs holds, in OnBatchEnd, the running means of the epoch so far and,
	// in OnEpochEnd, the epoch's final training and validation logs.
	Logs Logs
	// History is the run's history so far.
	History *History
	// StopTraining, set by a callback, ends the run after the current epoch.
	StopTraining bool
	// Interrupted is true in OnTrainEnd when the context was cancelled.
	Interrupted bool
	// Resumed is true when the run continues from a checkpoint.
	Resumed bool
	// Err is the error that ends the run, if any (in OnTrainEnd).
	Err error

	t *trainer
}

// Names returns the log keys in display order (see History.Names).
func (s *State) Names() []string { return s.History.Names }

// trainer is the state of one Fit call.
type trainer struct {
	model     nn.Module
	cfg       Config
	params    []*tensor.Tensor
	callbacks []Callback // in call order
	stateful  []Stateful // the user's stateful callbacks, in the user's order
	state     State
	hist      *History

	// running sums of the current epoch: n examples, sums[k] = Σ value*size
	// (k = 0 is the loss, then the metrics).
	n       float64
	sums    []float64
	epochLR float64
	// atEpochEnd is true between the end of an epoch's logs and the next
	// epoch's start: a checkpoint taken then resumes at the next epoch.
	atEpochEnd bool
}

func (c *Config) validate() error {
	switch {
	case c.Epochs <= 0:
		return fmt.Errorf("train.Fit: Epochs = %d, want > 0", c.Epochs)
	case c.Optimizer == nil:
		return errors.New("train.Fit: Optimizer is nil")
	case c.Loss == nil:
		return errors.New("train.Fit: Loss is nil")
	case c.Train == nil:
		return errors.New("train.Fit: Train loader is nil")
	case c.Train.NumBatches() == 0:
		return errors.New("train.Fit: Train loader yields no batches")
	case c.ClipGradNorm < 0 || math.IsNaN(c.ClipGradNorm):
		return fmt.Errorf("train.Fit: ClipGradNorm = %v, want >= 0", c.ClipGradNorm)
	}
	seen := map[string]bool{"loss": true}
	for i, m := range c.Metrics {
		if m.Name == "" || m.Fn == nil {
			return fmt.Errorf("train.Fit: metric %d needs a Name and an Fn", i)
		}
		if seen[m.Name] || strings.HasPrefix(m.Name, "val_") {
			return fmt.Errorf("train.Fit: metric name %q is duplicated or reserved", m.Name)
		}
		seen[m.Name] = true
	}
	for i, cb := range c.Callbacks {
		if cb == nil {
			return fmt.Errorf("train.Fit: callback %d is nil", i)
		}
	}
	return nil
}

// Fit trains model as cfg describes and returns its History. On
// cancellation of ctx it returns the History so far and an error wrapping
// ErrInterrupted and ctx.Err(); any other error (a loader error, a callback
// error, a failed resume) is returned as is, with the History so far.
func Fit(ctx context.Context, model nn.Module, cfg Config) (*History, error) {
	if model == nil {
		return nil, errors.New("train.Fit: model is nil")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &trainer{model: model, cfg: cfg, params: nn.Parameters(model)}
	names := []string{"loss"}
	for _, m := range cfg.Metrics {
		names = append(names, m.Name)
	}
	if cfg.Val != nil {
		for _, n := range slices.Clone(names) {
			names = append(names, "val_"+n)
		}
	}
	t.hist = &History{Names: names}
	t.sums = make([]float64, 1+len(cfg.Metrics))

	var ckpts []Callback
	if !cfg.Quiet {
		w := cfg.Progress
		if w == nil {
			w = os.Stderr
		}
		t.callbacks = append(t.callbacks, NewProgressBar(w))
	}
	for _, cb := range cfg.Callbacks {
		if s, ok := cb.(Stateful); ok {
			t.stateful = append(t.stateful, s)
		}
		if _, ok := cb.(*Checkpoint); ok {
			ckpts = append(ckpts, cb)
			continue
		}
		t.callbacks = append(t.callbacks, cb)
	}
	t.callbacks = append(t.callbacks, ckpts...)

	t.state = State{
		Model: model, Optimizer: cfg.Optimizer, Epochs: cfg.Epochs,
		StepsPerEpoch: cfg.Train.NumBatches(), History: t.hist, t: t,
	}
	return t.run(ctx)
}

func (t *trainer) run(ctx context.Context) (hist *History, err error) {
	s := &t.state
	startStep := 0
	var cbStates []optim.State
	if t.cfg.ResumeFrom != "" {
		ck, err := ReadCheckpoint(t.cfg.ResumeFrom)
		if err != nil {
			return nil, err
		}
		if err := t.restore(ck); err != nil {
			return nil, err
		}
		startStep = s.Step
		cbStates = ck.Callbacks
	}
	nn.Train(t.model)
	began := 0 // callbacks whose OnTrainBegin ran
	defer func() {
		s.Err = err
		s.Interrupted = errors.Is(err, ErrInterrupted)
		for _, cb := range t.callbacks[:began] {
			if e := cb.OnTrainEnd(s); e != nil {
				err = errors.Join(err, e)
			}
		}
		hist = t.hist
	}()
	for _, cb := range t.callbacks {
		began++
		if err := cb.OnTrainBegin(s); err != nil {
			return nil, err
		}
	}
	if cbStates != nil {
		if err := t.loadCallbackStates(cbStates); err != nil {
			return nil, err
		}
	}
	for ; s.Epoch < t.cfg.Epochs && !s.StopTraining; s.Epoch++ {
		if err := t.epoch(ctx, startStep); err != nil {
			return nil, err
		}
		startStep = 0
	}
	return nil, nil
}

// interrupted returns the interruption error if ctx is done.
func (t *trainer) interrupted(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("%w at epoch %d, step %d/%d: %w", ErrInterrupted, t.state.Epoch, t.state.Step, t.state.StepsPerEpoch, ctx.Err())
}

func (t *trainer) epoch(ctx context.Context, startStep int) error {
	s := &t.state
	cfg := &t.cfg
	t.atEpochEnd = false
	s.Step = startStep
	if startStep == 0 {
		t.n = 0
		clear(t.sums)
		t.epochLR = cfg.Optimizer.LR()
	}
	if err := t.interrupted(ctx); err != nil {
		return err
	}
	start := time.Now()
	logs := Logs{}
	s.Logs = logs
	for _, cb := range t.callbacks {
		if err := cb.OnEpochBegin(s); err != nil {
			return err
		}
	}
	it := cfg.Train.EpochFrom(s.Epoch, startStep)
	defer it.Close()
	var arena *tensor.Arena // nil: none
	if !cfg.NoArena {
		arena = tensor.NewArena()
	}
	for it.Next() {
		b := it.Batch()
		cfg.Optimizer.ZeroGrad()
		out := t.model.Forward(arena.Adopt(b.Input))
		loss := cfg.Loss(out, b.Target)
		loss.Backward()
		if cfg.ClipGradNorm > 0 {
			optim.ClipGradNorm(t.params, cfg.ClipGradNorm, 2)
		}
		cfg.Optimizer.Step()
		s.Step++
		s.GlobalStep++
		size := float64(b.Size())
		s.BatchSize = b.Size()
		s.BatchLoss = float64(loss.Item())
		t.n += size
		t.sums[0] += s.BatchLoss * size
		logs["loss"] = t.sums[0] / t.n
		for k, m := range cfg.Metrics {
			t.sums[k+1] += m.Fn(out, b.Target) * size
			logs[m.Name] = t.sums[k+1] / t.n
		}
		arena.Reset() // the batch's tensors are dead from here on
		for _, cb := range t.callbacks {
			if err := cb.OnBatchEnd(s); err != nil {
				return err
			}
		}
		if err := t.interrupted(ctx); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("train.Fit: epoch %d: %w", s.Epoch, err)
	}
	it.Close()

	final := Logs{"loss": t.sums[0] / t.n}
	for k, m := range cfg.Metrics {
		final[m.Name] = t.sums[k+1] / t.n
	}
	if cfg.Val != nil {
		vl, err := evaluate(ctx, t.model, cfg.Val, cfg.Loss, cfg.Metrics, !cfg.NoArena)
		nn.Train(t.model)
		if err != nil {
			if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
				return t.interrupted(ctx)
			}
			return fmt.Errorf("train.Fit: validation after epoch %d: %w", s.Epoch, err)
		}
		for k, v := range vl {
			final["val_"+k] = v
		}
	}
	if cfg.Scheduler != nil {
		cfg.Scheduler.Step()
	}
	t.hist.Epochs = append(t.hist.Epochs, EpochLog{
		Epoch: s.Epoch, Logs: final, LR: t.epochLR, Steps: s.Step, Seconds: time.Since(start).Seconds(),
	})
	t.atEpochEnd = true
	s.Logs = final
	for _, cb := range t.callbacks {
		if err := cb.OnEpochEnd(s); err != nil {
			return err
		}
	}
	return nil
}

// Evaluate runs model over every batch of loader (in the order of epoch 0)
// under tensor.NoGrad, with the model in eval mode, and returns the
// batch-size weighted mean loss ("loss", when loss is not nil) and metrics.
// It leaves the model in eval mode. Cancelling ctx stops it with ctx.Err().
// Each batch runs in a step arena (tensor.Arena), as in Fit: loss and the
// metrics must not keep the tensors they are given.
func Evaluate(ctx context.Context, model nn.Module, loader *data.Loader, loss LossFunc, ms []Metric) (Logs, error) {
	if model == nil || loader == nil {
		return nil, errors.New("train.Evaluate: model and loader must not be nil")
	}
	return evaluate(ctx, model, loader, loss, ms, true)
}

// evaluate is Evaluate; with useArena set, each batch runs in a step
// arena (see Config.NoArena).
func evaluate(ctx context.Context, model nn.Module, loader *data.Loader, loss LossFunc, ms []Metric, useArena bool) (Logs, error) {
	nn.Eval(model)
	var arena *tensor.Arena // nil: none
	if useArena {
		arena = tensor.NewArena()
	}
	var n float64
	sums := make([]float64, 1+len(ms))
	it := loader.Epoch(0)
	defer it.Close()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := it.Batch()
		size := float64(b.Size())
		tensor.NoGrad(func() {
			out := model.Forward(arena.Adopt(b.Input))
			if loss != nil {
				sums[0] += float64(loss(out, b.Target).Item()) * size
			}
			for k, m := range ms {
				sums[k+1] += m.Fn(out, b.Target) * size
			}
			arena.Reset()
		})
		n += size
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	out := Logs{}
	if loss != nil {
		out["loss"] = sums[0] / n
	}
	for k, m := range ms {
		out[m.Name] = sums[k+1] / n
	}
	return out, nil
}
