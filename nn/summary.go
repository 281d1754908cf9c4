package nn

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/deepgo/deepgo/tensor"
)

// Summary returns a Keras-style table of m: one row per layer with its name
// and type, output shape and parameter count, then the total, trainable and
// non-trainable parameter counts. For a Sequential with an inputShape (full
// shape, batch included, e.g. 1, 1, 28, 28) the output shape of every child
// is found by a forward pass on zeros under tensor.NoGrad, in eval mode (the
// modes are restored afterwards, and running statistics are not touched).
// For other modules the rows are m's direct children and its own
// parameters (whose rows show the parameter's shape); with an inputShape
// the model's output shape is added below.
func Summary(m Module, inputShape ...int) string {
	type row struct{ name, shape, params string }
	var rows []row
	var outShape []int
	run := len(inputShape) > 0
	children := Children(m)
	seq, isSeq := m.(*Sequential)
	if run {
		restore := saveModes(m)
		defer restore()
		Eval(m)
	}
	tensor.NoGrad(func() {
		var x *tensor.Tensor
		if run {
			x = tensor.Zeros(inputShape...)
		}
		if isSeq {
			for i, l := range seq.Layers {
				r := row{name: fmt.Sprintf("%d (%s)", i, typeName(l)), shape: "-", params: "0"}
				if l != nil {
					r.params = commas(NumParams(l))
					if run {
						x = l.Forward(x)
						r.shape = fmt.Sprint(x.Shape())
					}
				}
				rows = append(rows, r)
			}
			if run {
				outShape = x.Shape()
			}
			return
		}
		for _, c := range children {
			rows = append(rows, row{name: fmt.Sprintf("%s (%s)", c.Name, typeName(c.Module)), shape: "-", params: commas(NumParams(c.Module))})
		}
		walkOwn(m, func(name string, t *tensor.Tensor) {
			rows = append(rows, row{name: name + " (Parameter)", shape: fmt.Sprint(t.Shape()), params: commas(t.Numel())})
		})
		if run {
			outShape = m.Forward(x).Shape()
		}
	})
	total, trainable := 0, 0
	for _, p := range Parameters(m) {
		total += p.Numel()
		if p.RequiresGrad() {
			trainable += p.Numel()
		}
	}
	heads := row{"Layer (type)", "Output Shape", "Param #"}
	w := [3]int{len(heads.name), len(heads.shape), len(heads.params)}
	for _, r := range rows {
		w[0] = max(w[0], len(r.name))
		w[1] = max(w[1], len(r.shape))
		w[2] = max(w[2], len(r.params))
	}
	width := w[0] + w[1] + w[2] + 6
	var b strings.Builder
	line := func(c string) { b.WriteString(strings.Repeat(c, width) + "\n") }
	put := func(r row) {
		fmt.Fprintf(&b, "%-*s   %-*s   %*s\n", w[0], r.name, w[1], r.shape, w[2], r.params)
	}
	fmt.Fprintf(&b, "Model: %s\n", typeName(m))
	line("=")
	put(heads)
	line("=")
	for _, r := range rows {
		put(r)
	}
	line("=")
	if outShape != nil {
		fmt.Fprintf(&b, "Input shape: %v\nOutput shape: %v\n", inputShape, outShape)
	}
	fmt.Fprintf(&b, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n", commas(total), commas(trainable), commas(total-trainable))
	line("=")
	return b.String()
}

// walkOwn calls f for m's own parameters (not its children's).
func walkOwn(m Module, f func(name string, t *tensor.Tensor)) {
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
	walkStruct(rv, "", &visitor{shallow: true, tensor: func(name string, t *tensor.Tensor, buffer bool) {
		if !buffer {
			f(name, t)
		}
	}}, nil)
}

// saveModes records the mode of every module of m and returns a function restoring them.
func saveModes(m Module) func() {
	type saved struct {
		s  ModeSetter
		on bool
	}
	var all []saved
	for _, nm := range NamedModules(m) {
		if s, ok := nm.Module.(ModeSetter); ok {
			all = append(all, saved{s, s.Training()})
		}
	}
	return func() {
		for _, s := range all {
			s.s.SetTraining(s.on)
		}
	}
}

func typeName(m Module) string {
	if m == nil {
		return "nil"
	}
	t := reflect.TypeOf(m)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// commas formats n with thousands separators (347146 → "347,146").
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
