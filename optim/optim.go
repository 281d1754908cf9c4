// Package optim provides deepgo's optimizers (SGD, Adam, AdamW, RMSProp),
// learning-rate schedules, ReduceLROnPlateau and gradient clipping, with the
// exact update formulas of torch.optim in PyTorch 1.13.
//
// Parameters are leaf tensors that require gradients. Step reads each
// parameter's Grad() (a parameter whose gradient is nil is skipped, as in
// PyTorch) and updates Data() in place with plain float32 loops. Per-parameter
// state buffers are allocated when the optimizer is made, so a step allocates
// nothing.
//
// Optimizer and scheduler state is a State: named tensors, named as PyTorch
// names them ("state.0.exp_avg", "state.0.step", ...), plus scalar
// hyper-parameters ("lr", "beta1", ...). SaveState and LoadState store a State
// in a safetensors file (scalars go in the __metadata__ header), so training
// can stop and resume with identical results.
//
// Learning-rate schedules are closed-form curves (a Schedule maps an epoch and
// the base LR to an LR) driven by a Scheduler; this reproduces PyTorch's
// values, including SequentialLR chaining, without PyTorch's dependence on
// the optimizer's current LR. Because the curve is a pure function of the
// epoch, a scheduler overrides any LR set on the optimizer by other means at
// its next Step.
package optim

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/deepgo/deepgo/safetensors"
	"github.com/deepgo/deepgo/tensor"
)

// Optimizer updates parameters from their gradients.
type Optimizer interface {
	// Step applies one update to every parameter whose gradient is not nil.
	Step()
	// ZeroGrad sets every parameter's gradient to zero in place (keeping the buffers).
	ZeroGrad()
	// LR returns the current learning rate.
	LR() float64
	// SetLR changes the learning rate used by later steps.
	SetLR(lr float64)
	// StateDict returns a copy of the optimizer's state and hyper-parameters.
	StateDict() State
	// LoadStateDict restores state saved by StateDict. It validates the
	// whole State first and changes nothing when it returns an error.
	LoadStateDict(s State) error
}

// State is the serialisable state of an optimizer or a scheduler.
type State struct {
	// Kind names what produced the state ("SGD", "Adam", "AdamW", "RMSProp",
	// "LRScheduler", "ReduceLROnPlateau"); loading checks it.
	Kind string
	// Tensors holds per-parameter state by PyTorch's names:
	// "state.<param index>.<buffer>", e.g. "state.0.exp_avg"; the step count
	// is the 0-d int64 tensor "state.<i>.step". Parameters that have never
	// been stepped have no entries.
	Tensors map[string]*tensor.Tensor
	// Scalars holds hyper-parameters and counters ("lr", "momentum",
	// "last_epoch", ...); booleans are 0 or 1.
	Scalars map[string]float64
}

// kindKey is the __metadata__ key that holds State.Kind in a file.
const kindKey = "kind"

