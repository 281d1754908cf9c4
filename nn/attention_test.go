package nn_test

import (
	"math"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

const tfFixturePath = "nn/testdata/torch_transformer.safetensors"

var (
	tfFixOnce sync.Once
	tfFix     *testutil.Fixtures
)

// tfGet returns a fresh copy of a fixture of torch_transformer.safetensors
// (written by tools/fixtures/transformer.py).
func tfGet(t *testing.T, name string) *tensor.Tensor {
	t.Helper()
	tfFixOnce.Do(func() { tfFix = testutil.LoadFixtures(t, tfFixturePath) })
	if tfFix == nil {
		t.Fatal("fixtures not loaded")
	}
	return tfFix.Get(t, name).Clone()
}

// tfState returns the state dict stored under key.p.
func tfState(t *testing.T, key string) map[string]*tensor.Tensor {
	t.Helper()
	tfGet(t, key+".out") // loads the file
	sd := map[string]*tensor.Tensor{}
	for _, n := range tfFix.Names() {
		if k, ok := strings.CutPrefix(n, key+".p."); ok {
			sd[k] = tfGet(t, n)
		}
	}
	if len(sd) == 0 {
		t.Fatalf("no state dict for %s", key)
	}
	return sd
}

// tfLoad loads the fixture state dict strictly into m and checks that m's
// keys are exactly PyTorch's.
func tfLoad(t *testing.T, key string, m nn.Module) {
	t.Helper()
	sd := tfState(t, key)
	if err := nn.LoadStateDict(m, sd, true); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	got := tfKeys(nn.StateDict(m))
	want := tfKeys(sd)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: state dict keys %v, PyTorch's %v", key, got, want)
	}
}

func tfKeys(m map[string]*tensor.Tensor) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// tfCheckGrads compares the gradient of every parameter of m with key.grad.NAME.
func tfCheckGrads(t *testing.T, key string, m nn.Module, rtol, atol float64) {
	t.Helper()
	for _, p := range nn.NamedParameters(m) {
		testutil.AssertClose(t, key+" grad "+p.Name, p.Tensor.Grad(), tfGet(t, key+".grad."+p.Name), rtol, atol)
	}
}

func TestMultiheadAttentionGolden(t *testing.T) {
	cases := []struct {
		key              string
		heads            int
		bias, batchFirst bool
		cross, perHead   bool
		eval             bool
		dropout          float32
		hasKPM, hasMask  bool
		wantKeys         int
	}{
		{key: "mha_kpm", heads: 2, bias: true, hasKPM: true, wantKeys: 4},
		{key: "mha_causal", heads: 2, bias: true, batchFirst: true, perHead: true, hasKPM: true, hasMask: true, wantKeys: 4},
		{key: "mha_cross", heads: 4, cross: true, eval: true, dropout: 0.3, hasMask: true, wantKeys: 2},
		{key: "mha_mask3d", heads: 1, bias: true, batchFirst: true, cross: true, hasKPM: true, hasMask: true, wantKeys: 4},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			m := nn.NewMultiheadAttention(tensor.NewRNG(1), 8, c.heads, c.dropout, c.bias, c.batchFirst)
			if n := len(nn.StateDict(m)); n != c.wantKeys {
				t.Fatalf("state dict has %d keys, want %d", n, c.wantKeys)
			}
			tfLoad(t, c.key, m)
			if c.eval {
				nn.Eval(m)
			}
			q := tfGet(t, c.key+".q").SetRequiresGrad(true)
			k := q
			if c.cross {
				k = tfGet(t, c.key+".k").SetRequiresGrad(true)
			}
			opt := nn.AttentionOptions{NeedWeights: true, PerHeadWeights: c.perHead}
			if c.hasKPM {
				opt.KeyPaddingMask = tfGet(t, c.key+".kpm")
			}
			if c.hasMask {
				opt.AttnMask = tfGet(t, c.key+".mask")
			}
			out, w := m.Attend(q, k, k, opt)
			loss := tensor.Add(tensor.Sum(tensor.Mul(out, tfGet(t, c.key+".R"))), tensor.Sum(tensor.Mul(w, tfGet(t, c.key+".Rw"))))
			loss.Backward()
			testutil.AssertClose(t, "output", out, tfGet(t, c.key+".out"), 1e-5, 1e-6)
			testutil.AssertClose(t, "weights", w, tfGet(t, c.key+".w"), 1e-5, 1e-6)
			testutil.AssertClose(t, "grad query", q.Grad(), tfGet(t, c.key+".grad.q"), 1e-5, 1e-5)
			if c.cross {
				testutil.AssertClose(t, "grad key/value", k.Grad(), tfGet(t, c.key+".grad.k"), 1e-5, 1e-5)
			}
			// The key bias gets a zero gradient in exact arithmetic, so its
			// values are rounding noise of order 1e-6: atol 1e-5.
			tfCheckGrads(t, c.key, m, 1e-5, 1e-5)
		})
	}
}

