package textmodel

import (
	"fmt"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// PretrainedEncoder is the body of a Transformer classifier (ArchTransformer) without
// its head: token embedding (scaled by √Dim) + learned positions → pre-norm
// GELU Transformer encoder with a final layer norm. It maps int64 ids
// [N, T] to hidden states [N, T', Dim] (T' = min(longest row, MaxLen)).
// Its state dict keys (embedding.weight, positions.weight, encoder.…) are
// those of the same parts of a Transformer classifier, so pretrained
// weights load into NewTransformer's model by name.
type PretrainedEncoder struct {
	Embedding *nn.Embedding
	Positions *nn.LearnedPositionalEmbedding
	Encoder   *nn.TransformerEncoder
	// Cfg is the classifier configuration the encoder belongs to
	// (NumClasses and Pool are not used by the encoder).
	Cfg Config `nn:"-"`
}

// NewPretrainedEncoder makes an encoder initialised as NewTransformer would (cfg.Arch
// must be ArchTransformer; an invalid cfg panics).
func NewPretrainedEncoder(r *tensor.RNG, cfg Config) *PretrainedEncoder {
	t := NewTransformer(r, cfg)
	return &PretrainedEncoder{Embedding: t.Embedding, Positions: t.Positions, Encoder: t.Encoder, Cfg: cfg}
}

// Encode returns the hidden states [N, T', Dim] of ids and the float32 mask
// [N, T'] of the real tokens, exactly as Transformer.Encode.
func (e *PretrainedEncoder) Encode(ids *tensor.Tensor) (hidden, mask *tensor.Tensor) {
	t := &Transformer{Embedding: e.Embedding, Positions: e.Positions, Encoder: e.Encoder, Cfg: e.Cfg}
	return t.Encode(ids)
}

// Forward returns the hidden states [N, T', Dim] of ids [N, T].
func (e *PretrainedEncoder) Forward(ids *tensor.Tensor) *tensor.Tensor {
	h, _ := e.Encode(ids)
	return h
}

// EncoderLayerType is the model registry name of PretrainedEncoder; its config is the
// classifier Config.
const EncoderLayerType = "textmodel.PretrainedEncoder"

func init() {
	model.Register(EncoderLayerType, func(spec model.LayerSpec, ctx *model.BuildContext) (nn.Module, error) {
		var c Config
		if err := spec.DecodeConfig(&c); err != nil {
			return nil, err
		}
		if c.Arch != ArchTransformer {
			return nil, fmt.Errorf("arch %q, want %q", c.Arch, ArchTransformer)
		}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if c.VocabSize > 1<<22 || c.Dim > 1<<13 || c.Hidden > 1<<15 || c.Layers > 64 || c.MaxLen > 1<<16 {
			return nil, fmt.Errorf("sizes too large: vocab %d, dim %d, hidden %d, layers %d, max_len %d", c.VocabSize, c.Dim, c.Hidden, c.Layers, c.MaxLen)
		}
		d := int64(c.Dim)
		perLayer := 4*d*d + 2*d*int64(c.Hidden) + 10*d + int64(c.Hidden)
		if err := ctx.Reserve(int64(c.VocabSize+c.MaxLen)*d + int64(c.Layers)*perLayer + int64(c.NumClasses)*(d+1)); err != nil {
			return nil, err
		}
		return NewPretrainedEncoder(ctx.RNG(), c), nil
	})
	model.RegisterEncoder((*PretrainedEncoder)(nil), func(m nn.Module) (model.LayerSpec, error) {
		return model.NewLayerSpec(EncoderLayerType, m.(*PretrainedEncoder).Cfg)
	})
}
