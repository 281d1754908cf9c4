// Package tensor provides deepgo's n-dimensional Tensor type, NumPy-style
// broadcasting, and eager reverse-mode automatic differentiation.
//
// A Tensor is a contiguous, row-major block of float32 values (or int64 values
// for index tensors such as labels and token ids) with a shape. Every
// differentiable operation is defined once, with its forward computation and
// its backward rule side by side in the same function: when any input
// requires a gradient (and gradients are enabled, see NoGrad), the op records
// a node holding its inputs and a rule that maps the output gradient to
// input gradients: a closure, or for the hot ops (the convolutions, Linear,
// ReLU, the views, SoftmaxCrossEntropy) a plain function that keeps its
// state in the node, so that recording it allocates nothing. Backward walks
// those nodes in reverse topological order.
//
// Programmer errors (mismatched shapes, wrong dtypes, out-of-range axes) panic
// with a message that names the op and the shapes involved. Functions that
// deal with files or user input live in other packages and return errors.
//
// Speed. The heavy ops (convolution, pooling, ReLU) spread their work over
// the cores with kernels.ParallelFor, in a way that makes results
// independent of the thread count. Gradients of intermediate tensors are
// recycled when Backward returns (the rules are in bufpool.go), and a
// parameter that already has a Grad() receives its gradient in place. Fused
// ops (Conv2DReLU, Conv2DReLUMaxPool, LinearReLU, SoftmaxCrossEntropy) do
// the work of several ops in one pass with the same values and gradients;
// nn.Sequential and nn.CrossEntropy use them automatically. Backward on
// graphs that share leaf tensors must not run concurrently.
//
// Step arenas. The results of one step can take their storage from an
// Arena (opt-in; train.Fit uses one per batch): adopt the batch input with
// Arena.Adopt, read what you need (loss.Item(), metrics), then call
// Arena.Reset, which hands the storage back for the next step and makes
// every tensor of the step dead: using one afterwards panics with a
// message saying so, it never silently sees the next step's values.
// Parameters, gradients and optimizer state never come from an arena.
// With the arena, buffer recycling and the closure-free rules, a
// warmed-up training step of the reference MNIST CNN allocates about
// once. Values and gradients are bitwise the same with or without an
// arena. See Arena for the details.
package tensor

import (
	"fmt"
	"strings"
)

// DType is the element type of a Tensor.
type DType int

const (
	// Float32 tensors hold their values in Data().
	Float32 DType = iota
	// Int64 tensors hold their values in Int64s(); they are used for labels,
	// token ids and gather indices and never require gradients.
	Int64
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Int64:
		return "int64"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Tensor is an n-dimensional array with optional gradient tracking.
type Tensor struct {
	shape    []int
	shapeArr [4]int // holds shape for up to 4 dims, saving an allocation
	data     []float32
	ints     []int64
	dtype    DType

	requiresGrad bool
	grad         *Tensor
	ctx          *node

	// pooled marks a gradient made by newGrad, which Backward recycles
	// when it returns (see bufpool.go).
	pooled bool
	// gradView marks a gradient Tensor value from newGradView: recycled
	// like a pooled one, but its storage belongs to another gradient.
	gradView bool
	// mark and slot are Backward's bookkeeping: mark is the number of the
	// Backward call that last visited t, slot t's position in its order.
	mark uint64
	slot int32
	// arena is the step arena the tensor came from (see arena.go), or nil;
	// freed is set when that arena was reset and the tensor is dead.
	arena *Arena
	freed bool
	// node is ctx's storage when the tensor was made by an op (one
	// allocation for both).
	node node
}

// node records how a tensor was produced, for Backward. Its rule is either
// a closure (backward) or, for the hot ops, a plain function (fn) that
// reads what it needs from the node itself: the inputs, the output, aux
// (op state such as *convState) and flag. Such a rule returns gin[:n]
// rather than a new slice, so recording and running it allocates nothing.
type node struct {
	op        string
	inputs    []*Tensor
	inputsArr [3]*Tensor // holds inputs for up to 3 of them
	backward  func(g *Tensor) []*Tensor
	fn        func(out, g *Tensor) []*Tensor
	aux       any
	flag      bool
	gin       [3]*Tensor
}

// numel returns the number of elements of a shape.
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			// A copy, so that shape itself does not escape (callers pass
			// shapes on their stack).
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", cloneShape(shape)))
		}
		n *= d
	}
	return n
}

