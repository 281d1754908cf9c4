package nn_test

import (
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

const rnnFixturePath = "nn/testdata/torch_rnn.safetensors"

var (
	rnnFixMu sync.Mutex
	rnnFix   map[string]*tensor.Tensor
)

// rnnGet returns a copy of a tensor of torch_rnn.safetensors (written by
// tools/fixtures/rnn.py); ok is false when it is absent.
func rnnGet(t *testing.T, name string) (v *tensor.Tensor, ok bool) {
	t.Helper()
	rnnFixMu.Lock()
	defer rnnFixMu.Unlock()
	if rnnFix == nil {
		f := testutil.LoadFixtures(t, rnnFixturePath)
		all := map[string]*tensor.Tensor{}
		for _, k := range f.Names() {
			all[k] = f.Get(t, k)
		}
		rnnFix = all
	}
	v, ok = rnnFix[name]
	if ok {
		v = v.Clone()
	}
	return v, ok
}

func rnnMust(t *testing.T, name string) *tensor.Tensor {
	t.Helper()
	v, ok := rnnGet(t, name)
	if !ok {
		t.Fatalf("fixture %q missing from %s", name, rnnFixturePath)
	}
	return v
}

// rnnStateDict returns the PyTorch state dict stored for case key.
func rnnStateDict(t *testing.T, key string) map[string]*tensor.Tensor {
	t.Helper()
	rnnGet(t, key+".x") // load
	prefix := key + ".p."
	out := map[string]*tensor.Tensor{}
	rnnFixMu.Lock()
	defer rnnFixMu.Unlock()
	for k, v := range rnnFix {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = v.Clone()
		}
	}
	return out
}

func sortedNames(m map[string]*tensor.Tensor) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type rnnCase struct {
	key  string
	lstm bool
	opt  nn.RNNOptions
	in   int
	hid  int
	rtol float64
}

func rnnCases() []rnnCase {
	bi2 := nn.RNNOptions{NumLayers: 2, Bias: true, Bidirectional: true}
	bi2bf := bi2
	bi2bf.BatchFirst = true
	const r5 = 1e-5
	return []rnnCase{
		{"lstm", true, bi2, 3, 4, r5},
		{"lstm_bf_packed", true, bi2bf, 3, 4, r5},
		{"lstm_packed", true, bi2, 3, 4, r5},
		{"lstm_nobias", true, nn.RNNOptions{BatchFirst: true}, 3, 4, r5},
		{"lstm_unbatched", true, bi2, 3, 4, r5},
		{"gru", false, bi2, 3, 4, r5},
		{"gru_bf_packed", false, bi2bf, 3, 4, r5},
		{"gru_packed", false, bi2, 3, 4, r5},
		{"gru_3layers", false, nn.RNNOptions{NumLayers: 3, Bias: true, BatchFirst: true}, 3, 4, r5},
		{"gru_nobias", false, nn.RNNOptions{NumLayers: 1}, 3, 4, r5},
		{"gru_unbatched", false, nn.RNNOptions{NumLayers: 1, Bias: true, BatchFirst: true}, 3, 4, r5},
		{"lstm_long", true, nn.RNNOptions{Bias: true, BatchFirst: true, Bidirectional: true}, 3, 6, 1e-4},
	}
}

