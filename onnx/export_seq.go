package onnx

import (
	"math"
	"strconv"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx/onnxpb"
	"github.com/deepgo/deepgo/tensor"
)

// Gate block order: ONNX block j is PyTorch (deepgo) block perm[j].
var (
	exLSTMGates = []int{0, 3, 1, 2} // ONNX i, o, f, c from torch i, f, g, o
	exGRUGates  = []int{1, 0, 2}    // ONNX z, r, h from torch r, z, n
)

// exReorderGates appends the rows of t ([G·H] or [G·H, in]) to dst with the
// gate blocks permuted.
func exReorderGates(dst []float32, t *tensor.Tensor, perm []int) []float32 {
	d := t.Data()
	block := len(d) / len(perm)
	for _, g := range perm {
		dst = append(dst, d[g*block:(g+1)*block]...)
	}
	return dst
}

// transposeOp emits a Transpose with perm and permutes the static shape.
func (e *exBuilder) transposeOp(path string, x exValue, perm ...int) exValue {
	shape := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = x.shape[p]
	}
	return x.with(e.op("Transpose", path, []string{x.name}, exAttrInts("perm", perm...)), shape)
}

// reshapeOp emits a Reshape to target (0 copies an input dimension) with
// the given static result shape.
func (e *exBuilder) reshapeOp(path string, x exValue, shape []int, target ...int64) exValue {
	t := e.ints(exPname(path, "shape"), target, len(target))
	return x.with(e.op("Reshape", path, []string{x.name, t}), shape)
}

// rnn emits one ONNX LSTM or GRU node per layer.
func (e *exBuilder) rnn(path string, m any, op string, w *nn.RNNWeights, in, H int, o nn.RNNOptions, x exValue) exValue {
	exNeedFloat(path, m, x)
	if len(x.shape) != 3 {
		exFail(path, m, "input of shape %s: only batched 3-d inputs are exported", exShapeString(x.shape))
	}
	if x.shape[2] != in {
		exFail(path, m, "input of shape %s does not end with input size %d", exShapeString(x.shape), in)
	}
	perm, G := exLSTMGates, 4
	if op == "GRU" {
		perm, G = exGRUGates, 3
	}
	dirs := 1
	direction := "forward"
	if o.Bidirectional {
		dirs, direction = 2, "bidirectional"
	}
	if o.BatchFirst {
		x = e.transposeOp(path, x, 1, 0, 2)
	}
	for l := range max(o.NumLayers, 1) {
		lin := in
		if l > 0 {
			lin = dirs * H
		}
		var wd, rd, bd []float32
		hasBias := false
		for d := range dirs {
			wih, whh, bih, bhh := w.Layer(l, d == 1)
			if wih == nil || whh == nil || wih.Numel() != G*H*lin || whh.Numel() != G*H*H {
				exFail(path, m, "layer %d weights are missing or mis-shaped", l)
			}
			wd = exReorderGates(wd, wih, perm)
			rd = exReorderGates(rd, whh, perm)
			if bih != nil && bhh != nil {
				hasBias = true
				bd = exReorderGates(bd, bih, perm)
				bd = exReorderGates(bd, bhh, perm)
			} else if hasBias {
				exFail(path, m, "layer %d has biases in one direction only", l)
			}
		}
		lp := exPname(path, "l"+strconv.Itoa(l))
		ins := []string{x.name,
			e.floats(lp+".W", wd, dirs, G*H, lin),
			e.floats(lp+".R", rd, dirs, G*H, H)}
		if hasBias {
			ins = append(ins, e.floats(lp+".B", bd, dirs, 2*G*H))
		}
		attrs := []*onnxpb.AttributeProto{exAttrInt("hidden_size", H), exAttrString("direction", direction)}
		if op == "GRU" {
			attrs = append(attrs, exAttrInt("linear_before_reset", 1))
		}
		y := x.with(e.op(op, path, ins, attrs...), []int{x.shape[0], dirs, x.shape[1], H})
		// Y is [T, dirs, N, H]; make it [T, N, dirs·H].
		y = e.transposeOp(path, y, 0, 2, 1, 3)
		x = e.reshapeOp(path, y, []int{y.shape[0], y.shape[1], dirs * H}, 0, 0, int64(dirs*H))
	}
	if o.BatchFirst {
		x = e.transposeOp(path, x, 1, 0, 2)
	}
	return x
}

