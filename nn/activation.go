package nn

import "github.com/deepgo/deepgo/tensor"

// ReLU is max(x, 0) (torch.nn.ReLU).
type ReLU struct{}

// Forward applies ReLU.
func (*ReLU) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.ReLU(x) }

// LeakyReLU is x for x > 0 and Slope·x elsewhere (torch.nn.LeakyReLU).
type LeakyReLU struct{ Slope float32 }

// NewLeakyReLU makes a LeakyReLU with PyTorch's default slope 0.01.
func NewLeakyReLU() *LeakyReLU { return &LeakyReLU{Slope: 0.01} }

// Forward applies LeakyReLU.
func (l *LeakyReLU) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.LeakyReLU(x, l.Slope) }

// Sigmoid is 1/(1+e^-x) (torch.nn.Sigmoid).
type Sigmoid struct{}

// Forward applies the sigmoid.
func (*Sigmoid) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.Sigmoid(x) }

// Tanh is the hyperbolic tangent (torch.nn.Tanh).
type Tanh struct{}

// Forward applies tanh.
func (*Tanh) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.Tanh(x) }

// GELU is x·Φ(x), exact by default, or its tanh approximation when
// Approximate is true (torch.nn.GELU(approximate="tanh")).
type GELU struct{ Approximate bool }

// Forward applies GELU.
func (g *GELU) Forward(x *tensor.Tensor) *tensor.Tensor {
	if g.Approximate {
		return tensor.GELUTanh(x)
	}
	return tensor.GELU(x)
}

// Softmax normalises exp(x) along Dim (torch.nn.Softmax).
type Softmax struct{ Dim int }

// Forward applies softmax.
func (s *Softmax) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.Softmax(x, s.Dim) }

// LogSoftmax is log(softmax(x)) along Dim, computed stably (torch.nn.LogSoftmax).
type LogSoftmax struct{ Dim int }

// Forward applies log-softmax.
func (s *LogSoftmax) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.LogSoftmax(x, s.Dim) }
