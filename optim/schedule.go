package optim

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// LRScheduler changes an optimizer's learning rate once per Step (an epoch
// or an iteration, as the caller decides).
type LRScheduler interface {
	// Step advances the schedule by one and sets the optimizer's LR.
	Step()
	// LR returns the learning rate the scheduler last set.
	LR() float64
	// StateDict returns the scheduler's counters.
	StateDict() State
	// LoadStateDict restores counters saved by StateDict.
	LoadStateDict(s State) error
}

// Schedule is a learning-rate curve: the LR at a given epoch (0 for the
// value set when the scheduler is made) for the optimizer's base LR.
type Schedule interface {
	// LRAt returns the learning rate at epoch for the base LR baseLR.
	LRAt(epoch int, baseLR float64) float64
}

// StepSchedule multiplies the LR by Gamma every StepSize epochs
// (torch.optim.lr_scheduler.StepLR): base * Gamma^(epoch / StepSize).
type StepSchedule struct {
	// StepSize is the number of epochs between decays (>= 1).
	StepSize int
	// Gamma is the decay factor.
	Gamma float64
}

// LRAt implements Schedule.
func (s StepSchedule) LRAt(epoch int, baseLR float64) float64 {
	return baseLR * math.Pow(s.Gamma, float64(epoch/s.StepSize))
}

func (s StepSchedule) validate() error {
	if s.StepSize < 1 {
		return fmt.Errorf("StepSchedule.StepSize must be >= 1, got %d", s.StepSize)
	}
	if !(s.Gamma >= 0) {
		return fmt.Errorf("StepSchedule.Gamma must be >= 0, got %v", s.Gamma)
	}
	return nil
}

// CosineSchedule anneals the LR from the base LR to EtaMin over TMax epochs
// along a half cosine (torch.optim.lr_scheduler.CosineAnnealingLR):
// EtaMin + (base-EtaMin)*(1+cos(pi*epoch/TMax))/2. Past TMax the curve
// continues (rising again), as PyTorch's recursive form does.
type CosineSchedule struct {
	// TMax is the number of epochs from the base LR down to EtaMin (>= 1).
	TMax int
	// EtaMin is the lowest LR.
	EtaMin float64
}

// LRAt implements Schedule.
func (s CosineSchedule) LRAt(epoch int, baseLR float64) float64 {
	return s.EtaMin + (baseLR-s.EtaMin)*(1+math.Cos(math.Pi*float64(epoch)/float64(s.TMax)))/2
}

func (s CosineSchedule) validate() error {
	if s.TMax < 1 {
		return fmt.Errorf("CosineSchedule.TMax must be >= 1, got %d", s.TMax)
	}
	return nil
}

// LinearSchedule scales the base LR by a factor that moves linearly from
// StartFactor to EndFactor over TotalIters epochs and then stays at
// EndFactor (torch.optim.lr_scheduler.LinearLR).
type LinearSchedule struct {
	// StartFactor and EndFactor, in [0, 1], scale the base LR at epoch 0 and
	// from epoch TotalIters on.
	StartFactor, EndFactor float64
	// TotalIters is the length of the ramp in epochs (>= 1).
	TotalIters int
}

// LRAt implements Schedule.
func (s LinearSchedule) LRAt(epoch int, baseLR float64) float64 {
	e := min(epoch, s.TotalIters)
	return baseLR * (s.StartFactor + (s.EndFactor-s.StartFactor)*float64(e)/float64(s.TotalIters))
}

func (s LinearSchedule) validate() error {
	if !(s.StartFactor >= 0 && s.StartFactor <= 1) || !(s.EndFactor >= 0 && s.EndFactor <= 1) {
		return fmt.Errorf("LinearSchedule factors must be in [0, 1], got StartFactor %v, EndFactor %v", s.StartFactor, s.EndFactor)
	}
	if s.TotalIters < 1 {
		return fmt.Errorf("LinearSchedule.TotalIters must be >= 1, got %d", s.TotalIters)
	}
	return nil
}

