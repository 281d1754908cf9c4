package nn_test

import (
	"math"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// tfRandomizeB gives every adapter a nonzero B (a fresh one is zero, which
// would make merge and gradient tests trivial).
func tfRandomizeB(m nn.Module, r *tensor.RNG) {
	for _, p := range nn.NamedParameters(m) {
		if strings.HasSuffix(p.Name, "lora_B") {
			nn.Normal(p.Tensor, 0, 0.5, r)
		}
	}
}

func TestLoRALinear(t *testing.T) {
	r := tensor.NewRNG(1)
	base := nn.NewLinear(r, 6, 4, true)
	l := nn.NewLoRALinear(r, base, 2, 4, 0)
	if got := strings.Join(tfKeys(nn.StateDict(l)), ","); got != "bias,lora_A,lora_B,weight" {
		t.Fatalf("keys %s", got)
	}
	if l.A.Size(0) != 2 || l.A.Size(1) != 6 || l.B.Size(0) != 4 || l.B.Size(1) != 2 || l.Scale() != 2 {
		t.Fatalf("A %v B %v scale %v", l.A.Shape(), l.B.Shape(), l.Scale())
	}
	bound := float32(1 / math.Sqrt(6))
	nonzero := false
	for _, v := range l.A.Data() {
		if v < -bound || v > bound {
			t.Fatalf("A value %v outside ±%v", v, bound)
		}
		nonzero = nonzero || v != 0
	}
	for _, v := range l.B.Data() {
		if v != 0 {
			t.Fatal("B does not start at zero")
		}
	}
	if !nonzero {
		t.Fatal("A is all zero")
	}
	if base.Weight.RequiresGrad() || base.Bias.RequiresGrad() || !l.A.RequiresGrad() || !l.B.RequiresGrad() {
		t.Fatal("base not frozen or adapter not trainable")
	}
	// A fresh adapter leaves the layer's function unchanged.
	x := testutil.Rand(2, -1, 1, 3, 6)
	testutil.AssertClose(t, "fresh adapter", l.Forward(x), base.Forward(x), 1e-6, 1e-7)
	// Gradients reach the adapter and the input only.
	tensor.Sum(l.Forward(x)).Backward()
	if base.Weight.Grad() != nil || base.Bias.Grad() != nil || l.B.Grad() == nil || l.A.Grad() == nil || x.Grad() == nil {
		t.Fatal("gradients: the frozen base got one or the adapter did not")
	}
	nn.Normal(l.B, 0, 0.5, r)
	w, b, a, bb := l.Weight, l.Bias, l.A, l.B
	testutil.GradCheck(t, "LoRALinear", func(in []*tensor.Tensor) *tensor.Tensor { return l.Forward(in[0]) },
		[]*tensor.Tensor{x, a, bb}, 1e-2, 1e-2)
	// The merged Linear computes the same function; l is unchanged.
	wBefore := w.Clone()
	m := l.Merged()
	testutil.AssertClose(t, "merged", m.Forward(x), l.Forward(x), 1e-5, 1e-6)
	testutil.AssertClose(t, "base untouched", w, wBefore, 0, 0)
	if m.Bias != b || nn.MergeLoRA(l).(*nn.Linear).Weight == w {
		t.Fatal("merged layer shares the wrong tensors")
	}
	testutil.MustPanic(t, "input", func() { l.Forward(tensor.Zeros(3, 5)) }, "nn.LoRALinear", "[3 5]", "[4 6]")
	testutil.MustPanic(t, "rank", func() { nn.NewLoRAAdapter(r, 6, 4, 0, 1, 0) }, "nn.NewLoRAAdapter", "rank 0")
}

// tfSmallEncoder is a d=16 2-layer encoder with nonzero biases.
func tfSmallEncoder(r *tensor.RNG) *nn.TransformerEncoder {
	cfg := nn.DefaultTransformerEncoderLayer(16, 4)
	cfg.DimFeedforward, cfg.Dropout, cfg.BatchFirst = 24, 0.1, true
	return nn.NewTransformerEncoder(r, cfg, 2, true)
}

func TestApplyAndMergeLoRA(t *testing.T) {
	r := tensor.NewRNG(3)
	enc := tfSmallEncoder(r)
	plainKeys := strings.Join(tfKeys(nn.StateDict(enc)), ",")
	pretrained := map[string]*tensor.Tensor{}
	for k, v := range nn.StateDict(enc) {
		pretrained[k] = v.Clone()
	}
	nn.Freeze(enc)
	names := nn.ApplyLoRA(enc, 4, 8, nil, nn.LoRAOptions{Dropout: 0.1, RNG: r})
	want := "layers.0.self_attn.in_proj,layers.0.self_attn.out_proj,layers.0.linear1,layers.0.linear2," +
		"layers.1.self_attn.in_proj,layers.1.self_attn.out_proj,layers.1.linear1,layers.1.linear2"
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("adapted %s\nwant %s", got, want)
	}
	if _, ok := enc.Layers[0].Linear1.(*nn.LoRALinear); !ok {
		t.Fatalf("linear1 is a %T", enc.Layers[0].Linear1)
	}
	sd := nn.StateDict(enc)
	for _, k := range []string{"layers.0.self_attn.in_proj_lora.lora_A", "layers.0.self_attn.in_proj_lora.lora_B",
		"layers.1.self_attn.out_proj.lora_A", "layers.1.linear2.lora_B", "layers.1.linear2.weight", "layers.0.self_attn.in_proj_weight"} {
		if sd[k] == nil {
			t.Fatalf("state dict lacks %s", k)
		}
	}
	if s := sd["layers.0.self_attn.in_proj_lora.lora_B"].Shape(); s[0] != 48 || s[1] != 4 {
		t.Fatalf("packed lora_B shape %v", s)
	}
	// A pretrained checkpoint loads non-strictly; strict loading names the adapters.
	if err := nn.LoadStateDict(enc, pretrained, false); err != nil {
		t.Fatal(err)
	}
	if err := nn.LoadStateDict(enc, pretrained, true); err == nil || !strings.Contains(err.Error(), "lora_A") {
		t.Fatalf("strict load: %v", err)
	}
	// Only the adapters are trainable and only they get gradients.
	tfRandomizeB(enc, r)
	for _, p := range nn.NamedTrainableParameters(enc) {
		if !strings.Contains(p.Name, "lora_") {
			t.Fatalf("%s is trainable", p.Name)
		}
	}
	if n := len(nn.TrainableParameters(enc)); n != 16 {
		t.Fatalf("%d trainable tensors, want 16", n)
	}
	x := testutil.Rand(4, -1, 1, 2, 5, 16)
	kpm := nn.PaddingMask([]int{5, 3}, 5)
	tensor.Sum(tensor.Mul(enc.ForwardMasked(x, nil, kpm), testutil.Rand(5, -1, 1, 2, 5, 16))).Backward()
	for _, p := range nn.NamedParameters(enc) {
		adapter := strings.Contains(p.Name, "lora_")
		if g := p.Tensor.Grad(); (g != nil) != adapter {
			t.Fatalf("%s: has gradient %v", p.Name, g != nil)
		} else if adapter && tensor.Sum(tensor.Abs(g)).Item() == 0 {
			t.Fatalf("%s: zero gradient", p.Name)
		}
	}
	// Merged and unmerged agree in eval mode, and the merged model has the
	// plain model's keys.
	nn.Eval(enc)
	before := enc.ForwardMasked(x, nil, kpm)
	merged := nn.MergeLoRA(enc).(*nn.TransformerEncoder)
	if merged != enc {
		t.Fatal("MergeLoRA returned another model")
	}
	after := enc.ForwardMasked(x, nil, kpm)
	testutil.AssertClose(t, "merged vs unmerged", after, before, 1e-5, 1e-5)
	if got := strings.Join(tfKeys(nn.StateDict(enc)), ","); got != plainKeys {
		t.Fatalf("merged keys %s\nwant %s", got, plainKeys)
	}
	if _, ok := enc.Layers[1].SelfAttn.OutProj.(*nn.Linear); !ok || enc.Layers[1].SelfAttn.InProjLoRA != nil {
		t.Fatal("adapters left after merging")
	}
	// The merge changed the weights (B was not zero).
	if testutil.Close(nn.StateDict(enc)["layers.0.linear1.weight"], pretrained["layers.0.linear1.weight"], 1e-6, 1e-7) == nil {
		t.Fatal("merging left linear1's weight unchanged")
	}
}