// Encode converts s into safetensors tensors and metadata: float32 tensors
// as F32, int64 tensors as I64, Kind under the metadata key "kind" and each
// scalar under its own name, formatted so that it parses back exactly.
func (s State) Encode() (map[string]safetensors.Tensor, map[string]string, error) {
	ts := make(map[string]safetensors.Tensor, len(s.Tensors))
	for name, t := range s.Tensors {
		if t == nil {
			return nil, nil, fmt.Errorf("optim: state tensor %q is nil", name)
		}
		if t.DType() == tensor.Int64 {
			ts[name] = safetensors.I64(t.Int64s(), t.Shape()...)
		} else {
			ts[name] = safetensors.F32(t.Data(), t.Shape()...)
		}
	}
	md := make(map[string]string, len(s.Scalars)+1)
	md[kindKey] = s.Kind
	for name, v := range s.Scalars {
		if name == kindKey {
			return nil, nil, fmt.Errorf("optim: scalar name %q is reserved for the state kind", name)
		}
		md[name] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return ts, md, nil
}

// DecodeState rebuilds a State from safetensors tensors and metadata written
// by Encode (F32/F64/F16/BF16 tensors become float32, I64/I32 become int64).
func DecodeState(tensors map[string]safetensors.Tensor, metadata map[string]string) (State, error) {
	s := State{Tensors: make(map[string]*tensor.Tensor, len(tensors)), Scalars: make(map[string]float64, len(metadata))}
	for name, st := range tensors {
		switch st.DType {
		case "I64", "I32":
			v, err := st.Int64s()
			if err != nil {
				return State{}, fmt.Errorf("optim: state tensor %q: %v", name, err)
			}
			s.Tensors[name] = tensor.FromInt64(v, st.Shape...)
		default:
			v, err := st.Float32s()
			if err != nil {
				return State{}, fmt.Errorf("optim: state tensor %q: %v", name, err)
			}
			s.Tensors[name] = tensor.FromSlice(v, st.Shape...)
		}
	}
	for k, v := range metadata {
		if k == kindKey {
			s.Kind = v
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return State{}, fmt.Errorf("optim: state scalar %q = %q is not a number", k, v)
		}
		s.Scalars[k] = f
	}
	return s, nil
}

// SaveState writes s to a safetensors file at path, atomically (a crash never
// leaves a half-written file).
func SaveState(path string, s State) error {
	ts, md, err := s.Encode()
	if err != nil {
		return err
	}
	return safetensors.WriteFile(path, ts, md)
}

// LoadState reads a State written by SaveState.
func LoadState(path string) (State, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	s, err := DecodeState(f.Tensors, f.Metadata)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// base holds what every optimizer shares: the parameters, their per-parameter
// float32 state buffers and step counts, and the learning rate.
type base struct {
	kind   string
	params []*tensor.Tensor
	names  []string      // buffer names, in PyTorch's order
	bufs   [][][]float32 // bufs[i][k]: buffer names[k] of parameter i
	steps  []int64       // steps taken by parameter i; 0 means no state yet
}

func newBase(op, kind string, params []*tensor.Tensor, names []string) base {
	for i, p := range params {
		if p == nil {
			panic(fmt.Sprintf("optim.%s: parameter %d is nil", op, i))
		}
		if p.DType() != tensor.Float32 {
			panic(fmt.Sprintf("optim.%s: parameter %d of shape %v is %v, not float32", op, i, p.Shape(), p.DType()))
		}
	}
	b := base{kind: kind, params: slices.Clone(params), steps: make([]int64, len(params))}
	b.ensure(names)
	return b
}

// ensure (re)allocates zeroed buffers when the set of buffer names changes.
func (b *base) ensure(names []string) {
	if b.bufs != nil && slices.Equal(b.names, names) {
		return
	}
	b.names = slices.Clone(names)
	b.bufs = make([][][]float32, len(b.params))
	for i, p := range b.params {
		b.bufs[i] = make([][]float32, len(names))
		for k := range names {
			b.bufs[i][k] = make([]float32, p.Numel())
		}
	}
}

func (b *base) zeroGrad() {
	for _, p := range b.params {
		if g := p.Grad(); g != nil {
			clear(g.Data())
		}
	}
}

// stateDict copies the buffers of every parameter that has state.
func (b *base) stateDict(scalars map[string]float64) State {
	s := State{Kind: b.kind, Tensors: map[string]*tensor.Tensor{}, Scalars: scalars}
	for i, p := range b.params {
		if b.steps[i] == 0 {
			continue
		}
		for k, name := range b.names {
			s.Tensors[fmt.Sprintf("state.%d.%s", i, name)] = tensor.FromSlice(slices.Clone(b.bufs[i][k]), p.Shape()...)
		}
		s.Tensors[fmt.Sprintf("state.%d.step", i)] = tensor.FromInt64([]int64{b.steps[i]})
	}
	return s
}

// checkScalars verifies that s has the expected kind and exactly the named scalars.
func (b *base) checkScalars(op string, s State, names []string) error {
	if s.Kind != b.kind {
		return fmt.Errorf("optim.%s.LoadStateDict: state is for %q, not %q", op, s.Kind, b.kind)
	}
	return checkScalarSet(op, s, names)
}

func checkScalarSet(op string, s State, names []string) error {
	for _, n := range names {
		v, ok := s.Scalars[n]
		if !ok {
			return fmt.Errorf("optim.%s.LoadStateDict: scalar %q is missing", op, n)
		}
		if math.IsNaN(v) {
			return fmt.Errorf("optim.%s.LoadStateDict: scalar %q is NaN", op, n)
		}
	}
	for _, k := range sortedKeys(s.Scalars) {
		if !slices.Contains(names, k) {
			return fmt.Errorf("optim.%s.LoadStateDict: unexpected scalar %q", op, k)
		}
	}
	return nil
}

// checkTensors validates the per-parameter tensors of s against the
// parameters and the buffer names the loaded configuration needs, and
// returns the step count of every parameter (0 where s has no state for it).
func (b *base) checkTensors(op string, s State, names []string) ([]int64, error) {
	steps := make([]int64, len(b.params))
	seen := make([]int, len(b.params)) // number of keys found per parameter
	for _, key := range sortedKeys(s.Tensors) {
		t := s.Tensors[key]
		rest, ok := strings.CutPrefix(key, "state.")
		idxStr, name, ok2 := strings.Cut(rest, ".")
		idx, err := strconv.Atoi(idxStr)
		if !ok || !ok2 || err != nil || idx < 0 {
			return nil, fmt.Errorf("optim.%s.LoadStateDict: unexpected tensor %q (want state.<index>.<name>)", op, key)
		}
		if idx >= len(b.params) {
			return nil, fmt.Errorf("optim.%s.LoadStateDict: %q is for parameter %d but the optimizer has %d parameters", op, key, idx, len(b.params))
		}
		if t == nil {
			return nil, fmt.Errorf("optim.%s.LoadStateDict: %q is nil", op, key)
		}
		if name == "step" {
			if t.Dim() != 0 {
				return nil, fmt.Errorf("optim.%s.LoadStateDict: %q has shape %v, want [] (a scalar)", op, key, t.Shape())
			}
			v := float64(t.Item())
			if t.DType() == tensor.Int64 {
				v = float64(t.Int64s()[0])
			}
			if v < 1 || v != math.Trunc(v) {
				return nil, fmt.Errorf("optim.%s.LoadStateDict: %q = %v is not a positive whole number", op, key, v)
			}
			steps[idx] = int64(v)
			seen[idx]++
			continue
		}
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("optim.%s.LoadStateDict: unexpected tensor %q (this configuration keeps %v)", op, key, names)
		}
		if t.DType() != tensor.Float32 {
			return nil, fmt.Errorf("optim.%s.LoadStateDict: %q is %v, want float32", op, key, t.DType())
		}
		if ps := b.params[idx].Shape(); !tensor.SameShape(t.Shape(), ps) {
			return nil, fmt.Errorf("optim.%s.LoadStateDict: %q has shape %v but parameter %d has shape %v", op, key, t.Shape(), idx, ps)
		}
		seen[idx]++
	}
	for i, n := range seen {
		if n == 0 {
			continue
		}
		if steps[i] == 0 {
			return nil, fmt.Errorf("optim.%s.LoadStateDict: %q is missing", op, fmt.Sprintf("state.%d.step", i))
		}
		if n != len(names)+1 {
			for _, name := range names {
				if _, ok := s.Tensors[fmt.Sprintf("state.%d.%s", i, name)]; !ok {
					return nil, fmt.Errorf("optim.%s.LoadStateDict: %q is missing", op, fmt.Sprintf("state.%d.%s", i, name))
				}
			}
		}
	}
	return steps, nil
}

// applyTensors copies validated state into the buffers (allocated for names).
func (b *base) applyTensors(s State, names []string, steps []int64) {
	b.ensure(names)
	copy(b.steps, steps)
	for i := range b.params {
		for k, name := range names {
			if steps[i] == 0 {
				clear(b.bufs[i][k])
				continue
			}
			copy(b.bufs[i][k], s.Tensors[fmt.Sprintf("state.%d.%s", i, name)].Data())
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func boolScalar(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// scalarBool reads a 0/1 scalar.
func scalarBool(op string, s State, name string) (bool, error) {
	switch s.Scalars[name] {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("optim.%s.LoadStateDict: scalar %q = %v, want 0 or 1", op, name, s.Scalars[name])
}

// checkNonNeg returns an error unless v >= 0 (NaN fails).
func checkNonNeg(op, name string, v float64) error {
	if !(v >= 0) {
		return fmt.Errorf("optim.%s: %s must be >= 0, got %v", op, name, v)
	}
	return nil
}

func mustOK(err error) {
	if err != nil {
		panic(err.Error())
	}
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
