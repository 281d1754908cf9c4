package textmodel

import (
	"errors"
	"fmt"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
)

// Layer type names of the classifiers in the model registry. Their config
// is the JSON of Config; "TextTransformer" also has one child, the
// TransformerEncoder's spec (so that LoRA adapters are kept), and
// "TextEnsemble" has one child per member (their own specs).
const (
	TypeBOW         = "TextBOW"
	TypeLSTM        = "TextLSTM"
	TypeTransformer = "TextTransformer"
	TypeEnsemble    = "TextEnsemble"
)

// values estimates the number of parameter values of cfg's largest
// tensors, for model.BuildContext.Reserve.
func values(cfg Config) (int64, error) {
	d := int64(cfg.Dim)
	n := (int64(cfg.VocabSize) + int64(cfg.Buckets)) * d
	n += d * int64(cfg.NumClasses)
	n += int64(cfg.VocabSize) * int64(cfg.Subwords)
	switch cfg.Arch {
	case ArchLSTM:
		h := int64(cfg.Hidden)
		n += int64(cfg.Layers) * 2 * 4 * h * (d + 3*h + 2)
	case ArchTransformer:
		n += int64(cfg.MaxLen) * d
	}
	if n < 0 || d > 1<<20 || int64(cfg.VocabSize) > 1<<31 || int64(cfg.Buckets) > 1<<31 {
		return 0, errors.New("sizes overflow")
	}
	return n, nil
}

func decode(spec model.LayerSpec, ctx *model.BuildContext, arch string) (Config, error) {
	var cfg Config
	if err := spec.DecodeConfig(&cfg); err != nil {
		return cfg, err
	}
	if cfg.Arch != arch {
		return cfg, fmt.Errorf("config arch %q, want %q", cfg.Arch, arch)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	n, err := values(cfg)
	if err != nil {
		return cfg, err
	}
	return cfg, ctx.Reserve(n)
}

func buildBOW(spec model.LayerSpec, ctx *model.BuildContext) (nn.Module, error) {
	if len(spec.Layers) > 0 {
		return nil, errors.New("has no child layers")
	}
	cfg, err := decode(spec, ctx, ArchBOW)
	if err != nil {
		return nil, err
	}
	return NewBOW(ctx.RNG(), cfg), nil
}

func buildLSTM(spec model.LayerSpec, ctx *model.BuildContext) (nn.Module, error) {
	if len(spec.Layers) > 0 {
		return nil, errors.New("has no child layers")
	}
	cfg, err := decode(spec, ctx, ArchLSTM)
	if err != nil {
		return nil, err
	}
	return NewLSTM(ctx.RNG(), cfg), nil
}

func buildTransformer(spec model.LayerSpec, ctx *model.BuildContext) (nn.Module, error) {
	if len(spec.Layers) != 1 {
		return nil, fmt.Errorf("needs one child layer (its TransformerEncoder), has %d", len(spec.Layers))
	}
	cfg, err := decode(spec, ctx, ArchTransformer)
	if err != nil {
		return nil, err
	}
	child, err := ctx.Child("layers[0]", spec.Layers[0])
	if err != nil {
		return nil, err
	}
	enc, ok := child.(*nn.TransformerEncoder)
	if !ok {
		return nil, fmt.Errorf("child layer is %T, want a TransformerEncoder", child)
	}
	for i, l := range enc.Layers {
		if l.SelfAttn.EmbedDim != cfg.Dim || !l.BatchFirst {
			return nil, fmt.Errorf("encoder layer %d has width %d (batch_first %v), want %d and batch_first", i, l.SelfAttn.EmbedDim, l.BatchFirst, cfg.Dim)
		}
	}
	m := NewTransformerWith(ctx.RNG(), cfg, enc)
	return m, nil
}

func buildEnsemble(spec model.LayerSpec, ctx *model.BuildContext) (nn.Module, error) {
	if len(spec.Layers) == 0 {
		return nil, errors.New("needs one child layer per member, has none")
	}
	var cfg Config
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.Arch != ArchEnsemble {
		return nil, fmt.Errorf("config arch %q, want %q", cfg.Arch, ArchEnsemble)
	}
	members := make([]Classifier, len(spec.Layers))
	for i, l := range spec.Layers {
		child, err := ctx.Child(fmt.Sprintf("layers[%d]", i), l)
		if err != nil {
			return nil, err
		}
		c, ok := child.(Classifier)
		if !ok {
			return nil, fmt.Errorf("member %d is %T, want a text classifier", i, child)
		}
		members[i] = c
	}
	e, err := NewEnsemble(members...)
	if err != nil {
		return nil, err
	}
	if e.Cfg.VocabSize != cfg.VocabSize || e.Cfg.NumClasses != cfg.NumClasses {
		return nil, fmt.Errorf("members have vocab_size %d and %d classes, the config says %d and %d",
			e.Cfg.VocabSize, e.Cfg.NumClasses, cfg.VocabSize, cfg.NumClasses)
	}
	return e, nil
}

func init() {
	model.Register(TypeBOW, buildBOW)
	model.Register(TypeLSTM, buildLSTM)
	model.Register(TypeTransformer, buildTransformer)
	model.Register(TypeEnsemble, buildEnsemble)
	model.RegisterEncoder((*Ensemble)(nil), func(m nn.Module) (model.LayerSpec, error) {
		e := m.(*Ensemble)
		s, err := model.NewLayerSpec(TypeEnsemble, e.Cfg)
		if err != nil {
			return s, err
		}
		for _, c := range e.Members {
			cs, err := model.Spec(c)
			if err != nil {
				return s, err
			}
			s.Layers = append(s.Layers, cs)
		}
		return s, nil
	})
	model.RegisterEncoder((*BOW)(nil), func(m nn.Module) (model.LayerSpec, error) {
		return model.NewLayerSpec(TypeBOW, m.(*BOW).Cfg)
	})
	model.RegisterEncoder((*LSTM)(nil), func(m nn.Module) (model.LayerSpec, error) {
		return model.NewLayerSpec(TypeLSTM, m.(*LSTM).Cfg)
	})
	model.RegisterEncoder((*Transformer)(nil), func(m nn.Module) (model.LayerSpec, error) {
		t := m.(*Transformer)
		s, err := model.NewLayerSpec(TypeTransformer, t.Cfg)
		if err != nil {
			return s, err
		}
		enc, err := model.Spec(t.Encoder)
		if err != nil {
			return s, err
		}
		s.Layers = []model.LayerSpec{enc}
		return s, nil
	})
}
