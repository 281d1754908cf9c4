// Package nn builds neural networks on top of package tensor: the Module
// interface, parameter discovery by reflection with PyTorch-style names,
// layers, activations, losses, initialisers, train/eval mode, state dicts and
// their safetensors files, and a Keras-style Summary.
//
// # Modules and names
//
// A Module is anything with Forward(x) → y. Modules are pointers to structs;
// their parameters, buffers and children are found by reflection over the
// exported fields, in field order, depth first:
//
//   - a *tensor.Tensor field is a parameter, or a buffer when tagged
//     `nn:",buffer"`; nil tensors (a Linear without bias) are skipped;
//   - a []*tensor.Tensor field holds parameters named name.0, name.1, …;
//   - a field holding a Module is a child whose names get the prefix "name.";
//   - a []Module (or slice of a concrete module type) holds children name.0,
//     name.1, …; with the tag `nn:",inline"` the children are named 0, 1, …
//     without a prefix (this is how Sequential gets PyTorch's keys);
//   - an embedded (anonymous) struct that is not a Module is walked as if its
//     fields were the outer struct's.
//
// A field's name is its tag name (`nn:"fc1"`) if given, else the field name in
// snake_case (Weight → weight, RunningMean → running_mean). The tag `nn:"-"`
// hides a field. The resulting keys are exactly PyTorch's state_dict keys for
// the same architecture, so weights move between the two without renaming.
//
// # Train and eval
//
// Modules whose behaviour depends on the mode (Dropout, BatchNorm) embed Mode,
// which implements ModeSetter; Train and Eval set the mode through the whole
// tree. The zero Mode is training, as a fresh PyTorch module.
//
// # Losses and autograd
//
// Every layer and loss is composed from differentiable tensor ops
// (tensor.Linear, tensor.Conv2D, tensor.LogSoftmax, tensor.Gather, …), so
// gradients come from the tensor package's autograd; package nn defines no
// backward rules of its own.
package nn

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/deepgo/deepgo/tensor"
)

// Module is a layer or a model: it maps an input tensor to an output tensor.
// Implementations are pointers to structs whose exported fields hold the
// parameters, buffers and child modules (see the package documentation).
type Module interface {
	Forward(x *tensor.Tensor) *tensor.Tensor
}

// ModeSetter is implemented by modules whose behaviour differs between
// training and evaluation. Embedding Mode provides it.
type ModeSetter interface {
	SetTraining(training bool)
	Training() bool
}

// Mode is a helper to embed in modules that have a training flag. Its zero
// value means training, as a freshly constructed PyTorch module.
type Mode struct{ eval bool }

// SetTraining switches the module to training (true) or evaluation (false).
func (m *Mode) SetTraining(training bool) { m.eval = !training }

// Training reports whether the module is in training mode.
func (m *Mode) Training() bool { return !m.eval }

// Named is a tensor with its PyTorch-style dotted name.
type Named struct {
	Name   string
	Tensor *tensor.Tensor
}

// NamedModule is a module with its dotted name ("" for the root).
type NamedModule struct {
	Name   string
	Module Module
}

var (
	tensorType      = reflect.TypeOf((*tensor.Tensor)(nil))
	tensorSliceType = reflect.TypeOf([]*tensor.Tensor(nil))
	moduleType      = reflect.TypeOf((*Module)(nil)).Elem()
)

// visitor receives what walk finds.
type visitor struct {
	module func(name string, m Module)
	tensor func(name string, t *tensor.Tensor, buffer bool)
	// shallow stops the walk at each module reached through a field.
	shallow bool
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	if name == "" {
		return prefix
	}
	return prefix + "." + name
}

// walk visits m (named prefix) and then its fields depth first.
func walk(m Module, prefix string, v *visitor, stack map[uintptr]bool) {
	if m == nil {
		return
	}
	rv := reflect.ValueOf(m)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return
		}
		if stack != nil {
			p := rv.Pointer()
			if stack[p] {
				panic(fmt.Sprintf("nn: module %q (%T) contains itself", prefix, m))
			}
			stack[p] = true
			defer delete(stack, p)
		}
	}
	if v.module != nil {
		v.module(prefix, m)
	}
	if v.shallow {
		return
	}
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return
	}
	walkStruct(rv, prefix, v, stack)
}

// fieldName returns the name of a struct field and whether it is a buffer,
// inline or hidden.
func fieldName(f reflect.StructField) (name string, buffer, inline, skip bool) {
	tag, ok := f.Tag.Lookup("nn")
	name = snakeCase(f.Name)
	if !ok {
		return name, false, false, false
	}
	if tag == "-" {
		return "", false, false, true
	}
	parts := strings.Split(tag, ",")
	if parts[0] != "" {
		name = parts[0]
	}
	for _, p := range parts[1:] {
		switch p {
		case "buffer":
			buffer = true
		case "inline":
			inline = true
		}
	}
	return name, buffer, inline, false
}

