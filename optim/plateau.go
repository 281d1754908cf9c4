package optim

import (
	"fmt"
	"math"
)

// PlateauConfig holds the settings of ReduceLROnPlateau. Fields are used as
// given, except that an empty Mode means "min", an empty ThresholdMode means
// "rel" and a zero Factor means 0.1; start from DefaultPlateauConfig for
// PyTorch's defaults.
type PlateauConfig struct {
	// Mode is "min" (the metric should fall, e.g. a loss) or "max" (it should rise, e.g. accuracy).
	Mode string
	// Factor multiplies the LR on a plateau; it must be in (0, 1).
	Factor float64
	// Patience is the number of epochs without improvement tolerated before
	// the LR is reduced.
	Patience int
	// Threshold is how much better than the best a metric must be to count
	// as an improvement.
	Threshold float64
	// ThresholdMode is "rel" (better than best*(1∓Threshold)) or "abs"
	// (better than best∓Threshold).
	ThresholdMode string
	// Cooldown is the number of epochs after a reduction during which bad
	// epochs are not counted.
	Cooldown int
	// MinLR is the lower bound of the LR.
	MinLR float64
	// Eps is the smallest change of LR that is applied.
	Eps float64
}

// DefaultPlateauConfig returns torch.optim.lr_scheduler.ReduceLROnPlateau's
// defaults: mode min, factor 0.1, patience 10, threshold 1e-4 rel, cooldown
// 0, min_lr 0, eps 1e-8.
func DefaultPlateauConfig() PlateauConfig {
	return PlateauConfig{Mode: "min", Factor: 0.1, Patience: 10, Threshold: 1e-4, ThresholdMode: "rel", Eps: 1e-8}
}

// ReduceLROnPlateau lowers the optimizer's LR by Factor when a metric has not
// improved for more than Patience epochs, exactly as PyTorch's
// torch.optim.lr_scheduler.ReduceLROnPlateau.
type ReduceLROnPlateau struct {
	opt             Optimizer
	cfg             PlateauConfig
	best            float64
	numBadEpochs    int
	cooldownCounter int
	lastEpoch       int
}

// NewReduceLROnPlateau makes a ReduceLROnPlateau for opt. It panics if the
// configuration is invalid.
func NewReduceLROnPlateau(opt Optimizer, cfg PlateauConfig) *ReduceLROnPlateau {
	const op = "NewReduceLROnPlateau"
	if opt == nil {
		panic("optim." + op + ": optimizer is nil")
	}
	if cfg.Mode == "" {
		cfg.Mode = "min"
	}
	if cfg.ThresholdMode == "" {
		cfg.ThresholdMode = "rel"
	}
	if cfg.Factor == 0 {
		cfg.Factor = 0.1
	}
	switch {
	case cfg.Mode != "min" && cfg.Mode != "max":
		panic(fmt.Sprintf("optim.%s: Mode must be \"min\" or \"max\", got %q", op, cfg.Mode))
	case cfg.ThresholdMode != "rel" && cfg.ThresholdMode != "abs":
		panic(fmt.Sprintf("optim.%s: ThresholdMode must be \"rel\" or \"abs\", got %q", op, cfg.ThresholdMode))
	case !(cfg.Factor > 0 && cfg.Factor < 1):
		panic(fmt.Sprintf("optim.%s: Factor must be in (0, 1), got %v", op, cfg.Factor))
	case cfg.Patience < 0 || cfg.Cooldown < 0:
		panic(fmt.Sprintf("optim.%s: Patience and Cooldown must be >= 0, got %d and %d", op, cfg.Patience, cfg.Cooldown))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"Threshold", cfg.Threshold}, {"MinLR", cfg.MinLR}, {"Eps", cfg.Eps}} {
		mustOK(checkNonNeg(op, f.name, f.v))
	}
	r := &ReduceLROnPlateau{opt: opt, cfg: cfg}
	r.best = r.worst()
	return r
}

