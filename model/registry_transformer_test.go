package model_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// transformerLayerTypes are the layer types registered by
// registry_transformer.go, all covered by
// TestTransformerLayersRoundTripThroughSpec.
var transformerLayerTypes = []string{"MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
	"SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "LoRALinear"}

// tfRandomizeLoRA gives every lora_B nonzero values, so adapters change outputs.
func tfRandomizeLoRA(m nn.Module, r *tensor.RNG) {
	for _, p := range nn.NamedParameters(m) {
		if strings.HasSuffix(p.Name, "lora_B") {
			nn.Normal(p.Tensor, 0, 0.5, r)
		}
	}
}

func tfCases() []struct {
	m nn.Module
	x *tensor.Tensor
} {
	r := tensor.NewRNG(21)
	seq := testutil.Rand(1, -1, 1, 5, 2, 8).Detach() // [L, N, E]
	bf := testutil.Rand(2, -1, 1, 2, 5, 8).Detach()  // [N, L, E]
	cfg := nn.DefaultTransformerEncoderLayer(8, 2)
	cfg.DimFeedforward = 12
	pre := cfg
	pre.Activation, pre.NormFirst, pre.BatchFirst, pre.LayerNormEps, pre.Dropout = "gelu", true, true, 1e-6, 0.25

	mhaLoRA := nn.NewMultiheadAttention(r, 8, 4, 0.2, false, true)
	nn.ApplyLoRA(nn.NewSequential(mhaLoRA), 2, 3, nil, nn.LoRAOptions{Dropout: 0.1, RNG: r})
	layerLoRA := nn.NewTransformerEncoderLayer(r, pre)
	nn.ApplyLoRA(layerLoRA, 3, 6, nil, nn.LoRAOptions{RNG: r})
	encLoRA := nn.NewTransformerEncoder(r, cfg, 2, true)
	nn.ApplyLoRA(encLoRA, 2, 2, func(name string, _ *nn.Linear) bool {
		return strings.HasSuffix(name, "in_proj") || strings.HasSuffix(name, "linear2")
	}, nn.LoRAOptions{RNG: r})
	encNoNorm := nn.NewTransformerEncoder(r, pre, 1, false)
	encNoNorm.Layers = append(encNoNorm.Layers, nn.NewTransformerEncoderLayer(r, pre))
	loraLin := nn.NewLoRALinear(r, nn.NewLinear(r, 8, 3, false), 2, 4, 0.5)
	for _, m := range []nn.Module{mhaLoRA, layerLoRA, encLoRA, loraLin} {
		tfRandomizeLoRA(m, r)
	}
	return []struct {
		m nn.Module
		x *tensor.Tensor
	}{
		{nn.NewMultiheadAttention(r, 8, 2, 0, true, false), seq},
		{mhaLoRA, bf},
		{nn.NewTransformerEncoderLayer(r, cfg), seq},
		{layerLoRA, bf},
		{nn.NewTransformerEncoder(r, cfg, 2, true), seq},
		{encLoRA, seq},
		{encNoNorm, bf},
		{nn.NewSinusoidalPositionalEncoding(r, 8, 10, 0.1, false), seq},
		{nn.NewSinusoidalPositionalEncoding(r, 8, 0, 0, true), bf},
		{nn.NewLearnedPositionalEmbedding(r, 7, 8, true), bf},
		{loraLin, seq},
		{nn.NewSequential(nn.NewLearnedPositionalEmbedding(r, 5, 8, false), nn.NewTransformerEncoder(r, cfg, 1, false), nn.NewLinear(r, 8, 2, true)), seq},
	}
}

// TestTransformerLayersRoundTripThroughSpec: every layer type of this file →
// spec → JSON → Build gives the same spec, the same state dict keys and,
// with the weights loaded, bitwise the same outputs in eval mode.
func TestTransformerLayersRoundTripThroughSpec(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range tfCases() {
		spec, built := roundTripBuilt(t, "", c.m, c.x)
		covered[spec.Type] = true
		for _, l := range spec.Layers {
			covered[l.Type] = true
		}
		// The adapters' frozen bases stay frozen.
		if a, b := nn.NumTrainableParams(built), nn.NumParams(built); strings.Contains(strings.ToLower(string(spec.Config)+spec.Type), "lora") && a >= b {
			t.Errorf("%s %s: %d of %d parameters trainable", spec.Type, spec.Config, a, b)
		}
	}
	for _, typ := range transformerLayerTypes {
		if !covered[typ] {
			t.Errorf("%s is not covered", typ)
		}
	}
}

// A LoRA-adapted encoder saves as a model package and loads back with the
// same outputs; after MergeLoRA it saves as the plain architecture.
func TestTransformerPackageWithLoRA(t *testing.T) {
	r := tensor.NewRNG(5)
	cfg := nn.DefaultTransformerEncoderLayer(8, 2)
	cfg.DimFeedforward, cfg.BatchFirst = 16, true
	enc := nn.NewTransformerEncoder(r, cfg, 2, true)
	nn.Freeze(enc)
	nn.ApplyLoRA(enc, 2, 4, nil, nn.LoRAOptions{RNG: r})
	tfRandomizeLoRA(enc, r)
	sig := model.Signature{
		Inputs:  []model.TensorSpec{{Name: "x", DType: "float32", Shape: []int{-1, -1, 8}}},
		Outputs: []model.TensorSpec{{Name: "y", DType: "float32", Shape: []int{-1, -1, 8}}},
	}
	x := testutil.Rand(3, -1, 1, 2, 4, 8).Detach()
	dir := filepath.Join(t.TempDir(), "lora")
	if err := model.Save(dir, &model.Package{Name: "enc", Module: enc, Signature: sig}); err != nil {
		t.Fatal(err)
	}
	p, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	nn.Eval(enc)
	want, err := (&model.Package{Module: enc, Signature: sig}).Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	bitwiseEqual(t, "loaded LoRA encoder", got, want)

	merged := nn.MergeLoRA(p.Module)
	spec, err := model.Spec(merged)
	if err != nil {
		t.Fatal(err)
	}
	if s := jsonOf(t, spec); strings.Contains(s, "lora") {
		t.Fatalf("merged spec still has adapters: %s", s)
	}
	dir2 := filepath.Join(t.TempDir(), "merged")
	if err := model.Save(dir2, &model.Package{Name: "enc", Module: merged, Signature: sig}); err != nil {
		t.Fatal(err)
	}
	p2, err := model.Load(dir2)
	if err != nil {
		t.Fatal(err)
	}
	got2, err := p2.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "merged package", got2, want, 1e-5, 1e-5)
}

func TestTransformerBuildErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{`{"type": "MultiheadAttention", "config": {"embed_dim": 10, "num_heads": 3}}`, "embed_dim 10"},
		{`{"type": "MultiheadAttention", "config": {"embed_dim": 8, "num_heads": 2, "dropout": 2}}`, "dropout 2"},
		{`{"type": "MultiheadAttention", "config": {"embed_dim": 8, "num_heads": 2, "lora": {"q_proj": {"rank": 2}}}}`, "q_proj"},
		{`{"type": "MultiheadAttention", "config": {"embed_dim": 8, "num_heads": 2, "lora": {"in_proj": {"rank": 0}}}}`, "rank 0"},
		{`{"type": "TransformerEncoderLayer", "config": {"d_model": 8, "nhead": 2, "activation": "tanh"}}`, "tanh"},
		{`{"type": "TransformerEncoderLayer", "config": {"d_model": 8, "nhead": 2, "dim_feedforward": 0}}`, "dim_feedforward 0"},
		{`{"type": "TransformerEncoderLayer", "config": {"d_model": 8, "nhead": 2, "kdim": 4}}`, "kdim"},
		{`{"type": "TransformerEncoder", "config": {"norm": true}}`, "at least one layer"},
		{`{"type": "TransformerEncoder", "layers": [{"type": "ReLU"}]}`, "want a TransformerEncoderLayer"},
		{`{"type": "TransformerEncoder", "layers": [{"type": "TransformerEncoderLayer", "config": {"d_model": 8, "nhead": 2}},
			{"type": "TransformerEncoderLayer", "config": {"d_model": 4, "nhead": 2}}]}`, "layers[1] has d_model 4"},
		{`{"type": "TransformerEncoder", "layers": [{"type": "TransformerEncoderLayer", "config": {"d_model": 8, "nhead": 3}}]}`, "architecture.layers[0] (TransformerEncoderLayer): d_model 8"},
		{`{"type": "SinusoidalPositionalEncoding", "config": {"dim": 0}}`, "dim 0"},
		{`{"type": "LearnedPositionalEmbedding", "config": {"max_len": -1, "dim": 4}}`, "max_len -1"},
		{`{"type": "LoRALinear", "config": {"in_features": 4, "out_features": 2}}`, "rank 0"},
	}
	for _, c := range cases {
		var spec model.LayerSpec
		if err := json.Unmarshal([]byte(c.src), &spec); err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		_, err := model.Build(spec, model.BuildOptions{})
		if err == nil {
			t.Errorf("%s: no error", c.src)
			continue
		}
		oneLine(t, err, c.want)
	}
	var spec model.LayerSpec
	json.Unmarshal([]byte(`{"type": "TransformerEncoderLayer", "config": {"d_model": 4096, "nhead": 8}}`), &spec)
	_, err := model.Build(spec, model.BuildOptions{MaxValues: 1000})
	oneLine(t, err, "parameter values")
}
