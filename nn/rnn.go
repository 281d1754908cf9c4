package nn

import (
	"fmt"
	"math"
	"reflect"

	"github.com/deepgo/deepgo/tensor"
)

// This file holds the recurrent layers LSTM and GRU, with PyTorch's
// parameters, names, gate order, initialisation and results
// (torch.nn.LSTM, torch.nn.GRU).
//
// Everything is composed from differentiable tensor ops (Linear, Split,
// Sigmoid, Tanh, Mul, Add, Where, Concat, Stack), so the backward pass is
// the tensor package's. Each step adds the input projection W_ih·x_t + b_ih
// to the hidden projection W_hh·h + b_hh (one small matrix product) and
// applies the gates. Where the input projection comes from depends on
// whether gradients are recorded:
//
//   - under tensor.NoGrad (inference), layer 0 projects the whole input
//     sequence with one tensor.Linear and cuts the result into steps;
//   - when recording, every step projects its own input slice. tensor.Slice's
//     backward pass writes a gradient as large as the sliced tensor, so
//     cutting the projected sequence [T, N, G·H] into steps would cost far
//     more than the small per-step products (measured: 30% slower for a
//     bidirectional LSTM, H = 128, T = 64); the input, narrower than G·H, is
//     cut once per layer and shared by both directions, and the layers above
//     the first take their input step by step from the layer below without
//     any slicing.
//
// Sequences are cut by halving the time axis recursively rather than by T
// slices of the whole, so cutting costs O(T log T) values, not O(T²).
//
// Variable-length batches (lengths) follow pack_padded_sequence: a sequence
// n only sees its steps t < lengths[n]; the forward direction's state stops
// changing after its last valid step and the backward direction starts
// there; outputs at padded steps are zero; h_n and c_n hold the state at
// each sequence's last valid step.

// MaxRNNLayers is the largest NumLayers that LSTM and GRU support.
const MaxRNNLayers = 8

// RNNOptions configures an LSTM or a GRU; DefaultRNN holds PyTorch's defaults.
type RNNOptions struct {
	// NumLayers is the number of stacked layers, 1 to MaxRNNLayers (0 means 1).
	NumLayers int
	// Bias adds the bias_ih and bias_hh vectors.
	Bias bool
	// BatchFirst makes inputs and outputs [N, T, features] instead of
	// [T, N, features]. The states h0, c0, h_n and c_n are always
	// [layers·directions, N, hidden].
	BatchFirst bool
	// Dropout is the probability of dropping outputs of every layer but the
	// last, in training mode.
	Dropout float32
	// Bidirectional adds a second, time-reversed direction to every layer;
	// the outputs of both are concatenated (forward first).
	Bidirectional bool
}

// DefaultRNN is PyTorch's default: one layer with biases, time-major
// [T, N, features] inputs, no dropout, one direction.
var DefaultRNN = RNNOptions{NumLayers: 1, Bias: true}

func (o RNNOptions) layers() int { return max(o.NumLayers, 1) }

func (o RNNOptions) dirs() int {
	if o.Bidirectional {
		return 2
	}
	return 1
}

