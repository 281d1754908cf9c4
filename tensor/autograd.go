package tensor

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// noGradDepth > 0 disables graph recording process-wide. It is a counter so
// that NoGrad calls nest. Recording is global rather than per goroutine (Go has
// no goroutine-local state): run inference-only goroutines inside NoGrad, and do
// not mix them with a training loop that needs gradients at the same moment.
var noGradDepth atomic.Int32

// NoGrad runs f with gradient recording disabled: ops inside f produce tensors
// that do not require gradients and record no graph, as torch.no_grad().
func NoGrad(f func()) {
	noGradDepth.Add(1)
	defer noGradDepth.Add(-1)
	f()
}

// IsGradEnabled reports whether ops currently record the autograd graph.
func IsGradEnabled() bool { return noGradDepth.Load() == 0 }

// SetRequiresGrad marks t as a leaf whose gradient Backward accumulates into
// Grad(). It returns t for chaining. Only float32 tensors can require gradients.
func (t *Tensor) SetRequiresGrad(b bool) *Tensor {
	if b && t.dtype != Float32 {
		panic(fmt.Sprintf("tensor.SetRequiresGrad: %v tensor of shape %v cannot require gradients", t.dtype, t.shape))
	}
	if t.ctx != nil && !b {
		panic("tensor.SetRequiresGrad: cannot turn off gradients of a non-leaf tensor; use Detach")
	}
	t.requiresGrad = b
	return t
}

// RequiresGrad reports whether gradients flow to or through t.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// IsLeaf reports whether t was created by the user rather than by an op.
func (t *Tensor) IsLeaf() bool { return t.ctx == nil }

// Grad returns the accumulated gradient of a leaf tensor, or nil.
func (t *Tensor) Grad() *Tensor { return t.grad }

// SetGrad replaces the accumulated gradient (nil clears it).
func (t *Tensor) SetGrad(g *Tensor) {
	if g != nil && !SameShape(g.shape, t.shape) {
		panic(fmt.Sprintf("tensor.SetGrad: gradient shape %v does not match tensor shape %v", g.shape, t.shape))
	}
	t.grad = g
}

// ZeroGrad sets the accumulated gradient to zero in place (keeping its buffer).
func (t *Tensor) ZeroGrad() {
	if t.grad != nil {
		clear(t.grad.data)
	}
}

// Detach returns a tensor sharing t's storage that is cut off from the graph.
// The result of detaching a tensor of a step arena belongs to the arena too.
func (t *Tensor) Detach() *Tensor {
	t.mustLive("Detach")
	out := newViewIn(t.arena, t.shape)
	out.data, out.ints, out.dtype = t.data, t.ints, t.dtype
	return out
}

// Op returns the name of the op that produced t, or "" for a leaf.
func (t *Tensor) Op() string {
	if t.ctx == nil {
		return ""
	}
	return t.ctx.op
}

// record attaches the backward rule of op to out when any input needs a
// gradient and recording is on. backward receives the gradient of out and
// returns one gradient per input, in order (nil where an input needs none; it
// may check NeedsGrad to skip work). Gradients may have the broadcast shape of
// out: record reduces them to each input's shape.
func record(op string, out *Tensor, backward func(g *Tensor) []*Tensor, inputs ...*Tensor) *Tensor {
	if !shouldRecord(inputs) {
		return out
	}
	out.requiresGrad = true
	out.node = node{op: op, backward: backward}
	setInputs(out, inputs)
	return out
}

// shouldRecord reports whether recording is on and any input needs a
// gradient.
func shouldRecord(inputs []*Tensor) bool {
	if !IsGradEnabled() {
		return false
	}
	for _, in := range inputs {
		if in != nil && in.requiresGrad {
			return true
		}
	}
	return false
}