// shaped returns a new Tensor whose shape is a copy of shape.
func shaped(shape []int) *Tensor {
	t := new(Tensor)
	t.setShape(shape)
	return t
}

// setShape sets t's shape to a copy of shape, kept inside t when it fits.
func (t *Tensor) setShape(shape []int) {
	if len(shape) <= len(t.shapeArr) {
		n := copy(t.shapeArr[:], shape)
		t.shape = t.shapeArr[:n:n]
		return
	}
	t.shape = cloneShape(shape)
}

func cloneShape(s []int) []int {
	return append(make([]int, 0, len(s)), s...)
}

// FromSlice makes a float32 tensor that owns data (no copy) with the given shape.
// It panics if len(data) does not match the shape.
func FromSlice(data []float32, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("tensor.FromSlice: %d values do not fit shape %v (%d elements)", len(data), shape, n))
	}
	t := shaped(shape)
	t.data = data
	return t
}

// FromInt64 makes an int64 tensor that owns data (no copy) with the given shape.
func FromInt64(data []int64, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("tensor.FromInt64: %d values do not fit shape %v (%d elements)", len(data), shape, n))
	}
	t := shaped(shape)
	t.ints, t.dtype = data, Int64
	return t
}

// Scalar makes a 0-dimensional float32 tensor.
func Scalar(v float32) *Tensor {
	t := shaped(nil)
	t.data = []float32{v}
	return t
}

// Zeros makes a float32 tensor of zeros.
func Zeros(shape ...int) *Tensor {
	t := shaped(shape)
	t.data = make([]float32, numel(shape))
	return t
}

// ZerosInt64 makes an int64 tensor of zeros.
func ZerosInt64(shape ...int) *Tensor {
	t := shaped(shape)
	t.ints, t.dtype = make([]int64, numel(shape)), Int64
	return t
}

// Ones makes a float32 tensor of ones.
func Ones(shape ...int) *Tensor { return Full(1, shape...) }

// Full makes a float32 tensor filled with v.
func Full(v float32, shape ...int) *Tensor {
	t := Zeros(shape...)
	for i := range t.data {
		t.data[i] = v
	}
	return t
}

// ZerosLike makes a float32 tensor of zeros with t's shape.
func ZerosLike(t *Tensor) *Tensor { return Zeros(t.shape...) }

// OnesLike makes a float32 tensor of ones with t's shape.
func OnesLike(t *Tensor) *Tensor { return Ones(t.shape...) }

// Arange returns the 1-D float32 tensor [start, start+step, ...) up to end (exclusive).
func Arange(start, end, step float32) *Tensor {
	if step == 0 || (end-start)/step < 0 {
		panic(fmt.Sprintf("tensor.Arange: step %v cannot go from %v to %v", step, start, end))
	}
	n := 0
	for v := start; (step > 0 && v < end) || (step < 0 && v > end); v = start + float32(n)*step {
		n++
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = start + float32(i)*step
	}
	return FromSlice(d, n)
}

// Shape returns a copy of the tensor's shape.
func (t *Tensor) Shape() []int { return cloneShape(t.shape) }

// Dim returns the number of dimensions.
func (t *Tensor) Dim() int { return len(t.shape) }

// Size returns the length of dimension i (negative i counts from the end).
func (t *Tensor) Size(i int) int { return t.shape[normAxis("Size", i, len(t.shape))] }

// Numel returns the number of elements.
func (t *Tensor) Numel() int { return numel(t.shape) }

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Data returns the underlying float32 storage (row-major, shared, not a copy).
// It panics for int64 tensors.
func (t *Tensor) Data() []float32 {
	t.mustLive("Data")
	if t.dtype != Float32 {
		panic(fmt.Sprintf("tensor.Data: tensor of shape %v is %v, not float32", t.shape, t.dtype))
	}
	return t.data
}

// Int64s returns the underlying int64 storage (shared, not a copy).
// It panics for float32 tensors.
func (t *Tensor) Int64s() []int64 {
	t.mustLive("Int64s")
	if t.dtype != Int64 {
		panic(fmt.Sprintf("tensor.Int64s: tensor of shape %v is %v, not int64", t.shape, t.dtype))
	}
	return t.ints
}

// Item returns the single value of a one-element float32 tensor.
func (t *Tensor) Item() float32 {
	t.mustLive("Item")
	if t.Numel() != 1 {
		panic(fmt.Sprintf("tensor.Item: tensor of shape %v has %d elements, want 1", t.shape, t.Numel()))
	}
	if t.dtype == Int64 {
		return float32(t.ints[0])
	}
	return t.data[0]
}