// RNNWeights holds the parameters of a stacked, possibly bidirectional
// recurrent network under PyTorch's state dict names: for layer k,
// weight_ih_lk [G·H, in], weight_hh_lk [G·H, H], bias_ih_lk [G·H] and
// bias_hh_lk [G·H], with the suffix _reverse for the backward direction; G
// is the number of gates (4 for LSTM, 3 for GRU), H the hidden size, and in
// the input size for layer 0 and directions·H above it. Fields of layers
// and directions a network does not have, and the biases of a network
// without them, are nil. Use Layer to reach them by index.
type RNNWeights struct {
	WeightIhL0        *tensor.Tensor `nn:"weight_ih_l0"`
	WeightHhL0        *tensor.Tensor `nn:"weight_hh_l0"`
	BiasIhL0          *tensor.Tensor `nn:"bias_ih_l0"`
	BiasHhL0          *tensor.Tensor `nn:"bias_hh_l0"`
	WeightIhL0Reverse *tensor.Tensor `nn:"weight_ih_l0_reverse"`
	WeightHhL0Reverse *tensor.Tensor `nn:"weight_hh_l0_reverse"`
	BiasIhL0Reverse   *tensor.Tensor `nn:"bias_ih_l0_reverse"`
	BiasHhL0Reverse   *tensor.Tensor `nn:"bias_hh_l0_reverse"`
	WeightIhL1        *tensor.Tensor `nn:"weight_ih_l1"`
	WeightHhL1        *tensor.Tensor `nn:"weight_hh_l1"`
	BiasIhL1          *tensor.Tensor `nn:"bias_ih_l1"`
	BiasHhL1          *tensor.Tensor `nn:"bias_hh_l1"`
	WeightIhL1Reverse *tensor.Tensor `nn:"weight_ih_l1_reverse"`
	WeightHhL1Reverse *tensor.Tensor `nn:"weight_hh_l1_reverse"`
	BiasIhL1Reverse   *tensor.Tensor `nn:"bias_ih_l1_reverse"`
	BiasHhL1Reverse   *tensor.Tensor `nn:"bias_hh_l1_reverse"`
	WeightIhL2        *tensor.Tensor `nn:"weight_ih_l2"`
	WeightHhL2        *tensor.Tensor `nn:"weight_hh_l2"`
	BiasIhL2          *tensor.Tensor `nn:"bias_ih_l2"`
	BiasHhL2          *tensor.Tensor `nn:"bias_hh_l2"`
	WeightIhL2Reverse *tensor.Tensor `nn:"weight_ih_l2_reverse"`
	WeightHhL2Reverse *tensor.Tensor `nn:"weight_hh_l2_reverse"`
	BiasIhL2Reverse   *tensor.Tensor `nn:"bias_ih_l2_reverse"`
	BiasHhL2Reverse   *tensor.Tensor `nn:"bias_hh_l2_reverse"`
	WeightIhL3        *tensor.Tensor `nn:"weight_ih_l3"`
	WeightHhL3        *tensor.Tensor `nn:"weight_hh_l3"`
	BiasIhL3          *tensor.Tensor `nn:"bias_ih_l3"`
	BiasHhL3          *tensor.Tensor `nn:"bias_hh_l3"`
	WeightIhL3Reverse *tensor.Tensor `nn:"weight_ih_l3_reverse"`
	WeightHhL3Reverse *tensor.Tensor `nn:"weight_hh_l3_reverse"`
	BiasIhL3Reverse   *tensor.Tensor `nn:"bias_ih_l3_reverse"`
	BiasHhL3Reverse   *tensor.Tensor `nn:"bias_hh_l3_reverse"`
	WeightIhL4        *tensor.Tensor `nn:"weight_ih_l4"`
	WeightHhL4        *tensor.Tensor `nn:"weight_hh_l4"`
	BiasIhL4          *tensor.Tensor `nn:"bias_ih_l4"`
	BiasHhL4          *tensor.Tensor `nn:"bias_hh_l4"`
	WeightIhL4Reverse *tensor.Tensor `nn:"weight_ih_l4_reverse"`
	WeightHhL4Reverse *tensor.Tensor `nn:"weight_hh_l4_reverse"`
	BiasIhL4Reverse   *tensor.Tensor `nn:"bias_ih_l4_reverse"`
	BiasHhL4Reverse   *tensor.Tensor `nn:"bias_hh_l4_reverse"`
	WeightIhL5        *tensor.Tensor `nn:"weight_ih_l5"`
	WeightHhL5        *tensor.Tensor `nn:"weight_hh_l5"`
	BiasIhL5          *tensor.Tensor `nn:"bias_ih_l5"`
	BiasHhL5          *tensor.Tensor `nn:"bias_hh_l5"`
	WeightIhL5Reverse *tensor.Tensor `nn:"weight_ih_l5_reverse"`
	WeightHhL5Reverse *tensor.Tensor `nn:"weight_hh_l5_reverse"`
	BiasIhL5Reverse   *tensor.Tensor `nn:"bias_ih_l5_reverse"`
	BiasHhL5Reverse   *tensor.Tensor `nn:"bias_hh_l5_reverse"`
	WeightIhL6        *tensor.Tensor `nn:"weight_ih_l6"`
	WeightHhL6        *tensor.Tensor `nn:"weight_hh_l6"`
	BiasIhL6          *tensor.Tensor `nn:"bias_ih_l6"`
	BiasHhL6          *tensor.Tensor `nn:"bias_hh_l6"`
	WeightIhL6Reverse *tensor.Tensor `nn:"weight_ih_l6_reverse"`
	WeightHhL6Reverse *tensor.Tensor `nn:"weight_hh_l6_reverse"`
	BiasIhL6Reverse   *tensor.Tensor `nn:"bias_ih_l6_reverse"`
	BiasHhL6Reverse   *tensor.Tensor `nn:"bias_hh_l6_reverse"`
	WeightIhL7        *tensor.Tensor `nn:"weight_ih_l7"`
	WeightHhL7        *tensor.Tensor `nn:"weight_hh_l7"`
	BiasIhL7          *tensor.Tensor `nn:"bias_ih_l7"`
	BiasHhL7          *tensor.Tensor `nn:"bias_hh_l7"`
	WeightIhL7Reverse *tensor.Tensor `nn:"weight_ih_l7_reverse"`
	WeightHhL7Reverse *tensor.Tensor `nn:"weight_hh_l7_reverse"`
	BiasIhL7Reverse   *tensor.Tensor `nn:"bias_ih_l7_reverse"`
	BiasHhL7Reverse   *tensor.Tensor `nn:"bias_hh_l7_reverse"`
}