// recordFn is record for a closure-free rule: fn(out, g) returns one
// gradient per input, normally out.ctx.gin[:len(inputs)]; aux and flag
// are kept in the node for it. Nothing is allocated for up to 3 inputs.
func recordFn(op string, out *Tensor, fn func(out, g *Tensor) []*Tensor, aux any, flag bool, inputs ...*Tensor) *Tensor {
	if !shouldRecord(inputs) {
		return out
	}
	out.requiresGrad = true
	out.node = node{op: op, fn: fn, aux: aux, flag: flag}
	setInputs(out, inputs)
	return out
}

// setInputs stores inputs in out's node and makes the node out's ctx.
func setInputs(out *Tensor, inputs []*Tensor) {
	if len(inputs) <= len(out.node.inputsArr) {
		n := copy(out.node.inputsArr[:], inputs)
		out.node.inputs = out.node.inputsArr[:n:n]
	} else {
		out.node.inputs = append([]*Tensor(nil), inputs...)
	}
	out.ctx = &out.node
}

// NeedsGrad reports whether a gradient must be computed for t during Backward.
func (t *Tensor) NeedsGrad() bool { return t != nil && t.requiresGrad }

// Backward computes gradients of the scalar t with respect to every leaf that
// requires a gradient, accumulating them into each leaf's Grad().
func (t *Tensor) Backward() {
	if t.Numel() != 1 {
		panic(fmt.Sprintf("tensor.Backward: called on a tensor of shape %v; use BackwardWith for non-scalars", t.shape))
	}
	t.backward(nil)
}

// BackwardWith back-propagates the gradient g (shaped like t) through the graph.
func (t *Tensor) BackwardWith(g *Tensor) {
	g.mustLive("BackwardWith")
	t.backward(g)
}

// backward runs Backward from t with the output gradient g, or with ones
// (the engine's own seed, for a one-element t) when g is nil.
func (t *Tensor) backward(g *Tensor) {
	t.mustLive("Backward")
	if !t.requiresGrad {
		panic(fmt.Sprintf("tensor.Backward: tensor of shape %v does not require grad (no input was marked with SetRequiresGrad)", t.shape))
	}
	if g != nil && !SameShape(g.shape, t.shape) {
		panic(fmt.Sprintf("tensor.BackwardWith: gradient shape %v does not match tensor shape %v", g.shape, t.shape))
	}
	e := enginePool.Get().(*engine)
	defer e.release()
	if g == nil {
		e.seed = Tensor{}
		e.seed.setShape(t.shape)
		e.seedData[0] = 1
		e.seed.data = e.seedData[:]
		g = &e.seed
	}
	e.topoOrder(t)
	e.grads[t.slot] = g
	noGradDepth.Add(1) // as NoGrad, without a closure
	defer noGradDepth.Add(-1)
	for i := len(e.order) - 1; i >= 0; i-- {
		x := e.order[i]
		gx := e.grads[i]
		if gx == nil {
			continue
		}
		e.grads[i] = nil
		if x.ctx == nil {
			accumulate(x, gx)
			continue
		}
		var gin []*Tensor
		if x.ctx.fn != nil {
			gin = x.ctx.fn(x, gx)
		} else {
			gin = x.ctx.backward(gx)
		}
		if len(gin) != len(x.ctx.inputs) {
			panic(fmt.Sprintf("tensor: backward of %s returned %d gradients for %d inputs", x.ctx.op, len(gin), len(x.ctx.inputs)))
		}
		for j, in := range x.ctx.inputs {
			gi := gin[j]
			gin[j] = nil // the node must not keep gradients that are recycled
			if gi == nil || in == nil || !in.requiresGrad {
				continue
			}
			if gi.pooled || gi.gradView {
				e.recycle = append(e.recycle, gi)
			}
			if !SameShape(gi.shape, in.shape) {
				gi = sumToGrad(gi, in.shape)
				e.recycle = append(e.recycle, gi)
			}
			k := in.slot
			if prev := e.grads[k]; prev != nil {
				gi = addGrads(prev, gi)
				e.recycle = append(e.recycle, gi)
			}
			e.grads[k] = gi
		}
	}
}

