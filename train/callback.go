package train

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

// Callback receives the training loop's events. Returning an error from any
// method aborts the run with that error (OnTrainEnd is still called on the
// callbacks whose OnTrainBegin ran). Embed BaseCallback to implement only
// some methods.
type Callback interface {
	// OnTrainBegin is called once, before the first epoch (after the model
	// and optimizer were restored when resuming, and before callback state
	// is restored).
	OnTrainBegin(s *State) error
	// OnEpochBegin is called at the start of every epoch, including an
	// epoch resumed in its middle (then s.Step > 0).
	OnEpochBegin(s *State) error
	// OnBatchEnd is called after every optimizer step.
	OnBatchEnd(s *State) error
	// OnEpochEnd is called after validation with the epoch's logs in s.Logs.
	OnEpochEnd(s *State) error
	// OnTrainEnd is called once when the run ends, however it ends;
	// s.Interrupted and s.Err say how.
	OnTrainEnd(s *State) error
}

// Stateful is a callback whose state must survive a resume (EarlyStopping,
// ReduceLROnPlateau, Checkpoint). Checkpoints store the state of every
// stateful callback in Config.Callbacks by position; on resume it is loaded
// after OnTrainBegin, into the callback at the same position.
type Stateful interface {
	Callback
	// StateDict returns a copy of the callback's state.
	StateDict() optim.State
	// LoadStateDict restores state returned by StateDict.
	LoadStateDict(s optim.State) error
}

// BaseCallback implements every Callback method as a no-op; embed it.
type BaseCallback struct{}

// OnTrainBegin does nothing.
func (BaseCallback) OnTrainBegin(*State) error { return nil }

// OnEpochBegin does nothing.
func (BaseCallback) OnEpochBegin(*State) error { return nil }

// OnBatchEnd does nothing.
func (BaseCallback) OnBatchEnd(*State) error { return nil }

// OnEpochEnd does nothing.
func (BaseCallback) OnEpochEnd(*State) error { return nil }

// OnTrainEnd does nothing.
func (BaseCallback) OnTrainEnd(*State) error { return nil }

// Funcs is a Callback made of optional functions, for one-off hooks.
type Funcs struct {
	TrainBegin, EpochBegin, BatchEnd, EpochEnd, TrainEnd func(s *State) error
}

func call(f func(*State) error, s *State) error {
	if f == nil {
		return nil
	}
	return f(s)
}

// OnTrainBegin calls TrainBegin if set.
func (f *Funcs) OnTrainBegin(s *State) error { return call(f.TrainBegin, s) }

// OnEpochBegin calls EpochBegin if set.
func (f *Funcs) OnEpochBegin(s *State) error { return call(f.EpochBegin, s) }

// OnBatchEnd calls BatchEnd if set.
func (f *Funcs) OnBatchEnd(s *State) error { return call(f.BatchEnd, s) }

// OnEpochEnd calls EpochEnd if set.
func (f *Funcs) OnEpochEnd(s *State) error { return call(f.EpochEnd, s) }

// OnTrainEnd calls TrainEnd if set.
func (f *Funcs) OnTrainEnd(s *State) error { return call(f.TrainEnd, s) }

// resolveMode returns "min" or "max" for a monitor: an explicit mode is
// checked; "" means "max" for names containing "acc", "auc", "f1",
// "precision" or "recall", and "min" otherwise.
func resolveMode(op, monitor, mode string) (string, error) {
	switch mode {
	case "min", "max":
		return mode, nil
	case "":
		for _, k := range []string{"acc", "auc", "f1", "precision", "recall"} {
			if strings.Contains(monitor, k) {
				return "max", nil
			}
		}
		return "min", nil
	}
	return "", fmt.Errorf("train.%s: mode %q, want \"min\", \"max\" or \"\"", op, mode)
}

// monitored returns logs[name] or an error listing the available keys.
func monitored(op string, logs Logs, name string) (float64, error) {
	v, ok := logs[name]
	if !ok {
		keys := make([]string, 0, len(logs))
		for k := range logs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return 0, fmt.Errorf("train.%s: monitored value %q is not in the logs (have %s)", op, name, strings.Join(keys, ", "))
	}
	return v, nil
}

// improved reports whether v beats best by more than minDelta.
func improved(mode string, v, best, minDelta float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if mode == "max" {
		return v > best+minDelta
	}
	return v < best-minDelta
}

func worst(mode string) float64 {
	if mode == "max" {
		return math.Inf(-1)
	}
	return math.Inf(1)
}