// Separate key and value tensors take the three-projection path; with equal
// values it must give what the shared key/value path gives.
func TestMultiheadAttentionSeparateKeyValue(t *testing.T) {
	m := nn.NewMultiheadAttention(tensor.NewRNG(2), 8, 2, 0, true, false)
	tfLoad(t, "mha_kpm", m)
	q := tfGet(t, "mha_kpm.q")
	kv := testutil.Rand(3, -1, 1, 6, 3, 8)
	opt := nn.AttentionOptions{NeedWeights: true}
	shared, ws := m.Attend(q, kv, kv, opt)
	sep, wsep := m.Attend(q, kv, kv.Clone(), opt)
	testutil.AssertClose(t, "output", sep, shared, 1e-6, 1e-7)
	testutil.AssertClose(t, "weights", wsep, ws, 1e-6, 1e-7)
	if !tensor.SameShape(sep.Shape(), []int{5, 3, 8}) || !tensor.SameShape(wsep.Shape(), []int{3, 5, 6}) {
		t.Fatalf("shapes %v and %v", sep.Shape(), wsep.Shape())
	}
	// Self-attention with a cloned key/value (no pointer identity) matches
	// the packed path too.
	self := m.Forward(q)
	cl, _ := m.Attend(q, q.Clone(), q.Clone(), nn.AttentionOptions{})
	testutil.AssertClose(t, "self vs separate", cl, self, 1e-6, 1e-7)
}

// An unbatched input gives the batch-of-one result without the batch dim.
func TestMultiheadAttentionUnbatched(t *testing.T) {
	for _, bf := range []bool{false, true} {
		m := nn.NewMultiheadAttention(tensor.NewRNG(4), 6, 3, 0, true, bf)
		x := testutil.Rand(5, -1, 1, 4, 6)
		kpm := tensor.FromInt64([]int64{0, 0, 1, 0}, 4)
		out, w := m.Attend(x, x, x, nn.AttentionOptions{KeyPaddingMask: kpm, NeedWeights: true})
		xb := tensor.Unsqueeze(x, map[bool]int{false: 1, true: 0}[bf])
		ob, wb := m.Attend(xb, xb, xb, nn.AttentionOptions{KeyPaddingMask: tensor.Reshape(kpm, 1, 4), NeedWeights: true})
		testutil.AssertClose(t, "unbatched output", out, tensor.Reshape(ob, 4, 6), 1e-6, 1e-7)
		testutil.AssertClose(t, "unbatched weights", w, tensor.Reshape(wb, 4, 4), 1e-6, 1e-7)
		for i := range 4 {
			if w.At(i, 2) != 0 {
				t.Fatalf("padded key got weight %v", w.At(i, 2))
			}
		}
	}
}

