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
	c2 = Zeros(n, hd)
	h2 = Zeros(n, hd)
	tc := make([]float32, n*hd)
	for r := range n {
		gr := gates.data[r*4*hd : (r+1)*4*hd]
		ar := act[r*4*hd : (r+1)*4*hd]
		kernels.Sigmoid(ar[:2*hd], gr[:2*hd])
		kernels.Tanh(ar[2*hd:3*hd], gr[2*hd:3*hd])
		kernels.Sigmoid(ar[3*hd:], gr[3*hd:])
		ig, fg, gg := ar[:hd], ar[hd:2*hd], ar[2*hd:3*hd]
		cr := c.data[r*hd : (r+1)*hd]
		c2r := c2.data[r*hd : (r+1)*hd]
		for j := range cr {
			fc := fg[j] * cr[j]
			ic := ig[j] * gg[j]
			c2r[j] = fc + ic
		}
	}
	kernels.Tanh(tc, c2.data)
	for r := range n {
		og := act[r*4*hd+3*hd : (r+1)*4*hd]
		h2r, tcr := h2.data[r*hd:(r+1)*hd], tc[r*hd:(r+1)*hd]
		for j, o := range og {
			h2r[j] = o * tcr[j]
		}
	}
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