// TestRNNGolden compares outputs, final states and the gradients of the
// input, the initial states and every parameter with PyTorch's, with and
// without packed (variable-length) batches.
func TestRNNGolden(t *testing.T) {
	const atol = 1e-6
	for _, c := range rnnCases() {
		t.Run(c.key, func(t *testing.T) {
			r := tensor.NewRNG(5)
			var m nn.Module
			if c.lstm {
				m = nn.NewLSTM(r, c.in, c.hid, c.opt)
			} else {
				m = nn.NewGRU(r, c.in, c.hid, c.opt)
			}
			sd := rnnStateDict(t, c.key)
			if got, want := sortedNames(nn.StateDict(m)), sortedNames(sd); !reflect.DeepEqual(got, want) {
				t.Fatalf("state dict keys %v, PyTorch %v", got, want)
			}
			// Parameter order is PyTorch's too (named_parameters order).
			if err := nn.LoadStateDict(m, sd, true); err != nil {
				t.Fatal(err)
			}
			x := rnnMust(t, c.key+".x").SetRequiresGrad(true)
			var lengths []int
			if l, ok := rnnGet(t, c.key+".lengths"); ok {
				for _, v := range l.Int64s() {
					lengths = append(lengths, int(v))
				}
			}
			h0, hasH0 := rnnGet(t, c.key+".h0")
			c0, hasC0 := rnnGet(t, c.key+".c0")
			if hasH0 {
				h0.SetRequiresGrad(true)
			} else {
				h0 = nil
			}
			if hasC0 {
				c0.SetRequiresGrad(true)
			} else {
				c0 = nil
			}
			var out, hn, cn *tensor.Tensor
			if c.lstm {
				out, hn, cn = m.(*nn.LSTM).ForwardSeq(x, lengths, h0, c0)
			} else {
				out, hn = m.(*nn.GRU).ForwardSeq(x, lengths, h0)
			}
			testutil.AssertClose(t, "output", out, rnnMust(t, c.key+".out"), c.rtol, atol)
			testutil.AssertClose(t, "h_n", hn, rnnMust(t, c.key+".hn"), c.rtol, atol)
			loss := tensor.Add(tensor.Sum(tensor.Mul(out, rnnMust(t, c.key+".R"))), tensor.Sum(tensor.Mul(hn, rnnMust(t, c.key+".Rh"))))
			if c.lstm {
				testutil.AssertClose(t, "c_n", cn, rnnMust(t, c.key+".cn"), c.rtol, atol)
				loss = tensor.Add(loss, tensor.Sum(tensor.Mul(cn, rnnMust(t, c.key+".Rc"))))
			} else if cn != nil {
				t.Error("GRU returned a cell state")
			}
			loss.Backward()
			testutil.AssertClose(t, "grad x", x.Grad(), rnnMust(t, c.key+".grad.x"), c.rtol, atol)
			if hasH0 {
				testutil.AssertClose(t, "grad h0", h0.Grad(), rnnMust(t, c.key+".grad.h0"), c.rtol, atol)
			}
			if hasC0 {
				testutil.AssertClose(t, "grad c0", c0.Grad(), rnnMust(t, c.key+".grad.c0"), c.rtol, atol)
			}
			params := nn.NamedParameters(m)
			if len(params) != len(sd) {
				t.Errorf("%d parameters, PyTorch %d", len(params), len(sd))
			}
			for _, p := range params {
				testutil.AssertClose(t, "grad "+p.Name, p.Tensor.Grad(), rnnMust(t, c.key+".grad."+p.Name), c.rtol, atol)
			}
			// The inference path (one projection of the whole sequence) agrees too.
			tensor.NoGrad(func() {
				var o, h *tensor.Tensor
				if c.lstm {
					o, h, _ = m.(*nn.LSTM).ForwardSeq(x, lengths, h0, c0)
				} else {
					o, h = m.(*nn.GRU).ForwardSeq(x, lengths, h0)
				}
				testutil.AssertClose(t, "NoGrad output", o, rnnMust(t, c.key+".out"), c.rtol, atol)
				testutil.AssertClose(t, "NoGrad h_n", h, rnnMust(t, c.key+".hn"), c.rtol, atol)
			})
			// Forward is ForwardSeq without lengths and states.
			if lengths == nil && !hasH0 {
				tensor.NoGrad(func() {
					testutil.AssertClose(t, "Forward", m.Forward(x), out, 0, 0)
				})
			}
		})
	}
}