// SequentialSchedule runs Schedules one after another, switching at each
// milestone epoch (torch.optim.lr_scheduler.SequentialLR): from
// Milestones[k-1] on, Schedules[k] runs with its epoch counted from that
// milestone. It needs len(Milestones) == len(Schedules)-1, increasing.
type SequentialSchedule struct {
	// Schedules run one after another.
	Schedules []Schedule
	// Milestones are the epochs at which the next schedule takes over.
	Milestones []int
}

// LRAt implements Schedule.
func (s SequentialSchedule) LRAt(epoch int, baseLR float64) float64 {
	idx := sort.Search(len(s.Milestones), func(i int) bool { return s.Milestones[i] > epoch })
	start := 0
	if idx > 0 {
		start = s.Milestones[idx-1]
	}
	return s.Schedules[idx].LRAt(epoch-start, baseLR)
}

func (s SequentialSchedule) validate() error {
	if len(s.Schedules) == 0 || len(s.Milestones) != len(s.Schedules)-1 {
		return fmt.Errorf("SequentialSchedule needs one more schedule than milestones, got %d schedules and %d milestones", len(s.Schedules), len(s.Milestones))
	}
	for i, m := range s.Milestones {
		if m < 1 || (i > 0 && m <= s.Milestones[i-1]) {
			return fmt.Errorf("SequentialSchedule.Milestones must be positive and increasing, got %v", s.Milestones)
		}
	}
	for i, sub := range s.Schedules {
		if sub == nil {
			return fmt.Errorf("SequentialSchedule.Schedules[%d] is nil", i)
		}
		if err := validateSchedule(sub); err != nil {
			return err
		}
	}
	return nil
}

// WarmupSchedule warms the LR up linearly from StartFactor*base to base over
// Steps epochs, then runs Then (nil: constant base LR) with its epoch counted
// from the end of the warm-up. It equals SequentialLR([LinearLR(StartFactor,
// 1, Steps), Then], milestones=[Steps]) in PyTorch.
type WarmupSchedule struct {
	// StartFactor scales the base LR at epoch 0 (in [0, 1]).
	StartFactor float64
	// Steps is the length of the warm-up in epochs (>= 1).
	Steps int
	// Then is the schedule after the warm-up; nil keeps the base LR.
	Then Schedule
}

// LRAt implements Schedule.
func (s WarmupSchedule) LRAt(epoch int, baseLR float64) float64 {
	if epoch < s.Steps {
		return LinearSchedule{StartFactor: s.StartFactor, EndFactor: 1, TotalIters: s.Steps}.LRAt(epoch, baseLR)
	}
	if s.Then == nil {
		return baseLR
	}
	return s.Then.LRAt(epoch-s.Steps, baseLR)
}

func (s WarmupSchedule) validate() error {
	if err := (LinearSchedule{StartFactor: s.StartFactor, EndFactor: 1, TotalIters: s.Steps}).validate(); err != nil {
		return fmt.Errorf("WarmupSchedule: %v", err)
	}
	if s.Then != nil {
		return validateSchedule(s.Then)
	}
	return nil
}

func validateSchedule(s Schedule) error {
	if v, ok := s.(interface{ validate() error }); ok {
		return v.validate()
	}
	return nil
}

// Scheduler drives an optimizer's LR along a Schedule. It remembers the
// optimizer's LR when made as the base LR, sets the LR for epoch 0 at once
// (as PyTorch's schedulers do on construction) and the LR for the next epoch
// at each Step.
type Scheduler struct {
	opt       Optimizer
	sched     Schedule
	baseLR    float64
	lastEpoch int
	lr        float64
}

// NewScheduler makes a Scheduler for opt following s. It panics if s has
// invalid settings.
func NewScheduler(opt Optimizer, s Schedule) *Scheduler {
	if opt == nil || s == nil {
		panic("optim.NewScheduler: optimizer and schedule must not be nil")
	}
	if err := validateSchedule(s); err != nil {
		panic("optim.NewScheduler: " + err.Error())
	}
	sc := &Scheduler{opt: opt, sched: s, baseLR: opt.LR()}
	sc.apply()
	return sc
}

