package tensor

// Stubs owned by the shape/index/matmul work. Each is replaced by a real
// implementation in shape.go, index.go, matmul.go.

// Reshape returns a tensor with the same values and a new shape (one dim may be -1).
// It shares storage with a.
func Reshape(a *Tensor, shape ...int) *Tensor { panic("not implemented") }

// Flatten merges dims startDim..endDim (inclusive, negatives count from the end).
func Flatten(a *Tensor, startDim, endDim int) *Tensor { panic("not implemented") }

// Squeeze removes size-1 axes (all of them if none are given).
func Squeeze(a *Tensor, axes ...int) *Tensor { panic("not implemented") }

// Unsqueeze inserts a size-1 axis at position axis.
func Unsqueeze(a *Tensor, axis int) *Tensor { panic("not implemented") }

// Transpose swaps two axes.
func Transpose(a *Tensor, d0, d1 int) *Tensor { panic("not implemented") }

// Permute reorders axes: output axis i is input axis dims[i].
func Permute(a *Tensor, dims ...int) *Tensor { panic("not implemented") }

// Slice takes elements start, start+step, ... < end along axis (negative start/end count from the end).
func Slice(a *Tensor, axis, start, end, step int) *Tensor { panic("not implemented") }

// Split cuts a along axis into pieces of the given sizes.
func Split(a *Tensor, axis int, sizes ...int) []*Tensor { panic("not implemented") }

// Gather picks a[..., index[...], ...] along axis (torch.gather): index is int64
// with a's rank and the output has index's shape.
func Gather(a *Tensor, axis int, index *Tensor) *Tensor { panic("not implemented") }

// IndexSelect picks whole slices of a along axis at the int64 positions in index (1-D).
func IndexSelect(a *Tensor, axis int, index *Tensor) *Tensor { panic("not implemented") }

// Concat joins tensors along an existing axis.
func Concat(ts []*Tensor, axis int) *Tensor { panic("not implemented") }

// Stack joins tensors along a new axis.
func Stack(ts []*Tensor, axis int) *Tensor { panic("not implemented") }

// Where picks a where cond is nonzero and b elsewhere, with broadcasting.
func Where(cond, a, b *Tensor) *Tensor { panic("not implemented") }

// MaskedFill returns a with value where mask is nonzero (mask broadcasts to a).
func MaskedFill(a, mask *Tensor, value float32) *Tensor { panic("not implemented") }

// MatMul is the matrix product with torch.matmul semantics: 1-D, 2-D, and
// batched N-D operands with broadcast batch dims.
func MatMul(a, b *Tensor) *Tensor { panic("not implemented") }

// Linear returns x·wᵀ + b (b may be nil) for x [..., in], w [out, in]: the
// fused op behind nn.Linear.
func Linear(x, w, b *Tensor) *Tensor { panic("not implemented") }