// rnnSlots are the addresses of one layer's and direction's weight_ih,
// weight_hh, bias_ih and bias_hh fields.
type rnnSlots [4]**tensor.Tensor

// slots returns the fields of layer (0-based) and direction (0 forward, 1
// reverse); the fields are laid out in that order, four per direction.
func (w *RNNWeights) slots(layer, dir int) rnnSlots {
	v := reflect.ValueOf(w).Elem()
	var s rnnSlots
	for k := range s {
		s[k] = v.Field((layer*2+dir)*4 + k).Addr().Interface().(**tensor.Tensor)
	}
	return s
}

// Layer returns the weights of one layer (0-based) and direction: weight_ih,
// weight_hh, bias_ih and bias_hh (the biases are nil without them). It
// panics for a layer outside [0, MaxRNNLayers).
func (w *RNNWeights) Layer(layer int, reverse bool) (weightIH, weightHH, biasIH, biasHH *tensor.Tensor) {
	if layer < 0 || layer >= MaxRNNLayers {
		panic(fmt.Sprintf("nn.RNNWeights.Layer: layer %d out of range [0, %d)", layer, MaxRNNLayers))
	}
	d := 0
	if reverse {
		d = 1
	}
	s := w.slots(layer, d)
	return *s[0], *s[1], *s[2], *s[3]
}

// init fills the weights for gates gates with PyTorch's initialisation:
// every parameter U(-1/√H, 1/√H).
func (w *RNNWeights) init(r *tensor.RNG, gates, inputSize, hidden int, opt RNNOptions) {
	b := 1 / math.Sqrt(float64(hidden))
	u := func(shape ...int) *tensor.Tensor { return param(Uniform(tensor.Zeros(shape...), -b, b, r)) }
	for l := range opt.layers() {
		in := inputSize
		if l > 0 {
			in = opt.dirs() * hidden
		}
		for d := range opt.dirs() {
			s := w.slots(l, d)
			*s[0] = u(gates*hidden, in)
			*s[1] = u(gates*hidden, hidden)
			if opt.Bias {
				*s[2] = u(gates * hidden)
				*s[3] = u(gates * hidden)
			}
		}
	}
}

