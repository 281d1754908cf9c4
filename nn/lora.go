package nn

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/deepgo/deepgo/tensor"
)

// LoRA (low-rank adaptation, Hu et al. 2021) fine-tunes a frozen linear map
// W by learning a low-rank update: y = x·Wᵀ + b + (α/r)·dropout(x)·Aᵀ·Bᵀ with
// A [r, in] and B [out, r]. A starts Kaiming-uniform (a = √5) and B at zero,
// so a fresh adapter leaves the model unchanged (as in the paper, loralib
// and peft). The state dict keys follow loralib: a wrapped Linear keeps
// weight and bias and adds lora_A and lora_B, so a pretrained checkpoint
// loads into the adapted model with LoadStateDict(strict=false), and a merged
// model has the plain model's keys.
//
// Parameters lists frozen tensors too (they stay in the state dict); give
// the optimizer TrainableParameters.

// LoRAAdapter is the trainable low-rank update (α/r)·B·A of a linear map. As
// a module, Forward(x) returns the update's output (α/r)·dropout(x)·Aᵀ·Bᵀ.
type LoRAAdapter struct {
	A *tensor.Tensor `nn:"lora_A"` // [Rank, in]
	B *tensor.Tensor `nn:"lora_B"` // [out, Rank]
	// Dropout applies to the adapter's input when training (it has no
	// parameters and adds no state dict keys).
	Dropout *Dropout `nn:"lora_dropout"`
	Rank    int
	Alpha   float32
}

// NewLoRAAdapter makes an adapter for a linear map from in to out features:
// A Kaiming-uniform with a = √5 (U(-1/√in, 1/√in)), B zero, both trainable.
func NewLoRAAdapter(r *tensor.RNG, in, out, rank int, alpha, dropout float32) *LoRAAdapter {
	if in <= 0 || out <= 0 || rank <= 0 {
		panic(fmt.Sprintf("nn.NewLoRAAdapter: sizes must be positive, got in %d out %d rank %d", in, out, rank))
	}
	return &LoRAAdapter{
		A:       param(KaimingUniform(tensor.Zeros(rank, in), math.Sqrt(5), r)),
		B:       param(tensor.Zeros(out, rank)),
		Dropout: NewDropout(r, dropout),
		Rank:    rank,
		Alpha:   alpha,
	}
}

// Scale returns α/r, the factor of the low-rank update.
func (a *LoRAAdapter) Scale() float32 { return a.Alpha / float32(a.Rank) }

// Forward returns (α/r)·dropout(x)·Aᵀ·Bᵀ for x [..., in].
func (a *LoRAAdapter) Forward(x *tensor.Tensor) *tensor.Tensor {
	return a.delta(x, 0, a.B.Size(0))
}

// delta is Forward restricted to output features lo:hi (rows of B).
func (a *LoRAAdapter) delta(x *tensor.Tensor, lo, hi int) *tensor.Tensor {
	if x.Dim() == 0 || x.Size(-1) != a.A.Size(1) {
		panic(fmt.Sprintf("nn.LoRAAdapter: input of shape %v, adapter A of shape %v wants %d input features", x.Shape(), a.A.Shape(), a.A.Size(1)))
	}
	if a.Dropout != nil {
		x = a.Dropout.Forward(x)
	}
	b := a.B
	if lo != 0 || hi != b.Size(0) {
		b = tensor.Slice(b, 0, lo, hi, 1)
	}
	return tensor.MulScalar(tensor.Linear(tensor.Linear(x, a.A, nil), b, nil), a.Scale())
}

// DeltaWeight returns (α/r)·B·A [out, in], the update the adapter adds to
// the weight, as a new tensor without gradient history.
func (a *LoRAAdapter) DeltaWeight() *tensor.Tensor {
	var d *tensor.Tensor
	tensor.NoGrad(func() { d = tensor.MulScalar(tensor.MatMul(a.B, a.A), a.Scale()) })
	return d
}

// LoRALinear is a Linear with a frozen weight and bias plus a trainable
// low-rank adapter. Its state dict keys are weight, bias, lora_A and lora_B.
type LoRALinear struct {
	Weight *tensor.Tensor // [Out, In], frozen
	Bias   *tensor.Tensor // [Out], frozen; nil without bias
	LoRAAdapter
}

// NewLoRALinear wraps base (sharing its tensors) with a new adapter of the
// given rank, α and dropout, and freezes base's weight and bias (requires-grad
// off, gradients cleared).
func NewLoRALinear(r *tensor.RNG, base *Linear, rank int, alpha, dropout float32) *LoRALinear {
	if base == nil || base.Weight == nil || base.Weight.Dim() != 2 {
		panic("nn.NewLoRALinear: base must be a Linear with a 2-d weight")
	}
	out, in := base.Weight.Size(0), base.Weight.Size(1)
	l := &LoRALinear{Weight: base.Weight, Bias: base.Bias, LoRAAdapter: *NewLoRAAdapter(r, in, out, rank, alpha, dropout)}
	freeze(l.Weight)
	freeze(l.Bias)
	return l
}