func walkStruct(rv reflect.Value, prefix string, v *visitor, stack map[uintptr]bool) {
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		embedded := f.Anonymous && f.Type.Kind() == reflect.Struct
		if !f.IsExported() && !embedded {
			continue
		}
		name, buffer, inline, skip := fieldName(f)
		if skip {
			continue
		}
		fv := rv.Field(i)
		full := join(prefix, name)
		if inline {
			full = prefix
		}
		switch {
		case f.Type == tensorType:
			if t := fv.Interface().(*tensor.Tensor); t != nil && v.tensor != nil {
				v.tensor(full, t, buffer)
			}
		case f.Type == tensorSliceType:
			for j := 0; j < fv.Len(); j++ {
				if t := fv.Index(j).Interface().(*tensor.Tensor); t != nil && v.tensor != nil {
					v.tensor(join(full, strconv.Itoa(j)), t, buffer)
				}
			}
		case f.Type.Implements(moduleType):
			if isNil(fv) {
				continue
			}
			walk(fv.Interface().(Module), full, v, stack)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Implements(moduleType):
			for j := 0; j < fv.Len(); j++ {
				ev := fv.Index(j)
				if isNil(ev) {
					continue
				}
				walk(ev.Interface().(Module), join(full, strconv.Itoa(j)), v, stack)
			}
		case embedded:
			walkStruct(fv, prefix, v, stack)
		}
	}
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// snakeCase converts a Go field name to PyTorch style: Weight → weight,
// RunningMean → running_mean, FC1 → fc1, QKVProj → qkv_proj.
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 {
				prev := r[i-1]
				nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
				if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func collect(m Module, wantBuffers bool, dedup bool) []Named {
	var out []Named
	seen := map[*tensor.Tensor]bool{}
	walk(m, "", &visitor{tensor: func(name string, t *tensor.Tensor, buffer bool) {
		if buffer != wantBuffers {
			return
		}
		if dedup {
			if seen[t] {
				return
			}
			seen[t] = true
		}
		out = append(out, Named{Name: name, Tensor: t})
	}}, map[uintptr]bool{})
	return out
}

// NamedParameters lists m's parameters with their dotted names, in field
// order, depth first. A tensor shared by two fields is listed once, under its
// first name.
func NamedParameters(m Module) []Named { return collect(m, false, true) }

// Parameters lists m's parameters in the order of NamedParameters, each once.
func Parameters(m Module) []*tensor.Tensor {
	np := NamedParameters(m)
	out := make([]*tensor.Tensor, len(np))
	for i, p := range np {
		out[i] = p.Tensor
	}
	return out
}

// NamedBuffers lists m's buffers (fields tagged `nn:",buffer"`, such as
// BatchNorm's running statistics) with their dotted names.
func NamedBuffers(m Module) []Named { return collect(m, true, true) }

// NamedModules lists m and every module below it, depth first, with dotted
// names; the root is named "". A module reachable twice is listed once.
func NamedModules(m Module) []NamedModule {
	var out []NamedModule
	seen := map[Module]bool{}
	walk(m, "", &visitor{module: func(name string, sub Module) {
		if isComparable(sub) {
			if seen[sub] {
				return
			}
			seen[sub] = true
		}
		out = append(out, NamedModule{Name: name, Module: sub})
	}}, map[uintptr]bool{})
	return out
}

// Children lists m's direct child modules with their names relative to m
// (for Sequential: "0", "1", …), in field order.
func Children(m Module) []NamedModule {
	var out []NamedModule
	rv := reflect.ValueOf(m)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	walkStruct(rv, "", &visitor{shallow: true, module: func(name string, sub Module) {
		out = append(out, NamedModule{Name: name, Module: sub})
	}}, nil)
	return out
}

func isComparable(m Module) bool { return reflect.TypeOf(m).Comparable() }

// Train puts m and every module below it in training mode.
func Train(m Module) { setMode(m, true) }

// Eval puts m and every module below it in evaluation mode.
func Eval(m Module) { setMode(m, false) }

func setMode(m Module, training bool) {
	walk(m, "", &visitor{module: func(_ string, sub Module) {
		if s, ok := sub.(ModeSetter); ok {
			s.SetTraining(training)
		}
	}}, map[uintptr]bool{})
}

// ZeroGrad zeroes the accumulated gradient of every parameter of m in place.
func ZeroGrad(m Module) {
	for _, p := range Parameters(m) {
		p.ZeroGrad()
	}
}

// NumParams returns the number of scalar values in m's parameters.
func NumParams(m Module) int {
	n := 0
	for _, p := range Parameters(m) {
		n += p.Numel()
	}
	return n
}