// checkRNN validates a constructor's arguments and normalises NumLayers.
func checkRNN(op string, inputSize, hidden int, opt RNNOptions) RNNOptions {
	if inputSize <= 0 || hidden <= 0 {
		panic(fmt.Sprintf("%s: input size %d and hidden size %d must be positive", op, inputSize, hidden))
	}
	if opt.NumLayers < 0 || opt.NumLayers > MaxRNNLayers {
		panic(fmt.Sprintf("%s: number of layers %d not in [1, %d]", op, opt.NumLayers, MaxRNNLayers))
	}
	if !(opt.Dropout >= 0 && opt.Dropout <= 1) {
		panic(fmt.Sprintf("%s: dropout probability %v not in [0, 1]", op, opt.Dropout))
	}
	opt.NumLayers = opt.layers()
	return opt
}

// LSTM is a multi-layer long short-term memory network (torch.nn.LSTM). For
// each step, with gates in PyTorch's order i, f, g, o:
//
//	i = σ(W_ii x + b_ii + W_hi h + b_hi)     f = σ(W_if x + b_if + W_hf h + b_hf)
//	g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = σ(W_io x + b_io + W_ho h + b_ho)
//	c' = f ⊙ c + i ⊙ g                        h' = o ⊙ tanh(c')
//
// Its state dict keys are PyTorch's (weight_ih_l0, bias_hh_l1_reverse, …;
// see RNNWeights), so weights move between the two unchanged.
type LSTM struct {
	Mode
	RNNWeights
	// InputSize and HiddenSize are the feature sizes of x and h.
	InputSize, HiddenSize int
	// Options are the layer count, bias, layout, dropout and directions.
	Options RNNOptions
	// RNG draws the dropout masks between layers.
	RNG *tensor.RNG `nn:"-"`
}

// NewLSTM makes an LSTM with PyTorch's initialisation (every parameter
// U(-1/√hidden, 1/√hidden)) drawn from r, which also draws the dropout
// masks between layers. Use DefaultRNN for PyTorch's default options.
func NewLSTM(r *tensor.RNG, inputSize, hiddenSize int, opt RNNOptions) *LSTM {
	opt = checkRNN("nn.NewLSTM", inputSize, hiddenSize, opt)
	m := &LSTM{InputSize: inputSize, HiddenSize: hiddenSize, Options: opt, RNG: r}
	m.init(r, 4, inputSize, hiddenSize, opt)
	return m
}

// Forward runs the network over x ([T, N, InputSize], or [N, T, InputSize]
// with BatchFirst, or [T, InputSize] for one unbatched sequence) from zero
// states and returns the last layer's outputs for every step,
// [T, N, D·HiddenSize] (or [N, T, D·HiddenSize]; D = 2 when
// bidirectional).
func (m *LSTM) Forward(x *tensor.Tensor) *tensor.Tensor {
	out, _, _ := m.ForwardSeq(x, nil, nil, nil)
	return out
}

// ForwardSeq is the full forward pass. lengths, if not nil, gives each
// sequence's number of valid steps (1 to T; see the file comment for the
// packed-sequence semantics). h0 and c0 are the initial states
// [L·D, N, HiddenSize] ([L·D, HiddenSize] unbatched), index layer·D +
// direction; nil means zeros. It returns the outputs as Forward, and the
// final hidden and cell states h_n and c_n shaped like h0.
func (m *LSTM) ForwardSeq(x *tensor.Tensor, lengths []int, h0, c0 *tensor.Tensor) (out, hN, cN *tensor.Tensor) {
	r := rnnRun{op: "nn.LSTM", cell: lstmCell, w: &m.RNNWeights, in: m.InputSize, hidden: m.HiddenSize,
		opt: m.Options, training: m.Training(), rng: m.RNG}
	return r.forward(x, lengths, h0, c0)
}

// RandomSource returns the generator behind the dropout masks.
func (m *LSTM) RandomSource() *tensor.RNG { return m.RNG }

