package model

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/deepgo/deepgo/nn"
)

// This file registers the attention layers, Transformer encoders, position
// encodings and LoRA adapters of package nn. Configs use PyTorch's argument
// names; adapters are described by a "lora" object keyed by the adapted
// projection:
//
//	{"type": "TransformerEncoder", "config": {"norm": true, "norm_eps": 1e-5},
//	 "layers": [{"type": "TransformerEncoderLayer", "config": {"d_model": 128,
//	   "nhead": 4, "dim_feedforward": 512, "dropout": 0.1, "activation": "gelu",
//	   "layer_norm_eps": 1e-5, "batch_first": true, "norm_first": true,
//	   "lora": {"self_attn.in_proj": {"rank": 8, "alpha": 16, "dropout": 0.05}}}}, …]}
//
// Defaults are PyTorch's (MultiheadAttention: bias true, dropout 0;
// TransformerEncoderLayer: dim_feedforward 2048, dropout 0.1, relu, eps
// 1e-5). Whether a parameter requires a gradient is not part of the spec:
// a built model is trainable everywhere except the frozen bases of its
// adapters.

// loraSpec describes one LoRA adapter.
type loraSpec struct {
	Rank    int     `json:"rank"`
	Alpha   float32 `json:"alpha"`
	Dropout float32 `json:"dropout"`
}

func (l loraSpec) check(name string, in, out int) (int64, error) {
	if l.Rank <= 0 || l.Rank > maxGeom {
		return 0, fmt.Errorf("lora %s: rank %d not in [1, %d]", name, l.Rank, maxGeom)
	}
	if !(l.Dropout >= 0 && l.Dropout <= 1) {
		return 0, fmt.Errorf("lora %s: dropout %v not in [0, 1]", name, l.Dropout)
	}
	n := mul(l.Rank, in+out)
	if n < 0 {
		return 0, fmt.Errorf("lora %s: sizes overflow", name)
	}
	return n, nil
}

func loraOf(a *nn.LoRAAdapter) loraSpec {
	s := loraSpec{Rank: a.Rank, Alpha: a.Alpha}
	if a.Dropout != nil {
		s.Dropout = a.Dropout.P
	}
	return s
}

type mhaConfig struct {
	EmbedDim   int                 `json:"embed_dim"`
	NumHeads   int                 `json:"num_heads"`
	Dropout    float32             `json:"dropout"`
	Bias       bool                `json:"bias"`
	BatchFirst bool                `json:"batch_first"`
	LoRA       map[string]loraSpec `json:"lora,omitempty"` // "in_proj", "out_proj"
}

type encoderLayerConfig struct {
	DModel         int                 `json:"d_model"`
	NHead          int                 `json:"nhead"`
	DimFeedforward int                 `json:"dim_feedforward"`
	Dropout        float32             `json:"dropout"`
	Activation     string              `json:"activation"`
	LayerNormEps   float32             `json:"layer_norm_eps"`
	BatchFirst     bool                `json:"batch_first"`
	NormFirst      bool                `json:"norm_first"`
	LoRA           map[string]loraSpec `json:"lora,omitempty"` // "self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2"
}

type encoderConfig struct {
	Norm    bool    `json:"norm"`
	NormEps float32 `json:"norm_eps"`
}

type sinusoidalConfig struct {
	Dim        int     `json:"dim"`
	MaxLen     int     `json:"max_len"`
	Dropout    float32 `json:"dropout"`
	BatchFirst bool    `json:"batch_first"`
}

type learnedPositionsConfig struct {
	MaxLen     int  `json:"max_len"`
	Dim        int  `json:"dim"`
	BatchFirst bool `json:"batch_first"`
}

type loraLinearConfig struct {
	InFeatures  int     `json:"in_features"`
	OutFeatures int     `json:"out_features"`
	Bias        bool    `json:"bias"`
	Rank        int     `json:"rank"`
	Alpha       float32 `json:"alpha"`
	Dropout     float32 `json:"dropout"`
}

