package optim_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

const fixturePath = "optim/testdata/torch_optim.safetensors"

const (
	rtol = 1e-5
	atol = 1e-6
)

// optimConfigs mirrors OPTIMS in tools/fixtures/optim.py.
var optimConfigs = map[string]func([]*tensor.Tensor) optim.Optimizer{
	"sgd_plain": func(ps []*tensor.Tensor) optim.Optimizer { return optim.NewSGD(ps, optim.SGDConfig{LR: 0.1}) },
	"sgd_momentum": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewSGD(ps, optim.SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.1})
	},
	"sgd_nesterov": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewSGD(ps, optim.SGDConfig{LR: 0.05, Momentum: 0.8, Nesterov: true})
	},
	"sgd_wd": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewSGD(ps, optim.SGDConfig{LR: 0.1, Momentum: 0.5, WeightDecay: 0.1})
	},
	"adam": func(ps []*tensor.Tensor) optim.Optimizer { return optim.NewAdam(ps, optim.AdamConfig{LR: 0.01}) },
	"adam_wd": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewAdam(ps, optim.AdamConfig{LR: 0.02, Betas: [2]float64{0.8, 0.99}, Eps: 1e-6, WeightDecay: 0.05})
	},
	"adam_amsgrad": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewAdam(ps, optim.AdamConfig{LR: 0.01, AMSGrad: true})
	},
	"adamw": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewAdamW(ps, optim.AdamConfig{LR: 0.01, WeightDecay: 0.1})
	},
	"adamw_amsgrad": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewAdamW(ps, optim.AdamConfig{LR: 0.02, Betas: [2]float64{0.85, 0.995}, WeightDecay: 0.01, AMSGrad: true})
	},
	"rmsprop": func(ps []*tensor.Tensor) optim.Optimizer { return optim.NewRMSProp(ps, optim.RMSPropConfig{LR: 0.01}) },
	"rmsprop_centered": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewRMSProp(ps, optim.RMSPropConfig{LR: 0.01, Alpha: 0.9, Eps: 1e-6, Momentum: 0.7, Centered: true, WeightDecay: 0.02})
	},
	"rmsprop_momentum": func(ps []*tensor.Tensor) optim.Optimizer {
		return optim.NewRMSProp(ps, optim.RMSPropConfig{LR: 0.005, Momentum: 0.9})
	},
}

// problem holds the fixture's parameters and per-step gradients.
type problem struct {
	init  []*tensor.Tensor
	grads [][]*tensor.Tensor // grads[step][param], nil where the parameter has no gradient
	steps int
}

func loadProblem(t *testing.T, fx *testutil.Fixtures) problem {
	t.Helper()
	var pr problem
	for j := 0; fx.Has(fmt.Sprintf("init.p%d", j)); j++ {
		pr.init = append(pr.init, fx.Get(t, fmt.Sprintf("init.p%d", j)))
	}
	if len(pr.init) != 3 {
		t.Fatalf("fixture has %d parameters, want 3", len(pr.init))
	}
	pr.steps = fx.Get(t, "grad.p0").Size(0)
	pr.grads = make([][]*tensor.Tensor, pr.steps)
	for j, p0 := range pr.init {
		g := fx.Get(t, fmt.Sprintf("grad.p%d", j)).Data()
		mask := fx.Get(t, fmt.Sprintf("gradmask.p%d", j)).Data()
		n := p0.Numel()
		for s := 0; s < pr.steps; s++ {
			var gt *tensor.Tensor
			if mask[s] != 0 {
				gt = tensor.FromSlice(g[s*n:(s+1)*n], p0.Shape()...)
			}
			pr.grads[s] = append(pr.grads[s], gt)
		}
	}
	return pr
}

// params returns fresh copies of the initial parameters.
func (pr problem) params() []*tensor.Tensor {
	ps := make([]*tensor.Tensor, len(pr.init))
	for j, p := range pr.init {
		ps[j] = p.Clone().SetRequiresGrad(true)
	}
	return ps
}

