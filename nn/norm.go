package nn

import (
	"fmt"

	"github.com/deepgo/deepgo/tensor"
)

// batchNorm is the code shared by BatchNorm1D and BatchNorm2D.
type batchNorm struct {
	Mode
	Weight            *tensor.Tensor // [C], nil without affine
	Bias              *tensor.Tensor // [C], nil without affine
	RunningMean       *tensor.Tensor `nn:",buffer"` // [C], nil without running stats
	RunningVar        *tensor.Tensor `nn:",buffer"` // [C], nil without running stats
	NumBatchesTracked *tensor.Tensor `nn:",buffer"` // 0-d int64, nil without running stats
	// NumFeatures is the number of channels C.
	NumFeatures int
	// Eps is added to the variance before the square root (default 1e-5).
	Eps float32
	// Momentum is the weight of each new batch in the running statistics
	// (default 0.1): running = (1-Momentum)·running + Momentum·batch.
	Momentum float32
}

// BatchNormOptions configures the batch norm constructors; use
// DefaultBatchNorm for PyTorch's defaults.
type BatchNormOptions struct {
	Eps, Momentum float32
	// Affine adds the learnable Weight (ones) and Bias (zeros).
	Affine bool
	// TrackRunningStats keeps running_mean, running_var and
	// num_batches_tracked; without them eval mode normalises with batch stats.
	TrackRunningStats bool
}

// DefaultBatchNorm is PyTorch's default: eps 1e-5, momentum 0.1, affine, tracking running stats.
var DefaultBatchNorm = BatchNormOptions{Eps: 1e-5, Momentum: 0.1, Affine: true, TrackRunningStats: true}

func newBatchNorm(c int, opt BatchNormOptions) batchNorm {
	if c <= 0 {
		panic(fmt.Sprintf("nn.NewBatchNorm: number of channels must be positive, got %d", c))
	}
	b := batchNorm{NumFeatures: c, Eps: opt.Eps, Momentum: opt.Momentum}
	if opt.Affine {
		b.Weight = param(tensor.Ones(c))
		b.Bias = param(tensor.Zeros(c))
	}
	if opt.TrackRunningStats {
		b.RunningMean = tensor.Zeros(c)
		b.RunningVar = tensor.Ones(c)
		b.NumBatchesTracked = tensor.FromInt64([]int64{0})
	}
	return b
}

// forward normalises x over axes; pshape is the broadcast shape of the
// per-channel tensors.
func (b *batchNorm) forward(op string, x *tensor.Tensor, axes []int, pshape []int) *tensor.Tensor {
	c := b.NumFeatures
	pshape[0] = c
	if x.Size(1) != c {
		panic(fmt.Sprintf("nn.%s: input of shape %v has %d channels, layer has %d", op, x.Shape(), x.Size(1), c))
	}
	useBatch := b.Training() || b.RunningMean == nil
	var mean, v *tensor.Tensor
	if useBatch {
		n := x.Numel() / c
		if b.Training() && n <= 1 {
			panic(fmt.Sprintf("nn.%s: expected more than 1 value per channel when training, got input of shape %v", op, x.Shape()))
		}
		mean = tensor.MeanAxes(x, true, axes...)
		v = tensor.Var(x, false, true, axes...)
		if b.Training() && b.RunningMean != nil {
			tensor.NoGrad(func() {
				mom := b.Momentum
				md, vd := mean.Data(), v.Data()
				rm, rv := b.RunningMean.Data(), b.RunningVar.Data()
				unb := float32(n) / float32(n-1)
				for i := range rm {
					rm[i] = (1-mom)*rm[i] + mom*md[i]
					rv[i] = (1-mom)*rv[i] + mom*vd[i]*unb
				}
				b.NumBatchesTracked.Int64s()[0]++
			})
		}
	} else {
		mean = tensor.Reshape(b.RunningMean.Detach(), pshape...)
		v = tensor.Reshape(b.RunningVar.Detach(), pshape...)
	}
	y := tensor.Div(tensor.Sub(x, mean), tensor.Sqrt(tensor.AddScalar(v, b.Eps)))
	if b.Weight != nil {
		y = tensor.Add(tensor.Mul(y, tensor.Reshape(b.Weight, pshape...)), tensor.Reshape(b.Bias, pshape...))
	}
	return y
}

// BatchNorm1D normalises [N, C] or [N, C, L] inputs per channel
// (torch.nn.BatchNorm1d): with batch statistics (biased variance) when
// training, updating the running mean and unbiased running variance, and with
// the running statistics in eval mode.
type BatchNorm1D struct{ batchNorm }

// NewBatchNorm1D makes a BatchNorm1D over c channels.
func NewBatchNorm1D(c int, opt BatchNormOptions) *BatchNorm1D {
	return &BatchNorm1D{newBatchNorm(c, opt)}
}

// Forward normalises x.
func (b *BatchNorm1D) Forward(x *tensor.Tensor) *tensor.Tensor {
	switch x.Dim() {
	case 2:
		return b.forward("BatchNorm1D", x, []int{0}, []int{x.Size(1)})
	case 3:
		return b.forward("BatchNorm1D", x, []int{0, 2}, []int{x.Size(1), 1})
	}
	panic(fmt.Sprintf("nn.BatchNorm1D: expected a 2-d or 3-d input, got shape %v", x.Shape()))
}

