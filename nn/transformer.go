package nn

import (
	"fmt"

	"github.com/deepgo/deepgo/tensor"
)

// TransformerEncoderLayerConfig holds the options of torch.nn.TransformerEncoderLayer.
// Start from DefaultTransformerEncoderLayer: the zero value is not PyTorch's
// default.
type TransformerEncoderLayerConfig struct {
	// DModel is the embedding size, NHead the number of attention heads
	// (DModel must be a multiple of it) and DimFeedforward the hidden size
	// of the feed-forward block.
	DModel, NHead, DimFeedforward int
	// Dropout is the probability used by every dropout of the layer.
	Dropout float32
	// Activation of the feed-forward block: "relu" or "gelu" (exact).
	Activation string
	// LayerNormEps is the eps of both layer norms.
	LayerNormEps float32
	// BatchFirst means inputs are [N, L, E] rather than [L, N, E].
	BatchFirst bool
	// NormFirst selects pre-norm (x + f(norm(x))) rather than post-norm
	// (norm(x + f(x))).
	NormFirst bool
}

// DefaultTransformerEncoderLayer returns PyTorch's defaults for a layer of
// size dModel with nhead heads: dim_feedforward 2048, dropout 0.1, ReLU,
// layer_norm_eps 1e-5, sequence first, post-norm.
func DefaultTransformerEncoderLayer(dModel, nhead int) TransformerEncoderLayerConfig {
	return TransformerEncoderLayerConfig{DModel: dModel, NHead: nhead, DimFeedforward: 2048, Dropout: 0.1,
		Activation: "relu", LayerNormEps: 1e-5}
}

// TransformerEncoderLayer is self-attention followed by a feed-forward block,
// each with a residual connection and a layer norm
// (torch.nn.TransformerEncoderLayer, PyTorch 1.13 semantics). Its state dict
// keys are PyTorch's: self_attn.…, linear1.…, linear2.…, norm1.…, norm2.….
type TransformerEncoderLayer struct {
	SelfAttn *MultiheadAttention
	// Linear1 [DimFeedforward, DModel] and Linear2 [DModel, DimFeedforward]
	// are *Linear layers (a *LoRALinear after ApplyLoRA).
	Linear1  Module
	Dropout  *Dropout
	Linear2  Module
	Norm1    *LayerNorm
	Norm2    *LayerNorm
	Dropout1 *Dropout
	Dropout2 *Dropout
	// Activation of the feed-forward block: "relu" or "gelu".
	Activation string
	// NormFirst selects pre-norm; BatchFirst the [N, L, E] layout (it must
	// agree with SelfAttn.BatchFirst).
	NormFirst, BatchFirst bool
}

// NewTransformerEncoderLayer makes a layer with PyTorch's initialisation
// (see NewMultiheadAttention and NewLinear; norms start at weight 1, bias 0).
// r draws the weights and the dropout masks.
func NewTransformerEncoderLayer(r *tensor.RNG, cfg TransformerEncoderLayerConfig) *TransformerEncoderLayer {
	if cfg.DModel <= 0 || cfg.NHead <= 0 || cfg.DModel%cfg.NHead != 0 || cfg.DimFeedforward <= 0 {
		panic(fmt.Sprintf("nn.NewTransformerEncoderLayer: d_model %d must be a positive multiple of nhead %d, and dim_feedforward %d positive",
			cfg.DModel, cfg.NHead, cfg.DimFeedforward))
	}
	if cfg.Activation != "relu" && cfg.Activation != "gelu" {
		panic(fmt.Sprintf("nn.NewTransformerEncoderLayer: activation %q, want \"relu\" or \"gelu\"", cfg.Activation))
	}
	norm := func() *LayerNorm {
		n := NewLayerNorm([]int{cfg.DModel}, true)
		n.Eps = cfg.LayerNormEps
		return n
	}
	return &TransformerEncoderLayer{
		SelfAttn:   NewMultiheadAttention(r, cfg.DModel, cfg.NHead, cfg.Dropout, true, cfg.BatchFirst),
		Linear1:    NewLinear(r, cfg.DModel, cfg.DimFeedforward, true),
		Dropout:    NewDropout(r, cfg.Dropout),
		Linear2:    NewLinear(r, cfg.DimFeedforward, cfg.DModel, true),
		Norm1:      norm(),
		Norm2:      norm(),
		Dropout1:   NewDropout(r, cfg.Dropout),
		Dropout2:   NewDropout(r, cfg.Dropout),
		Activation: cfg.Activation,
		NormFirst:  cfg.NormFirst,
		BatchFirst: cfg.BatchFirst,
	}
}

// Config returns the layer's options, read from its sublayers.
func (t *TransformerEncoderLayer) Config() TransformerEncoderLayerConfig {
	ff := 0
	if w := LinearWeight(t.Linear1); w != nil {
		ff = w.Size(0)
	}
	return TransformerEncoderLayerConfig{
		DModel: t.SelfAttn.EmbedDim, NHead: t.SelfAttn.NumHeads, DimFeedforward: ff,
		Dropout: t.Dropout.P, Activation: t.Activation, LayerNormEps: t.Norm1.Eps,
		BatchFirst: t.BatchFirst, NormFirst: t.NormFirst,
	}
}

// LinearWeight returns the weight of a *Linear or *LoRALinear (nil for
// other modules).
func LinearWeight(m Module) *tensor.Tensor {
	switch l := m.(type) {
	case *Linear:
		return l.Weight
	case *LoRALinear:
		return l.Weight
	}
	return nil
}

