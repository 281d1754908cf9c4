package nn_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// tfRun loads key's weights into m, runs it on key.x with the stored masks,
// back-propagates key.R and compares the output (rtol 1e-5) and gradients
// (rtol gradTol) with PyTorch.
func tfRun(t *testing.T, key string, m nn.Module, fwd func(x, mask, kpm *tensor.Tensor) *tensor.Tensor, eval bool, gradTol float64) {
	t.Helper()
	tfLoad(t, key, m)
	if eval {
		nn.Eval(m)
	}
	x := tfGet(t, key+".x").SetRequiresGrad(true)
	var mask, kpm *tensor.Tensor
	if tfFix.Has(key + ".mask") {
		mask = tfGet(t, key+".mask")
	}
	if tfFix.Has(key + ".kpm") {
		kpm = tfGet(t, key+".kpm")
	}
	out := fwd(x, mask, kpm)
	tensor.Sum(tensor.Mul(out, tfGet(t, key+".R"))).Backward()
	testutil.AssertClose(t, key+" output", out, tfGet(t, key+".out"), 1e-5, 1e-6)
	testutil.AssertClose(t, key+" grad input", x.Grad(), tfGet(t, key+".grad.x"), gradTol, 1e-5)
	tfCheckGrads(t, key, m, gradTol, 1e-5)
}

func tfLayerConfig(norm, act string, batchFirst bool, dropout float32) nn.TransformerEncoderLayerConfig {
	cfg := nn.DefaultTransformerEncoderLayer(8, 2)
	cfg.DimFeedforward = 12
	cfg.Dropout = dropout
	cfg.Activation = act
	cfg.NormFirst = norm == "pre"
	cfg.BatchFirst = batchFirst
	return cfg
}

func TestTransformerEncoderLayerGolden(t *testing.T) {
	cases := []struct {
		key        string
		norm, act  string
		batchFirst bool
		dropout    float32
		eps        float32
		eval       bool
	}{
		{"enc_post_relu", "post", "relu", false, 0, 1e-5, false},
		{"enc_post_gelu", "post", "gelu", true, 0, 1e-3, false},
		{"enc_pre_relu", "pre", "relu", true, 0, 1e-5, false},
		{"enc_pre_gelu", "pre", "gelu", false, 0, 1e-5, false},
		{"enc_eval", "post", "gelu", false, 0.5, 1e-5, true},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			cfg := tfLayerConfig(c.norm, c.act, c.batchFirst, c.dropout)
			cfg.LayerNormEps = c.eps
			l := nn.NewTransformerEncoderLayer(tensor.NewRNG(1), cfg)
			if got := l.Config(); got != cfg {
				t.Fatalf("Config() = %+v, want %+v", got, cfg)
			}
			tfRun(t, c.key, l, l.ForwardMasked, c.eval, 1e-5)
		})
	}
}

func TestTransformerEncoderGolden(t *testing.T) {
	seq := nn.NewTransformerEncoder(tensor.NewRNG(2), tfLayerConfig("post", "relu", false, 0), 2, true)
	// Gradients through two layers are long reductions: rtol 1e-4.
	tfRun(t, "encoder_seq", seq, seq.ForwardMasked, false, 1e-4)
	bf := nn.NewTransformerEncoder(tensor.NewRNG(3), tfLayerConfig("pre", "gelu", true, 0), 2, false)
	tfRun(t, "encoder_bf", bf, bf.ForwardMasked, false, 1e-4)
	// PyTorch's parameter order, not just the same key set.
	var names []string
	for _, p := range nn.NamedParameters(seq) {
		names = append(names, p.Name)
	}
	want := "layers.0.self_attn.in_proj_weight,layers.0.self_attn.in_proj_bias,layers.0.self_attn.out_proj.weight," +
		"layers.0.self_attn.out_proj.bias,layers.0.linear1.weight,layers.0.linear1.bias,layers.0.linear2.weight," +
		"layers.0.linear2.bias,layers.0.norm1.weight,layers.0.norm1.bias,layers.0.norm2.weight,layers.0.norm2.bias"
	if got := strings.Join(names[:12], ","); got != want {
		t.Fatalf("parameter order\n%s\nwant\n%s", got, want)
	}
	if names[len(names)-1] != "norm.bias" || len(names) != 26 {
		t.Fatalf("got %d parameters ending in %s", len(names), names[len(names)-1])
	}
}

// Batch first and sequence first give the same numbers, transposed.
func TestTransformerEncoderLayouts(t *testing.T) {
	seq := nn.NewTransformerEncoder(tensor.NewRNG(4), tfLayerConfig("pre", "relu", false, 0), 2, true)
	bf := nn.NewTransformerEncoder(tensor.NewRNG(5), tfLayerConfig("pre", "relu", true, 0), 2, true)
	if err := nn.LoadStateDict(bf, nn.StateDict(seq), true); err != nil {
		t.Fatal(err)
	}
	x := testutil.Rand(6, -1, 1, 4, 3, 8) // [L, N, E]
	kpm := nn.PaddingMask([]int{4, 2, 3}, 4)
	a := seq.ForwardMasked(x, nn.CausalMask(4), kpm)
	b := bf.ForwardMasked(tensor.Transpose(x, 0, 1), nn.CausalMask(4), kpm)
	testutil.AssertClose(t, "layouts", tensor.Transpose(b, 0, 1), a, 1e-5, 1e-6)
	// The encoder merges the masks once; layer by layer gives the same.
	y := x
	for _, l := range seq.Layers {
		y = l.ForwardMasked(y, nn.CausalMask(4), kpm)
	}
	testutil.AssertClose(t, "merged masks", a, seq.Norm.Forward(y), 1e-6, 1e-7)
}

