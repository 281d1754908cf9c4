package onnx

import (
	"github.com/deepgo/deepgo/tensor"
)

// impRNN is the geometry common to LSTM and GRU: X as [seq, batch, in], the
// number of directions and the hidden size.
type impRNN struct {
	x               *tensor.Tensor // [seq, batch, in]
	seq, batch, hid int
	dirs            int
	reverse         bool
	batchFirst      bool
}

// rnnSetup reads and checks the inputs and attributes common to LSTM (4
// gates) and GRU (3 gates).
func (e *impExec) rnnSetup(gates int) impRNN {
	var r impRNN
	x, w, rr := e.f(0), e.f(1), e.f(2)
	if x.Dim() != 3 || w.Dim() != 3 || rr.Dim() != 3 {
		impFail("X %v, W %v and R %v must have rank 3", x.Shape(), w.Shape(), rr.Shape())
	}
	switch layout := e.attrInt("layout", 0); layout {
	case 0:
	case 1:
		r.batchFirst = true
		x = tensor.Transpose(x, 0, 1)
	default:
		impFail("layout %d", layout)
	}
	switch d := e.attrString("direction", "forward"); d {
	case "forward":
		r.dirs = 1
	case "reverse":
		r.dirs, r.reverse = 1, true
	case "bidirectional":
		r.dirs = 2
	default:
		impFail("direction %q", d)
	}
	if a := e.attr("activations"); a != nil {
		def := []string{"Sigmoid", "Tanh", "Tanh"}[:gates-1]
		got := a.GetStrings()
		ok := len(got) == len(def) || len(got) == 2*len(def)
		for j := 0; ok && j < len(got); j++ {
			ok = string(got[j]) == def[j%len(def)]
		}
		if !ok {
			impFail("activations %q: only the defaults are supported", got)
		}
	}
	if e.attr("clip") != nil || e.attrInt("input_forget", 0) != 0 {
		impFail("clip and input_forget are not supported")
	}
	r.x = x
	r.seq, r.batch = x.Size(0), x.Size(1)
	hs := e.attrInt("hidden_size", int64(w.Size(1)/gates))
	if hs <= 0 || hs > 1<<20 {
		impFail("hidden_size %d", hs)
	}
	r.hid = int(hs)
	h := r.hid
	in := x.Size(2)
	if !tensor.SameShape(w.Shape(), []int{r.dirs, gates * h, in}) || !tensor.SameShape(rr.Shape(), []int{r.dirs, gates * h, h}) {
		impFail("W %v and R %v do not fit %d directions, hidden %d, input %d", w.Shape(), rr.Shape(), r.dirs, h, in)
	}
	if e.has(3) && !tensor.SameShape(e.f(3).Shape(), []int{r.dirs, 2 * gates * h}) {
		impFail("B %v does not fit %d directions, hidden %d", e.f(3).Shape(), r.dirs, h)
	}
	if e.has(4) {
		lens := e.ints(4)
		for _, l := range lens {
			if l != int64(r.seq) {
				impFail("sequence_lens %v: only full-length sequences are supported", lens)
			}
		}
	}
	return r
}

// initial returns the initial state of direction d from input k, or zeros.
func (e *impExec) initial(r impRNN, k, d int) *tensor.Tensor {
	if !e.has(k) {
		return tensor.Zeros(r.batch, r.hid)
	}
	h0 := e.f(k)
	if r.batchFirst && h0.Dim() == 3 {
		h0 = tensor.Transpose(h0, 0, 1)
	}
	if !tensor.SameShape(h0.Shape(), []int{r.dirs, r.batch, r.hid}) {
		impFail("initial state %v, want %v", h0.Shape(), []int{r.dirs, r.batch, r.hid})
	}
	return tensor.Reshape(tensor.Slice(h0, 0, d, d+1, 1), r.batch, r.hid)
}

// dirWeights returns W[d] [G·H, in], R[d] [G·H, H] and Wb[d], Rb[d] [G·H]
// (nil biases when B is absent).
func (e *impExec) dirWeights(r impRNN, gates, d int) (w, rr, wb, rb *tensor.Tensor) {
	gh := gates * r.hid
	w = tensor.Reshape(tensor.Slice(e.f(1), 0, d, d+1, 1), gh, -1)
	rr = tensor.Reshape(tensor.Slice(e.f(2), 0, d, d+1, 1), gh, r.hid)
	if e.has(3) {
		b := tensor.Reshape(tensor.Slice(e.f(3), 0, d, d+1, 1), 2*gh)
		wb = tensor.Slice(b, 0, 0, gh, 1)
		rb = tensor.Slice(b, 0, gh, 2*gh, 1)
	}
	return
}

// outputs assembles Y [seq, dirs, batch, H] (or batch-first [batch, seq,
// dirs, H]) and the last states [dirs, batch, H].
func (r impRNN) outputs(ys [][]*tensor.Tensor, last ...[]*tensor.Tensor) []impVal {
	perDir := make([]*tensor.Tensor, r.dirs)
	for d := range ys {
		perDir[d] = tensor.Stack(ys[d], 0) // [seq, batch, H]
	}
	y := tensor.Stack(perDir, 1) // [seq, dirs, batch, H]
	if r.batchFirst {
		y = tensor.Permute(y, 2, 0, 1, 3)
	}
	out := []impVal{{f: y}}
	for _, l := range last {
		s := tensor.Stack(l, 0)
		if r.batchFirst {
			s = tensor.Transpose(s, 0, 1)
		}
		out = append(out, impVal{f: s})
	}
	return out
}

