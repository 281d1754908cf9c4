package tensor

// Stubs owned by the convolution/pooling work (conv.go, pool.go).

// Conv2DOptions configures Conv2D; zero values mean stride 1, padding 0,
// dilation 1, groups 1.
type Conv2DOptions struct {
	Stride   [2]int
	Padding  [2]int
	Dilation [2]int
	Groups   int
}

// Conv2D convolves x [N, Cin, H, W] with w [Cout, Cin/groups, kH, kW] and adds
// bias b [Cout] (nil for none), as torch.nn.functional.conv2d.
func Conv2D(x, w, b *Tensor, opt Conv2DOptions) *Tensor { panic("not implemented") }

// Pool2DOptions configures pooling; Stride zero means Stride = Kernel.
type Pool2DOptions struct {
	Kernel   [2]int
	Stride   [2]int
	Padding  [2]int
	Dilation [2]int // max pooling only; zero means 1
	CeilMode bool
	// ExcludePad (average pooling only) divides by the number of real
	// elements in a window instead of PyTorch's default count_include_pad.
	ExcludePad bool
}

// MaxPool2D takes the maximum over windows of x [N, C, H, W]; the gradient goes
// to the first maximal element of each window.
func MaxPool2D(x *Tensor, opt Pool2DOptions) *Tensor { panic("not implemented") }

// AvgPool2D averages windows of x [N, C, H, W].
func AvgPool2D(x *Tensor, opt Pool2DOptions) *Tensor { panic("not implemented") }