// attention emits self-attention (query = key = value = x) decomposed into
// MatMul, Add, Reshape, Transpose, Mul and Softmax.
func (e *exBuilder) attention(path string, a *nn.MultiheadAttention, x exValue) exValue {
	exNeedFloat(path, a, x)
	if len(x.shape) != 3 {
		exFail(path, a, "input of shape %s: only batched 3-d inputs are exported", exShapeString(x.shape))
	}
	E, H := a.EmbedDim, a.NumHeads
	if E <= 0 || H <= 0 || E%H != 0 || x.shape[2] != E {
		exFail(path, a, "input of shape %s does not fit embed_dim %d with %d heads", exShapeString(x.shape), E, H)
	}
	if a.InProjLoRA != nil {
		exFail(path, a, "attention with a LoRA adapter on in_proj cannot be exported (merge the adapters first)")
	}
	if a.InProjWeight == nil || a.InProjWeight.Numel() != 3*E*E {
		exFail(path, a, "in_proj_weight is missing or mis-shaped")
	}
	hd := E / H
	// Per-head layout: [N, H, L, hd].
	toHeads, fromHeads := []int{1, 2, 0, 3}, []int{2, 0, 1, 3}
	if a.BatchFirst {
		toHeads, fromHeads = []int{0, 2, 1, 3}, []int{0, 2, 1, 3}
	}
	wd := a.InProjWeight.Data()
	proj := func(i int, name string) exValue {
		w := tensor.FromSlice(wd[i*E*E:(i+1)*E*E], E, E)
		var b *tensor.Tensor
		if a.InProjBias != nil {
			b = tensor.FromSlice(a.InProjBias.Data()[i*E:(i+1)*E], E)
		}
		p := exJoin(path, name)
		y := e.linear(p, a, w, b, x)
		y = e.reshapeOp(p, y, []int{x.shape[0], x.shape[1], H, hd}, 0, 0, int64(H), int64(hd))
		return e.transposeOp(p, y, toHeads...)
	}
	q, k, v := proj(0, "q_proj"), proj(1, "k_proj"), proj(2, "v_proj")
	q = q.with(e.op("Mul", path, []string{q.name, e.scalar(exPname(path, "scale"), float32(1/math.Sqrt(float64(hd))))}), q.shape)
	kt := e.transposeOp(path, k, 0, 1, 3, 2)
	scores := e.op("MatMul", path, []string{q.name, kt.name})
	w := e.op("Softmax", path, []string{scores}, exAttrInt("axis", 3))
	ctx := q.with(e.op("MatMul", path, []string{w, v.name}), q.shape)
	ctx = e.transposeOp(path, ctx, fromHeads...)
	ctx = e.reshapeOp(path, ctx, []int{x.shape[0], x.shape[1], E}, 0, 0, int64(E))
	if a.OutProj == nil {
		exFail(path, a, "out_proj is missing")
	}
	return e.emit(a.OutProj, exJoin(path, "out_proj"), ctx)
}

