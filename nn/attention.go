package nn

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/tensor"
)

// MultiheadAttention is scaled dot-product attention over NumHeads heads
// with a packed input projection (torch.nn.MultiheadAttention with kdim =
// vdim = embed_dim, no bias_k/bias_v, no zero attention). Its state dict keys
// are PyTorch's: in_proj_weight, in_proj_bias, out_proj.weight,
// out_proj.bias.
//
// Inputs are [L, N, E] (sequence first, PyTorch's default) or [N, L, E] when
// BatchFirst, or unbatched [L, E]. Forward is self-attention without masks;
// Attend takes separate query, key and value and the masks.
type MultiheadAttention struct {
	InProjWeight *tensor.Tensor `nn:"in_proj_weight"` // [3E, E]: the query, key and value projections stacked
	InProjBias   *tensor.Tensor `nn:"in_proj_bias"`   // [3E], nil without bias
	// OutProj is the output projection, a *Linear [E, E] (a *LoRALinear
	// after ApplyLoRA).
	OutProj Module `nn:"out_proj"`
	// InProjLoRA is a low-rank adapter on the packed input projection
	// (keys in_proj_lora.lora_A [r, E] and in_proj_lora.lora_B [3E, r]); nil
	// unless ApplyLoRA or AddInProjLoRA added it.
	InProjLoRA *LoRAAdapter `nn:"in_proj_lora"`
	// AttnDropout drops attention weights when training (torch's dropout
	// argument). It has no parameters, so it adds no state dict keys.
	AttnDropout *Dropout `nn:"attn_dropout"`

	EmbedDim, NumHeads int
	// BatchFirst means inputs and outputs are [N, L, E] rather than [L, N, E].
	BatchFirst bool
}

// NewMultiheadAttention makes a MultiheadAttention with PyTorch's
// initialisation: in_proj_weight Xavier-uniform, in_proj_bias and
// out_proj.bias zero, out_proj.weight as nn.Linear's. With bias false
// neither projection has a bias. dropout is the probability of dropping an
// attention weight when training; r draws the weights and the dropout masks.
func NewMultiheadAttention(r *tensor.RNG, embedDim, numHeads int, dropout float32, bias, batchFirst bool) *MultiheadAttention {
	if embedDim <= 0 || numHeads <= 0 || embedDim%numHeads != 0 {
		panic(fmt.Sprintf("nn.NewMultiheadAttention: embed_dim %d must be a positive multiple of num_heads %d", embedDim, numHeads))
	}
	m := &MultiheadAttention{EmbedDim: embedDim, NumHeads: numHeads, BatchFirst: batchFirst}
	m.InProjWeight = param(XavierUniform(tensor.Zeros(3*embedDim, embedDim), 1, r))
	if bias {
		m.InProjBias = param(tensor.Zeros(3 * embedDim))
	}
	out := NewLinear(r, embedDim, embedDim, bias)
	if out.Bias != nil {
		Zeros(out.Bias)
	}
	m.OutProj = out
	m.AttnDropout = NewDropout(r, dropout)
	return m
}

// AttentionOptions are the optional arguments of MultiheadAttention.Attend.
//
// A mask given as an int64 tensor is boolean: nonzero means "do not attend"
// (PyTorch's True). A float32 mask is added to the attention scores before
// the softmax, so 0 keeps a position and -Inf removes it (CausalMask makes
// one). A query row whose every key is masked gets NaN weights, as in
// PyTorch.
type AttentionOptions struct {
	// KeyPaddingMask is [N, S] ([S] for unbatched inputs): which keys of
	// each sequence are padding (PaddingMask makes one from lengths).
	KeyPaddingMask *tensor.Tensor
	// AttnMask is [L, S], shared by the batch, or [N·NumHeads, L, S]. A
	// float mask that requires a gradient (a learned attention bias) gets
	// one.
	AttnMask *tensor.Tensor
	// NeedWeights makes Attend return the attention weights.
	NeedWeights bool
	// PerHeadWeights returns the weights of every head, [N, H, L, S],
	// instead of their average over heads, [N, L, S]
	// (average_attn_weights=False).
	PerHeadWeights bool
}

// Forward is self-attention of x with itself, without masks.
func (m *MultiheadAttention) Forward(x *tensor.Tensor) *tensor.Tensor {
	out, _ := m.Attend(x, x, x, AttentionOptions{})
	return out
}