// setGrads installs copies of the gradients of step s.
func (pr problem) setGrads(ps []*tensor.Tensor, s int) {
	for j, p := range ps {
		if g := pr.grads[s][j]; g != nil {
			p.SetGrad(g.Clone())
		} else {
			p.SetGrad(nil)
		}
	}
}

func (pr problem) run(ps []*tensor.Tensor, opt optim.Optimizer, from, to int) {
	for s := from; s < to; s++ {
		pr.setGrads(ps, s)
		opt.Step()
	}
}

// row returns step s of a [steps, *shape] fixture.
func row(t *testing.T, all *tensor.Tensor, s int, shape []int) *tensor.Tensor {
	t.Helper()
	n := all.Numel() / all.Size(0)
	return tensor.FromSlice(all.Data()[s*n:(s+1)*n], shape...)
}

func TestOptimizersMatchTorch(t *testing.T) {
	fx := testutil.LoadFixtures(t, fixturePath)
	pr := loadProblem(t, fx)
	for _, name := range sortedNames(optimConfigs) {
		t.Run(name, func(t *testing.T) {
			ps := pr.params()
			opt := optimConfigs[name](ps)
			for s := 0; s < pr.steps; s++ {
				pr.run(ps, opt, s, s+1)
				for j, p := range ps {
					want := row(t, fx.Get(t, fmt.Sprintf("opt.%s.p%d", name, j)), s, p.Shape())
					testutil.AssertClose(t, fmt.Sprintf("step %d param %d", s, j), p, want, rtol, atol)
				}
			}
			// The state dict holds what torch's holds, by the same names.
			st := opt.StateDict()
			prefix := "opt." + name + "."
			torchKeys := 0
			for _, key := range fx.Names() {
				if !strings.HasPrefix(key, prefix+"state.") {
					continue
				}
				torchKeys++
				k := strings.TrimPrefix(key, prefix)
				got, ok := st.Tensors[k]
				if !ok {
					t.Errorf("StateDict lacks %q (keys %v)", k, sortedNames(st.Tensors))
					continue
				}
				testutil.AssertClose(t, k, got.Float(), fx.Get(t, key), rtol, atol)
			}
			for k := range st.Tensors {
				if !strings.HasSuffix(k, ".step") && !fx.Has(prefix+k) {
					t.Errorf("StateDict has %q, torch does not", k)
				}
			}
			if strings.HasPrefix(name, "adam") && torchKeys == 0 {
				t.Errorf("fixture has no state for %s", name)
			}
			// Parameter 2 had a gradient on steps 0, 2, 4 only.
			if got := st.Tensors["state.2.step"].Int64s()[0]; got != 3 {
				t.Errorf("state.2.step = %d, want 3", got)
			}
			if got := st.Tensors["state.0.step"].Int64s()[0]; got != int64(pr.steps) {
				t.Errorf("state.0.step = %d, want %d", got, pr.steps)
			}
		})
	}
}