func (e *exBuilder) encoderLayer(path string, t *nn.TransformerEncoderLayer, x exValue) exValue {
	if t.SelfAttn == nil || t.Norm1 == nil || t.Norm2 == nil || t.Linear1 == nil || t.Linear2 == nil {
		exFail(path, t, "layer is missing sub-modules")
	}
	if t.SelfAttn.BatchFirst != t.BatchFirst {
		exFail(path, t, "batch_first %v but its attention has batch_first %v", t.BatchFirst, t.SelfAttn.BatchFirst)
	}
	if t.Activation != "relu" && t.Activation != "gelu" {
		exFail(path, t, "activation %q, want \"relu\" or \"gelu\"", t.Activation)
	}
	add := func(a, b exValue) exValue { return a.with(e.op("Add", path, []string{a.name, b.name}), a.shape) }
	sa := func(v exValue) exValue { return e.attention(exJoin(path, "self_attn"), t.SelfAttn, v) }
	ff := func(v exValue) exValue {
		h := e.emit(t.Linear1, exJoin(path, "linear1"), v)
		if t.Activation == "relu" {
			h = h.with(e.op("Relu", path, []string{h.name}), h.shape)
		} else {
			h = e.gelu(path, false, h)
		}
		return e.emit(t.Linear2, exJoin(path, "linear2"), h)
	}
	n1 := func(v exValue) exValue { return e.layerNorm(exJoin(path, "norm1"), t.Norm1, v) }
	n2 := func(v exValue) exValue { return e.layerNorm(exJoin(path, "norm2"), t.Norm2, v) }
	if t.NormFirst {
		x = add(x, sa(n1(x)))
		return add(x, ff(n2(x)))
	}
	x = n1(add(x, sa(x)))
	return n2(add(x, ff(x)))
}

func (e *exBuilder) encoder(path string, t *nn.TransformerEncoder, x exValue) exValue {
	for i, l := range t.Layers {
		x = e.encoderLayer(exJoin(path, "layers."+strconv.Itoa(i)), l, x)
	}
	if t.Norm != nil {
		x = e.layerNorm(exJoin(path, "norm"), t.Norm, x)
	}
	return x
}

// exPositions returns the sequence length of x for a positional layer.
func exPositions(path string, m any, x exValue, dim int, batchFirst bool) (L int, broadcast []int) {
	exNeedFloat(path, m, x)
	r := len(x.shape)
	if (r != 2 && r != 3) || x.shape[r-1] != dim {
		exFail(path, m, "input of shape %s, want [L %d] or [L N %d] (batch first [N L %d])", exShapeString(x.shape), dim, dim, dim)
	}
	L = x.shape[0]
	broadcast = []int{L, dim}
	if r == 3 {
		if batchFirst {
			L = x.shape[1]
			broadcast = []int{L, dim}
		} else {
			broadcast = []int{L, 1, dim}
		}
	}
	if L < 0 {
		exFail(path, m, "the sequence length must be fixed in the input shape, got %s", exShapeString(x.shape))
	}
	return L, broadcast
}

func (e *exBuilder) sinusoidal(path string, s *nn.SinusoidalPositionalEncoding, x exValue) exValue {
	L, shape := exPositions(path, s, x, s.Dim, s.BatchFirst)
	var table []float32
	if s.PE != nil {
		if L > s.PE.Size(0) {
			exFail(path, s, "input of shape %s is longer than max_len %d", exShapeString(x.shape), s.PE.Size(0))
		}
		table = s.PE.Data()[:L*s.Dim]
	} else {
		table = nn.SinusoidalTable(L, s.Dim).Data()
	}
	pe := e.floats(exPname(path, "pe"), table, shape...)
	return x.with(e.op("Add", path, []string{x.name, pe}), x.shape)
}

func (e *exBuilder) learnedPositions(path string, p *nn.LearnedPositionalEmbedding, x exValue) exValue {
	if p.Weight == nil || p.Weight.Dim() != 2 {
		exFail(path, p, "weight is missing or not 2-d")
	}
	L, shape := exPositions(path, p, x, p.Weight.Size(1), p.BatchFirst)
	if L > p.Weight.Size(0) {
		exFail(path, p, "input of shape %s is longer than max_len %d", exShapeString(x.shape), p.Weight.Size(0))
	}
	idx := make([]int64, L)
	for i := range idx {
		idx[i] = int64(i)
	}
	ishape := shape[:len(shape)-1]
	pos := e.op("Gather", path, []string{e.param(exPname(path, "weight"), p.Weight), e.ints(exPname(path, "positions"), idx, ishape...)}, exAttrInt("axis", 0))
	return x.with(e.op("Add", path, []string{x.name, pos}), x.shape)
}