func (r *ReduceLROnPlateau) worst() float64 {
	if r.cfg.Mode == "min" {
		return math.Inf(1)
	}
	return math.Inf(-1)
}

func (r *ReduceLROnPlateau) isBetter(a float64) bool {
	best, th := r.best, r.cfg.Threshold
	switch {
	case r.cfg.Mode == "min" && r.cfg.ThresholdMode == "rel":
		return a < best*(1-th)
	case r.cfg.Mode == "min":
		return a < best-th
	case r.cfg.ThresholdMode == "rel":
		return a > best*(th+1)
	default:
		return a > best+th
	}
}

// Step records the epoch's metric and lowers the LR if it has stalled.
// A NaN metric counts as no improvement.
func (r *ReduceLROnPlateau) Step(metric float64) {
	r.lastEpoch++
	if r.isBetter(metric) {
		r.best = metric
		r.numBadEpochs = 0
	} else {
		r.numBadEpochs++
	}
	if r.cooldownCounter > 0 {
		r.cooldownCounter--
		r.numBadEpochs = 0
	}
	if r.numBadEpochs > r.cfg.Patience {
		old := r.opt.LR()
		if lr := math.Max(old*r.cfg.Factor, r.cfg.MinLR); old-lr > r.cfg.Eps {
			r.opt.SetLR(lr)
		}
		r.cooldownCounter = r.cfg.Cooldown
		r.numBadEpochs = 0
	}
}

// LR returns the optimizer's current learning rate.
func (r *ReduceLROnPlateau) LR() float64 { return r.opt.LR() }

// Best returns the best metric seen (±Inf before the first Step).
func (r *ReduceLROnPlateau) Best() float64 { return r.best }

// NumBadEpochs returns the number of epochs since the last improvement (reset
// by a reduction and during cooldown).
func (r *ReduceLROnPlateau) NumBadEpochs() int { return r.numBadEpochs }

// LastEpoch returns the number of Steps taken.
func (r *ReduceLROnPlateau) LastEpoch() int { return r.lastEpoch }

// Config returns the settings.
func (r *ReduceLROnPlateau) Config() PlateauConfig { return r.cfg }

// StateDict returns the counters ("best", "num_bad_epochs",
// "cooldown_counter", "last_epoch"). The LR itself lives in the optimizer's state.
func (r *ReduceLROnPlateau) StateDict() State {
	return State{Kind: "ReduceLROnPlateau", Scalars: map[string]float64{
		"best":             r.best,
		"num_bad_epochs":   float64(r.numBadEpochs),
		"cooldown_counter": float64(r.cooldownCounter),
		"last_epoch":       float64(r.lastEpoch),
	}}
}

// LoadStateDict restores counters saved by StateDict.
func (r *ReduceLROnPlateau) LoadStateDict(s State) error {
	const op = "ReduceLROnPlateau"
	if s.Kind != op {
		return fmt.Errorf("optim.%s.LoadStateDict: state is for %q, not %q", op, s.Kind, op)
	}
	if len(s.Tensors) != 0 {
		return fmt.Errorf("optim.%s.LoadStateDict: unexpected tensors (%d)", op, len(s.Tensors))
	}
	counters := []string{"cooldown_counter", "last_epoch", "num_bad_epochs"}
	if err := checkScalarSet(op, s, append([]string{"best"}, counters...)); err != nil {
		return err
	}
	for _, k := range counters {
		if v := s.Scalars[k]; v < 0 || v != math.Trunc(v) || v > math.MaxInt32 {
			return fmt.Errorf("optim.%s.LoadStateDict: %s = %v is not a whole number >= 0", op, k, v)
		}
	}
	r.best = s.Scalars["best"]
	r.numBadEpochs = int(s.Scalars["num_bad_epochs"])
	r.cooldownCounter = int(s.Scalars["cooldown_counter"])
	r.lastEpoch = int(s.Scalars["last_epoch"])
	return nil
}