// GRU is a multi-layer gated recurrent unit network (torch.nn.GRU). For each
// step, with gates in PyTorch's order r, z, n:
//
//	r = σ(W_ir x + b_ir + W_hr h + b_hr)   z = σ(W_iz x + b_iz + W_hz h + b_hz)
//	n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
//	h' = (1 - z) ⊙ n + z ⊙ h
//
// Its state dict keys are PyTorch's (see RNNWeights).
type GRU struct {
	Mode
	RNNWeights
	// InputSize and HiddenSize are the feature sizes of x and h.
	InputSize, HiddenSize int
	// Options are the layer count, bias, layout, dropout and directions.
	Options RNNOptions
	// RNG draws the dropout masks between layers.
	RNG *tensor.RNG `nn:"-"`
}

// NewGRU makes a GRU with PyTorch's initialisation (every parameter
// U(-1/√hidden, 1/√hidden)) drawn from r, which also draws the dropout
// masks between layers. Use DefaultRNN for PyTorch's default options.
func NewGRU(r *tensor.RNG, inputSize, hiddenSize int, opt RNNOptions) *GRU {
	opt = checkRNN("nn.NewGRU", inputSize, hiddenSize, opt)
	m := &GRU{InputSize: inputSize, HiddenSize: hiddenSize, Options: opt, RNG: r}
	m.init(r, 3, inputSize, hiddenSize, opt)
	return m
}

// Forward runs the network over x from a zero state and returns the last
// layer's outputs for every step; shapes as LSTM.Forward.
func (m *GRU) Forward(x *tensor.Tensor) *tensor.Tensor {
	out, _ := m.ForwardSeq(x, nil, nil)
	return out
}

// ForwardSeq is the full forward pass: lengths and h0 as in
// LSTM.ForwardSeq. It returns the outputs and the final hidden state h_n.
func (m *GRU) ForwardSeq(x *tensor.Tensor, lengths []int, h0 *tensor.Tensor) (out, hN *tensor.Tensor) {
	r := rnnRun{op: "nn.GRU", cell: gruCell, w: &m.RNNWeights, in: m.InputSize, hidden: m.HiddenSize,
		opt: m.Options, training: m.Training(), rng: m.RNG}
	out, hN, _ = r.forward(x, lengths, h0, nil)
	return out, hN
}

// RandomSource returns the generator behind the dropout masks.
func (m *GRU) RandomSource() *tensor.RNG { return m.RNG }

type rnnCell int

const (
	lstmCell rnnCell = iota
	gruCell
)

func (c rnnCell) gates() int {
	if c == lstmCell {
		return 4
	}
	return 3
}

// rnnRun is one forward call of an LSTM or GRU.
type rnnRun struct {
	op         string
	cell       rnnCell
	w          *RNNWeights
	in, hidden int
	opt        RNNOptions
	training   bool
	rng        *tensor.RNG
}

// stepMask says which sequences a time step belongs to.
type stepMask struct {
	valid *tensor.Tensor // [N, 1], 1 for sequences with this step, 0 for padding; nil when all have it
	none  bool           // no sequence has this step
}