// engine is the reusable working state of one Backward call.
type engine struct {
	mark    uint64
	order   []*Tensor // children before parents; root last
	grads   []*Tensor // gradient of order[i], while pending
	stack   []frame
	recycle []*Tensor // newGrad tensors to release at the end
	// seed is Backward's output gradient (a one-element tensor of ones);
	// backward rules do not keep their arguments, so it can live here.
	seed     Tensor
	seedData [1]float32
}

type frame struct {
	t    *Tensor
	next int
}

var (
	enginePool = sync.Pool{New: func() any { return new(engine) }}
	// backwardCalls numbers Backward calls, for the visit marks.
	backwardCalls atomic.Uint64
)

// release recycles the gradients of the finished call and returns e to the pool.
func (e *engine) release() {
	// A gradient may be listed twice (a rule may return one tensor for
	// two inputs): keep each once, then release them together.
	n := 0
	for _, g := range e.recycle {
		switch {
		case g.pooled:
			g.pooled = false
		case g.gradView:
			g.gradView, g.data = false, nil // the storage is not its own
		default:
			continue
		}
		e.recycle[n] = g
		n++
	}
	putGrads(e.recycle[:n])
	clear(e.recycle)
	e.seed = Tensor{}
	clear(e.order)
	clear(e.grads)
	clear(e.stack)
	e.recycle, e.order, e.grads, e.stack = e.recycle[:0], e.order[:0], e.grads[:0], e.stack[:0]
	enginePool.Put(e)
}

// topoOrder fills e.order with the tensors that need gradients below root,
// children before parents, by iterative DFS (graphs can be deep: no
// recursion), and sets each one's slot.
func (e *engine) topoOrder(root *Tensor) {
	e.mark = backwardCalls.Add(1)
	root.mark = e.mark
	e.stack = append(e.stack, frame{t: root})
	for len(e.stack) > 0 {
		f := &e.stack[len(e.stack)-1]
		if f.t.ctx == nil || f.next >= len(f.t.ctx.inputs) {
			f.t.slot = int32(len(e.order))
			e.order = append(e.order, f.t)
			e.stack = e.stack[:len(e.stack)-1]
			continue
		}
		in := f.t.ctx.inputs[f.next]
		f.next++
		if in == nil || !in.requiresGrad || in.mark == e.mark {
			continue
		}
		in.mustLive("Backward")
		in.mark = e.mark
		e.stack = append(e.stack, frame{t: in})
	}
	if cap(e.grads) < len(e.order) {
		e.grads = make([]*Tensor, len(e.order))
	}
	e.grads = e.grads[:len(e.order)]
}

// accumulate adds g into leaf x's Grad().
func accumulate(x, g *Tensor) {
	if x.grad == nil {
		x.grad = shaped(x.shape)
		x.grad.data = append([]float32(nil), g.data...)
		return
	}
	for i, v := range g.data {
		x.grad.data[i] += v
	}
}

// addGrads returns a+b as a new recycled gradient.
func addGrads(a, b *Tensor) *Tensor {
	out := newGrad(false, a.shape...)
	bd := b.data[:len(a.data)]
	od := out.data[:len(a.data)]
	for i, v := range a.data {
		od[i] = v + bd[i]
	}
	return out
}

// sumToGrad is SumTo for the engine: it reduces g to shape into a new
// recycled gradient.
func sumToGrad(g *Tensor, shape []int) *Tensor {
	r := SumTo(g, shape)
	out := newGrad(false, shape...)
	copy(out.data, r.data)
	return out
}

// gradSink returns the gradient buffer of t when a backward rule may add
// t's gradient straight into it instead of returning it: t is a leaf that
// requires a gradient and already has one (after the first step and
// ZeroGrad, the usual case for parameters). The rule then returns nil for
// t. This saves a full-size buffer and a pass over it per parameter; the
// sum differs from the engine's only in rounding order, which is fixed.
// Only backward rules, run by Backward, may call it.
func gradSink(t *Tensor) *Tensor {
	if t == nil || t.ctx != nil || !t.requiresGrad || t.grad == nil || len(t.grad.data) != len(t.data) {
		return nil
	}
	return t.grad
}