// Forward runs the layer on x without masks.
func (t *TransformerEncoderLayer) Forward(x *tensor.Tensor) *tensor.Tensor {
	return t.ForwardMasked(x, nil, nil)
}

// ForwardMasked runs the layer on src with an optional attention mask
// (src_mask: [L, L] or [N·nhead, L, L]) and key padding mask
// (src_key_padding_mask: [N, L]); see AttentionOptions for mask types.
func (t *TransformerEncoderLayer) ForwardMasked(src, mask, keyPaddingMask *tensor.Tensor) *tensor.Tensor {
	if t.SelfAttn.BatchFirst != t.BatchFirst {
		panic(fmt.Sprintf("nn.TransformerEncoderLayer: batch_first %v but its attention has batch_first %v (input shape %v)",
			t.BatchFirst, t.SelfAttn.BatchFirst, src.Shape()))
	}
	sa := func(x *tensor.Tensor) *tensor.Tensor {
		out, _ := t.SelfAttn.Attend(x, x, x, AttentionOptions{AttnMask: mask, KeyPaddingMask: keyPaddingMask})
		return drop(t.Dropout1, out)
	}
	x := src
	if t.NormFirst {
		x = tensor.Add(x, sa(t.Norm1.Forward(x)))
		return tensor.Add(x, t.feedForward(t.Norm2.Forward(x)))
	}
	x = t.Norm1.Forward(tensor.Add(x, sa(x)))
	return t.Norm2.Forward(tensor.Add(x, t.feedForward(x)))
}

// feedForward is dropout2(linear2(dropout(activation(linear1(x))))).
func (t *TransformerEncoderLayer) feedForward(x *tensor.Tensor) *tensor.Tensor {
	var h *tensor.Tensor
	switch t.Activation {
	case "relu":
		if l, ok := t.Linear1.(*Linear); ok {
			h = tensor.LinearReLU(x, l.Weight, l.Bias)
		} else {
			h = tensor.ReLU(t.Linear1.Forward(x))
		}
	case "gelu":
		h = tensor.GELU(t.Linear1.Forward(x))
	default:
		panic(fmt.Sprintf("nn.TransformerEncoderLayer: activation %q, want \"relu\" or \"gelu\" (input shape %v)", t.Activation, x.Shape()))
	}
	h = t.Linear2.Forward(drop(t.Dropout, h))
	return drop(t.Dropout2, h)
}

// uniform reports whether every layer has the same layout and head count,
// so that one merged mask serves them all.
func (e *TransformerEncoder) uniform() bool {
	for _, l := range e.Layers {
		a := l.SelfAttn
		if a == nil || a.NumHeads != e.Layers[0].SelfAttn.NumHeads || a.BatchFirst != l.BatchFirst || l.BatchFirst != e.Layers[0].BatchFirst {
			return false
		}
	}
	return true
}

func drop(d *Dropout, x *tensor.Tensor) *tensor.Tensor {
	if d == nil {
		return x
	}
	return d.Forward(x)
}

// TransformerEncoder is a stack of encoder layers with an optional final
// layer norm (torch.nn.TransformerEncoder); state dict keys layers.<i>.… and
// norm.…. Unlike PyTorch, which deep-copies one layer so that every layer
// starts with the same weights, NewTransformerEncoder initialises each layer
// independently.
type TransformerEncoder struct {
	Layers []*TransformerEncoderLayer
	// Norm is the final layer norm, nil for none.
	Norm *LayerNorm
}

// NewTransformerEncoder makes numLayers layers with configuration cfg and,
// when finalNorm, a final LayerNorm with cfg's eps.
func NewTransformerEncoder(r *tensor.RNG, cfg TransformerEncoderLayerConfig, numLayers int, finalNorm bool) *TransformerEncoder {
	if numLayers <= 0 {
		panic(fmt.Sprintf("nn.NewTransformerEncoder: num_layers %d must be positive", numLayers))
	}
	e := &TransformerEncoder{}
	for range numLayers {
		e.Layers = append(e.Layers, NewTransformerEncoderLayer(r, cfg))
	}
	if finalNorm {
		e.Norm = NewLayerNorm([]int{cfg.DModel}, true)
		e.Norm.Eps = cfg.LayerNormEps
	}
	return e
}

// Forward runs the layers on x without masks.
func (e *TransformerEncoder) Forward(x *tensor.Tensor) *tensor.Tensor {
	return e.ForwardMasked(x, nil, nil)
}

// ForwardMasked runs every layer with the same masks (see
// TransformerEncoderLayer.ForwardMasked), then the final norm. The masks
// are merged once for all layers.
func (e *TransformerEncoder) ForwardMasked(src, mask, keyPaddingMask *tensor.Tensor) *tensor.Tensor {
	if len(e.Layers) > 1 && (mask != nil || keyPaddingMask != nil) && src.Dim() == 3 &&
		(mask == nil || !mask.RequiresGrad()) && e.uniform() {
		l := e.Layers[0]
		n, length := src.Size(1), src.Size(0)
		if l.BatchFirst {
			n, length = length, n
		}
		h := l.SelfAttn.NumHeads
		merged := attentionMask("nn.TransformerEncoder", n, h, length, length, AttentionOptions{AttnMask: mask, KeyPaddingMask: keyPaddingMask})
		mask, keyPaddingMask = tensor.Reshape(merged, n*h, length, length), nil
	}
	x := src
	for _, l := range e.Layers {
		x = l.ForwardMasked(x, mask, keyPaddingMask)
	}
	if e.Norm != nil {
		x = e.Norm.Forward(x)
	}
	return x
}