// TestResumeMatchesUninterrupted stops after 3 steps, saves the state to a
// file, loads it into a fresh optimizer and checks the last steps give
// bit-identical parameters.
func TestResumeMatchesUninterrupted(t *testing.T) {
	fx := testutil.LoadFixtures(t, fixturePath)
	pr := loadProblem(t, fx)
	dir := t.TempDir()
	for _, name := range sortedNames(optimConfigs) {
		t.Run(name, func(t *testing.T) {
			// Both runs step a StepLR after every optimizer step.
			runSched := func(ps []*tensor.Tensor, opt optim.Optimizer, sched *optim.Scheduler, from, to int) {
				for s := from; s < to; s++ {
					pr.run(ps, opt, s, s+1)
					sched.Step()
				}
			}
			ref := pr.params()
			refOpt := optimConfigs[name](ref)
			runSched(ref, refOpt, optim.NewStepLR(refOpt, 2, 0.5), 0, pr.steps)

			ps := pr.params()
			opt := optimConfigs[name](ps)
			sched := optim.NewStepLR(opt, 2, 0.5)
			runSched(ps, opt, sched, 0, 3)
			path := filepath.Join(dir, name+".safetensors")
			if err := optim.SaveState(path, opt.StateDict()); err != nil {
				t.Fatal(err)
			}
			if err := optim.SaveState(path+".sched", sched.StateDict()); err != nil {
				t.Fatal(err)
			}

			// A fresh optimizer with other hyper-parameters (so also a
			// scheduler with another base LR): loading restores them.
			ps2 := make([]*tensor.Tensor, len(ps))
			for j, p := range ps {
				ps2[j] = p.Clone().SetRequiresGrad(true)
			}
			var opt2 optim.Optimizer
			switch {
			case strings.HasPrefix(name, "sgd"):
				opt2 = optim.NewSGD(ps2, optim.SGDConfig{LR: 1})
			case strings.HasPrefix(name, "adamw"):
				opt2 = optim.NewAdamW(ps2, optim.AdamConfig{})
			case strings.HasPrefix(name, "adam"):
				opt2 = optim.NewAdam(ps2, optim.AdamConfig{})
			default:
				opt2 = optim.NewRMSProp(ps2, optim.RMSPropConfig{})
			}
			sched2 := optim.NewStepLR(opt2, 2, 0.5)
			st, err := optim.LoadState(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := opt2.LoadStateDict(st); err != nil {
				t.Fatal(err)
			}
			sst, err := optim.LoadState(path + ".sched")
			if err != nil {
				t.Fatal(err)
			}
			if err := sched2.LoadStateDict(sst); err != nil {
				t.Fatal(err)
			}
			if opt2.LR() != opt.LR() || sched2.LastEpoch() != 3 || sched2.BaseLR() != sched.BaseLR() {
				t.Fatalf("after load: LR %v epoch %d base %v, want LR %v epoch 3 base %v",
					opt2.LR(), sched2.LastEpoch(), sched2.BaseLR(), opt.LR(), sched.BaseLR())
			}
			runSched(ps2, opt2, sched2, 3, pr.steps)
			for j := range ref {
				if !slices.Equal(ps2[j].Data(), ref[j].Data()) {
					t.Errorf("param %d after resume = %v, uninterrupted = %v", j, ps2[j].Data(), ref[j].Data())
				}
			}
		})
	}
}

func TestLoadStateDictErrors(t *testing.T) {
	fx := testutil.LoadFixtures(t, fixturePath)
	pr := loadProblem(t, fx)
	ps := pr.params()
	opt := optim.NewAdam(ps, optim.AdamConfig{LR: 0.01})
	pr.run(ps, opt, 0, 2)
	good := opt.StateDict()

	clone := func() optim.State {
		s := optim.State{Kind: good.Kind, Tensors: map[string]*tensor.Tensor{}, Scalars: map[string]float64{}}
		for k, v := range good.Tensors {
			s.Tensors[k] = v
		}
		for k, v := range good.Scalars {
			s.Scalars[k] = v
		}
		return s
	}
	cases := []struct {
		name  string
		edit  func(s *optim.State)
		parts []string
	}{
		{"wrong shape", func(s *optim.State) { s.Tensors["state.0.exp_avg"] = tensor.Zeros(3) },
			[]string{`"state.0.exp_avg"`, "[3]", "[2 3]"}},
		{"wrong rank", func(s *optim.State) { s.Tensors["state.1.exp_avg_sq"] = tensor.Zeros(2, 2) },
			[]string{`"state.1.exp_avg_sq"`, "[2 2]", "[4]"}},
		{"missing buffer", func(s *optim.State) { delete(s.Tensors, "state.1.exp_avg") },
			[]string{`"state.1.exp_avg"`, "missing"}},
		{"missing step", func(s *optim.State) { delete(s.Tensors, "state.0.step") },
			[]string{`"state.0.step"`, "missing"}},
		{"too many params", func(s *optim.State) { s.Tensors["state.3.exp_avg"] = tensor.Zeros(2) },
			[]string{`"state.3.exp_avg"`, "parameter 3", "3 parameters"}},
		{"unknown buffer", func(s *optim.State) { s.Tensors["state.0.momentum_buffer"] = tensor.Zeros(2, 3) },
			[]string{`"state.0.momentum_buffer"`}},
		{"bad key", func(s *optim.State) { s.Tensors["exp_avg"] = tensor.Zeros(2, 3) },
			[]string{`"exp_avg"`}},
		{"step shape", func(s *optim.State) { s.Tensors["state.0.step"] = tensor.Zeros(1) },
			[]string{`"state.0.step"`, "[1]", "[]"}},
		{"wrong kind", func(s *optim.State) { s.Kind = "SGD" }, []string{`"SGD"`, `"Adam"`}},
		{"missing scalar", func(s *optim.State) { delete(s.Scalars, "beta2") }, []string{`"beta2"`, "missing"}},
		{"extra scalar", func(s *optim.State) { s.Scalars["momentum"] = 0.9 }, []string{`"momentum"`}},
		{"bad beta", func(s *optim.State) { s.Scalars["beta1"] = 1.5 }, []string{"Betas[0]", "1.5"}},
		{"amsgrad without max", func(s *optim.State) { s.Scalars["amsgrad"] = 1 },
			[]string{`"state.0.max_exp_avg_sq"`, "missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := clone()
			c.edit(&s)
			before := opt.StateDict()
			err := opt.LoadStateDict(s)
			if err == nil {
				t.Fatal("LoadStateDict accepted a bad state")
			}
			for _, p := range c.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not mention %q", err, p)
				}
			}
			// A failed load changes nothing.
			after := opt.StateDict()
			if len(after.Tensors) != len(before.Tensors) || after.Scalars["amsgrad"] != 0 || opt.LR() != 0.01 {
				t.Errorf("failed load changed the optimizer")
			}
			for k, v := range before.Tensors {
				if !slices.Equal(v.Float().Data(), after.Tensors[k].Float().Data()) {
					t.Errorf("failed load changed %q", k)
				}
			}
		})
	}
	// The good state still loads, also into a fresh optimizer on the same shapes.
	if err := optim.NewAdam(pr.params(), optim.AdamConfig{}).LoadStateDict(good); err != nil {
		t.Errorf("good state rejected: %v", err)
	}
	// A torch-style float step is accepted.
	s := clone()
	s.Tensors["state.0.step"] = tensor.Scalar(2)
	if err := opt.LoadStateDict(s); err != nil {
		t.Errorf("float step rejected: %v", err)
	}
	// SGD into RMSProp.
	if err := optim.NewRMSProp(pr.params(), optim.RMSPropConfig{}).LoadStateDict(optim.NewSGD(pr.params(), optim.SGDConfig{LR: 1}).StateDict()); err == nil ||
		!strings.Contains(err.Error(), `"SGD"`) {
		t.Errorf("loading SGD state into RMSProp: err = %v", err)
	}
}

func TestLoadStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := optim.LoadState(filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Error("LoadState of a missing file returned no error")
	}
	bad := filepath.Join(dir, "bad.safetensors")
	if err := os.WriteFile(bad, []byte("not a safetensors file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := optim.LoadState(bad); err == nil {
		t.Error("LoadState of garbage returned no error")
	}
	s := optim.State{Kind: "X", Scalars: map[string]float64{"kind": 1}}
	if err := optim.SaveState(filepath.Join(dir, "x.safetensors"), s); err == nil || !strings.Contains(err.Error(), `"kind"`) {
		t.Errorf("SaveState with a reserved scalar name: err = %v", err)
	}
	// Scalars survive exactly, infinities included.
	s = optim.State{Kind: "ReduceLROnPlateau", Scalars: map[string]float64{"best": math.Inf(1), "x": 0.1, "y": 1.0 / 3}}
	path := filepath.Join(dir, "s.safetensors")
	if err := optim.SaveState(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := optim.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != s.Kind || len(got.Scalars) != 3 || !math.IsInf(got.Scalars["best"], 1) || got.Scalars["x"] != 0.1 || got.Scalars["y"] != 1.0/3 {
		t.Errorf("round trip = %+v, want %+v", got, s)
	}
}

func TestConstructorsPanic(t *testing.T) {
	ps := []*tensor.Tensor{tensor.Zeros(2, 3).SetRequiresGrad(true)}
	testutil.MustPanic(t, "SGD lr", func() { optim.NewSGD(ps, optim.SGDConfig{}) }, "optim.NewSGD", "LR")
	testutil.MustPanic(t, "SGD nesterov", func() { optim.NewSGD(ps, optim.SGDConfig{LR: 1, Nesterov: true}) }, "optim.NewSGD", "Nesterov")
	testutil.MustPanic(t, "SGD momentum", func() { optim.NewSGD(ps, optim.SGDConfig{LR: 1, Momentum: -1}) }, "optim.NewSGD", "Momentum")
	testutil.MustPanic(t, "Adam beta", func() { optim.NewAdam(ps, optim.AdamConfig{Betas: [2]float64{0.9, 1}}) }, "optim.NewAdam", "Betas[1]")
	testutil.MustPanic(t, "AdamW wd", func() { optim.NewAdamW(ps, optim.AdamConfig{WeightDecay: -1}) }, "optim.NewAdamW", "WeightDecay")
	testutil.MustPanic(t, "RMSProp eps", func() { optim.NewRMSProp(ps, optim.RMSPropConfig{Eps: -1}) }, "optim.NewRMSProp", "Eps")
	testutil.MustPanic(t, "int param", func() { optim.NewAdam([]*tensor.Tensor{tensor.ZerosInt64(4)}, optim.AdamConfig{}) }, "optim.NewAdam", "parameter 0", "[4]", "int64")
	testutil.MustPanic(t, "nil param", func() { optim.NewSGD([]*tensor.Tensor{nil}, optim.SGDConfig{LR: 1}) }, "optim.NewSGD", "parameter 0")
}

func TestDefaultsAndLR(t *testing.T) {
	ps := []*tensor.Tensor{tensor.Zeros(2).SetRequiresGrad(true)}
	a := optim.NewAdam(ps, optim.AdamConfig{})
	if c := a.Config(); c.LR != 1e-3 || c.Betas != [2]float64{0.9, 0.999} || c.Eps != 1e-8 || c.WeightDecay != 0 {
		t.Errorf("Adam defaults = %+v", c)
	}
	r := optim.NewRMSProp(ps, optim.RMSPropConfig{})
	if c := r.Config(); c.LR != 1e-2 || c.Alpha != 0.99 || c.Eps != 1e-8 {
		t.Errorf("RMSProp defaults = %+v", c)
	}
	// SetLR changes the next step; a nil gradient is skipped; ZeroGrad zeroes in place.
	s := optim.NewSGD(ps, optim.SGDConfig{LR: 1})
	s.Step()
	if ps[0].Data()[0] != 0 {
		t.Errorf("step with a nil gradient changed the parameter")
	}
	ps[0].SetGrad(tensor.FromSlice([]float32{1, -2}, 2))
	s.SetLR(0.5)
	s.Step()
	if got := ps[0].Data(); got[0] != -0.5 || got[1] != 1 {
		t.Errorf("after SGD step with LR 0.5: %v, want [-0.5 1]", got)
	}
	g := ps[0].Grad()
	s.ZeroGrad()
	if ps[0].Grad() != g || g.Data()[0] != 0 || g.Data()[1] != 0 {
		t.Errorf("ZeroGrad: grad %v", ps[0].Grad())
	}
}

func TestStepAllocatesNothing(t *testing.T) {
	fx := testutil.LoadFixtures(t, fixturePath)
	pr := loadProblem(t, fx)
	for _, name := range []string{"sgd_nesterov", "adam_amsgrad", "adamw", "rmsprop_centered"} {
		ps := pr.params()
		pr.setGrads(ps, 0)
		opt := optimConfigs[name](ps)
		opt.Step()
		if n := testing.AllocsPerRun(20, opt.Step); n != 0 {
			t.Errorf("%s: Step allocates %v times per call", name, n)
		}
	}
	ps := pr.params()
	pr.setGrads(ps, 0)
	if n := testing.AllocsPerRun(20, func() { optim.ClipGradNorm(ps, 0.1, 2) }); n != 0 {
		t.Errorf("ClipGradNorm allocates %v times per call", n)
	}
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