func TestMultiheadAttentionGradCheck(t *testing.T) {
	for _, tc := range []struct {
		name       string
		batchFirst bool
		mode       int // 0 self-attention, 1 key is value, 2 separate key and value
	}{{"self", false, 0}, {"kv", true, 1}, {"separate", false, 2}} {
		r := tensor.NewRNG(5)
		m := nn.NewMultiheadAttention(r, 4, 2, 0, true, tc.batchFirst)
		nn.Normal(m.InProjBias, 0, 0.3, r)
		out := m.OutProj.(*nn.Linear)
		nn.Normal(out.Bias, 0, 0.3, r)
		const N, L, S = 2, 3, 2
		shape := func(n int) []int {
			if tc.batchFirst {
				return []int{N, n, 4}
			}
			return []int{n, N, 4}
		}
		q := testutil.Rand(11, -1, 1, shape(L)...)
		k := testutil.Rand(12, -1, 1, shape(S)...)
		v := testutil.Rand(13, -1, 1, shape(S)...)
		kpm := tensor.FromInt64([]int64{0, 0, 0, 1}, N, S)
		if tc.mode < 2 {
			v.SetRequiresGrad(false)
		}
		if tc.mode == 0 {
			k.SetRequiresGrad(false)
		}
		f := func(in []*tensor.Tensor) *tensor.Tensor {
			var o, w *tensor.Tensor
			switch tc.mode {
			case 0:
				o, w = m.Attend(in[0], in[0], in[0], nn.AttentionOptions{NeedWeights: true, AttnMask: nn.CausalMask(L)})
			case 1:
				o, w = m.Attend(in[0], in[1], in[1], nn.AttentionOptions{NeedWeights: true, KeyPaddingMask: kpm})
			default:
				o, w = m.Attend(in[0], in[1], in[2], nn.AttentionOptions{NeedWeights: true, PerHeadWeights: true, KeyPaddingMask: kpm})
			}
			return tensor.Concat([]*tensor.Tensor{tensor.Flatten(o, 0, -1), tensor.Flatten(w, 0, -1)}, 0)
		}
		inputs := []*tensor.Tensor{q, k, v, m.InProjWeight, m.InProjBias, out.Weight, out.Bias}
		testutil.GradCheck(t, "MultiheadAttention "+tc.name, f, inputs, 1e-2, 2e-2)
	}
}

func TestAttentionMaskHelpers(t *testing.T) {
	c := nn.CausalMask(3)
	inf := float32(math.Inf(-1))
	want := []float32{0, inf, inf, 0, 0, inf, 0, 0, 0}
	for i, v := range c.Data() {
		if v != want[i] {
			t.Fatalf("CausalMask(3) = %v", c.Data())
		}
	}
	p := nn.PaddingMask([]int{2, 0, 3}, 3)
	if got := p.Int64s(); !tfEqualInts(got, []int64{0, 0, 1, 1, 1, 1, 0, 0, 0}) {
		t.Fatalf("PaddingMask = %v", got)
	}
	a := nn.PaddingMaskFromAttention(tensor.FromSlice([]float32{1, 1, 0, 1, 0, 0}, 2, 3))
	if got := a.Int64s(); !tfEqualInts(got, []int64{0, 0, 1, 0, 1, 1}) || !tensor.SameShape(a.Shape(), []int{2, 3}) {
		t.Fatalf("PaddingMaskFromAttention = %v %v", got, a.Shape())
	}
	testutil.MustPanic(t, "PaddingMask", func() { nn.PaddingMask([]int{4}, 3) }, "nn.PaddingMask", "4")
}

func tfEqualInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A float mask is additive; an int64 mask is boolean.
func TestAttentionMaskKinds(t *testing.T) {
	m := nn.NewMultiheadAttention(tensor.NewRNG(6), 4, 1, 0, true, true)
	x := testutil.Rand(7, -1, 1, 1, 3, 4)
	boolMask := tensor.FromInt64([]int64{0, 1, 1, 0, 0, 1, 0, 0, 0}, 3, 3)
	_, wb := m.Attend(x, x, x, nn.AttentionOptions{AttnMask: boolMask, NeedWeights: true})
	_, wf := m.Attend(x, x, x, nn.AttentionOptions{AttnMask: nn.CausalMask(3), NeedWeights: true})
	testutil.AssertClose(t, "bool vs float causal", wb, wf, 0, 0)
	// Adding a constant to a whole row leaves the softmax unchanged; adding
	// it to one key changes it.
	_, w0 := m.Attend(x, x, x, nn.AttentionOptions{NeedWeights: true})
	shift := tensor.FromSlice([]float32{2, 2, 2, 0, 0, 0, -1, -1, -1}, 3, 3)
	_, ws := m.Attend(x, x, x, nn.AttentionOptions{AttnMask: shift, NeedWeights: true})
	testutil.AssertClose(t, "row shift", ws, w0, 1e-5, 1e-6)
	bump := tensor.FromSlice([]float32{0, 0, 1, 0, 0, 1, 0, 0, 1}, 3, 3)
	_, wk := m.Attend(x, x, x, nn.AttentionOptions{AttnMask: bump, NeedWeights: true})
	if testutil.Close(wk, w0, 1e-3, 1e-4) == nil {
		t.Fatal("an additive float mask did not change the weights")
	}
}