// Forward returns x·Wᵀ + b + (α/r)·dropout(x)·Aᵀ·Bᵀ.
func (l *LoRALinear) Forward(x *tensor.Tensor) *tensor.Tensor {
	if x.Dim() == 0 || x.Size(-1) != l.Weight.Size(1) {
		panic(fmt.Sprintf("nn.LoRALinear: input of shape %v, weight of shape %v", x.Shape(), l.Weight.Shape()))
	}
	return tensor.Add(tensor.Linear(x, l.Weight, l.Bias), l.LoRAAdapter.Forward(x))
}

// Merged returns a plain Linear whose weight is W + (α/r)·B·A: the same
// function as l in eval mode. The weight is a new tensor (l is unchanged)
// that keeps the requires-grad flag of l's weight; the bias is shared.
func (l *LoRALinear) Merged() *Linear {
	w := l.Weight.Clone()
	addInto(w, l.DeltaWeight())
	w.SetRequiresGrad(l.Weight.RequiresGrad())
	return &Linear{Weight: w, Bias: l.Bias}
}

// AddInProjLoRA adds a low-rank adapter (A [rank, E], B [3E, rank]) on the
// packed input projection and freezes in_proj_weight and in_proj_bias.
func (m *MultiheadAttention) AddInProjLoRA(r *tensor.RNG, rank int, alpha, dropout float32) {
	m.InProjLoRA = NewLoRAAdapter(r, m.InProjWeight.Size(1), m.InProjWeight.Size(0), rank, alpha, dropout)
	freeze(m.InProjWeight)
	freeze(m.InProjBias)
}

// LoRAOptions configures ApplyLoRA.
type LoRAOptions struct {
	// Dropout is the adapters' input dropout probability (0 for none).
	Dropout float32
	// RNG initialises the A matrices and draws the dropout masks; nil means
	// tensor.NewRNG(0).
	RNG *tensor.RNG
}

// LoRAAttentionAndFeedForward is the usual LoRA target set for Transformer
// encoders: the packed attention input projections ("….self_attn.in_proj"),
// the attention output projections ("….out_proj") and the feed-forward
// layers ("….linear1", "….linear2"), but no classification head.
func LoRAAttentionAndFeedForward(name string, _ *Linear) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	switch last {
	case "in_proj", "out_proj", "linear1", "linear2":
		return true
	}
	return false
}

// ApplyLoRA adds rank-r adapters with scale α/r to the linear maps of m that
// targets accepts (nil targets means LoRAAttentionAndFeedForward), freezes
// their base weights and biases, and returns the names of the adapted maps.
// targets sees every Linear held in a Module-typed field or a []Module
// element (those are replaced by a *LoRALinear sharing the base tensors),
// and, for each MultiheadAttention, its packed input projection under the
// name "<attention>.in_proj" as a Linear over in_proj_weight and
// in_proj_bias (that one gets a LoRAAdapter in InProjLoRA). A Linear in a
// field of type *Linear cannot be replaced and is not offered.
//
// ApplyLoRA freezes nothing else: to train only the adapters (and, say, a
// new head), call Freeze on the pretrained part first.
func ApplyLoRA(m Module, rank int, alpha float32, targets func(name string, l *Linear) bool, opt LoRAOptions) []string {
	if rank <= 0 {
		panic(fmt.Sprintf("nn.ApplyLoRA: rank %d must be positive", rank))
	}
	if targets == nil {
		targets = LoRAAttentionAndFeedForward
	}
	r := opt.RNG
	if r == nil {
		r = tensor.NewRNG(0)
	}
	var names []string
	rewrite(m, "", func(name string, sub Module, canReplace func(Module) bool) Module {
		switch l := sub.(type) {
		case *MultiheadAttention:
			if l.InProjLoRA == nil && l.InProjWeight != nil {
				n := join(name, "in_proj")
				if targets(n, &Linear{Weight: l.InProjWeight, Bias: l.InProjBias}) {
					l.AddInProjLoRA(r, rank, alpha, opt.Dropout)
					names = append(names, n)
				}
			}
		case *Linear:
			if canReplace((*LoRALinear)(nil)) && targets(name, l) {
				names = append(names, name)
				return NewLoRALinear(r, l, rank, alpha, opt.Dropout)
			}
		}
		return nil
	})
	return names
}