// EarlyStopping stops training when a monitored value has stopped
// improving (keras.callbacks.EarlyStopping). An epoch improves when its value
// beats the best so far by more than MinDelta; after Patience epochs in a row
// without improvement training stops. With RestoreBest, the model's weights
// and buffers of the best epoch are kept in memory and loaded back into the
// model when this callback stops the run (not when the run is interrupted,
// so that it can be resumed).
type EarlyStopping struct {
	// Monitor is the log key to watch; "" means "val_loss".
	Monitor string
	// Mode is "min", "max" or "" (inferred from Monitor, see Checkpoint).
	Mode string
	// Patience is the number of epochs without improvement tolerated.
	Patience int
	// MinDelta is the smallest change that counts as an improvement.
	MinDelta float64
	// RestoreBest restores the best epoch's weights when stopping.
	RestoreBest bool

	mode      string
	best      float64
	bestEpoch int
	wait      int
	stopped   int // epoch at which this callback stopped the run, or -1
	weights   map[string]*tensor.Tensor
}

// NewEarlyStopping returns an EarlyStopping on monitor with the given
// patience that restores the best weights.
func NewEarlyStopping(monitor string, patience int) *EarlyStopping {
	return &EarlyStopping{Monitor: monitor, Patience: patience, RestoreBest: true}
}

func (e *EarlyStopping) monitor() string {
	if e.Monitor == "" {
		return "val_loss"
	}
	return e.Monitor
}

// BestEpoch returns the 0-based epoch of the best value so far (-1 if none).
func (e *EarlyStopping) BestEpoch() int { return e.bestEpoch }

// Best returns the best monitored value so far.
func (e *EarlyStopping) Best() float64 { return e.best }

// StoppedEpoch returns the epoch after which this callback stopped the run,
// or -1.
func (e *EarlyStopping) StoppedEpoch() int { return e.stopped }

// OnTrainBegin resets the callback.
func (e *EarlyStopping) OnTrainBegin(*State) error {
	m, err := resolveMode("EarlyStopping", e.monitor(), e.Mode)
	if err != nil {
		return err
	}
	if e.Patience < 0 || !(e.MinDelta >= 0) {
		return fmt.Errorf("train.EarlyStopping: Patience %d and MinDelta %v must be >= 0", e.Patience, e.MinDelta)
	}
	e.mode, e.best, e.bestEpoch, e.wait, e.stopped, e.weights = m, worst(m), -1, 0, -1, nil
	return nil
}

// OnEpochBegin does nothing.
func (e *EarlyStopping) OnEpochBegin(*State) error { return nil }

// OnBatchEnd does nothing.
func (e *EarlyStopping) OnBatchEnd(*State) error { return nil }

// OnEpochEnd compares the monitored value with the best so far.
func (e *EarlyStopping) OnEpochEnd(s *State) error {
	v, err := monitored("EarlyStopping", s.Logs, e.monitor())
	if err != nil {
		return err
	}
	if improved(e.mode, v, e.best, e.MinDelta) {
		e.best, e.bestEpoch, e.wait = v, s.Epoch, 0
		if e.RestoreBest {
			e.weights = snapshot(s.Model, e.weights)
		}
		return nil
	}
	e.wait++
	if e.wait >= e.Patience {
		e.stopped = s.Epoch
		s.StopTraining = true
	}
	return nil
}

// OnTrainEnd restores the best weights if this callback stopped the run.
func (e *EarlyStopping) OnTrainEnd(s *State) error {
	if e.stopped < 0 || !e.RestoreBest || e.weights == nil || s.Err != nil {
		return nil
	}
	if err := nn.LoadStateDict(s.Model, e.weights, true); err != nil {
		return fmt.Errorf("train.EarlyStopping: restoring epoch %d: %w", e.bestEpoch, err)
	}
	return nil
}

// snapshot copies m's state dict into dst (reusing its tensors when it can).
func snapshot(m nn.Module, dst map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	sd := nn.StateDict(m)
	if dst == nil || len(dst) != len(sd) {
		dst = make(map[string]*tensor.Tensor, len(sd))
	}
	for k, t := range sd {
		if d, ok := dst[k]; ok && tensor.SameShape(d.Shape(), t.Shape()) && d.DType() == t.DType() {
			d.CopyFrom(t)
			continue
		}
		dst[k] = t.Clone()
	}
	return dst
}

// StateDict returns the counters, the best value and the best weights
// (as tensors "best.<key>").
func (e *EarlyStopping) StateDict() optim.State {
	st := optim.State{Kind: "EarlyStopping", Tensors: map[string]*tensor.Tensor{}, Scalars: map[string]float64{
		"best": e.best, "best_epoch": float64(e.bestEpoch), "wait": float64(e.wait), "stopped": float64(e.stopped),
	}}
	for k, t := range e.weights {
		st.Tensors["best."+k] = t.Clone()
	}
	return st
}

