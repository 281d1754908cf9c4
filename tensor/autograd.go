package tensor

import (
	"fmt"
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
func (t *Tensor) Detach() *Tensor {
	return &Tensor{shape: t.shape, data: t.data, ints: t.ints, dtype: t.dtype}
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
	if !IsGradEnabled() {
		return out
	}
	need := false
	for _, in := range inputs {
		if in != nil && in.requiresGrad {
			need = true
			break
		}
	}
	if !need {
		return out
	}
	out.requiresGrad = true
	out.ctx = &node{op: op, inputs: inputs, backward: backward}
	return out
}

// NeedsGrad reports whether a gradient must be computed for t during Backward.
func (t *Tensor) NeedsGrad() bool { return t != nil && t.requiresGrad }

// Backward computes gradients of the scalar t with respect to every leaf that
// requires a gradient, accumulating them into each leaf's Grad().
func (t *Tensor) Backward() {
	if t.Numel() != 1 {
		panic(fmt.Sprintf("tensor.Backward: called on a tensor of shape %v; use BackwardWith for non-scalars", t.shape))
	}
	t.BackwardWith(OnesLike(t))
}

// BackwardWith back-propagates the gradient g (shaped like t) through the graph.
func (t *Tensor) BackwardWith(g *Tensor) {
	if !t.requiresGrad {
		panic(fmt.Sprintf("tensor.Backward: tensor of shape %v does not require grad (no input was marked with SetRequiresGrad)", t.shape))
	}
	if !SameShape(g.shape, t.shape) {
		panic(fmt.Sprintf("tensor.BackwardWith: gradient shape %v does not match tensor shape %v", g.shape, t.shape))
	}
	// Topological order by iterative DFS (graphs can be deep: no recursion).
	order := topoOrder(t)
	grads := make(map[*Tensor]*Tensor, len(order))
	grads[t] = g
	NoGrad(func() {
		for i := len(order) - 1; i >= 0; i-- {
			x := order[i]
			gx := grads[x]
			if gx == nil {
				continue
			}
			delete(grads, x)
			if x.ctx == nil {
				accumulate(x, gx)
				continue
			}
			gin := x.ctx.backward(gx)
			if len(gin) != len(x.ctx.inputs) {
				panic(fmt.Sprintf("tensor: backward of %s returned %d gradients for %d inputs", x.ctx.op, len(gin), len(x.ctx.inputs)))
			}
			for j, in := range x.ctx.inputs {
				gi := gin[j]
				if gi == nil || in == nil || !in.requiresGrad {
					continue
				}
				if !SameShape(gi.shape, in.shape) {
					gi = SumTo(gi, in.shape)
				}
				if prev, ok := grads[in]; ok {
					grads[in] = addInto(prev, gi)
				} else {
					grads[in] = gi
				}
			}
		}
	})
}

// accumulate adds g into leaf x's Grad().
func accumulate(x, g *Tensor) {
	if x.grad == nil {
		x.grad = &Tensor{shape: cloneShape(x.shape), data: append([]float32(nil), g.data...)}
		return
	}
	for i, v := range g.data {
		x.grad.data[i] += v
	}
}

// addInto returns a+b, reusing a's buffer when a is not aliased by the graph.
func addInto(a, b *Tensor) *Tensor {
	out := Zeros(a.shape...)
	for i := range out.data {
		out.data[i] = a.data[i] + b.data[i]
	}
	return out
}

func topoOrder(root *Tensor) []*Tensor {
	type frame struct {
		t    *Tensor
		next int
	}
	visited := map[*Tensor]bool{root: true}
	var order []*Tensor
	stack := []frame{{t: root}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.t.ctx == nil || f.next >= len(f.t.ctx.inputs) {
			order = append(order, f.t)
			stack = stack[:len(stack)-1]
			continue
		}
		in := f.t.ctx.inputs[f.next]
		f.next++
		if in == nil || !in.requiresGrad || visited[in] {
			continue
		}
		visited[in] = true
		stack = append(stack, frame{t: in})
	}
	return order // children before parents; root last
}