// MergeLoRA folds every adapter of m into its base weight (W + (α/r)·B·A)
// for serving and returns the merged model, which computes the same
// function in eval mode. Each LoRALinear held in a Module-typed field or
// []Module element is replaced by a plain *Linear with a new merged weight
// (keeping the requires-grad flag; the bias is shared), and each attention's
// packed adapter is folded into in_proj_weight in place and removed, so the
// state dict keys become those of the model without LoRA. A LoRALinear that
// cannot be replaced (a field of type *LoRALinear) is merged in place: its
// weight gets the update and its B is zeroed. The result is m, except when m
// itself is a *LoRALinear: then it is m.Merged() and m is unchanged.
func MergeLoRA(m Module) Module {
	if l, ok := m.(*LoRALinear); ok {
		return l.Merged()
	}
	rewrite(m, "", func(_ string, sub Module, canReplace func(Module) bool) Module {
		switch l := sub.(type) {
		case *MultiheadAttention:
			if a := l.InProjLoRA; a != nil {
				addInto(l.InProjWeight, a.DeltaWeight())
				l.InProjLoRA = nil
			}
		case *LoRALinear:
			if canReplace((*Linear)(nil)) {
				return l.Merged()
			}
			mergeInPlace(l)
		}
		return nil
	})
	return m
}

// mergeInPlace adds l's update to its weight and zeroes B, keeping l's
// function.
func mergeInPlace(l *LoRALinear) {
	addInto(l.Weight, l.DeltaWeight())
	clear(l.B.Data())
}

// addInto adds d to t's values in place, without recording gradients.
func addInto(t, d *tensor.Tensor) {
	td, dd := t.Data(), d.Data()
	for i := range td {
		td[i] += dd[i]
	}
}

func freeze(t *tensor.Tensor) {
	if t != nil {
		t.SetRequiresGrad(false)
		t.SetGrad(nil)
	}
}

// Freeze turns off requires-grad for every parameter of m and clears their
// gradients; they stay in the state dict.
func Freeze(m Module) {
	for _, p := range Parameters(m) {
		freeze(p)
	}
}

// Unfreeze turns requires-grad on for every parameter of m.
func Unfreeze(m Module) {
	for _, p := range Parameters(m) {
		p.SetRequiresGrad(true)
	}
}

// NamedTrainableParameters lists the parameters of m that require a
// gradient, in the order of NamedParameters.
func NamedTrainableParameters(m Module) []Named {
	var out []Named
	for _, p := range NamedParameters(m) {
		if p.Tensor.RequiresGrad() {
			out = append(out, p)
		}
	}
	return out
}

// TrainableParameters lists the parameters of m that require a gradient:
// what an optimizer should update when part of the model is frozen.
func TrainableParameters(m Module) []*tensor.Tensor {
	var out []*tensor.Tensor
	for _, p := range NamedTrainableParameters(m) {
		out = append(out, p.Tensor)
	}
	return out
}

// NumTrainableParams returns the number of scalar values in the parameters
// of m that require a gradient.
func NumTrainableParams(m Module) int {
	n := 0
	for _, p := range TrainableParameters(m) {
		n += p.Numel()
	}
	return n
}

// rewriteFunc is called by rewrite for every module below the root with its
// dotted name; canReplace reports whether the field holding it can take a
// module of the prototype's type. A non-nil result replaces the module, and
// must then be assignable (check canReplace first).
type rewriteFunc func(name string, sub Module, canReplace func(prototype Module) bool) Module

// rewrite visits every module below m, depth first, parents before children,
// with dotted names as in NamedModules, and replaces those for which f
// returns a module. Replacements are not visited.
func rewrite(m Module, prefix string, f rewriteFunc) {
	rv := reflect.ValueOf(m)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return
	}
	rewriteStruct(rv, prefix, f)
}

func rewriteStruct(rv reflect.Value, prefix string, f rewriteFunc) {
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		ft := rt.Field(i)
		embedded := ft.Anonymous && ft.Type.Kind() == reflect.Struct
		if !ft.IsExported() && !embedded {
			continue
		}
		name, _, inline, skip := fieldName(ft)
		if skip {
			continue
		}
		full := join(prefix, name)
		if inline {
			full = prefix
		}
		fv := rv.Field(i)
		switch {
		case ft.Type == tensorType || ft.Type == tensorSliceType:
		case ft.Type.Implements(moduleType):
			if !isNil(fv) {
				visitChild(fv, full, f)
			}
		case ft.Type.Kind() == reflect.Slice && ft.Type.Elem().Implements(moduleType):
			for j := 0; j < fv.Len(); j++ {
				if ev := fv.Index(j); !isNil(ev) {
					visitChild(ev, join(full, strconv.Itoa(j)), f)
				}
			}
		case embedded:
			rewriteStruct(fv, prefix, f)
		}
	}
}

// visitChild calls f on the module held in v and stores its replacement;
// without one it descends into the module.
func visitChild(v reflect.Value, name string, f rewriteFunc) {
	sub := v.Interface().(Module)
	canReplace := func(p Module) bool { return v.CanSet() && reflect.TypeOf(p).AssignableTo(v.Type()) }
	if rep := f(name, sub, canReplace); rep != nil {
		if !canReplace(rep) {
			panic(fmt.Sprintf("nn: cannot store a %T in %s (a %v)", rep, name, v.Type()))
		}
		v.Set(reflect.ValueOf(rep))
		return
	}
	rewrite(sub, name, f)
}