func TestRNNParameterNamesFollowPyTorchOrder(t *testing.T) {
	m := nn.NewLSTM(tensor.NewRNG(1), 3, 4, nn.RNNOptions{NumLayers: 2, Bias: true, Bidirectional: true})
	var got []string
	for _, p := range nn.NamedParameters(m) {
		got = append(got, p.Name+fmtShape(p.Tensor.Shape()))
	}
	want := []string{
		"weight_ih_l0[16 3]", "weight_hh_l0[16 4]", "bias_ih_l0[16]", "bias_hh_l0[16]",
		"weight_ih_l0_reverse[16 3]", "weight_hh_l0_reverse[16 4]", "bias_ih_l0_reverse[16]", "bias_hh_l0_reverse[16]",
		"weight_ih_l1[16 8]", "weight_hh_l1[16 4]", "bias_ih_l1[16]", "bias_hh_l1[16]",
		"weight_ih_l1_reverse[16 8]", "weight_hh_l1_reverse[16 4]", "bias_ih_l1_reverse[16]", "bias_hh_l1_reverse[16]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parameters\n%v\nwant\n%v", got, want)
	}
	g := nn.NewGRU(tensor.NewRNG(1), 5, 2, nn.RNNOptions{NumLayers: 1})
	got = got[:0]
	for _, p := range nn.NamedParameters(g) {
		got = append(got, p.Name+fmtShape(p.Tensor.Shape()))
	}
	if want := []string{"weight_ih_l0[6 5]", "weight_hh_l0[6 2]"}; !reflect.DeepEqual(got, want) {
		t.Errorf("GRU without bias: %v, want %v", got, want)
	}
	wih, whh, bih, bhh := m.Layer(1, true)
	if wih != m.WeightIhL1Reverse || whh != m.WeightHhL1Reverse || bih != m.BiasIhL1Reverse || bhh != m.BiasHhL1Reverse {
		t.Error("Layer(1, true) does not return the l1_reverse fields")
	}
	if w, _, b, _ := g.Layer(0, false); w != g.WeightIhL0 || b != nil {
		t.Error("GRU Layer(0, false) wrong")
	}
}