func TestTransformerEncoderLayerGradCheck(t *testing.T) {
	for _, norm := range []string{"post", "pre"} {
		r := tensor.NewRNG(7)
		cfg := nn.DefaultTransformerEncoderLayer(4, 2)
		cfg.DimFeedforward, cfg.Dropout, cfg.Activation, cfg.NormFirst = 6, 0, "gelu", norm == "pre"
		l := nn.NewTransformerEncoderLayer(r, cfg)
		for _, p := range nn.NamedParameters(l) {
			if strings.HasSuffix(p.Name, "bias") || strings.HasPrefix(p.Name, "norm") {
				nn.Normal(p.Tensor, 0.5, 0.3, r)
			}
		}
		x := testutil.Rand(8, -1, 1, 3, 2, 4)
		kpm := nn.PaddingMask([]int{3, 2}, 3)
		inputs := append([]*tensor.Tensor{x}, nn.Parameters(l)...)
		f := func(in []*tensor.Tensor) *tensor.Tensor { return l.ForwardMasked(in[0], nil, kpm) }
		testutil.GradCheck(t, "TransformerEncoderLayer "+norm, f, inputs, 1e-2, 3e-2)
	}
}

// In eval mode dropout is off: two passes agree; in training they differ.
func TestTransformerEncoderTrainEval(t *testing.T) {
	e := nn.NewTransformerEncoder(tensor.NewRNG(9), tfLayerConfig("post", "relu", true, 0.3), 1, false)
	x := testutil.Rand(10, -1, 1, 2, 5, 8)
	if testutil.Close(e.Forward(x), e.Forward(x), 1e-6, 1e-7) == nil {
		t.Fatal("training passes with dropout 0.3 agree")
	}
	nn.Eval(e)
	testutil.AssertClose(t, "eval passes", e.Forward(x), e.Forward(x), 0, 0)
	if len(nn.RandomSources(e)) == 0 {
		t.Fatal("the encoder's dropouts are not listed as random sources")
	}
}

func TestTransformerShapeErrors(t *testing.T) {
	l := nn.NewTransformerEncoderLayer(tensor.NewRNG(1), tfLayerConfig("post", "relu", false, 0))
	testutil.MustPanic(t, "width", func() { l.Forward(tensor.Zeros(3, 2, 6)) }, "nn.MultiheadAttention", "[3 2 6]")
	testutil.MustPanic(t, "kpm", func() { l.ForwardMasked(tensor.Zeros(3, 2, 8), nil, tensor.ZerosInt64(3, 2)) },
		"key_padding_mask", "[3 2]", "[2 3]")
	testutil.MustPanic(t, "config", func() {
		nn.NewTransformerEncoderLayer(tensor.NewRNG(1), nn.DefaultTransformerEncoderLayer(10, 4))
	}, "nn.NewTransformerEncoderLayer", "10", "4")
	cfg := nn.DefaultTransformerEncoderLayer(8, 2)
	cfg.Activation = "tanh"
	testutil.MustPanic(t, "activation", func() { nn.NewTransformerEncoderLayer(tensor.NewRNG(1), cfg) }, "nn.NewTransformerEncoderLayer", "tanh")
	testutil.MustPanic(t, "layers", func() { nn.NewTransformerEncoder(tensor.NewRNG(1), cfg, 0, false) }, "nn.NewTransformerEncoder", "0")
}

// The Summary of a Transformer lists its layers and counts parameters.
func TestTransformerSummary(t *testing.T) {
	e := nn.NewTransformerEncoder(tensor.NewRNG(1), tfLayerConfig("post", "relu", false, 0), 2, true)
	s := nn.Summary(e)
	if want := fmt.Sprint(nn.NumParams(e)); !strings.Contains(s, want) && !strings.Contains(s, tfCommas(nn.NumParams(e))) {
		t.Fatalf("summary does not show %s parameters:\n%s", want, s)
	}
}

func tfCommas(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// BenchmarkTransformerEncoderStep is one training step (forward and
// backward) of a small text encoder: d=128, 4 heads, 2 layers, ff 512,
// 32 sequences of 64 tokens with padding.
func BenchmarkTransformerEncoderStep(b *testing.B) {
	cfg := nn.DefaultTransformerEncoderLayer(128, 4)
	cfg.DimFeedforward, cfg.BatchFirst, cfg.Activation = 512, true, "gelu"
	e := nn.NewTransformerEncoder(tensor.NewRNG(1), cfg, 2, true)
	x := testutil.Rand(2, -1, 1, 32, 64, 128)
	lengths := make([]int, 32)
	for i := range lengths {
		lengths[i] = 16 + i
	}
	kpm := nn.PaddingMask(lengths, 64)
	for b.Loop() {
		nn.ZeroGrad(e)
		tensor.Mean(e.ForwardMasked(x, nil, kpm)).Backward()
	}
}
