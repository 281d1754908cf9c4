package tensor

import "fmt"

// Method forms of the shape ops and MatMul, for chaining:
//
//	y := x.Reshape(n, -1).MatMul(w.T())

// Reshape is the method form of Reshape.
func (t *Tensor) Reshape(shape ...int) *Tensor { return Reshape(t, shape...) }

// Flatten is the method form of Flatten.
func (t *Tensor) Flatten(startDim, endDim int) *Tensor { return Flatten(t, startDim, endDim) }

// Squeeze is the method form of Squeeze.
func (t *Tensor) Squeeze(axes ...int) *Tensor { return Squeeze(t, axes...) }

// Unsqueeze is the method form of Unsqueeze.
func (t *Tensor) Unsqueeze(axis int) *Tensor { return Unsqueeze(t, axis) }

// Transpose is the method form of Transpose.
func (t *Tensor) Transpose(d0, d1 int) *Tensor { return Transpose(t, d0, d1) }

// Permute is the method form of Permute.
func (t *Tensor) Permute(dims ...int) *Tensor { return Permute(t, dims...) }

// Slice is the method form of Slice.
func (t *Tensor) Slice(axis, start, end, step int) *Tensor { return Slice(t, axis, start, end, step) }

// MatMul is the method form of MatMul: t·b.
func (t *Tensor) MatMul(b *Tensor) *Tensor { return MatMul(t, b) }

// T returns the transpose of a 2-D tensor (as torch.Tensor.t): 0-d and 1-d
// tensors come back unchanged, and higher ranks panic (use Transpose or Permute).
func (t *Tensor) T() *Tensor {
	switch len(t.shape) {
	case 0, 1:
		return t
	case 2:
		return Transpose(t, 0, 1)
	}
	panic(fmt.Sprintf("tensor.T: needs a tensor of at most 2 dims, got shape %v", t.shape))
}