func TestAttentionDropoutTrainEval(t *testing.T) {
	m := nn.NewMultiheadAttention(tensor.NewRNG(8), 4, 2, 0.5, true, false)
	x := testutil.Rand(9, -1, 1, 5, 2, 4)
	_, w := m.Attend(x, x, x, nn.AttentionOptions{NeedWeights: true, PerHeadWeights: true})
	zeros := 0
	for _, v := range w.Data() {
		if v == 0 {
			zeros++
		}
	}
	if zeros == 0 {
		t.Fatal("training with dropout 0.5 dropped no attention weight")
	}
	nn.Eval(m)
	_, we := m.Attend(x, x, x, nn.AttentionOptions{NeedWeights: true, PerHeadWeights: true})
	s := tensor.SumAxes(we, false, -1)
	testutil.AssertClose(t, "eval rows sum to 1", s, tensor.Ones(s.Shape()...), 1e-5, 1e-6)
}

func TestMultiheadAttentionShapeErrors(t *testing.T) {
	m := nn.NewMultiheadAttention(tensor.NewRNG(1), 8, 2, 0, true, false)
	x := tensor.Zeros(5, 3, 8)
	testutil.MustPanic(t, "embed dim", func() { m.Forward(tensor.Zeros(5, 3, 6)) }, "nn.MultiheadAttention", "[5 3 6]", "8")
	testutil.MustPanic(t, "rank", func() { m.Forward(tensor.Zeros(5, 3, 8, 1)) }, "nn.MultiheadAttention", "[5 3 8 1]")
	testutil.MustPanic(t, "key/value", func() { m.Attend(x, tensor.Zeros(4, 3, 8), tensor.Zeros(5, 3, 8), nn.AttentionOptions{}) },
		"nn.MultiheadAttention", "[4 3 8]", "[5 3 8]")
	testutil.MustPanic(t, "batch", func() { m.Attend(x, tensor.Zeros(4, 2, 8), tensor.Zeros(4, 2, 8), nn.AttentionOptions{}) },
		"nn.MultiheadAttention", "[4 2 8]")
	testutil.MustPanic(t, "kpm", func() {
		m.Attend(x, x, x, nn.AttentionOptions{KeyPaddingMask: tensor.ZerosInt64(5, 3)})
	}, "nn.MultiheadAttention", "key_padding_mask", "[5 3]", "[3 5]")
	testutil.MustPanic(t, "attn_mask", func() {
		m.Attend(x, x, x, nn.AttentionOptions{AttnMask: tensor.Zeros(5, 4)})
	}, "nn.MultiheadAttention", "attn_mask", "[5 4]", "[5 5]", "[6 5 5]")
	testutil.MustPanic(t, "constructor", func() { nn.NewMultiheadAttention(tensor.NewRNG(1), 10, 3, 0, true, false) },
		"nn.NewMultiheadAttention", "10", "3")
}

// A float attention mask that requires a gradient (a learned bias) gets one,
// in both its 2-d and 3-d forms, alongside a key padding mask.
func TestLearnedAttentionBiasGradCheck(t *testing.T) {
	m := nn.NewMultiheadAttention(tensor.NewRNG(3), 4, 2, 0, true, true)
	x := testutil.Rand(4, -1, 1, 2, 3, 4)
	kpm := tensor.FromInt64([]int64{0, 0, 1, 0, 0, 0}, 2, 3)
	for _, shape := range [][]int{{3, 3}, {4, 3, 3}} {
		bias := testutil.Rand(5, -1, 1, shape...)
		testutil.GradCheck(t, "attention bias", func(in []*tensor.Tensor) *tensor.Tensor {
			_, w := m.Attend(in[0], in[0], in[0], nn.AttentionOptions{AttnMask: in[1], KeyPaddingMask: kpm, NeedWeights: true})
			return w
		}, []*tensor.Tensor{x, bias}, 1e-2, 2e-2)
		// The same values as a constant mask give the same weights.
		_, a := m.Attend(x, x, x, nn.AttentionOptions{AttnMask: bias, KeyPaddingMask: kpm, NeedWeights: true})
		_, b := m.Attend(x, x, x, nn.AttentionOptions{AttnMask: bias.Detach(), KeyPaddingMask: kpm, NeedWeights: true})
		testutil.AssertClose(t, "learned vs constant mask", a, b, 1e-6, 1e-7)
		if a.At(0, 0, 2) != 0 {
			t.Fatalf("padded key got weight %v", a.At(0, 0, 2))
		}
	}
}