// BatchNorm2D normalises [N, C, H, W] inputs per channel
// (torch.nn.BatchNorm2d); see BatchNorm1D for the statistics used.
type BatchNorm2D struct{ batchNorm }

// NewBatchNorm2D makes a BatchNorm2D over c channels.
func NewBatchNorm2D(c int, opt BatchNormOptions) *BatchNorm2D {
	return &BatchNorm2D{newBatchNorm(c, opt)}
}

// Forward normalises x.
func (b *BatchNorm2D) Forward(x *tensor.Tensor) *tensor.Tensor {
	if x.Dim() != 4 {
		panic(fmt.Sprintf("nn.BatchNorm2D: expected a 4-d input, got shape %v", x.Shape()))
	}
	return b.forward("BatchNorm2D", x, []int{0, 2, 3}, []int{x.Size(1), 1, 1})
}

// LayerNorm normalises over the last len(NormalizedShape) dimensions with the
// biased variance, then applies the elementwise affine Weight and Bias when
// present (torch.nn.LayerNorm).
type LayerNorm struct {
	Weight          *tensor.Tensor // NormalizedShape, nil without elementwise affine
	Bias            *tensor.Tensor // NormalizedShape, nil without elementwise affine
	NormalizedShape []int
	Eps             float32
}

// NewLayerNorm makes a LayerNorm with eps 1e-5 and, when affine, weight ones and bias zeros.
func NewLayerNorm(normalizedShape []int, affine bool) *LayerNorm {
	l := &LayerNorm{NormalizedShape: append([]int(nil), normalizedShape...), Eps: 1e-5}
	if affine {
		l.Weight = param(tensor.Ones(normalizedShape...))
		l.Bias = param(tensor.Zeros(normalizedShape...))
	}
	return l
}

// Forward normalises x.
func (l *LayerNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	k := len(l.NormalizedShape)
	s := x.Shape()
	if len(s) < k || !tensor.SameShape(s[len(s)-k:], l.NormalizedShape) {
		panic(fmt.Sprintf("nn.LayerNorm: input of shape %v does not end with normalized shape %v", s, l.NormalizedShape))
	}
	d := 1
	for _, n := range l.NormalizedShape {
		d *= n
	}
	return tensor.LayerNorm(x, l.Weight, l.Bias, d, l.Eps)
}

// Embedding maps int64 ids [...] to rows of Weight, giving [..., Dim]
// (torch.nn.Embedding). With a padding index, that row gets no gradient.
type Embedding struct {
	Weight *tensor.Tensor // [Num, Dim]
	// PaddingIdx is the padding row, or -1 for none. Note that a struct
	// literal without it pads row 0: prefer NewEmbedding.
	PaddingIdx int
}

// NewEmbedding makes an Embedding of num rows of size dim drawn from N(0, 1),
// as PyTorch. A paddingIdx ≥ 0 names a row that is set to zero and receives
// no gradient (torch's padding_idx); a negative paddingIdx means none.
func NewEmbedding(r *tensor.RNG, num, dim int, paddingIdx int) *Embedding {
	if num <= 0 || dim <= 0 {
		panic(fmt.Sprintf("nn.NewEmbedding: sizes must be positive, got %d×%d", num, dim))
	}
	e := &Embedding{Weight: Normal(tensor.Zeros(num, dim), 0, 1, r), PaddingIdx: -1}
	if paddingIdx >= 0 {
		if paddingIdx >= num {
			panic(fmt.Sprintf("nn.NewEmbedding: padding index %d out of range for %d rows", paddingIdx, num))
		}
		e.PaddingIdx = paddingIdx
		row := e.Weight.Data()[paddingIdx*dim : (paddingIdx+1)*dim]
		clear(row)
	}
	param(e.Weight)
	return e
}

// Forward looks up the rows of the int64 ids in x.
func (e *Embedding) Forward(x *tensor.Tensor) *tensor.Tensor {
	if x.DType() != tensor.Int64 {
		panic(fmt.Sprintf("nn.Embedding: ids must be an int64 tensor, got %v of shape %v", x.DType(), x.Shape()))
	}
	num, dim := e.Weight.Size(0), e.Weight.Size(1)
	ids := x.Int64s()
	for _, id := range ids {
		if id < 0 || id >= int64(num) {
			panic(fmt.Sprintf("nn.Embedding: id %d out of range for %d rows (ids of shape %v)", id, num, x.Shape()))
		}
	}
	flat := tensor.FromInt64(ids, len(ids))
	out := tensor.IndexSelect(e.Weight, 0, flat)
	if e.PaddingIdx >= 0 && e.Weight.RequiresGrad() && tensor.IsGradEnabled() {
		mask := make([]float32, len(ids))
		hit := false
		for i, id := range ids {
			if id == int64(e.PaddingIdx) {
				mask[i] = 1
				hit = true
			}
		}
		if hit {
			frozen := tensor.IndexSelect(e.Weight.Detach(), 0, flat)
			out = tensor.Where(tensor.FromSlice(mask, len(ids), 1), frozen, out)
		}
	}
	return tensor.Reshape(out, append(x.Shape(), dim)...)
}