func (r impRNN) steps(d int) []int {
	ts := make([]int, r.seq)
	for j := range ts {
		ts[j] = j
		if r.reverse || d == 1 {
			ts[j] = r.seq - 1 - j
		}
	}
	return ts
}

// inputProj computes X·Wᵀ + Wb + Rb for all steps: [seq, batch, G·H].
func (r impRNN) inputProj(w, b *tensor.Tensor) *tensor.Tensor {
	in := r.x.Size(2)
	p := tensor.Linear(tensor.Reshape(r.x, r.seq*r.batch, in), w, b)
	return tensor.Reshape(p, r.seq, r.batch, -1)
}

func impStep(p *tensor.Tensor, t, batch int) *tensor.Tensor {
	return tensor.Reshape(tensor.Slice(p, 0, t, t+1, 1), batch, -1)
}

func impGate(g *tensor.Tensor, k, h int) *tensor.Tensor {
	return tensor.Slice(g, 1, k*h, (k+1)*h, 1)
}

// lstm runs an ONNX LSTM (gates i, o, f, c; default activations).
func (e *impExec) lstm() []impVal {
	r := e.rnnSetup(4)
	if e.has(7) {
		impFail("peepholes are not supported")
	}
	h := r.hid
	ys := make([][]*tensor.Tensor, r.dirs)
	lastH := make([]*tensor.Tensor, r.dirs)
	lastC := make([]*tensor.Tensor, r.dirs)
	for d := 0; d < r.dirs; d++ {
		w, rr, wb, rb := e.dirWeights(r, 4, d)
		var bias *tensor.Tensor
		if wb != nil {
			bias = tensor.Add(wb, rb)
		}
		proj := r.inputProj(w, bias)
		hs, cs := e.initial(r, 5, d), e.initial(r, 6, d)
		ys[d] = make([]*tensor.Tensor, r.seq)
		for _, t := range r.steps(d) {
			g := tensor.Add(impStep(proj, t, r.batch), tensor.Linear(hs, rr, nil))
			i := tensor.Sigmoid(impGate(g, 0, h))
			o := tensor.Sigmoid(impGate(g, 1, h))
			f := tensor.Sigmoid(impGate(g, 2, h))
			c := tensor.Tanh(impGate(g, 3, h))
			cs = tensor.Add(tensor.Mul(f, cs), tensor.Mul(i, c))
			hs = tensor.Mul(o, tensor.Tanh(cs))
			ys[d][t] = hs
		}
		lastH[d], lastC[d] = hs, cs
	}
	return r.outputs(ys, lastH, lastC)
}

// gru runs an ONNX GRU (gates z, r, h; default activations).
func (e *impExec) gru() []impVal {
	r := e.rnnSetup(3)
	h := r.hid
	lbr := e.attrInt("linear_before_reset", 0) != 0
	ys := make([][]*tensor.Tensor, r.dirs)
	lastH := make([]*tensor.Tensor, r.dirs)
	for d := 0; d < r.dirs; d++ {
		w, rr, wb, rb := e.dirWeights(r, 3, d)
		// z and r take both biases with the input projection; the h gate's
		// recurrent bias stays with the recurrent term.
		var bias *tensor.Tensor
		var rbh *tensor.Tensor
		if wb != nil {
			zr := tensor.Add(tensor.Slice(wb, 0, 0, 2*h, 1), tensor.Slice(rb, 0, 0, 2*h, 1))
			bias = tensor.Concat([]*tensor.Tensor{zr, tensor.Slice(wb, 0, 2*h, 3*h, 1)}, 0)
			rbh = tensor.Slice(rb, 0, 2*h, 3*h, 1)
		}
		proj := r.inputProj(w, bias)
		rzr := tensor.Slice(rr, 0, 0, 2*h, 1)
		rh := tensor.Slice(rr, 0, 2*h, 3*h, 1)
		hs := e.initial(r, 5, d)
		ys[d] = make([]*tensor.Tensor, r.seq)
		for _, t := range r.steps(d) {
			xp := impStep(proj, t, r.batch)
			zrg := tensor.Add(tensor.Slice(xp, 1, 0, 2*h, 1), tensor.Linear(hs, rzr, nil))
			z := tensor.Sigmoid(impGate(zrg, 0, h))
			rg := tensor.Sigmoid(impGate(zrg, 1, h))
			var rec *tensor.Tensor
			if lbr {
				rec = tensor.Mul(rg, tensor.Linear(hs, rh, rbh))
			} else {
				rec = tensor.Linear(tensor.Mul(rg, hs), rh, rbh)
			}
			n := tensor.Tanh(tensor.Add(tensor.Slice(xp, 1, 2*h, 3*h, 1), rec))
			hs = tensor.Add(n, tensor.Mul(z, tensor.Sub(hs, n)))
			ys[d][t] = hs
		}
		lastH[d] = hs
	}
	return r.outputs(ys, lastH)
}
