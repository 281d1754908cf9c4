package nn

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/tensor"
)

// Linear applies y = x·Wᵀ + b to inputs [..., In] (torch.nn.Linear).
type Linear struct {
	Weight *tensor.Tensor // [Out, In]
	Bias   *tensor.Tensor // [Out], nil without bias
}

// NewLinear makes a Linear layer with PyTorch's default initialisation:
// weight kaiming_uniform(a=√5), i.e. U(-1/√in, 1/√in), and bias U(-1/√in, 1/√in).
func NewLinear(r *tensor.RNG, in, out int, bias bool) *Linear {
	if in <= 0 || out <= 0 {
		panic(fmt.Sprintf("nn.NewLinear: sizes must be positive, got in %d out %d", in, out))
	}
	l := &Linear{Weight: param(KaimingUniform(tensor.Zeros(out, in), math.Sqrt(5), r))}
	if bias {
		b := 1 / math.Sqrt(float64(in))
		l.Bias = param(Uniform(tensor.Zeros(out), -b, b, r))
	}
	return l
}

// Forward returns x·Wᵀ + b.
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.Linear(x, l.Weight, l.Bias) }

// Conv2D is a 2-D convolution over [N, Cin, H, W] inputs (torch.nn.Conv2d).
type Conv2D struct {
	Weight  *tensor.Tensor // [Cout, Cin/Groups, kH, kW]
	Bias    *tensor.Tensor // [Cout], nil without bias
	Options tensor.Conv2DOptions
}

// NewConv2D makes a Conv2D layer with a kernel×kernel window and PyTorch's
// default initialisation (weight and bias U(-1/√fan_in, 1/√fan_in) with
// fan_in = in/groups·kernel²). The zero options mean stride 1, no padding,
// dilation 1, one group.
func NewConv2D(r *tensor.RNG, in, out, kernel int, opt tensor.Conv2DOptions, bias bool) *Conv2D {
	g := max(opt.Groups, 1)
	if in <= 0 || out <= 0 || kernel <= 0 || in%g != 0 || out%g != 0 {
		panic(fmt.Sprintf("nn.NewConv2D: bad sizes in %d out %d kernel %d groups %d", in, out, kernel, g))
	}
	c := &Conv2D{Options: opt, Weight: param(KaimingUniform(tensor.Zeros(out, in/g, kernel, kernel), math.Sqrt(5), r))}
	if bias {
		b := 1 / math.Sqrt(float64(in/g*kernel*kernel))
		c.Bias = param(Uniform(tensor.Zeros(out), -b, b, r))
	}
	return c
}

// Forward convolves x with the layer's weight and adds its bias.
func (c *Conv2D) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Conv2D(x, c.Weight, c.Bias, c.Options)
}

// MaxPool2D takes the maximum over windows of [N, C, H, W] inputs (torch.nn.MaxPool2d).
type MaxPool2D struct{ Options tensor.Pool2DOptions }

// NewMaxPool2D pools over kernel×kernel windows with stride kernel; set
// Options for other strides, padding, dilation or ceil mode.
func NewMaxPool2D(kernel int) *MaxPool2D {
	return &MaxPool2D{Options: tensor.Pool2DOptions{Kernel: [2]int{kernel, kernel}}}
}

// Forward applies max pooling.
func (p *MaxPool2D) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.MaxPool2D(x, p.Options) }

// AvgPool2D averages windows of [N, C, H, W] inputs (torch.nn.AvgPool2d).
type AvgPool2D struct{ Options tensor.Pool2DOptions }

// NewAvgPool2D averages kernel×kernel windows with stride kernel.
func NewAvgPool2D(kernel int) *AvgPool2D {
	return &AvgPool2D{Options: tensor.Pool2DOptions{Kernel: [2]int{kernel, kernel}}}
}

// Forward applies average pooling.
func (p *AvgPool2D) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.AvgPool2D(x, p.Options) }

// Flatten merges dimensions StartDim..EndDim (torch.nn.Flatten).
type Flatten struct{ StartDim, EndDim int }

// NewFlatten flattens every dimension but the batch one (start_dim 1, end_dim -1).
func NewFlatten() *Flatten { return &Flatten{StartDim: 1, EndDim: -1} }

// Forward flattens x.
func (f *Flatten) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Flatten(x, f.StartDim, f.EndDim)
}

// Dropout zeroes each element with probability P in training mode and scales
// the others by 1/(1-P); in eval mode it is the identity (torch.nn.Dropout).
type Dropout struct {
	Mode
	P   float32
	RNG *tensor.RNG `nn:"-"`
}

// NewDropout makes a Dropout layer drawing its masks from r.
func NewDropout(r *tensor.RNG, p float32) *Dropout {
	if p < 0 || p > 1 {
		panic(fmt.Sprintf("nn.NewDropout: probability %v not in [0, 1]", p))
	}
	return &Dropout{P: p, RNG: r}
}

// Forward applies dropout when training.
func (d *Dropout) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Dropout(x, d.P, d.Training(), d.RNG)
}

// Sequential chains modules: each one's output is the next one's input
// (torch.nn.Sequential). Its children are named "0", "1", … by position, so a
// parameter-free layer at position 1 leaves a gap in the keys ("0.weight",
// "2.weight") exactly as in PyTorch.
type Sequential struct {
	Layers []Module `nn:",inline"`
}

// NewSequential chains the given modules.
func NewSequential(layers ...Module) *Sequential { return &Sequential{Layers: layers} }

// Append adds modules at the end and returns s.
func (s *Sequential) Append(layers ...Module) *Sequential {
	s.Layers = append(s.Layers, layers...)
	return s
}

// Forward runs the layers in order. A Conv2D followed by a ReLU (and a
// MaxPool2D) runs as one fused op (tensor.Conv2DReLU,
// tensor.Conv2DReLUMaxPool), which gives the same values and gradients
// faster; so does a Linear followed by a ReLU (tensor.LinearReLU).
func (s *Sequential) Forward(x *tensor.Tensor) *tensor.Tensor {
	for i := 0; i < len(s.Layers); i++ {
		if y, skip := fuse(s.Layers[i:], x); skip > 0 {
			x = y
			i += skip
			continue
		}
		x = s.Layers[i].Forward(x)
	}
	return x
}

// fuse runs the fused op for the layers at the head of ls when they form a
// known pattern, returning the output and how many layers beyond the first
// it consumed; skip 0 means no pattern matched.
func fuse(ls []Module, x *tensor.Tensor) (out *tensor.Tensor, skip int) {
	if len(ls) < 2 {
		return nil, 0
	}
	if _, ok := ls[1].(*ReLU); !ok {
		return nil, 0
	}
	switch l := ls[0].(type) {
	case *Conv2D:
		if len(ls) >= 3 {
			if p, ok := ls[2].(*MaxPool2D); ok {
				return tensor.Conv2DReLUMaxPool(x, l.Weight, l.Bias, l.Options, p.Options), 2
			}
		}
		return tensor.Conv2DReLU(x, l.Weight, l.Bias, l.Options), 1
	case *Linear:
		return tensor.LinearReLU(x, l.Weight, l.Bias), 1
	}
	return nil, 0
}