// Attend attends from query [L, N, E] to key and value [S, N, E] ([N, L, E]
// and [N, S, E] when BatchFirst; [L, E] and [S, E] unbatched) and returns the
// output, shaped as query, and, when opt.NeedWeights, the attention weights
// after dropout: [N, L, S] averaged over heads or [N, H, L, S] per head (the
// batch dimension is dropped for unbatched inputs). Passing the same tensor
// as query, key and value (self-attention) projects it once.
func (m *MultiheadAttention) Attend(query, key, value *tensor.Tensor, opt AttentionOptions) (out, weights *tensor.Tensor) {
	const op = "nn.MultiheadAttention"
	E, H := m.EmbedDim, m.NumHeads
	if E <= 0 || H <= 0 || E%H != 0 {
		panic(fmt.Sprintf("%s: embed_dim %d is not a positive multiple of num_heads %d", op, E, H))
	}
	if key.Dim() != query.Dim() || value.Dim() != query.Dim() || (query.Dim() != 2 && query.Dim() != 3) {
		panic(fmt.Sprintf("%s: query, key and value must all be 3-d (batched) or 2-d (unbatched), got shapes %v, %v and %v",
			op, query.Shape(), key.Shape(), value.Shape()))
	}
	unbatched := query.Dim() == 2
	bAx, sAx := 1, 0
	if m.BatchFirst {
		bAx, sAx = 0, 1
	}
	if unbatched {
		q, k, v := tensor.Unsqueeze(query, bAx), tensor.Unsqueeze(key, bAx), tensor.Unsqueeze(value, bAx)
		if query == key {
			k = q
		}
		if key == value {
			v = k
		}
		if kpm := opt.KeyPaddingMask; kpm != nil {
			if kpm.Dim() != 1 {
				panic(fmt.Sprintf("%s: key_padding_mask of shape %v for unbatched key of shape %v, want [%d]", op, kpm.Shape(), key.Shape(), key.Size(0)))
			}
			opt.KeyPaddingMask = tensor.Reshape(kpm, 1, kpm.Size(0))
		}
		out, weights = m.Attend(q, k, v, opt)
		out = tensor.Squeeze(out, bAx)
		if weights != nil {
			weights = tensor.Squeeze(weights, 0)
		}
		return out, weights
	}
	if query.Size(2) != E || key.Size(2) != E || !tensor.SameShape(key.Shape(), value.Shape()) || key.Size(bAx) != query.Size(bAx) {
		panic(fmt.Sprintf("%s: query %v, key %v and value %v do not fit embed_dim %d (key and value must match, and batch sizes agree; batch_first %v)",
			op, query.Shape(), key.Shape(), value.Shape(), E, m.BatchFirst))
	}
	N, L, S := query.Size(bAx), query.Size(sAx), key.Size(sAx)
	hd := E / H

	// heads turns a projection [A, B, E] into [N, H, len, hd].
	heads := func(p *tensor.Tensor) *tensor.Tensor {
		a, b := p.Size(0), p.Size(1)
		p = tensor.Reshape(p, a, b, H, hd)
		if m.BatchFirst {
			return tensor.Permute(p, 0, 2, 1, 3)
		}
		return tensor.Permute(p, 1, 2, 0, 3)
	}
	// stacked splits a projection [A, B, c·E] into c tensors [N, H, len, hd].
	stacked := func(p *tensor.Tensor, c int) []*tensor.Tensor {
		a, b := p.Size(0), p.Size(1)
		p = tensor.Reshape(p, a, b, c, H, hd)
		if m.BatchFirst {
			p = tensor.Permute(p, 2, 0, 3, 1, 4)
		} else {
			p = tensor.Permute(p, 2, 1, 3, 0, 4)
		}
		ones := make([]int, c)
		for i := range ones {
			ones[i] = 1
		}
		parts := tensor.Split(p, 0, ones...)
		for i, t := range parts {
			parts[i] = tensor.Reshape(t, N, H, t.Size(3), hd)
		}
		return parts
	}
	var q, k, v *tensor.Tensor
	switch {
	case query == key && key == value:
		qkv := stacked(m.inProj(query, 0, 3*E), 3)
		q, k, v = qkv[0], qkv[1], qkv[2]
	case key == value:
		q = heads(m.inProj(query, 0, E))
		kv := stacked(m.inProj(key, E, 3*E), 2)
		k, v = kv[0], kv[1]
	default:
		q = heads(m.inProj(query, 0, E))
		k = heads(m.inProj(key, E, 2*E))
		v = heads(m.inProj(value, 2*E, 3*E))
	}

	q = tensor.MulScalar(q, float32(1/math.Sqrt(float64(hd))))
	scores := tensor.MatMul(q, tensor.Transpose(k, -1, -2)) // [N, H, L, S]
	if am := opt.AttnMask; am != nil && am.RequiresGrad() && am.DType() == tensor.Float32 {
		// A learned additive bias (relative positions, ALiBi…) gets its
		// gradient; the key padding mask is added separately.
		if am.Dim() == 3 && am.Size(0) == N*H {
			am = tensor.Reshape(am, N, H, L, S)
		}
		attentionMask(op, N, H, L, S, opt) // validates the shapes
		scores = tensor.Add(scores, am)
		opt.AttnMask = nil
	}
	if mask := attentionMask(op, N, H, L, S, opt); mask != nil {
		scores = tensor.Add(scores, mask)
	}
	w := tensor.Softmax(scores, -1)
	if m.AttnDropout != nil {
		w = m.AttnDropout.Forward(w)
	}
	ctx := tensor.MatMul(w, v) // [N, H, L, hd]
	if m.BatchFirst {
		ctx = tensor.Reshape(tensor.Permute(ctx, 0, 2, 1, 3), N, L, E)
	} else {
		ctx = tensor.Reshape(tensor.Permute(ctx, 2, 0, 1, 3), L, N, E)
	}
	out = m.OutProj.Forward(ctx)
	if opt.NeedWeights {
		weights = w
		if !opt.PerHeadWeights {
			weights = tensor.MeanAxes(w, false, 1)
		}
	}
	return out, weights
}

