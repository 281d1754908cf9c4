package tensor_test

import (
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

func TestActivationGolden(t *testing.T) {
	fx := testutil.LoadFixtures(t, opsFixture)
	cases := map[string]func(x *tensor.Tensor) *tensor.Tensor{
		"relu":            tensor.ReLU,
		"leaky_relu":      func(x *tensor.Tensor) *tensor.Tensor { return tensor.LeakyReLU(x, 0.1) },
		"sigmoid":         tensor.Sigmoid,
		"tanh":            tensor.Tanh,
		"gelu":            tensor.GELU,
		"gelu_tanh":       tensor.GELUTanh,
		"softmax1":        func(x *tensor.Tensor) *tensor.Tensor { return tensor.Softmax(x, 1) },
		"softmax0":        func(x *tensor.Tensor) *tensor.Tensor { return tensor.Softmax(x, 0) },
		"softmax_big":     func(x *tensor.Tensor) *tensor.Tensor { return tensor.Softmax(x, -1) },
		"log_softmax2":    func(x *tensor.Tensor) *tensor.Tensor { return tensor.LogSoftmax(x, -1) },
		"log_softmax1":    func(x *tensor.Tensor) *tensor.Tensor { return tensor.LogSoftmax(x, 1) },
		"log_softmax_big": func(x *tensor.Tensor) *tensor.Tensor { return tensor.LogSoftmax(x, 1) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) { opsGoldenUnary(t, fx, name, f, 1e-5) })
	}
}

func TestActivationGradCheck(t *testing.T) {
	kinked := func(seed uint64) *tensor.Tensor { return awayFrom(testutil.Rand(seed, -3, 3, 3, 4), 0.05, 0) }
	cases := []struct {
		name string
		f    func(x *tensor.Tensor) *tensor.Tensor
		x    *tensor.Tensor
	}{
		{"ReLU", tensor.ReLU, kinked(1)},
		{"LeakyReLU", func(x *tensor.Tensor) *tensor.Tensor { return tensor.LeakyReLU(x, 0.2) }, kinked(2)},
		{"Sigmoid", tensor.Sigmoid, testutil.Rand(3, -5, 5, 3, 4)},
		{"Tanh", tensor.Tanh, testutil.Rand(4, -3, 3, 3, 4)},
		{"GELU", tensor.GELU, testutil.Rand(5, -4, 4, 3, 4)},
		{"GELUTanh", tensor.GELUTanh, testutil.Rand(6, -4, 4, 3, 4)},
		{"Softmax0", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Softmax(x, 0) }, testutil.Rand(7, -3, 3, 3, 4, 2)},
		{"Softmax1", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Softmax(x, 1) }, testutil.Rand(8, -3, 3, 3, 4, 2)},
		{"Softmax-1", func(x *tensor.Tensor) *tensor.Tensor { return tensor.Softmax(x, -1) }, testutil.Rand(9, -3, 3, 3, 4)},
		{"LogSoftmax0", func(x *tensor.Tensor) *tensor.Tensor { return tensor.LogSoftmax(x, 0) }, testutil.Rand(10, -3, 3, 3, 4, 2)},
		{"LogSoftmax-1", func(x *tensor.Tensor) *tensor.Tensor { return tensor.LogSoftmax(x, -1) }, testutil.Rand(11, -3, 3, 3, 4)},
		{"LogSoftmax1", func(x *tensor.Tensor) *tensor.Tensor { return tensor.LogSoftmax(x, 1) }, testutil.Rand(12, -3, 3, 2, 5, 3)},
	}
	for _, c := range cases {
		testutil.GradCheck(t, c.name, one(c.f), []*tensor.Tensor{c.x}, 1e-2, 1e-2)
	}
}

func TestActivationValues(t *testing.T) {
	x := tensor.FromSlice([]float32{-2, 0, 3}, 3)
	testutil.AssertClose(t, "ReLU", tensor.ReLU(x), tensor.FromSlice([]float32{0, 0, 3}, 3), 0, 0)
	testutil.AssertClose(t, "LeakyReLU", tensor.LeakyReLU(x, 0.5), tensor.FromSlice([]float32{-1, 0, 3}, 3), 0, 0)
	// ReLU's gradient at exactly 0 is 0, as PyTorch
	z := tensor.FromSlice([]float32{0}, 1).SetRequiresGrad(true)
	tensor.Sum(tensor.ReLU(z)).Backward()
	if g := z.Grad().Data()[0]; g != 0 {
		t.Errorf("ReLU'(0) = %v, want 0", g)
	}
	// extreme inputs stay finite
	big := tensor.FromSlice([]float32{-1000, 1000, -88, 89}, 4)
	s := tensor.Sigmoid(big).Data()
	if s[0] != 0 || s[1] != 1 || math.IsNaN(float64(s[2])) || s[3] != 1 {
		t.Errorf("Sigmoid(extremes) = %v", s)
	}
	sm := tensor.Softmax(tensor.FromSlice([]float32{1e4, 1e4 + 1, -1e4}, 3), 0).Data()
	e := 1 / (1 + math.E)
	if math.Abs(float64(sm[0])-e) > 1e-6 || math.Abs(float64(sm[1])-(1-e)) > 1e-6 || sm[2] != 0 {
		t.Errorf("Softmax(large) = %v", sm)
	}
	ls := tensor.LogSoftmax(tensor.FromSlice([]float32{0, -200, float32(math.Inf(-1))}, 3), 0).Data()
	if ls[0] != 0 || ls[1] != -200 || !math.IsInf(float64(ls[2]), -1) {
		t.Errorf("LogSoftmax = %v, want [0 -200 -Inf]", ls)
	}
	// rows of a softmax sum to 1, along any axis
	r := tensor.Softmax(testutil.Rand(3, -5, 5, 2, 3, 4), 1)
	testutil.AssertClose(t, "Softmax rows", tensor.SumAxes(r, false, 1), tensor.Ones(2, 4), 1e-6, 1e-6)
	// a 0-d tensor has one class along axis 0/-1
	testutil.AssertClose(t, "Softmax 0-d", tensor.Softmax(tensor.Scalar(5), -1), tensor.Scalar(1), 0, 0)
}

func TestActivationPanics(t *testing.T) {
	a := tensor.Zeros(2, 3)
	testutil.MustPanic(t, "Softmax axis", func() { tensor.Softmax(a, 2) }, "tensor.Softmax", "axis 2", "[2 3]")
	testutil.MustPanic(t, "LogSoftmax axis", func() { tensor.LogSoftmax(a, -3) }, "tensor.LogSoftmax", "axis -3", "[2 3]")
	ints := tensor.ZerosInt64(4)
	for name, f := range map[string]func(){
		"ReLU":     func() { tensor.ReLU(ints) },
		"GELU":     func() { tensor.GELU(ints) },
		"Sigmoid":  func() { tensor.Sigmoid(ints) },
		"Softmax":  func() { tensor.Softmax(ints, 0) },
		"GELUTanh": func() { tensor.GELUTanh(ints) },
	} {
		testutil.MustPanic(t, name, f, "tensor."+name, "int64", "[4]")
	}
}