// Trainable parameters stay under 5% on a d=128, 4-layer encoder, alone
// (rank 4) and under an embedding table and a head (rank 8).
func TestLoRATrainableFraction(t *testing.T) {
	r := tensor.NewRNG(1)
	cfg := nn.DefaultTransformerEncoderLayer(128, 4)
	cfg.DimFeedforward = 512
	enc := nn.NewTransformerEncoder(r, cfg, 4, true)
	nn.Freeze(enc)
	if nn.NumTrainableParams(enc) != 0 {
		t.Fatal("Freeze left trainable parameters")
	}
	names := nn.ApplyLoRA(enc, 4, 8, nil, nn.LoRAOptions{RNG: r})
	frac := float64(nn.NumTrainableParams(enc)) / float64(nn.NumParams(enc))
	t.Logf("rank 4: %d adapted maps, %d of %d parameters trainable (%.2f%%)", len(names), nn.NumTrainableParams(enc), nn.NumParams(enc), 100*frac)
	if len(names) != 16 || frac > 0.05 || frac < 0.01 {
		t.Fatalf("%d maps adapted, trainable fraction %.4f", len(names), frac)
	}

	type classifier struct {
		Embed   *nn.Embedding
		Encoder *nn.TransformerEncoder
		Head    nn.Module
	}
	enc2 := nn.NewTransformerEncoder(r, cfg, 4, true)
	model := &classifier{Embed: nn.NewEmbedding(r, 8000, 128, 0), Encoder: enc2, Head: nn.NewLinear(r, 128, 3, true)}
	nn.Freeze(model.Embed)
	nn.Freeze(model.Encoder)
	names = nn.ApplyLoRA(nn.NewSequential(model.Encoder), 8, 16, nil, nn.LoRAOptions{RNG: r})
	total := nn.NumParams(model.Embed) + nn.NumParams(model.Encoder) + nn.NumParams(model.Head)
	train := nn.NumTrainableParams(model.Encoder) + nn.NumTrainableParams(model.Head)
	frac = float64(train) / float64(total)
	t.Logf("rank 8 with embeddings and head: %d of %d parameters trainable (%.2f%%)", train, total, 100*frac)
	if len(names) != 16 || frac > 0.05 {
		t.Fatalf("%d maps adapted, trainable fraction %.4f", len(names), frac)
	}
}