// offset converts a multi-index to a flat offset.
func (t *Tensor) offset(op string, idx []int) int {
	if len(idx) != len(t.shape) {
		panic(fmt.Sprintf("tensor.%s: %d indices for shape %v", op, len(idx), t.shape))
	}
	off := 0
	for i, v := range idx {
		if v < 0 {
			v += t.shape[i]
		}
		if v < 0 || v >= t.shape[i] {
			panic(fmt.Sprintf("tensor.%s: index %v out of range for shape %v", op, idx, t.shape))
		}
		off = off*t.shape[i] + v
	}
	return off
}

// At returns the element at the given multi-index (negative indices count from the end).
func (t *Tensor) At(idx ...int) float32 {
	o := t.offset("At", idx)
	if t.dtype == Int64 {
		return float32(t.ints[o])
	}
	return t.data[o]
}

// Set stores v at the given multi-index. It does not record a gradient.
func (t *Tensor) Set(v float32, idx ...int) {
	o := t.offset("Set", idx)
	if t.dtype == Int64 {
		t.ints[o] = int64(v)
		return
	}
	t.data[o] = v
}

// Clone returns a deep copy of the values (without gradient history).
func (t *Tensor) Clone() *Tensor {
	c := shaped(t.shape)
	c.dtype = t.dtype
	if t.dtype == Int64 {
		c.ints = append([]int64(nil), t.ints...)
	} else {
		c.data = append([]float32(nil), t.data...)
	}
	return c
}

// CopyFrom copies src's values into t in place (shapes must match). It does not
// record a gradient; it is meant for loading weights and optimizer updates.
func (t *Tensor) CopyFrom(src *Tensor) {
	if !SameShape(t.shape, src.shape) || t.dtype != src.dtype {
		panic(fmt.Sprintf("tensor.CopyFrom: destination %v %v, source %v %v", t.shape, t.dtype, src.shape, src.dtype))
	}
	if t.dtype == Int64 {
		copy(t.ints, src.ints)
	} else {
		copy(t.data, src.data)
	}
}

// Float converts an int64 tensor to float32 (a copy); float32 tensors are returned as is.
func (t *Tensor) Float() *Tensor {
	if t.dtype == Float32 {
		return t
	}
	d := make([]float32, len(t.ints))
	for i, v := range t.ints {
		d[i] = float32(v)
	}
	return FromSlice(d, t.shape...)
}

// Long converts a float32 tensor to int64 by truncation (a copy); int64 tensors are returned as is.
func (t *Tensor) Long() *Tensor {
	if t.dtype == Int64 {
		return t
	}
	d := make([]int64, len(t.data))
	for i, v := range t.data {
		d[i] = int64(v)
	}
	return FromInt64(d, t.shape...)
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// String formats small tensors in full and large ones abbreviated.
func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tensor(shape=%v, dtype=%v", t.shape, t.dtype)
	if t.requiresGrad {
		b.WriteString(", requires_grad")
	}
	b.WriteString(", [")
	n := t.Numel()
	for i := 0; i < n && i < 16; i++ {
		if i > 0 {
			b.WriteString(" ")
		}
		if t.dtype == Int64 {
			fmt.Fprintf(&b, "%d", t.ints[i])
		} else {
			fmt.Fprintf(&b, "%.6g", t.data[i])
		}
	}
	if n > 16 {
		b.WriteString(" ...")
	}
	b.WriteString("])")
	return b.String()
}

// normAxis maps a possibly negative axis to [0, rank) and panics if out of range.
func normAxis(op string, axis, rank int) int {
	a := axis
	if a < 0 {
		a += rank
	}
	if a < 0 || a >= rank {
		panic(fmt.Sprintf("tensor.%s: axis %d out of range for a %d-d tensor", op, axis, rank))
	}
	return a
}

// mustFloat panics unless every tensor is float32.
func mustFloat(op string, ts ...*Tensor) {
	for _, t := range ts {
		t.mustLive(op)
		if t.dtype != Float32 {
			panic(fmt.Sprintf("tensor.%s: needs float32 tensors, got %v tensor of shape %v", op, t.dtype, cloneShape(t.shape)))
		}
	}
}

// strides returns the row-major strides of a shape.
func strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}