func (r *rnnRun) forward(x *tensor.Tensor, lengths []int, h0, c0 *tensor.Tensor) (out, hN, cN *tensor.Tensor) {
	op, H := r.op, r.hidden
	L, D := r.opt.layers(), r.opt.dirs()
	if r.opt.NumLayers > MaxRNNLayers {
		panic(fmt.Sprintf("%s: number of layers %d over the maximum %d", op, r.opt.NumLayers, MaxRNNLayers))
	}
	timeAx, batchAx := 0, 1
	layout := "[T, N, %d]"
	if r.opt.BatchFirst {
		timeAx, batchAx = 1, 0
		layout = "[N, T, %d]"
	}
	if x == nil || x.DType() != tensor.Float32 || (x.Dim() != 2 && x.Dim() != 3) || x.Size(-1) != r.in {
		var shape any = "nil"
		if x != nil {
			shape = fmt.Sprintf("%v %v", x.DType(), x.Shape())
		}
		panic(fmt.Sprintf("%s: input %s, want float32 "+layout+" or unbatched [T, %d]", op, shape, r.in, r.in))
	}
	batched := x.Dim() == 3
	if !batched {
		x = tensor.Unsqueeze(x, batchAx)
	}
	T, N := x.Size(timeAx), x.Size(batchAx)
	if T == 0 || N == 0 {
		panic(fmt.Sprintf("%s: input shape %v has no steps or no sequences", op, x.Shape()))
	}
	masks := r.masks(lengths, T, N)
	hInit := r.initial("h0", h0, batched, L*D, N)
	var cInit []*tensor.Tensor
	if r.cell == lstmCell {
		cInit = r.initial("c0", c0, batched, L*D, N)
	}
	zeros := tensor.Zeros(N, H)
	// seq is the current layer's input, the whole sequence: its input
	// projection is one product (and one in the backward pass), cut into
	// steps afterwards.
	seq := x
	hs := make([]*tensor.Tensor, 0, L*D)
	cs := make([]*tensor.Tensor, 0, L*D)
	merged := make([]*tensor.Tensor, T)
	// Without gradients an LSTM steps with tensor.LSTMStep (the same bits
	// as the ops), through one scratch for every layer and direction.
	var scratch *tensor.LSTMScratch
	if r.cell == lstmCell && !tensor.IsGradEnabled() {
		scratch = new(tensor.LSTMScratch)
	}
	for l := range L {
		dirOut := make([][]*tensor.Tensor, D)
		for d := range D {
			w := r.weights(l, d)
			xp := tensor.Unbind(tensor.Linear(seq, w[0], w[2]), timeAx)
			k := l*D + d
			var c *tensor.Tensor
			if cInit != nil {
				c = cInit[k]
			}
			outs, h, c := r.direction(xp, w, d == 1, hInit[k], c, masks, zeros, scratch)
			dirOut[d] = outs
			hs = append(hs, h)
			cs = append(cs, c)
		}
		for t := range merged {
			merged[t] = dirOut[0][t]
			if D > 1 {
				merged[t] = tensor.Concat([]*tensor.Tensor{dirOut[0][t], dirOut[1][t]}, 1)
			}
		}
		if l < L-1 {
			seq = tensor.Stack(merged, timeAx)
			if r.training && r.opt.Dropout > 0 {
				seq = tensor.Dropout(seq, r.opt.Dropout, true, r.rng)
			}
		}
	}
	out, hN = tensor.Stack(merged, timeAx), tensor.Stack(hs, 0)
	if r.cell == lstmCell {
		cN = tensor.Stack(cs, 0)
	}
	if !batched {
		out = tensor.Squeeze(out, batchAx)
		hN = tensor.Squeeze(hN, 1)
		if cN != nil {
			cN = tensor.Squeeze(cN, 1)
		}
	}
	return out, hN, cN
}

// masks turns lengths into per-step masks (nil lengths: every step valid).
func (r *rnnRun) masks(lengths []int, T, N int) []stepMask {
	m := make([]stepMask, T)
	if lengths == nil {
		return m
	}
	if len(lengths) != N {
		panic(fmt.Sprintf("%s: %d lengths for a batch of %d sequences", r.op, len(lengths), N))
	}
	for _, n := range lengths {
		if n < 1 || n > T {
			panic(fmt.Sprintf("%s: lengths %v must be in [1, %d], the number of steps", r.op, lengths, T))
		}
	}
	for t := range m {
		v := make([]float32, N)
		all, none := true, true
		for i, n := range lengths {
			if t < n {
				v[i] = 1
				none = false
			} else {
				all = false
			}
		}
		m[t].none = none
		if !all && !none {
			m[t].valid = tensor.FromSlice(v, N, 1)
		}
	}
	return m
}

// initial splits an initial state into one [N, H] tensor per layer and
// direction (zeros when s is nil).
func (r *rnnRun) initial(name string, s *tensor.Tensor, batched bool, k, N int) []*tensor.Tensor {
	H := r.hidden
	out := make([]*tensor.Tensor, k)
	if s == nil {
		z := tensor.Zeros(N, H)
		for i := range out {
			out[i] = z
		}
		return out
	}
	want := []int{k, N, H}
	if !batched {
		want = []int{k, H}
	}
	if s.DType() != tensor.Float32 || !tensor.SameShape(s.Shape(), want) {
		panic(fmt.Sprintf("%s: %s is %v %v, want float32 %v", r.op, name, s.DType(), s.Shape(), want))
	}
	if k == 1 {
		out[0] = tensor.Reshape(s, N, H)
		return out
	}
	for i := range out {
		out[i] = tensor.Reshape(tensor.Slice(s, 0, i, i+1, 1), N, H)
	}
	return out
}