func fmtShape(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = itoa(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestRNNInitialisation(t *testing.T) {
	m := nn.NewLSTM(tensor.NewRNG(3), 10, 25, nn.RNNOptions{NumLayers: 2, Bias: true})
	for _, p := range nn.NamedParameters(m) {
		lo, hi := float32(0), float32(0)
		for _, v := range p.Tensor.Data() {
			lo, hi = min(lo, v), max(hi, v)
		}
		// U(-1/√25, 1/√25) = U(-0.2, 0.2); with ≥100 values both ends are approached.
		if lo < -0.2 || hi > 0.2 || lo > -0.15 || hi < 0.15 {
			t.Errorf("%s: values in [%v, %v], want U(-0.2, 0.2)", p.Name, lo, hi)
		}
		if !p.Tensor.RequiresGrad() {
			t.Errorf("%s does not require grad", p.Name)
		}
	}
	a := nn.NewGRU(tensor.NewRNG(9), 3, 4, nn.DefaultRNN)
	b := nn.NewGRU(tensor.NewRNG(9), 3, 4, nn.DefaultRNN)
	testutil.AssertClose(t, "same seed", a.WeightHhL0, b.WeightHhL0, 0, 0)
}

// TestRNNGradCheck checks every gradient of a tiny bidirectional LSTM and GRU
// with packed lengths against finite differences.
func TestRNNGradCheck(t *testing.T) {
	opt := nn.RNNOptions{NumLayers: 2, Bias: true, Bidirectional: true, BatchFirst: true}
	lengths := []int{3, 1}
	t.Run("lstm", func(t *testing.T) {
		m := nn.NewLSTM(tensor.NewRNG(2), 2, 2, opt)
		x := testutil.Rand(1, -1, 1, 2, 3, 2)
		h0 := testutil.Rand(2, -1, 1, 4, 2, 2)
		c0 := testutil.Rand(3, -1, 1, 4, 2, 2)
		params := nn.Parameters(m)
		inputs := append([]*tensor.Tensor{x, h0, c0}, params...)
		testutil.GradCheck(t, "LSTM", func(in []*tensor.Tensor) *tensor.Tensor {
			out, hn, cn := m.ForwardSeq(in[0], lengths, in[1], in[2])
			return tensor.Concat([]*tensor.Tensor{out.Reshape(-1), hn.Reshape(-1), cn.Reshape(-1)}, 0)
		}, inputs, 1e-2, 1e-2)
	})
	t.Run("gru", func(t *testing.T) {
		m := nn.NewGRU(tensor.NewRNG(2), 2, 2, opt)
		x := testutil.Rand(4, -1, 1, 2, 3, 2)
		h0 := testutil.Rand(5, -1, 1, 4, 2, 2)
		inputs := append([]*tensor.Tensor{x, h0}, nn.Parameters(m)...)
		testutil.GradCheck(t, "GRU", func(in []*tensor.Tensor) *tensor.Tensor {
			out, hn := m.ForwardSeq(in[0], lengths, in[1])
			return tensor.Concat([]*tensor.Tensor{out.Reshape(-1), hn.Reshape(-1)}, 0)
		}, inputs, 1e-2, 1e-2)
	})
}

// TestRNNPackedSemantics checks the variable-length rules directly: padded
// outputs are zero, h_n is the state at the last valid step, and a sequence
// gives the same results alone as inside a padded batch.
func TestRNNPackedSemantics(t *testing.T) {
	for _, lstm := range []bool{true, false} {
		opt := nn.RNNOptions{NumLayers: 2, Bias: true, Bidirectional: true, BatchFirst: true}
		var run func(x *tensor.Tensor, lengths []int) (out, hn *tensor.Tensor)
		if lstm {
			m := nn.NewLSTM(tensor.NewRNG(4), 3, 5, opt)
			run = func(x *tensor.Tensor, l []int) (*tensor.Tensor, *tensor.Tensor) {
				o, h, _ := m.ForwardSeq(x, l, nil, nil)
				return o, h
			}
		} else {
			m := nn.NewGRU(tensor.NewRNG(4), 3, 5, opt)
			run = func(x *tensor.Tensor, l []int) (*tensor.Tensor, *tensor.Tensor) { return m.ForwardSeq(x, l, nil) }
		}
		x := testutil.Rand(8, -1, 1, 2, 6, 3).Detach()
		out, hn := run(x, []int{6, 2})
		// Sequence 1 alone, cut to its 2 steps.
		alone, hAlone := run(x.Slice(0, 1, 2, 1).Slice(1, 0, 2, 1), nil)
		testutil.AssertClose(t, "packed output = unpadded output", out.Slice(0, 1, 2, 1).Slice(1, 0, 2, 1), alone, 1e-6, 1e-7)
		testutil.AssertClose(t, "packed h_n = unpadded h_n", hn.Slice(1, 1, 2, 1), hAlone, 1e-6, 1e-7)
		for _, v := range out.Slice(0, 1, 2, 1).Slice(1, 2, 6, 1).Data() {
			if v != 0 {
				t.Fatalf("lstm=%v: output at a padded step is %v, want 0", lstm, v)
			}
		}
		// Padding values do not matter, even NaN.
		xn := x.Clone()
		for t := 2; t < 6; t++ {
			for k := range 3 {
				xn.Set(float32(nanValue()), 1, t, k)
			}
		}
		out2, hn2 := run(xn, []int{6, 2})
		testutil.AssertClose(t, "output with NaN padding", out2, out, 0, 0)
		testutil.AssertClose(t, "h_n with NaN padding", hn2, hn, 0, 0)
	}
}

// TestRNNNoGradPathMatches: under tensor.NoGrad the first layer projects the
// whole sequence at once; the results equal the recording path's.
func TestRNNNoGradPathMatches(t *testing.T) {
	opt := nn.RNNOptions{NumLayers: 2, Bias: true, Bidirectional: true}
	lengths := []int{4, 7, 1}
	x := testutil.Rand(21, -1, 1, 7, 3, 5).Detach()
	h0 := testutil.Rand(22, -1, 1, 4, 3, 6).Detach()
	c0 := testutil.Rand(23, -1, 1, 4, 3, 6).Detach()
	l := nn.NewLSTM(tensor.NewRNG(6), 5, 6, opt)
	o1, h1, c1 := l.ForwardSeq(x, lengths, h0, c0)
	if !o1.RequiresGrad() {
		t.Fatal("output does not require grad")
	}
	var o2, h2, c2 *tensor.Tensor
	tensor.NoGrad(func() { o2, h2, c2 = l.ForwardSeq(x, lengths, h0, c0) })
	testutil.AssertClose(t, "LSTM output", o2, o1, 1e-6, 1e-7)
	testutil.AssertClose(t, "LSTM h_n", h2, h1, 1e-6, 1e-7)
	testutil.AssertClose(t, "LSTM c_n", c2, c1, 1e-6, 1e-7)
	g := nn.NewGRU(tensor.NewRNG(6), 5, 6, opt)
	o1, h1 = g.ForwardSeq(x, lengths, h0)
	tensor.NoGrad(func() { o2, h2 = g.ForwardSeq(x, lengths, h0) })
	testutil.AssertClose(t, "GRU output", o2, o1, 1e-6, 1e-7)
	testutil.AssertClose(t, "GRU h_n", h2, h1, 1e-6, 1e-7)
}

func nanValue() float64 {
	z := 0.0
	return z / z
}

func TestRNNDropoutBetweenLayers(t *testing.T) {
	opt := nn.RNNOptions{NumLayers: 2, Bias: true, Dropout: 0.5}
	x := testutil.Rand(3, -1, 1, 4, 2, 3).Detach()
	a := nn.NewLSTM(tensor.NewRNG(7), 3, 4, opt)
	b := nn.NewLSTM(tensor.NewRNG(7), 3, 4, opt)
	ya, yb := a.Forward(x), b.Forward(x)
	testutil.AssertClose(t, "same seed, same dropout masks", ya, yb, 0, 0)
	nn.Eval(a)
	ye := a.Forward(x)
	if testutil.Close(ya, ye, 1e-6, 1e-7) == nil {
		t.Error("dropout in training changed nothing")
	}
	noDrop := opt
	noDrop.Dropout = 0
	c := nn.NewLSTM(tensor.NewRNG(7), 3, 4, noDrop)
	testutil.AssertClose(t, "eval = no dropout", ye, c.Forward(x), 0, 0)
	if got := nn.RandomSources(a); len(got) != 1 || got[""] != a.RNG {
		t.Errorf("RandomSources = %v, want the LSTM's RNG", got)
	}
	// One layer: dropout never applies.
	one := nn.NewGRU(tensor.NewRNG(1), 3, 4, nn.RNNOptions{Bias: true, Dropout: 0.9})
	y1 := one.Forward(x)
	nn.Eval(one)
	testutil.AssertClose(t, "one layer ignores dropout", one.Forward(x), y1, 0, 0)
}

func TestRNNPanics(t *testing.T) {
	r := tensor.NewRNG(1)
	l := nn.NewLSTM(r, 3, 4, nn.RNNOptions{NumLayers: 2, Bias: true})
	g := nn.NewGRU(r, 3, 4, nn.RNNOptions{Bias: true, BatchFirst: true})
	x := tensor.Zeros(5, 2, 3)
	testutil.MustPanic(t, "wrong feature size", func() { l.Forward(tensor.Zeros(5, 2, 4)) }, "nn.LSTM", "[5 2 4]", "[T, N, 3]")
	testutil.MustPanic(t, "rank 4", func() { g.Forward(tensor.Zeros(1, 5, 2, 3)) }, "nn.GRU", "[1 5 2 3]", "[N, T, 3]")
	testutil.MustPanic(t, "int input", func() { g.Forward(tensor.ZerosInt64(2, 5, 3)) }, "nn.GRU", "int64")
	testutil.MustPanic(t, "no steps", func() { l.Forward(tensor.Zeros(0, 2, 3)) }, "nn.LSTM", "[0 2 3]")
	testutil.MustPanic(t, "lengths count", func() { l.ForwardSeq(x, []int{5}, nil, nil) }, "nn.LSTM", "1 lengths", "2 sequences")
	testutil.MustPanic(t, "length too long", func() { l.ForwardSeq(x, []int{5, 6}, nil, nil) }, "nn.LSTM", "[5 6]", "[1, 5]")
	testutil.MustPanic(t, "length zero", func() { l.ForwardSeq(x, []int{0, 5}, nil, nil) }, "nn.LSTM", "[0 5]")
	testutil.MustPanic(t, "h0 shape", func() { l.ForwardSeq(x, nil, tensor.Zeros(1, 2, 4), nil) }, "nn.LSTM", "h0", "[1 2 4]", "[2 2 4]")
	testutil.MustPanic(t, "c0 shape", func() { l.ForwardSeq(x, nil, nil, tensor.Zeros(2, 3, 4)) }, "nn.LSTM", "c0", "[2 3 4]", "[2 2 4]")
	testutil.MustPanic(t, "GRU h0 shape", func() { g.ForwardSeq(tensor.Zeros(2, 5, 3), nil, tensor.Zeros(2, 2, 4)) }, "nn.GRU", "h0", "[2 2 4]", "[1 2 4]")
	bad := nn.NewLSTM(r, 3, 4, nn.RNNOptions{NumLayers: 2, Bias: true})
	bad.WeightIhL1 = tensor.Zeros(16, 3)
	testutil.MustPanic(t, "bad weight", func() { bad.Forward(x) }, "nn.LSTM", "weight_ih_l1", "[16 3]", "[16 4]")
	bad.WeightIhL1 = nil
	testutil.MustPanic(t, "missing weight", func() { bad.Forward(x) }, "nn.LSTM", "weight_ih_l1", "missing")
	testutil.MustPanic(t, "bad sizes", func() { nn.NewLSTM(r, 0, 4, nn.DefaultRNN) }, "nn.NewLSTM", "input size 0")
	testutil.MustPanic(t, "too many layers", func() { nn.NewGRU(r, 3, 4, nn.RNNOptions{NumLayers: nn.MaxRNNLayers + 1}) }, "nn.NewGRU", "number of layers 9")
	testutil.MustPanic(t, "bad dropout", func() { nn.NewGRU(r, 3, 4, nn.RNNOptions{Dropout: 1.5}) }, "nn.NewGRU", "dropout", "1.5")
	testutil.MustPanic(t, "layer index", func() { l.Layer(8, false) }, "nn.RNNWeights.Layer", "layer 8")
}

// TestRNNStateDictRoundTrip saves and loads a GRU's weights, and checks that
// a network with fewer layers refuses them by name.
func TestRNNStateDictRoundTrip(t *testing.T) {
	a := nn.NewGRU(tensor.NewRNG(1), 3, 4, nn.RNNOptions{NumLayers: 2, Bias: true, Bidirectional: true})
	b := nn.NewGRU(tensor.NewRNG(2), 3, 4, nn.RNNOptions{NumLayers: 2, Bias: true, Bidirectional: true})
	path := t.TempDir() + "/gru.safetensors"
	if err := nn.Save(path, a); err != nil {
		t.Fatal(err)
	}
	if err := nn.Load(path, b, true); err != nil {
		t.Fatal(err)
	}
	x := testutil.Rand(1, -1, 1, 4, 2, 3).Detach()
	testutil.AssertClose(t, "after load", b.Forward(x), a.Forward(x), 0, 0)
	one := nn.NewGRU(tensor.NewRNG(2), 3, 4, nn.RNNOptions{NumLayers: 1, Bias: true, Bidirectional: true})
	if err := nn.Load(path, one, true); err == nil || !strings.Contains(err.Error(), "weight_ih_l1") {
		t.Errorf("loading 2 layers into 1: %v", err)
	}
}

// BenchmarkLSTMTrainStep is one forward and backward pass of a one-layer
// bidirectional LSTM over a batch of 32 sequences of 64 steps.
func BenchmarkLSTMTrainStep(b *testing.B) {
	m := nn.NewLSTM(tensor.NewRNG(1), 64, 128, nn.RNNOptions{Bias: true, BatchFirst: true, Bidirectional: true})
	x := testutil.Rand(1, -1, 1, 32, 64, 64).Detach()
	lengths := make([]int, 32)
	for i := range lengths {
		lengths[i] = 64 - i
	}
	b.ResetTimer()
	for range b.N {
		nn.ZeroGrad(m)
		out, _, _ := m.ForwardSeq(x, lengths, nil, nil)
		tensor.Mean(out).Backward()
	}
}

// BenchmarkGRUInfer is a forward pass of a two-layer GRU without gradients.
func BenchmarkGRUInfer(b *testing.B) {
	m := nn.NewGRU(tensor.NewRNG(1), 64, 128, nn.RNNOptions{NumLayers: 2, Bias: true, BatchFirst: true})
	x := testutil.Rand(1, -1, 1, 32, 64, 64).Detach()
	b.ResetTimer()
	for range b.N {
		tensor.NoGrad(func() { m.Forward(x) })
	}
}

// TestLSTMNoGradSameBits: an LSTM forward pass under NoGrad (the inference
// step, tensor.LSTMStep) gives the bits of the same pass with gradients
// recorded, for 2 bidirectional layers with and without biases, batch-first
// and time-first, lengths (masked steps) and initial states.
func TestLSTMNoGradSameBits(t *testing.T) {
	for _, bias := range []bool{true, false} {
		batchFirst := bias // both layouts, each with one bias setting
		m := nn.NewLSTM(tensor.NewRNG(3), 5, 6, nn.RNNOptions{NumLayers: 2, Bias: bias, BatchFirst: batchFirst, Bidirectional: true})
		nn.Eval(m)
		x := testutil.Rand(4, -1, 1, 3, 7, 5).Detach()
		if !batchFirst {
			x = testutil.Rand(4, -1, 1, 7, 3, 5).Detach() // [T, N, features]
		}
		h0 := testutil.Rand(5, -1, 1, 4, 3, 6).Detach()
		c0 := testutil.Rand(6, -1, 1, 4, 3, 6).Detach()
		for _, lengths := range [][]int{nil, {7, 2, 5}} {
			want, wantH, wantC := m.ForwardSeq(x, lengths, h0, c0) // records the graph (the weights need gradients)
			var got, gotH, gotC *tensor.Tensor
			tensor.NoGrad(func() { got, gotH, gotC = m.ForwardSeq(x, lengths, h0, c0) })
			for _, p := range []struct {
				name      string
				got, want *tensor.Tensor
			}{{"output", got, want}, {"h_n", gotH, wantH}, {"c_n", gotC, wantC}} {
				if !reflect.DeepEqual(p.got.Shape(), p.want.Shape()) {
					t.Fatalf("bias=%v lengths=%v %s: shape %v, want %v", bias, lengths, p.name, p.got.Shape(), p.want.Shape())
				}
				for i, v := range p.want.Data() {
					if math.Float32bits(p.got.Data()[i]) != math.Float32bits(v) {
						t.Fatalf("bias=%v lengths=%v %s[%d] = %v under NoGrad, %v with gradients", bias, lengths, p.name, i, p.got.Data()[i], v)
					}
				}
			}
		}
	}
}