// inProj applies rows lo:hi of the packed input projection (and of its
// adapter) to x.
func (m *MultiheadAttention) inProj(x *tensor.Tensor, lo, hi int) *tensor.Tensor {
	w, b := m.InProjWeight, m.InProjBias
	if lo != 0 || hi != w.Size(0) {
		w = tensor.Slice(w, 0, lo, hi, 1)
		if b != nil {
			b = tensor.Slice(b, 0, lo, hi, 1)
		}
	}
	y := tensor.Linear(x, w, b)
	if m.InProjLoRA != nil {
		y = tensor.Add(y, m.InProjLoRA.delta(x, lo, hi))
	}
	return y
}

// attentionMask merges opt's masks into one additive float mask of the full
// scores shape [N, H, L, S] (a same-shape add is much faster than a
// broadcast one), or returns nil without masks. A float [N·H, L, S] mask
// alone is used as is, without a copy.
func attentionMask(op string, N, H, L, S int, opt AttentionOptions) *tensor.Tensor {
	am, kpm := opt.AttnMask, opt.KeyPaddingMask
	if am == nil && kpm == nil {
		return nil
	}
	am3d := false
	if am != nil {
		switch {
		case am.Dim() == 2 && am.Size(0) == L && am.Size(1) == S:
		case am.Dim() == 3 && am.Size(0) == N*H && am.Size(1) == L && am.Size(2) == S:
			am3d = true
		default:
			panic(fmt.Sprintf("%s: attn_mask of shape %v, want [%d %d] or [%d %d %d] (L %d, S %d, N·heads %d)",
				op, am.Shape(), L, S, N*H, L, S, L, S, N*H))
		}
	}
	if kpm != nil && (kpm.Dim() != 2 || kpm.Size(0) != N || kpm.Size(1) != S) {
		panic(fmt.Sprintf("%s: key_padding_mask of shape %v, want [%d %d] (batch, key length)", op, kpm.Shape(), N, S))
	}
	if am3d && kpm == nil && am.DType() == tensor.Float32 {
		return tensor.Reshape(am.Detach(), N, H, L, S)
	}
	inf := float32(math.Inf(-1))
	val := func(t *tensor.Tensor, i int) float32 {
		if t.DType() == tensor.Int64 {
			if t.Int64s()[i] != 0 {
				return inf
			}
			return 0
		}
		return t.Data()[i]
	}
	out := make([]float32, N*H*L*S)
	i := 0
	for b := range N {
		for h := range H {
			for l := range L {
				for s := range S {
					var v float32
					if am != nil {
						j := l*S + s
						if am3d {
							j = ((b*H+h)*L+l)*S + s
						}
						v = val(am, j)
					}
					if kpm != nil {
						v += val(kpm, b*S+s)
					}
					out[i] = v
					i++
				}
			}
		}
	}
	return tensor.FromSlice(out, N, H, L, S)
}

// CausalMask returns the [n, n] float mask that lets position i attend only
// to positions ≤ i: 0 on and below the diagonal and -Inf above it
// (torch.nn.Transformer.generate_square_subsequent_mask).
func CausalMask(n int) *tensor.Tensor {
	if n < 0 {
		panic(fmt.Sprintf("nn.CausalMask: negative size %d", n))
	}
	d := make([]float32, n*n)
	inf := float32(math.Inf(-1))
	for i := range n {
		for j := i + 1; j < n; j++ {
			d[i*n+j] = inf
		}
	}
	return tensor.FromSlice(d, n, n)
}

// PaddingMask returns the [len(lengths), maxLen] int64 key padding mask of
// sequences with the given lengths: 1 (ignore) at positions ≥ the length.
func PaddingMask(lengths []int, maxLen int) *tensor.Tensor {
	d := make([]int64, len(lengths)*maxLen)
	for i, n := range lengths {
		if n < 0 || n > maxLen {
			panic(fmt.Sprintf("nn.PaddingMask: length %d of sequence %d not in [0, %d]", n, i, maxLen))
		}
		for j := n; j < maxLen; j++ {
			d[i*maxLen+j] = 1
		}
	}
	return tensor.FromInt64(d, len(lengths), maxLen)
}

// PaddingMaskFromAttention converts an attention mask in the tokenizer
// convention (nonzero = real token, 0 = padding; float32 or int64) into a key
// padding mask (int64, 1 = ignore) of the same shape.
func PaddingMaskFromAttention(attention *tensor.Tensor) *tensor.Tensor {
	n := attention.Numel()
	d := make([]int64, n)
	if attention.DType() == tensor.Int64 {
		for i, v := range attention.Int64s() {
			if v == 0 {
				d[i] = 1
			}
		}
	} else {
		for i, v := range attention.Data() {
			if v == 0 {
				d[i] = 1
			}
		}
	}
	return tensor.FromInt64(d, attention.Shape()...)
}