type tfNet struct {
	Fixed *nn.Linear
	Body  *nn.Sequential
}

func (n *tfNet) Forward(x *tensor.Tensor) *tensor.Tensor { return n.Body.Forward(n.Fixed.Forward(x)) }

type tfHead struct{ Out *nn.LoRALinear }

func (h *tfHead) Forward(x *tensor.Tensor) *tensor.Tensor { return h.Out.Forward(x) }

// Targets decide what is adapted; a Linear in a *Linear-typed field cannot
// be replaced and is not offered.
func TestApplyLoRATargets(t *testing.T) {
	r := tensor.NewRNG(2)
	n := &tfNet{Fixed: nn.NewLinear(r, 3, 3, true), Body: nn.NewSequential(nn.NewLinear(r, 3, 4, true), &nn.ReLU{}, nn.NewLinear(r, 4, 2, false))}
	var offered []string
	names := nn.ApplyLoRA(n, 2, 2, func(name string, l *nn.Linear) bool {
		offered = append(offered, name)
		return l.Bias == nil
	}, nn.LoRAOptions{})
	if strings.Join(offered, ",") != "body.0,body.2" || strings.Join(names, ",") != "body.2" {
		t.Fatalf("offered %v, adapted %v", offered, names)
	}
	if _, ok := n.Body.Layers[2].(*nn.LoRALinear); !ok || !n.Fixed.Weight.RequiresGrad() || !nn.Parameters(n.Body.Layers[0])[0].RequiresGrad() {
		t.Fatal("wrong layers adapted or frozen")
	}
	if got := strings.Join(tfKeys(nn.StateDict(n)), ","); !strings.Contains(got, "body.2.lora_A,body.2.lora_B,body.2.weight") {
		t.Fatalf("keys %s", got)
	}
	// A LoRALinear in a concrete field is merged in place.
	h := &tfHead{Out: nn.NewLoRALinear(r, nn.NewLinear(r, 3, 2, true), 2, 4, 0)}
	nn.Normal(h.Out.B, 0, 1, r)
	x := testutil.Rand(3, -1, 1, 4, 3)
	before := h.Out.Forward(x)
	nn.MergeLoRA(h)
	testutil.AssertClose(t, "in-place merge", h.Out.Forward(x), before, 1e-5, 1e-6)
	if tensor.Sum(tensor.Abs(h.Out.B)).Item() != 0 {
		t.Fatal("B not zeroed by the in-place merge")
	}
	testutil.MustPanic(t, "rank", func() { nn.ApplyLoRA(n, 0, 1, nil, nn.LoRAOptions{}) }, "nn.ApplyLoRA", "rank 0")
}

// The packed in-projection adapter has correct gradients, with and without
// the self-attention fast path.
func TestInProjLoRAGradCheck(t *testing.T) {
	r := tensor.NewRNG(4)
	m := nn.NewMultiheadAttention(r, 4, 2, 0, true, false)
	m.AddInProjLoRA(r, 2, 4, 0)
	nn.Normal(m.InProjLoRA.B, 0, 0.5, r)
	if m.InProjWeight.RequiresGrad() || m.InProjBias.RequiresGrad() {
		t.Fatal("in_proj not frozen")
	}
	x := testutil.Rand(5, -1, 1, 3, 2, 4)
	kv := testutil.Rand(6, -1, 1, 2, 2, 4)
	a, b := m.InProjLoRA.A, m.InProjLoRA.B
	testutil.GradCheck(t, "in_proj LoRA self", func(in []*tensor.Tensor) *tensor.Tensor { return m.Forward(in[0]) },
		[]*tensor.Tensor{x, a, b}, 1e-2, 2e-2)
	testutil.GradCheck(t, "in_proj LoRA cross", func(in []*tensor.Tensor) *tensor.Tensor {
		o, _ := m.Attend(in[0], in[1], in[1], nn.AttentionOptions{})
		return o
	}, []*tensor.Tensor{x, kv, a, b}, 1e-2, 2e-2)
	// The packed adapter equals adding its update to in_proj_weight.
	o := m.Forward(x)
	nn.MergeLoRA(nn.NewSequential(m))
	testutil.AssertClose(t, "packed merge", m.Forward(x), o, 1e-5, 1e-6)
}
