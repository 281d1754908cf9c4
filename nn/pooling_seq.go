package nn

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/tensor"
)

// This file holds pooling over the time axis of padded sequence batches,
// and conversions between sequence lengths and masks. A mask is [N, T],
// float32 or int64, nonzero at the valid steps of each sequence.

// MaskedMean averages x [N, T, D] over the valid steps of each sequence
// (mask [N, T] nonzero) and returns [N, D]. A sequence without valid steps
// gives zeros. It is differentiable in x; the mask gets no gradient.
func MaskedMean(x, mask *tensor.Tensor) *tensor.Tensor {
	m, counts := poolMask("nn.MaskedMean", x, mask)
	sum := tensor.SumAxes(tensor.Mul(x, m), false, 1)
	inv := make([]float32, len(counts))
	for i, c := range counts {
		inv[i] = 1 / float32(max(c, 1))
	}
	return tensor.Mul(sum, tensor.FromSlice(inv, len(counts), 1))
}

// MaskedMax takes the maximum of x [N, T, D] over the valid steps of each
// sequence (mask [N, T] nonzero) and returns [N, D]; the gradient flows to
// the first maximal valid step. A sequence without valid steps gives zeros
// and no gradient. The mask gets no gradient.
func MaskedMax(x, mask *tensor.Tensor) *tensor.Tensor {
	m, counts := poolMask("nn.MaskedMax", x, mask)
	pad := make([]float32, m.Numel())
	for i, v := range m.Data() {
		if v == 0 {
			pad[i] = 1
		}
	}
	N := len(counts)
	filled := tensor.MaskedFill(x, tensor.FromSlice(pad, m.Shape()...), float32(math.Inf(-1)))
	out := tensor.Max(filled, 1, false)
	hasValid := make([]float32, N)
	empty := false
	for i, c := range counts {
		if c > 0 {
			hasValid[i] = 1
		} else {
			empty = true
		}
	}
	if empty {
		out = tensor.Where(tensor.FromSlice(hasValid, N, 1), out, tensor.Zeros(out.Shape()...))
	}
	return out
}

// poolMask checks x [N, T, D] against mask [N, T] and returns the mask as
// float32 0/1 values shaped [N, T, 1] and the number of valid steps of each
// sequence.
func poolMask(op string, x, mask *tensor.Tensor) (*tensor.Tensor, []int) {
	if x == nil || mask == nil {
		panic(fmt.Sprintf("%s: nil input or mask", op))
	}
	xs, ms := x.Shape(), mask.Shape()
	if x.DType() != tensor.Float32 || len(xs) != 3 || len(ms) != 2 || ms[0] != xs[0] || ms[1] != xs[1] {
		panic(fmt.Sprintf("%s: input %v %v and mask shape %v do not match (want float32 input [N, T, D] and mask [N, T])", op, x.DType(), xs, ms))
	}
	N, T := ms[0], ms[1]
	v := make([]float32, N*T)
	counts := make([]int, N)
	nonzero := maskValues(mask)
	for i := range N {
		for t := range T {
			if nonzero(i*T + t) {
				v[i*T+t] = 1
				counts[i]++
			}
		}
	}
	return tensor.FromSlice(v, N, T, 1), counts
}

// maskValues reports, for a flat index, whether a float32 or int64 mask is
// nonzero there.
func maskValues(mask *tensor.Tensor) func(int) bool {
	if mask.DType() == tensor.Int64 {
		d := mask.Int64s()
		return func(i int) bool { return d[i] != 0 }
	}
	d := mask.Data()
	return func(i int) bool { return d[i] != 0 }
}

// SequenceMask returns the float32 mask [len(lengths), maxLen] with 1 at
// the steps t < lengths[n] of each sequence n and 0 elsewhere
// (tf.sequence_mask). It panics for a length outside [0, maxLen].
func SequenceMask(lengths []int, maxLen int) *tensor.Tensor {
	if maxLen < 0 {
		panic(fmt.Sprintf("nn.SequenceMask: negative maximum length %d", maxLen))
	}
	v := make([]float32, len(lengths)*maxLen)
	for i, n := range lengths {
		if n < 0 || n > maxLen {
			panic(fmt.Sprintf("nn.SequenceMask: length %d of sequence %d not in [0, %d]", n, i, maxLen))
		}
		for t := range n {
			v[i*maxLen+t] = 1
		}
	}
	return tensor.FromSlice(v, len(lengths), maxLen)
}

// MaskLengths returns the number of valid steps of each sequence of a
// right-padded mask [N, T] (float32 or int64, nonzero = valid), for
// LSTM.ForwardSeq and GRU.ForwardSeq. It panics if a row has a valid step
// after a padded one (left padding or holes), which lengths cannot express.
func MaskLengths(mask *tensor.Tensor) []int {
	if mask == nil || mask.Dim() != 2 {
		var shape any = "nil"
		if mask != nil {
			shape = mask.Shape()
		}
		panic(fmt.Sprintf("nn.MaskLengths: mask shape %v, want [N, T]", shape))
	}
	N, T := mask.Size(0), mask.Size(1)
	nonzero := maskValues(mask)
	out := make([]int, N)
	for i := range N {
		n := 0
		for n < T && nonzero(i*T+n) {
			n++
		}
		for t := n; t < T; t++ {
			if nonzero(i*T + t) {
				panic(fmt.Sprintf("nn.MaskLengths: row %d of mask shape %v has a valid step %d after padding at step %d (only right padding is supported)", i, mask.Shape(), t, n))
			}
		}
		out[i] = n
	}
	return out
}
