package tensor

import "fmt"

// Arena is an opt-in step arena, in the spirit of the static buffers of a
// captured CUDA graph: the results of one training (or evaluation) step
// take their storage from it, and Reset hands all of it back at once for
// the next step, so that a warmed-up step allocates almost nothing.
//
//	a := tensor.NewArena()
//	for each batch {
//		x := a.Adopt(batch.Input)     // x and everything computed from it belong to a
//		loss := nn.CrossEntropy(model.Forward(x), batch.Target)
//		loss.Backward()
//		opt.Step()
//		v := loss.Item()              // read what you need ...
//		a.Reset()                     // ... before Reset: loss, x and the rest are now dead
//	}
//
// Membership spreads through the ops: an op that supports the arena
// (the convolutions and their fused forms, Linear and LinearReLU, ReLU,
// SoftmaxCrossEntropy, and the views Reshape, Flatten, Squeeze, Unsqueeze
// and Detach) puts its result in the arena of its first input that has
// one; every other op allocates its result as usual, and that result does
// not belong to the arena (it stays valid after Reset). Parameters,
// gradients (Grad()), optimizer state and anything made without an
// arena input never come from an arena.
//
// After Reset every tensor of the arena is dead: its storage is cut off
// and any use of it through the tensor package (as an op input, Data,
// Item, Backward) panics with a message saying that it was used after its
// arena was reset. A dead tensor never comes back to life: the arena
// gives out new Tensor values after Reset; only the storage is reused.
// Slices obtained from Data() of an arena tensor before Reset must not be
// used after it (they may hold the next step's values). A module that
// keeps a result across steps must copy it (Clone) rather than hold an
// arena tensor; the modules of package nn do not keep op results.
//
// An Arena belongs to one goroutine at a time (two goroutines need two
// arenas); its zero value is not usable, call NewArena. A nil *Arena is
// valid and means "no arena": Adopt returns its argument and Reset does
// nothing.
type Arena struct {
	chunk   []Tensor  // where the next tensors are taken from
	lent    []*Tensor // tensors given out since the last Reset
	perStep int       // tensors given out in the last full step
	free    map[int][][]float32
	used    [][]float32 // buffers given out since the last Reset
	convs   []*convState
	convN   int // convs[:convN] are in use
	sces    []*sceState
	sceN    int
}

// NewArena makes an empty arena.
func NewArena() *Arena { return &Arena{free: map[int][][]float32{}} }

// Adopt returns a tensor of the arena that shares x's storage and shape,
// so that the ops on it put their results in the arena. When x requires
// a gradient the result is an op output whose gradient flows back to x.
// It panics if x is dead. A nil arena returns x itself.
func (a *Arena) Adopt(x *Tensor) *Tensor {
	if a == nil {
		return x
	}
	x.mustLive("Arena.Adopt")
	out := a.tensor()
	out.setShape(x.shape)
	out.data, out.ints, out.dtype = x.data, x.ints, x.dtype
	return recordFn("Adopt", out, viewBackward, nil, false, x)
}

// Reset ends the step: every tensor the arena gave out since the last
// Reset becomes dead (see Arena), and the storage goes back to the arena
// for the next step. A nil arena does nothing.
func (a *Arena) Reset() {
	if a == nil {
		return
	}
	for _, t := range a.lent {
		t.data, t.ints, t.grad, t.ctx = nil, nil, nil, nil
		t.node = node{}
		t.freed = true
	}
	if n := len(a.lent); n > 0 {
		a.perStep = n
	}
	clear(a.lent)
	a.lent = a.lent[:0]
	a.chunk = nil // the dead tensors are never given out again
	for _, b := range a.used {
		a.free[len(b)] = append(a.free[len(b)], b)
	}
	clear(a.used)
	a.used = a.used[:0]
	for _, s := range a.convs[:a.convN] {
		s.release()
	}
	a.convN = 0
	for _, s := range a.sces[:a.sceN] {
		s.target = nil
	}
	a.sceN = 0
}

// ResetTrim is Reset that also lets go of the storage the ended step did
// not use, so that the arena keeps at most one step's worth. Reset keeps
// every buffer it ever gave out, per exact size, which suits training (every
// step asks for the same sizes); ResetTrim suits steps whose sizes vary,
// such as inference on batches of different sizes or lengths.
func (a *Arena) ResetTrim() {
	if a == nil {
		return
	}
	for n, l := range a.free {
		clear(l) // let go of the buffers; keep the list's own storage
		a.free[n] = l[:0]
	}
	a.Reset()
	for n, l := range a.free {
		if len(l) == 0 { // a size the step did not use
			delete(a.free, n)
		}
	}
}

// tensor returns a new, empty Tensor of the arena. Tensors are carved from
// chunks sized to the previous step, so a step costs one allocation for
// all of them.
func (a *Arena) tensor() *Tensor {
	if len(a.chunk) == 0 {
		a.chunk = make([]Tensor, max(16, a.perStep))
	}
	t := &a.chunk[0]
	a.chunk = a.chunk[1:]
	t.arena = a
	a.lent = append(a.lent, t)
	return t
}

// buf returns a float32 buffer of length n with unspecified contents,
// which goes back to the arena at Reset.
func (a *Arena) buf(n int) []float32 {
	var b []float32
	if l := a.free[n]; len(l) > 0 {
		b = l[len(l)-1]
		l[len(l)-1] = nil
		a.free[n] = l[:len(l)-1]
	} else {
		b = make([]float32, n)
	}
	a.used = append(a.used, b)
	return b
}

// arenaOf returns the arena of the first input that has one, or nil.
func arenaOf(ts ...*Tensor) *Arena {
	for _, t := range ts {
		if t != nil && t.arena != nil {
			return t.arena
		}
	}
	return nil
}

// newOutIn is newOut for an op whose result belongs to arena a (nil: none).
func newOutIn(a *Arena, shape []int) *Tensor {
	if a == nil {
		return newOut(shape)
	}
	t := a.tensor()
	t.setShape(shape)
	t.data = a.buf(numel(shape))
	return t
}

// newViewIn returns an empty tensor for a view: from arena a, or new.
func newViewIn(a *Arena, shape []int) *Tensor {
	var t *Tensor
	if a == nil {
		t = new(Tensor)
	} else {
		t = a.tensor()
	}
	t.setShape(shape)
	return t
}

// mustLive panics when t's arena was reset.
func (t *Tensor) mustLive(op string) {
	if t != nil && t.freed {
		panic(fmt.Sprintf("tensor.%s: tensor of shape %v was used after its arena was reset (Arena.Reset); read values before Reset or Clone them", op, cloneShape(t.shape)))
	}
}