// NewStepLR is NewScheduler(opt, StepSchedule{stepSize, gamma}).
func NewStepLR(opt Optimizer, stepSize int, gamma float64) *Scheduler {
	return NewScheduler(opt, StepSchedule{StepSize: stepSize, Gamma: gamma})
}

// NewCosineAnnealingLR is NewScheduler(opt, CosineSchedule{tMax, etaMin}).
func NewCosineAnnealingLR(opt Optimizer, tMax int, etaMin float64) *Scheduler {
	return NewScheduler(opt, CosineSchedule{TMax: tMax, EtaMin: etaMin})
}

// NewLinearLR is NewScheduler(opt, LinearSchedule{startFactor, endFactor, totalIters}).
func NewLinearLR(opt Optimizer, startFactor, endFactor float64, totalIters int) *Scheduler {
	return NewScheduler(opt, LinearSchedule{StartFactor: startFactor, EndFactor: endFactor, TotalIters: totalIters})
}

// NewSequentialLR is NewScheduler(opt, SequentialSchedule{schedules, milestones}).
func NewSequentialLR(opt Optimizer, schedules []Schedule, milestones []int) *Scheduler {
	return NewScheduler(opt, SequentialSchedule{Schedules: slices.Clone(schedules), Milestones: slices.Clone(milestones)})
}

// NewLinearWarmup is NewScheduler(opt, WarmupSchedule{startFactor, steps, then}):
// a linear warm-up over steps epochs followed by then (nil: constant LR).
func NewLinearWarmup(opt Optimizer, startFactor float64, steps int, then Schedule) *Scheduler {
	return NewScheduler(opt, WarmupSchedule{StartFactor: startFactor, Steps: steps, Then: then})
}

func (s *Scheduler) apply() {
	s.lr = s.sched.LRAt(s.lastEpoch, s.baseLR)
	s.opt.SetLR(s.lr)
}

// Step advances one epoch and sets the optimizer's LR.
func (s *Scheduler) Step() {
	s.lastEpoch++
	s.apply()
}

// LR returns the learning rate last set on the optimizer.
func (s *Scheduler) LR() float64 { return s.lr }

// LastEpoch returns the number of Steps taken.
func (s *Scheduler) LastEpoch() int { return s.lastEpoch }

// BaseLR returns the optimizer's LR when the scheduler was made.
func (s *Scheduler) BaseLR() float64 { return s.baseLR }

// StateDict returns the scheduler's counters ("last_epoch", "base_lr").
func (s *Scheduler) StateDict() State {
	return State{Kind: "LRScheduler", Scalars: map[string]float64{
		"last_epoch": float64(s.lastEpoch),
		"base_lr":    s.baseLR,
	}}
}

// LoadStateDict restores counters saved by StateDict and sets the
// optimizer's LR for the restored epoch. The schedule itself is not part of
// the state: make the Scheduler with the same Schedule before loading.
func (s *Scheduler) LoadStateDict(st State) error {
	const op = "Scheduler"
	if st.Kind != "LRScheduler" {
		return fmt.Errorf("optim.%s.LoadStateDict: state is for %q, not \"LRScheduler\"", op, st.Kind)
	}
	if len(st.Tensors) != 0 {
		return fmt.Errorf("optim.%s.LoadStateDict: unexpected tensors (%d)", op, len(st.Tensors))
	}
	if err := checkScalarSet(op, st, []string{"base_lr", "last_epoch"}); err != nil {
		return err
	}
	e, base := st.Scalars["last_epoch"], st.Scalars["base_lr"]
	if e < 0 || e != math.Trunc(e) || e > math.MaxInt32 {
		return fmt.Errorf("optim.%s.LoadStateDict: last_epoch = %v is not a whole number >= 0", op, e)
	}
	if !(base >= 0) || math.IsInf(base, 0) {
		return fmt.Errorf("optim.%s.LoadStateDict: base_lr = %v must be finite and >= 0", op, base)
	}
	s.lastEpoch, s.baseLR = int(e), base
	s.apply()
	return nil
}

var _ LRScheduler = (*Scheduler)(nil)

var (
	_ Optimizer = (*SGD)(nil)
	_ Optimizer = (*Adam)(nil)
	_ Optimizer = (*RMSProp)(nil)
)