// weights returns the parameters of a layer and direction after checking
// their shapes.
func (r *rnnRun) weights(l, d int) [4]*tensor.Tensor {
	G, H := r.cell.gates(), r.hidden
	in := r.in
	if l > 0 {
		in = r.opt.dirs() * H
	}
	names := [4]string{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
	shapes := [4][]int{{G * H, in}, {G * H, H}, {G * H}, {G * H}}
	suffix := ""
	if d == 1 {
		suffix = "_reverse"
	}
	var w [4]*tensor.Tensor
	for k, p := range r.w.slots(l, d) {
		w[k] = *p
		name := fmt.Sprintf("%s_l%d%s", names[k], l, suffix)
		switch {
		case w[k] == nil && (k < 2 || r.opt.Bias):
			panic(fmt.Sprintf("%s: parameter %s is missing (want shape %v)", r.op, name, shapes[k]))
		case w[k] != nil && k >= 2 && !r.opt.Bias:
			panic(fmt.Sprintf("%s: parameter %s is set but Options.Bias is false", r.op, name))
		case w[k] != nil && !tensor.SameShape(w[k].Shape(), shapes[k]):
			panic(fmt.Sprintf("%s: parameter %s has shape %v, want %v", r.op, name, w[k].Shape(), shapes[k]))
		}
	}
	return w
}

// direction runs one layer in one direction and returns its output at every
// step and its final states; xp[t] is the input projection of step t. An
// LSTM with a scratch steps with tensor.LSTMStep (no gradients).
func (r *rnnRun) direction(xp []*tensor.Tensor, w [4]*tensor.Tensor, reverse bool, h, c *tensor.Tensor, masks []stepMask, zeros *tensor.Tensor, scratch *tensor.LSTMScratch) (outs []*tensor.Tensor, hT, cT *tensor.Tensor) {
	T := len(masks)
	outs = make([]*tensor.Tensor, T)
	for k := range T {
		t := k
		if reverse {
			t = T - 1 - k
		}
		m := masks[t]
		if m.none {
			outs[t] = zeros
			continue
		}
		var h2, c2 *tensor.Tensor
		switch {
		case scratch != nil:
			h2, c2 = tensor.LSTMStep(scratch, xp[t], h, c, w[1], w[3])
		case r.cell == lstmCell:
			h2, c2 = tensor.LSTMCell(tensor.Add(xp[t], tensor.Linear(h, w[1], w[3])), c)
		default:
			h2 = gruStep(xp[t], h, w[1], w[3], r.hidden)
		}
		if m.valid != nil {
			outs[t] = tensor.Where(m.valid, h2, zeros)
			h2 = tensor.Where(m.valid, h2, h)
			if c2 != nil {
				c2 = tensor.Where(m.valid, c2, c)
			}
		} else {
			outs[t] = h2
		}
		h, c = h2, c2
	}
	return outs, h, c
}

// gruStep is one GRU step from the input projection xp [N, 3H] (with
// bias_ih) and the previous state h [N, H].
func gruStep(xp, h, whh, bhh *tensor.Tensor, H int) *tensor.Tensor {
	xs := tensor.Split(xp, 1, 2*H, H)
	hs := tensor.Split(tensor.Linear(h, whh, bhh), 1, 2*H, H)
	rz := tensor.Split(tensor.Sigmoid(tensor.Add(xs[0], hs[0])), 1, H, H)
	n := tensor.Tanh(tensor.Add(xs[1], tensor.Mul(rz[0], hs[1])))
	// h' = (1-z)·n + z·h = n + z·(h-n)
	return tensor.Add(n, tensor.Mul(rz[1], tensor.Sub(h, n)))
}
