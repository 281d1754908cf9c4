package nn

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/tensor"
)

// The initialisers fill a float32 tensor in place, as torch.nn.init does, and
// return it. Those that draw random numbers take the RNG that makes them
// reproducible. They never record gradients.

// Fans returns the fan-in and fan-out of a weight shape as PyTorch computes
// them: for [out, in, k...] fan_in = in·∏k and fan_out = out·∏k. It panics for
// tensors with fewer than two dimensions.
func Fans(shape []int) (fanIn, fanOut int) {
	if len(shape) < 2 {
		panic(fmt.Sprintf("nn.Fans: fan in and fan out need at least 2 dimensions, got shape %v", shape))
	}
	recept := 1
	for _, d := range shape[2:] {
		recept *= d
	}
	return shape[1] * recept, shape[0] * recept
}

// leakyGain is torch.nn.init.calculate_gain("leaky_relu", a).
func leakyGain(a float64) float64 { return math.Sqrt(2 / (1 + a*a)) }

// KaimingUniform fills t with U(-b, b), b = gain·√(3/fan_in) and
// gain = √(2/(1+a²)) (torch.nn.init.kaiming_uniform_ with mode fan_in and the
// leaky_relu nonlinearity; a = 0 is the ReLU gain, a = √5 PyTorch's default
// for Linear and Conv weights, giving b = 1/√fan_in).
func KaimingUniform(t *tensor.Tensor, a float64, r *tensor.RNG) *tensor.Tensor {
	fanIn, _ := Fans(t.Shape())
	b := leakyGain(a) * math.Sqrt(3/float64(fanIn))
	return Uniform(t, -b, b, r)
}

// KaimingNormal fills t with N(0, std²), std = gain/√fan_in and
// gain = √(2/(1+a²)) (torch.nn.init.kaiming_normal_, mode fan_in, leaky_relu).
func KaimingNormal(t *tensor.Tensor, a float64, r *tensor.RNG) *tensor.Tensor {
	fanIn, _ := Fans(t.Shape())
	return Normal(t, 0, leakyGain(a)/math.Sqrt(float64(fanIn)), r)
}

// XavierUniform fills t with U(-b, b), b = gain·√(6/(fan_in+fan_out))
// (torch.nn.init.xavier_uniform_).
func XavierUniform(t *tensor.Tensor, gain float64, r *tensor.RNG) *tensor.Tensor {
	fanIn, fanOut := Fans(t.Shape())
	b := gain * math.Sqrt(6/float64(fanIn+fanOut))
	return Uniform(t, -b, b, r)
}

// XavierNormal fills t with N(0, std²), std = gain·√(2/(fan_in+fan_out))
// (torch.nn.init.xavier_normal_).
func XavierNormal(t *tensor.Tensor, gain float64, r *tensor.RNG) *tensor.Tensor {
	fanIn, fanOut := Fans(t.Shape())
	return Normal(t, 0, gain*math.Sqrt(2/float64(fanIn+fanOut)), r)
}

// Uniform fills t with values uniform in [lo, hi).
func Uniform(t *tensor.Tensor, lo, hi float64, r *tensor.RNG) *tensor.Tensor {
	d := t.Data()
	for i := range d {
		d[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return t
}

// Normal fills t with values drawn from N(mean, std²).
func Normal(t *tensor.Tensor, mean, std float64, r *tensor.RNG) *tensor.Tensor {
	d := t.Data()
	for i := range d {
		d[i] = float32(mean + std*r.NormFloat64())
	}
	return t
}

// Zeros fills t with 0.
func Zeros(t *tensor.Tensor) *tensor.Tensor { return Constant(t, 0) }

// Ones fills t with 1.
func Ones(t *tensor.Tensor) *tensor.Tensor { return Constant(t, 1) }

// Constant fills t with v.
func Constant(t *tensor.Tensor, v float32) *tensor.Tensor {
	d := t.Data()
	for i := range d {
		d[i] = v
	}
	return t
}

// param marks a freshly initialised tensor as a trainable parameter.
func param(t *tensor.Tensor) *tensor.Tensor { return t.SetRequiresGrad(true) }
