package tensor

import (
	"fmt"

	"github.com/deepgo/deepgo/internal/kernels"
)

// LSTMCell runs the element-wise part of one LSTM step: from the gate
// pre-activations gates [N, 4H] (input, forget, cell and output gates, in
// PyTorch's order) and the previous cell state c [N, H] it returns
//
//	c2 = σ(f)·c + σ(i)·tanh(g)
//	h2 = σ(o)·tanh(c2)
//
// with the values of Sigmoid, Tanh, Mul and Add composed (bit for bit), in
// two ops ("LSTMCellC" for c2, "LSTMCellH" for h2) instead of eleven, and
// without their intermediate tensors. Gradients flow to gates and c.
func LSTMCell(gates, c *Tensor) (h2, c2 *Tensor) {
	mustFloat("LSTMCell", gates, c)
	if len(c.shape) != 2 || len(gates.shape) != 2 || gates.shape[0] != c.shape[0] || gates.shape[1] != 4*c.shape[1] {
		panic(fmt.Sprintf("tensor.LSTMCell: gates shape %v and cell state shape %v do not match (want [N, 4H] and [N, H])", gates.shape, c.shape))
	}
	n, hd := c.shape[0], c.shape[1]
	// act holds σ(i), σ(f), tanh(g), σ(o) row by row, like gates; tc holds
	// tanh(c2). Both are kept for the backward pass.
	act := make([]float32, len(gates.data))
	c2 = newOut([]int{n, hd}) // lstmCellForward writes every element
	h2 = newOut([]int{n, hd})
	tc := make([]float32, n*hd)
	lstmCellForward(gates.data, c.data, act, tc, c2.data, h2.data, n, hd)
	c2 = record("LSTMCellC", c2, func(g *Tensor) []*Tensor {
		var gGates, gc *Tensor
		if gates.NeedsGrad() {
			gGates = Zeros(n, 4*hd)
		}
		if c.NeedsGrad() {
			gc = Zeros(n, hd)
		}
		for r := range n {
			ar := act[r*4*hd : (r+1)*4*hd]
			ig, fg, gg := ar[:hd], ar[hd:2*hd], ar[2*hd:3*hd]
			gr := g.data[r*hd : (r+1)*hd]
			cr := c.data[r*hd : (r+1)*hd]
			if gGates != nil {
				d := gGates.data[r*4*hd : (r+1)*4*hd]
				for j, v := range gr {
					d[j] = v * gg[j] * ig[j] * (1 - ig[j])
					d[hd+j] = v * cr[j] * fg[j] * (1 - fg[j])
					d[2*hd+j] = v * ig[j] * (1 - gg[j]*gg[j])
				}
			}
			if gc != nil {
				d := gc.data[r*hd : (r+1)*hd]
				for j, v := range gr {
					d[j] = v * fg[j]
				}
			}
		}
		return []*Tensor{gGates, gc}
	}, gates, c)
	h2 = record("LSTMCellH", h2, func(g *Tensor) []*Tensor {
		var gGates, gc2 *Tensor
		if gates.NeedsGrad() {
			gGates = Zeros(n, 4*hd)
		}
		if c2.NeedsGrad() {
			gc2 = Zeros(n, hd)
		}
		for r := range n {
			og := act[r*4*hd+3*hd : (r+1)*4*hd]
			gr := g.data[r*hd : (r+1)*hd]
			tcr := tc[r*hd : (r+1)*hd]
			if gGates != nil {
				d := gGates.data[r*4*hd+3*hd : (r+1)*4*hd]
				for j, v := range gr {
					d[j] = v * tcr[j] * og[j] * (1 - og[j])
				}
			}
			if gc2 != nil {
				d := gc2.data[r*hd : (r+1)*hd]
				for j, v := range gr {
					d[j] = v * og[j] * (1 - tcr[j]*tcr[j])
				}
			}
		}
		return []*Tensor{gGates, gc2}
	}, gates, c2)
	return h2, c2
}

