package nn_test

import (
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

func TestSinusoidalTableGolden(t *testing.T) {
	want := tfGet(t, "sinusoidal.pe")
	testutil.AssertClose(t, "sinusoidal table", nn.SinusoidalTable(16, 6), want, 1e-5, 1e-6)
	// An odd width ends with a sine column.
	odd := nn.SinusoidalTable(4, 5)
	if odd.At(3, 4) == 0 || odd.At(0, 1) != 1 {
		t.Fatalf("odd table %v", odd)
	}
}

func TestSinusoidalPositionalEncoding(t *testing.T) {
	table := tfGet(t, "sinusoidal.pe")
	for _, bf := range []bool{false, true} {
		stored := nn.NewSinusoidalPositionalEncoding(tensor.NewRNG(1), 6, 16, 0, bf)
		computed := nn.NewSinusoidalPositionalEncoding(tensor.NewRNG(1), 6, 0, 0, bf)
		if _, ok := nn.StateDict(stored)["pe"]; !ok {
			t.Fatal("stored table is not in the state dict as pe")
		}
		if len(nn.StateDict(computed)) != 0 || len(nn.Parameters(stored)) != 0 {
			t.Fatal("the computed encoding has state, or the table is a parameter")
		}
		shape := []int{5, 2, 6}
		if bf {
			shape = []int{2, 5, 6}
		}
		x := testutil.Rand(2, -1, 1, shape...)
		a, b := stored.Forward(x), computed.Forward(x)
		testutil.AssertClose(t, "stored vs computed", b, a, 1e-6, 1e-6)
		// Position 3 of batch element 1 got table row 3.
		for j := range 6 {
			var got, in float32
			if bf {
				got, in = a.At(1, 3, j), x.At(1, 3, j)
			} else {
				got, in = a.At(3, 1, j), x.At(3, 1, j)
			}
			if d := got - in - table.At(3, j); d > 1e-6 || d < -1e-6 {
				t.Fatalf("batch_first %v: element %d: %v - %v != %v", bf, j, got, in, table.At(3, j))
			}
		}
		// A long input works when computed, not beyond max_len.
		long := tensor.Zeros(20, 6)
		if computed.Forward(long).Size(0) != 20 {
			t.Fatal("computed encoding of 20 positions")
		}
		testutil.MustPanic(t, "too long", func() { stored.Forward(long) }, "nn.SinusoidalPositionalEncoding", "[20 6]", "16")
		testutil.MustPanic(t, "width", func() { stored.Forward(tensor.Zeros(3, 2, 5)) }, "nn.SinusoidalPositionalEncoding", "[3 2 5]")
	}
	// Dropout applies in training only.
	d := nn.NewSinusoidalPositionalEncoding(tensor.NewRNG(1), 6, 0, 0.5, false)
	x := tensor.Ones(8, 2, 6)
	if testutil.Close(d.Forward(x), d.Forward(x), 0, 0) == nil {
		t.Fatal("dropout 0.5 in training gave equal passes")
	}
	nn.Eval(d)
	testutil.AssertClose(t, "eval", d.Forward(x), tensor.Add(x, tensor.Reshape(nn.SinusoidalTable(8, 6), 8, 1, 6)), 1e-6, 1e-6)
}

func TestLearnedPositionalEmbedding(t *testing.T) {
	e := nn.NewLearnedPositionalEmbedding(tensor.NewRNG(3), 6, 4, true)
	if keys := tfKeys(nn.StateDict(e)); len(keys) != 1 || keys[0] != "weight" {
		t.Fatalf("keys %v", keys)
	}
	x := testutil.Rand(4, -1, 1, 2, 3, 4)
	w := e.Weight
	testutil.GradCheck(t, "LearnedPositionalEmbedding", func(in []*tensor.Tensor) *tensor.Tensor {
		return e.Forward(in[0])
	}, []*tensor.Tensor{x, w}, 1e-2, 1e-2)
	// Rows past the sequence length get no gradient.
	w.SetGrad(nil)
	tensor.Sum(e.Forward(x)).Backward()
	g := w.Grad()
	if g.At(2, 0) != 2 || g.At(3, 0) != 0 || g.At(5, 3) != 0 {
		t.Fatalf("position gradient %v", g)
	}
	seq := nn.NewLearnedPositionalEmbedding(tensor.NewRNG(3), 6, 4, false)
	y := seq.Forward(tensor.Transpose(x, 0, 1))
	testutil.AssertClose(t, "layouts", tensor.Transpose(y, 0, 1), e.Forward(x), 0, 0)
	testutil.MustPanic(t, "too long", func() { e.Forward(tensor.Zeros(1, 7, 4)) }, "nn.LearnedPositionalEmbedding", "[1 7 4]", "6")
	testutil.MustPanic(t, "rank", func() { e.Forward(tensor.Zeros(4)) }, "nn.LearnedPositionalEmbedding", "[4]")
}