func checkProb(name string, p float32) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("%s %v not in [0, 1]", name, p)
	}
	return nil
}

// attentionValues counts the parameters of a MultiheadAttention.
func attentionValues(e int, bias bool) int64 {
	n := mul(4, e, e)
	if n >= 0 && bias {
		n += 4 * int64(e)
	}
	return n
}

// checkLoRAKeys refuses adapter names outside allowed.
func checkLoRAKeys(l map[string]loraSpec, allowed ...string) error {
	for k := range l {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("lora: unknown projection %q (want one of %v)", k, allowed)
		}
	}
	return nil
}

// reserveLoRA checks every adapter of l (sizes given by dims) and reserves their values.
func reserveLoRA(ctx *BuildContext, l map[string]loraSpec, dims map[string][2]int) error {
	for _, k := range sortedLoRAKeys(l) {
		d := dims[k]
		n, err := l[k].check(k, d[0], d[1])
		if err != nil {
			return err
		}
		if err := ctx.Reserve(n); err != nil {
			return err
		}
	}
	return nil
}

func sortedLoRAKeys(l map[string]loraSpec) []string {
	ks := make([]string, 0, len(l))
	for k := range l {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// addAttentionLoRA attaches the adapters of l to the attention m; prefix is
// "" or "self_attn.".
func addAttentionLoRA(ctx *BuildContext, m *nn.MultiheadAttention, l map[string]loraSpec, prefix string) {
	if a, ok := l[prefix+"in_proj"]; ok {
		m.AddInProjLoRA(ctx.RNG(), a.Rank, a.Alpha, a.Dropout)
	}
	if a, ok := l[prefix+"out_proj"]; ok {
		m.OutProj = nn.NewLoRALinear(ctx.RNG(), m.OutProj.(*nn.Linear), a.Rank, a.Alpha, a.Dropout)
	}
}

func buildMultiheadAttention(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg := mhaConfig{Bias: true}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.EmbedDim <= 0 || cfg.NumHeads <= 0 || cfg.EmbedDim%cfg.NumHeads != 0 {
		return nil, fmt.Errorf("embed_dim %d must be a positive multiple of num_heads %d", cfg.EmbedDim, cfg.NumHeads)
	}
	if err := checkProb("dropout", cfg.Dropout); err != nil {
		return nil, err
	}
	if err := checkLoRAKeys(cfg.LoRA, "in_proj", "out_proj"); err != nil {
		return nil, err
	}
	e := cfg.EmbedDim
	if err := ctx.Reserve(attentionValues(e, cfg.Bias)); err != nil {
		return nil, err
	}
	if err := reserveLoRA(ctx, cfg.LoRA, map[string][2]int{"in_proj": {e, 3 * e}, "out_proj": {e, e}}); err != nil {
		return nil, err
	}
	m := nn.NewMultiheadAttention(ctx.RNG(), e, cfg.NumHeads, cfg.Dropout, cfg.Bias, cfg.BatchFirst)
	addAttentionLoRA(ctx, m, cfg.LoRA, "")
	return m, nil
}

// attentionLoRA describes the adapters of m, with names prefixed by prefix.
func attentionLoRA(m *nn.MultiheadAttention, prefix string, into map[string]loraSpec) error {
	if m.InProjLoRA != nil {
		into[prefix+"in_proj"] = loraOf(m.InProjLoRA)
	}
	switch o := m.OutProj.(type) {
	case *nn.Linear:
	case *nn.LoRALinear:
		into[prefix+"out_proj"] = loraOf(&o.LoRAAdapter)
	default:
		return fmt.Errorf("model.Spec: MultiheadAttention out_proj is a %T, want *nn.Linear or *nn.LoRALinear", m.OutProj)
	}
	return nil
}

func encodeMultiheadAttention(mod nn.Module) (LayerSpec, error) {
	m := mod.(*nn.MultiheadAttention)
	cfg := mhaConfig{EmbedDim: m.EmbedDim, NumHeads: m.NumHeads, Bias: m.InProjBias != nil, BatchFirst: m.BatchFirst, LoRA: map[string]loraSpec{}}
	if m.AttnDropout != nil {
		cfg.Dropout = m.AttnDropout.P
	}
	if err := attentionLoRA(m, "", cfg.LoRA); err != nil {
		return LayerSpec{}, err
	}
	return NewLayerSpec("MultiheadAttention", cfg)
}

func buildEncoderLayer(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg := encoderLayerConfig{DimFeedforward: 2048, Dropout: 0.1, Activation: "relu", LayerNormEps: 1e-5}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	e, f := cfg.DModel, cfg.DimFeedforward
	if e <= 0 || cfg.NHead <= 0 || e%cfg.NHead != 0 || f <= 0 {
		return nil, fmt.Errorf("d_model %d must be a positive multiple of nhead %d, and dim_feedforward %d positive", e, cfg.NHead, f)
	}
	if cfg.Activation != "relu" && cfg.Activation != "gelu" {
		return nil, fmt.Errorf("activation must be \"relu\" or \"gelu\", got %q", cfg.Activation)
	}
	if err := checkProb("dropout", cfg.Dropout); err != nil {
		return nil, err
	}
	if err := checkLoRAKeys(cfg.LoRA, "self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2"); err != nil {
		return nil, err
	}
	n := attentionValues(e, true)
	ff := mul(2, e, f)
	if n < 0 || ff < 0 {
		return nil, errors.New("layer sizes overflow")
	}
	if err := ctx.Reserve(n + ff + int64(f) + 5*int64(e)); err != nil {
		return nil, err
	}
	if err := reserveLoRA(ctx, cfg.LoRA, map[string][2]int{
		"self_attn.in_proj": {e, 3 * e}, "self_attn.out_proj": {e, e}, "linear1": {e, f}, "linear2": {f, e},
	}); err != nil {
		return nil, err
	}
	l := nn.NewTransformerEncoderLayer(ctx.RNG(), nn.TransformerEncoderLayerConfig{
		DModel: e, NHead: cfg.NHead, DimFeedforward: f, Dropout: cfg.Dropout, Activation: cfg.Activation,
		LayerNormEps: cfg.LayerNormEps, BatchFirst: cfg.BatchFirst, NormFirst: cfg.NormFirst,
	})
	addAttentionLoRA(ctx, l.SelfAttn, cfg.LoRA, "self_attn.")
	if a, ok := cfg.LoRA["linear1"]; ok {
		l.Linear1 = nn.NewLoRALinear(ctx.RNG(), l.Linear1.(*nn.Linear), a.Rank, a.Alpha, a.Dropout)
	}
	if a, ok := cfg.LoRA["linear2"]; ok {
		l.Linear2 = nn.NewLoRALinear(ctx.RNG(), l.Linear2.(*nn.Linear), a.Rank, a.Alpha, a.Dropout)
	}
	return l, nil
}

func encodeEncoderLayer(mod nn.Module) (LayerSpec, error) {
	l := mod.(*nn.TransformerEncoderLayer)
	if l.SelfAttn == nil || l.Norm1 == nil || l.Dropout == nil || nn.LinearWeight(l.Linear1) == nil || nn.LinearWeight(l.Linear2) == nil {
		return LayerSpec{}, errors.New("model.Spec: incomplete TransformerEncoderLayer")
	}
	c := l.Config()
	cfg := encoderLayerConfig{DModel: c.DModel, NHead: c.NHead, DimFeedforward: c.DimFeedforward, Dropout: c.Dropout,
		Activation: c.Activation, LayerNormEps: c.LayerNormEps, BatchFirst: c.BatchFirst, NormFirst: c.NormFirst,
		LoRA: map[string]loraSpec{}}
	if err := attentionLoRA(l.SelfAttn, "self_attn.", cfg.LoRA); err != nil {
		return LayerSpec{}, err
	}
	for name, m := range map[string]nn.Module{"linear1": l.Linear1, "linear2": l.Linear2} {
		if a, ok := m.(*nn.LoRALinear); ok {
			cfg.LoRA[name] = loraOf(&a.LoRAAdapter)
		}
	}
	return NewLayerSpec("TransformerEncoderLayer", cfg)
}

func buildEncoder(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg := encoderConfig{NormEps: 1e-5}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	if len(spec.Layers) == 0 {
		return nil, errors.New("a TransformerEncoder needs at least one layer in \"layers\"")
	}
	e := &nn.TransformerEncoder{}
	for i, s := range spec.Layers {
		m, err := ctx.Child("layers["+strconv.Itoa(i)+"]", s)
		if err != nil {
			return nil, err
		}
		l, ok := m.(*nn.TransformerEncoderLayer)
		if !ok {
			return nil, fmt.Errorf("layers[%d] is a %s, want a TransformerEncoderLayer", i, s.Type)
		}
		if i > 0 && (l.SelfAttn.EmbedDim != e.Layers[0].SelfAttn.EmbedDim || l.BatchFirst != e.Layers[0].BatchFirst) {
			return nil, fmt.Errorf("layers[%d] has d_model %d and batch_first %v, layers[0] %d and %v",
				i, l.SelfAttn.EmbedDim, l.BatchFirst, e.Layers[0].SelfAttn.EmbedDim, e.Layers[0].BatchFirst)
		}
		e.Layers = append(e.Layers, l)
	}
	if cfg.Norm {
		d := e.Layers[0].SelfAttn.EmbedDim
		if err := ctx.Reserve(2 * int64(d)); err != nil {
			return nil, err
		}
		e.Norm = nn.NewLayerNorm([]int{d}, true)
		e.Norm.Eps = cfg.NormEps
	}
	return e, nil
}

func encodeEncoder(mod nn.Module) (LayerSpec, error) {
	e := mod.(*nn.TransformerEncoder)
	cfg := encoderConfig{Norm: e.Norm != nil, NormEps: 1e-5}
	if e.Norm != nil {
		if e.Norm.Weight == nil || len(e.Norm.NormalizedShape) != 1 {
			return LayerSpec{}, errors.New("model.Spec: TransformerEncoder norm must be an affine LayerNorm over the last dimension")
		}
		cfg.NormEps = e.Norm.Eps
	}
	s, err := NewLayerSpec("TransformerEncoder", cfg)
	if err != nil {
		return LayerSpec{}, err
	}
	for i, l := range e.Layers {
		ls, err := Spec(l)
		if err != nil {
			return LayerSpec{}, fmt.Errorf("layers[%d]: %w", i, err)
		}
		s.Layers = append(s.Layers, ls)
	}
	return s, nil
}

func buildSinusoidal(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	var cfg sinusoidalConfig
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.Dim <= 0 || cfg.MaxLen < 0 {
		return nil, fmt.Errorf("dim %d must be positive and max_len %d not negative", cfg.Dim, cfg.MaxLen)
	}
	if err := checkProb("dropout", cfg.Dropout); err != nil {
		return nil, err
	}
	n := int64(0)
	if cfg.MaxLen > 0 {
		n = mul(cfg.Dim, cfg.MaxLen)
	}
	if err := ctx.Reserve(n); err != nil {
		return nil, err
	}
	return nn.NewSinusoidalPositionalEncoding(ctx.RNG(), cfg.Dim, cfg.MaxLen, cfg.Dropout, cfg.BatchFirst), nil
}

func buildLearnedPositions(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	var cfg learnedPositionsConfig
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	n := mul(cfg.MaxLen, cfg.Dim)
	if n < 0 {
		return nil, fmt.Errorf("max_len %d and dim %d must be positive", cfg.MaxLen, cfg.Dim)
	}
	if err := ctx.Reserve(n); err != nil {
		return nil, err
	}
	return nn.NewLearnedPositionalEmbedding(ctx.RNG(), cfg.MaxLen, cfg.Dim, cfg.BatchFirst), nil
}

func buildLoRALinear(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg := loraLinearConfig{Bias: true}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	n := mul(cfg.InFeatures, cfg.OutFeatures)
	if n < 0 {
		return nil, fmt.Errorf("in_features %d and out_features %d must be positive", cfg.InFeatures, cfg.OutFeatures)
	}
	if cfg.Bias {
		n += int64(cfg.OutFeatures)
	}
	a := loraSpec{Rank: cfg.Rank, Alpha: cfg.Alpha, Dropout: cfg.Dropout}
	ln, err := a.check("linear", cfg.InFeatures, cfg.OutFeatures)
	if err != nil {
		return nil, err
	}
	if err := ctx.Reserve(n + ln); err != nil {
		return nil, err
	}
	base := nn.NewLinear(ctx.RNG(), cfg.InFeatures, cfg.OutFeatures, cfg.Bias)
	return nn.NewLoRALinear(ctx.RNG(), base, cfg.Rank, cfg.Alpha, cfg.Dropout), nil
}

func init() {
	Register("MultiheadAttention", leaf(buildMultiheadAttention))
	Register("TransformerEncoderLayer", leaf(buildEncoderLayer))
	Register("TransformerEncoder", buildEncoder)
	Register("SinusoidalPositionalEncoding", leaf(buildSinusoidal))
	Register("LearnedPositionalEmbedding", leaf(buildLearnedPositions))
	Register("LoRALinear", leaf(buildLoRALinear))
	RegisterEncoder((*nn.MultiheadAttention)(nil), encodeMultiheadAttention)
	RegisterEncoder((*nn.TransformerEncoderLayer)(nil), encodeEncoderLayer)
	RegisterEncoder((*nn.TransformerEncoder)(nil), encodeEncoder)
	RegisterEncoder((*nn.SinusoidalPositionalEncoding)(nil), func(m nn.Module) (LayerSpec, error) {
		s := m.(*nn.SinusoidalPositionalEncoding)
		cfg := sinusoidalConfig{Dim: s.Dim, MaxLen: s.MaxLen, BatchFirst: s.BatchFirst}
		if s.Dropout != nil {
			cfg.Dropout = s.Dropout.P
		}
		return NewLayerSpec("SinusoidalPositionalEncoding", cfg)
	})
	RegisterEncoder((*nn.LearnedPositionalEmbedding)(nil), func(m nn.Module) (LayerSpec, error) {
		e := m.(*nn.LearnedPositionalEmbedding)
		if e.Weight == nil || e.Weight.Dim() != 2 {
			return LayerSpec{}, errors.New("model.Spec: LearnedPositionalEmbedding without a 2-d weight")
		}
		return NewLayerSpec("LearnedPositionalEmbedding", learnedPositionsConfig{MaxLen: e.Weight.Size(0), Dim: e.Weight.Size(1), BatchFirst: e.BatchFirst})
	})
	RegisterEncoder((*nn.LoRALinear)(nil), func(m nn.Module) (LayerSpec, error) {
		l := m.(*nn.LoRALinear)
		if l.Weight == nil || l.Weight.Dim() != 2 {
			return LayerSpec{}, errors.New("model.Spec: LoRALinear without a 2-d weight")
		}
		a := loraOf(&l.LoRAAdapter)
		return NewLayerSpec("LoRALinear", loraLinearConfig{InFeatures: l.Weight.Size(1), OutFeatures: l.Weight.Size(0),
			Bias: l.Bias != nil, Rank: a.Rank, Alpha: a.Alpha, Dropout: a.Dropout})
	})
}