// lstmCellForward is LSTMCell's arithmetic on n rows of hd units: act and
// tc receive the activations and tanh(c2) (see LSTMCell), c2 and h2 the new
// states. Every element of act, tc, c2 and h2 is written.
func lstmCellForward(gates, c, act, tc, c2, h2 []float32, n, hd int) {
	for r := range n {
		gr := gates[r*4*hd : (r+1)*4*hd]
		ar := act[r*4*hd : (r+1)*4*hd]
		kernels.Sigmoid(ar[:2*hd], gr[:2*hd])
		kernels.Tanh(ar[2*hd:3*hd], gr[2*hd:3*hd])
		kernels.Sigmoid(ar[3*hd:], gr[3*hd:])
		ig, fg, gg := ar[:hd], ar[hd:2*hd], ar[2*hd:3*hd]
		cr := c[r*hd : (r+1)*hd]
		c2r := c2[r*hd : (r+1)*hd]
		for j := range cr {
			fc := fg[j] * cr[j]
			ic := ig[j] * gg[j]
			c2r[j] = fc + ic
		}
	}
	kernels.Tanh(tc, c2[:n*hd])
	for r := range n {
		og := act[r*4*hd+3*hd : (r+1)*4*hd]
		h2r, tcr := h2[r*hd:(r+1)*hd], tc[r*hd:(r+1)*hd]
		for j, o := range og {
			h2r[j] = o * tcr[j]
		}
	}
}

// LSTMScratch holds the per-step buffers of LSTMStep, reused from one step
// to the next (its zero value is ready to use; one per goroutine).
type LSTMScratch struct {
	gates, act, tc []float32
}

// LSTMStep is one LSTM step for inference: LSTMCell(Add(xp, Linear(h, whh,
// bhh)), c) with the same arithmetic in the same order, so the same bits,
// but with the gate-sized intermediates in s instead of new tensors. It
// records no gradient and panics if gradients are enabled (use the ops
// under NoGrad only). xp is [N, 4H] (the input projection, with its bias),
// h and c are [N, H], whh is [4H, H], bhh is [4H] or nil. The returned h2
// and c2 are new tensors.
func LSTMStep(s *LSTMScratch, xp, h, c, whh, bhh *Tensor) (h2, c2 *Tensor) {
	if IsGradEnabled() {
		panic("tensor.LSTMStep: gradients are enabled; it is an inference step (call it under NoGrad)")
	}
	mustFloat("LSTMStep", xp, h, c, whh)
	if len(c.shape) != 2 || !SameShape(h.shape, c.shape) || len(whh.shape) != 2 || whh.shape[1] != c.shape[1] ||
		whh.shape[0] != 4*c.shape[1] || !SameShape(xp.shape, []int{c.shape[0], 4 * c.shape[1]}) ||
		bhh != nil && !SameShape(bhh.shape, []int{4 * c.shape[1]}) {
		var bs []int
		if bhh != nil {
			bs = bhh.shape
		}
		panic(fmt.Sprintf("tensor.LSTMStep: shapes xp %v, h %v, c %v, w_hh %v, b_hh %v do not match (want [N, 4H], [N, H], [N, H], [4H, H], [4H])",
			xp.shape, h.shape, c.shape, whh.shape, bs))
	}
	n, hd := c.shape[0], c.shape[1]
	g := 4 * hd
	grow := func(b []float32, k int) []float32 {
		if cap(b) < k {
			return make([]float32, k)
		}
		return b[:k]
	}
	s.gates, s.act, s.tc = grow(s.gates, n*g), grow(s.act, n*g), grow(s.tc, n*hd)
	// Linear(h, whh, bhh) as linear computes it ...
	var bd []float32
	if bhh != nil {
		bd = bhh.data
	}
	linearInto(s.gates, h.data, whh.data, bd, n, hd, g)
	// ... then Add(xp, ·): the same sums (addition is commutative).
	for i, v := range xp.data[:n*g] {
		s.gates[i] = v + s.gates[i]
	}
	// lstmCellForward writes every element of c2 and h2.
	c2, h2 = newOut([]int{n, hd}), newOut([]int{n, hd})
	lstmCellForward(s.gates, c.data, s.act, s.tc, c2.data, h2.data, n, hd)
	return h2, c2
}
