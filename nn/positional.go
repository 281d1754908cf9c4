package nn

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/tensor"
)

// SinusoidalTable returns the [n, dim] sinusoidal position table of
// "Attention Is All You Need": row p holds sin(p·ω₀), cos(p·ω₀), sin(p·ω₁), …
// with ωᵢ = 10000^(-2i/dim). It is computed in float32 the way the PyTorch
// tutorial's PositionalEncoding computes it, so the values agree to the last
// bit or two. An odd dim ends with a sine column.
func SinusoidalTable(n, dim int) *tensor.Tensor {
	if n < 0 || dim <= 0 {
		panic(fmt.Sprintf("nn.SinusoidalTable: bad size %d×%d", n, dim))
	}
	return sinusoidalRows(0, n, dim)
}

// sinusoidalRows returns rows from..to-1 of the sinusoidal table.
func sinusoidalRows(from, to, dim int) *tensor.Tensor {
	half := (dim + 1) / 2
	freq := make([]float32, half)
	c := float32(-math.Log(10000) / float64(dim))
	for i := range freq {
		freq[i] = float32(math.Exp(float64(float32(2*i) * c)))
	}
	d := make([]float32, (to-from)*dim)
	for p := from; p < to; p++ {
		row := d[(p-from)*dim : (p-from+1)*dim]
		for i, f := range freq {
			a := float64(float32(p) * f)
			row[2*i] = float32(math.Sin(a))
			if 2*i+1 < dim {
				row[2*i+1] = float32(math.Cos(a))
			}
		}
	}
	return tensor.FromSlice(d, to-from, dim)
}

// addPositions adds pos [L, D] to x, which is [L, D], [L, N, D], or
// [N, L, D] when batchFirst.
func addPositions(x, pos *tensor.Tensor, batchFirst bool) *tensor.Tensor {
	if x.Dim() == 3 && !batchFirst {
		pos = tensor.Reshape(pos, pos.Size(0), 1, pos.Size(1))
	}
	return tensor.Add(x, pos)
}

// seqLen checks x's rank and last dimension and returns its sequence length.
func seqLen(op string, x *tensor.Tensor, dim int, batchFirst bool) int {
	if (x.Dim() != 2 && x.Dim() != 3) || x.Size(-1) != dim {
		panic(fmt.Sprintf("%s: input of shape %v, want [L %d], [L N %d] or, batch first, [N L %d]", op, x.Shape(), dim, dim, dim))
	}
	if x.Dim() == 3 && batchFirst {
		return x.Size(1)
	}
	return x.Size(0)
}

// SinusoidalPositionalEncoding adds the fixed sinusoidal position table to
// its input and applies dropout, as the PyTorch tutorial's
// PositionalEncoding. With MaxLen > 0 the table is a buffer "pe"
// [MaxLen, Dim] in the state dict and inputs may be at most MaxLen long;
// with MaxLen 0 the rows are computed for each input and any length works.
type SinusoidalPositionalEncoding struct {
	PE *tensor.Tensor `nn:"pe,buffer"` // [MaxLen, Dim], nil when computed
	// Dropout after the addition; nil for none.
	Dropout *Dropout
	Dim     int
	MaxLen  int
	// BatchFirst means 3-d inputs are [N, L, Dim] rather than [L, N, Dim].
	BatchFirst bool
}

// NewSinusoidalPositionalEncoding makes the encoding for dim features: a
// stored table of maxLen rows, or computed rows when maxLen is 0. dropout is
// the probability of the dropout after the addition, drawn from r.
func NewSinusoidalPositionalEncoding(r *tensor.RNG, dim, maxLen int, dropout float32, batchFirst bool) *SinusoidalPositionalEncoding {
	if dim <= 0 || maxLen < 0 {
		panic(fmt.Sprintf("nn.NewSinusoidalPositionalEncoding: dim %d must be positive and max_len %d not negative", dim, maxLen))
	}
	s := &SinusoidalPositionalEncoding{Dropout: NewDropout(r, dropout), Dim: dim, MaxLen: maxLen, BatchFirst: batchFirst}
	if maxLen > 0 {
		s.PE = SinusoidalTable(maxLen, dim)
	}
	return s
}

// Forward returns dropout(x + table[:L]) for x [L, Dim], [L, N, Dim] or
// [N, L, Dim] (BatchFirst).
func (s *SinusoidalPositionalEncoding) Forward(x *tensor.Tensor) *tensor.Tensor {
	const op = "nn.SinusoidalPositionalEncoding"
	L := seqLen(op, x, s.Dim, s.BatchFirst)
	var pos *tensor.Tensor
	if s.PE != nil {
		if L > s.PE.Size(0) {
			panic(fmt.Sprintf("%s: input of shape %v is longer than max_len %d", op, x.Shape(), s.PE.Size(0)))
		}
		pos = s.PE
		if L != s.PE.Size(0) {
			pos = tensor.Slice(s.PE, 0, 0, L, 1)
		}
	} else {
		pos = sinusoidalRows(0, L, s.Dim)
	}
	return drop(s.Dropout, addPositions(x, pos, s.BatchFirst))
}

// LearnedPositionalEmbedding adds a trainable position table Weight
// [MaxLen, Dim] (key "weight", like an nn.Embedding of positions) to its
// input: row p is added at position p.
type LearnedPositionalEmbedding struct {
	Weight *tensor.Tensor // [MaxLen, Dim]
	// BatchFirst means 3-d inputs are [N, L, Dim] rather than [L, N, Dim].
	BatchFirst bool
}

// NewLearnedPositionalEmbedding makes a table of maxLen positions of dim
// features drawn from N(0, 1), as torch.nn.Embedding (BERT-style models use
// N(0, 0.02²): refill Weight with Normal).
func NewLearnedPositionalEmbedding(r *tensor.RNG, maxLen, dim int, batchFirst bool) *LearnedPositionalEmbedding {
	if maxLen <= 0 || dim <= 0 {
		panic(fmt.Sprintf("nn.NewLearnedPositionalEmbedding: sizes must be positive, got max_len %d dim %d", maxLen, dim))
	}
	return &LearnedPositionalEmbedding{Weight: param(Normal(tensor.Zeros(maxLen, dim), 0, 1, r)), BatchFirst: batchFirst}
}

// Forward returns x + Weight[:L] for x [L, Dim], [L, N, Dim] or [N, L, Dim]
// (BatchFirst).
func (e *LearnedPositionalEmbedding) Forward(x *tensor.Tensor) *tensor.Tensor {
	const op = "nn.LearnedPositionalEmbedding"
	maxLen, dim := e.Weight.Size(0), e.Weight.Size(1)
	L := seqLen(op, x, dim, e.BatchFirst)
	if L > maxLen {
		panic(fmt.Sprintf("%s: input of shape %v is longer than max_len %d", op, x.Shape(), maxLen))
	}
	pos := e.Weight
	if L != maxLen {
		pos = tensor.Slice(e.Weight, 0, 0, L, 1)
	}
	return addPositions(x, pos, e.BatchFirst)
}