// LoadStateDict restores state returned by StateDict.
func (e *EarlyStopping) LoadStateDict(st optim.State) error {
	if err := checkKind("EarlyStopping", st, "best", "best_epoch", "wait", "stopped"); err != nil {
		return err
	}
	var w map[string]*tensor.Tensor
	for k, t := range st.Tensors {
		name, ok := strings.CutPrefix(k, "best.")
		if !ok {
			return fmt.Errorf("train.EarlyStopping.LoadStateDict: unexpected tensor %q", k)
		}
		if w == nil {
			w = map[string]*tensor.Tensor{}
		}
		w[name] = t.Clone()
	}
	e.best = st.Scalars["best"]
	e.bestEpoch = int(st.Scalars["best_epoch"])
	e.wait = int(st.Scalars["wait"])
	e.stopped = int(st.Scalars["stopped"])
	e.weights = w
	return nil
}

// checkKind verifies a callback state's kind and that it has the scalars.
func checkKind(kind string, st optim.State, scalars ...string) error {
	if st.Kind != kind {
		return fmt.Errorf("train.%s.LoadStateDict: state is for %q", kind, st.Kind)
	}
	for _, k := range scalars {
		if _, ok := st.Scalars[k]; !ok {
			return fmt.Errorf("train.%s.LoadStateDict: scalar %q is missing", kind, k)
		}
	}
	return nil
}

// ReduceLROnPlateau lowers the optimizer's learning rate when a monitored
// value stops improving; it wraps optim.ReduceLROnPlateau, stepping it with
// the monitored value after every epoch. A Config.Scheduler, if also set,
// overrides the LR at its next step.
type ReduceLROnPlateau struct {
	// Monitor is the log key to watch; "" means "val_loss".
	Monitor string
	// Config holds the plateau settings; Config.Mode "" is inferred from
	// Monitor as for EarlyStopping.
	Config optim.PlateauConfig

	BaseCallback
	p *optim.ReduceLROnPlateau
}

// NewReduceLROnPlateau returns a ReduceLROnPlateau on monitor with cfg (start
// from optim.DefaultPlateauConfig).
func NewReduceLROnPlateau(monitor string, cfg optim.PlateauConfig) *ReduceLROnPlateau {
	return &ReduceLROnPlateau{Monitor: monitor, Config: cfg}
}

func (r *ReduceLROnPlateau) monitor() string {
	if r.Monitor == "" {
		return "val_loss"
	}
	return r.Monitor
}

// OnTrainBegin makes the underlying optim.ReduceLROnPlateau for s.Optimizer.
func (r *ReduceLROnPlateau) OnTrainBegin(s *State) (err error) {
	cfg := r.Config
	if cfg.Mode, err = resolveMode("ReduceLROnPlateau", r.monitor(), cfg.Mode); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("train.ReduceLROnPlateau: %v", p)
		}
	}()
	r.p = optim.NewReduceLROnPlateau(s.Optimizer, cfg)
	return nil
}

// OnEpochEnd steps the plateau detector with the monitored value.
func (r *ReduceLROnPlateau) OnEpochEnd(s *State) error {
	v, err := monitored("ReduceLROnPlateau", s.Logs, r.monitor())
	if err != nil {
		return err
	}
	r.p.Step(v)
	return nil
}

// Plateau returns the underlying optim.ReduceLROnPlateau (nil before training).
func (r *ReduceLROnPlateau) Plateau() *optim.ReduceLROnPlateau { return r.p }

// StateDict returns the plateau detector's counters.
func (r *ReduceLROnPlateau) StateDict() optim.State {
	if r.p == nil {
		return optim.State{Kind: "ReduceLROnPlateau"}
	}
	return r.p.StateDict()
}

// LoadStateDict restores the plateau detector's counters (after OnTrainBegin).
func (r *ReduceLROnPlateau) LoadStateDict(st optim.State) error {
	if r.p == nil {
		return errors.New("train.ReduceLROnPlateau.LoadStateDict: called before OnTrainBegin")
	}
	return r.p.LoadStateDict(st)
}

// TerminateOnNaN stops the run with an error as soon as a batch loss is NaN
// or infinite.
type TerminateOnNaN struct{ BaseCallback }

// OnBatchEnd checks the batch loss.
func (TerminateOnNaN) OnBatchEnd(s *State) error {
	if math.IsNaN(s.BatchLoss) || math.IsInf(s.BatchLoss, 0) {
		return fmt.Errorf("train.TerminateOnNaN: loss is %v at epoch %d, step %d", s.BatchLoss, s.Epoch, s.Step)
	}
	return nil
}
