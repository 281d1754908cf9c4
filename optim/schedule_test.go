package optim_test

import (
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

// schedConfigs mirrors SCHEDS in tools/fixtures/optim.py (all with base LR 0.1).
var schedConfigs = map[string]func(optim.Optimizer) *optim.Scheduler{
	"step":        func(o optim.Optimizer) *optim.Scheduler { return optim.NewStepLR(o, 3, 0.5) },
	"cosine":      func(o optim.Optimizer) *optim.Scheduler { return optim.NewCosineAnnealingLR(o, 10, 0.001) },
	"cosine_zero": func(o optim.Optimizer) *optim.Scheduler { return optim.NewCosineAnnealingLR(o, 5, 0) },
	"linear":      func(o optim.Optimizer) *optim.Scheduler { return optim.NewLinearLR(o, 0.25, 1, 4) },
	"warmup_cosine": func(o optim.Optimizer) *optim.Scheduler {
		return optim.NewLinearWarmup(o, 0.1, 3, optim.CosineSchedule{TMax: 8})
	},
	"warmup_step": func(o optim.Optimizer) *optim.Scheduler {
		return optim.NewSequentialLR(o, []optim.Schedule{
			optim.LinearSchedule{StartFactor: 0.2, EndFactor: 1, TotalIters: 4},
			optim.StepSchedule{StepSize: 2, Gamma: 0.7},
		}, []int{4})
	},
}

func dummyOpt() optim.Optimizer {
	return optim.NewSGD([]*tensor.Tensor{tensor.Zeros(1).SetRequiresGrad(true)}, optim.SGDConfig{LR: 0.1})
}

func TestSchedulesMatchTorch(t *testing.T) {
	fx := testutil.LoadFixtures(t, fixturePath)
	for _, name := range sortedNames(schedConfigs) {
		t.Run(name, func(t *testing.T) {
			want := fx.Get(t, "sched."+name).Data()
			opt := dummyOpt()
			sch := schedConfigs[name](opt)
			got := []float32{float32(opt.LR())}
			for range len(want) - 1 {
				opt.Step()
				sch.Step()
				if sch.LR() != opt.LR() {
					t.Fatalf("scheduler LR %v, optimizer LR %v", sch.LR(), opt.LR())
				}
				got = append(got, float32(opt.LR()))
			}
			testutil.AssertClose(t, "LR per epoch", tensor.FromSlice(got, len(got)), tensor.FromSlice(want, len(want)), rtol, 1e-9)
		})
	}
}

func TestWarmupEqualsSequential(t *testing.T) {
	w := optim.WarmupSchedule{StartFactor: 0.1, Steps: 3, Then: optim.CosineSchedule{TMax: 8}}
	s := optim.SequentialSchedule{
		Schedules:  []optim.Schedule{optim.LinearSchedule{StartFactor: 0.1, EndFactor: 1, TotalIters: 3}, optim.CosineSchedule{TMax: 8}},
		Milestones: []int{3},
	}
	for e := range 15 {
		if a, b := w.LRAt(e, 0.3), s.LRAt(e, 0.3); a != b {
			t.Errorf("epoch %d: warmup %v, sequential %v", e, a, b)
		}
	}
	// Without Then, the LR stays at the base after the warm-up.
	nw := optim.WarmupSchedule{StartFactor: 0.5, Steps: 2}
	if got := []float64{nw.LRAt(0, 1), nw.LRAt(1, 1), nw.LRAt(2, 1), nw.LRAt(9, 1)}; got[0] != 0.5 || got[1] != 0.75 || got[2] != 1 || got[3] != 1 {
		t.Errorf("warm-up alone = %v, want [0.5 0.75 1 1]", got)
	}
}

func TestSchedulerPanics(t *testing.T) {
	opt := dummyOpt()
	testutil.MustPanic(t, "step size", func() { optim.NewStepLR(opt, 0, 0.5) }, "optim.NewScheduler", "StepSize")
	testutil.MustPanic(t, "tmax", func() { optim.NewCosineAnnealingLR(opt, 0, 0) }, "optim.NewScheduler", "TMax")
	testutil.MustPanic(t, "linear", func() { optim.NewLinearLR(opt, 1.5, 1, 3) }, "optim.NewScheduler", "StartFactor")
	testutil.MustPanic(t, "sequential", func() {
		optim.NewSequentialLR(opt, []optim.Schedule{optim.StepSchedule{StepSize: 1, Gamma: 1}}, []int{3})
	}, "optim.NewScheduler", "1 schedules and 1 milestones")
	testutil.MustPanic(t, "warmup", func() { optim.NewLinearWarmup(opt, 0.1, 0, nil) }, "optim.NewScheduler", "TotalIters")
	testutil.MustPanic(t, "plateau mode", func() { optim.NewReduceLROnPlateau(opt, optim.PlateauConfig{Mode: "up"}) }, "optim.NewReduceLROnPlateau", `"up"`)
	testutil.MustPanic(t, "plateau factor", func() { optim.NewReduceLROnPlateau(opt, optim.PlateauConfig{Factor: 1}) }, "optim.NewReduceLROnPlateau", "Factor")
}

func TestSchedulerLoadStateDict(t *testing.T) {
	opt := dummyOpt()
	sch := optim.NewCosineAnnealingLR(opt, 10, 0)
	for range 4 {
		sch.Step()
	}
	st := sch.StateDict()
	opt2 := optim.NewSGD([]*tensor.Tensor{tensor.Zeros(1).SetRequiresGrad(true)}, optim.SGDConfig{LR: 7})
	sch2 := optim.NewCosineAnnealingLR(opt2, 10, 0)
	if err := sch2.LoadStateDict(st); err != nil {
		t.Fatal(err)
	}
	if opt2.LR() != opt.LR() || sch2.LastEpoch() != 4 {
		t.Errorf("after load LR %v epoch %d, want %v and 4", opt2.LR(), sch2.LastEpoch(), opt.LR())
	}
	sch.Step()
	sch2.Step()
	if opt2.LR() != opt.LR() {
		t.Errorf("after a step LR %v, want %v", opt2.LR(), opt.LR())
	}
	bad := optim.State{Kind: "LRScheduler", Scalars: map[string]float64{"last_epoch": -1, "base_lr": 0.1}}
	if err := sch2.LoadStateDict(bad); err == nil {
		t.Error("negative last_epoch accepted")
	}
	bad = optim.State{Kind: "LRScheduler", Scalars: map[string]float64{"last_epoch": 1}}
	if err := sch2.LoadStateDict(bad); err == nil {
		t.Error("missing base_lr accepted")
	}
	if err := sch2.LoadStateDict(opt.StateDict()); err == nil {
		t.Error("optimizer state accepted by a scheduler")
	}
	if opt2.LR() != opt.LR() {
		t.Error("failed loads changed the LR")
	}
}

// plateauConfigs mirrors PLATEAUS in tools/fixtures/optim.py.
var plateauConfigs = map[string]optim.PlateauConfig{
	"min_rel": {Mode: "min", Factor: 0.5, Patience: 2, Threshold: 1e-3, ThresholdMode: "rel", Cooldown: 1, MinLR: 0.02, Eps: 1e-8},
	"min_abs": {Mode: "min", Factor: 0.3, Patience: 1, Threshold: 0.05, ThresholdMode: "abs", Eps: 1e-8},
	"max_rel": {Mode: "max", Factor: 0.1, Patience: 0, Threshold: 0.01, ThresholdMode: "rel", Cooldown: 2, MinLR: 1e-4, Eps: 1e-8},
	"max_abs": {Mode: "max", Factor: 0.5, Patience: 3, Threshold: 0, ThresholdMode: "abs", Eps: 1e-8},
}

func TestReduceLROnPlateauMatchesTorch(t *testing.T) {
	fx := testutil.LoadFixtures(t, fixturePath)
	for _, name := range sortedNames(plateauConfigs) {
		t.Run(name, func(t *testing.T) {
			metrics := fx.Get(t, "plateau."+name+".metric").Data()
			want := fx.Get(t, "plateau."+name+".lr")
			opt := dummyOpt()
			r := optim.NewReduceLROnPlateau(opt, plateauConfigs[name])
			var got []float32
			reductions := 0
			for _, m := range metrics {
				before := opt.LR()
				r.Step(float64(m))
				if opt.LR() != before {
					reductions++
				}
				got = append(got, float32(r.LR()))
			}
			testutil.AssertClose(t, "LR per epoch", tensor.FromSlice(got, len(got)), want, rtol, 1e-12)
			if reductions == 0 {
				t.Errorf("the metric sequence never reduced the LR")
			}
		})
	}
}

func TestReduceLROnPlateauResume(t *testing.T) {
	metrics := []float64{1, 0.9, 0.95, 0.96, 0.97, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9}
	cfg := plateauConfigs["min_rel"]
	ref := dummyOpt()
	rr := optim.NewReduceLROnPlateau(ref, cfg)
	var want []float64
	for _, m := range metrics {
		rr.Step(m)
		want = append(want, ref.LR())
	}
	for cut := 0; cut <= len(metrics); cut++ {
		opt := dummyOpt()
		r := optim.NewReduceLROnPlateau(opt, cfg)
		for _, m := range metrics[:cut] {
			r.Step(m)
		}
		path := t.TempDir() + "/plateau.safetensors"
		if err := optim.SaveState(path, r.StateDict()); err != nil {
			t.Fatal(err)
		}
		if err := optim.SaveState(path+".opt", opt.StateDict()); err != nil {
			t.Fatal(err)
		}
		opt2 := dummyOpt()
		r2 := optim.NewReduceLROnPlateau(opt2, cfg)
		for _, load := range []struct {
			path string
			into interface{ LoadStateDict(optim.State) error }
		}{{path, r2}, {path + ".opt", opt2}} {
			st, err := optim.LoadState(load.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := load.into.LoadStateDict(st); err != nil {
				t.Fatal(err)
			}
		}
		for i, m := range metrics[cut:] {
			r2.Step(m)
			if got := opt2.LR(); got != want[cut+i] {
				t.Fatalf("cut at %d: epoch %d LR %v, want %v", cut, cut+i, got, want[cut+i])
			}
		}
	}
	if err := rr.LoadStateDict(optim.State{Kind: "ReduceLROnPlateau", Scalars: map[string]float64{"best": 1}}); err == nil {
		t.Error("incomplete plateau state accepted")
	}
}
