// Package data feeds examples to training: the Dataset interface, in-memory
// datasets, a batching Loader with seeded shuffling and background prefetch,
// image transforms and augmentation, and readers for the IDX and CSV formats.
//
// # Datasets
//
// A Dataset is anything with a length and random access to examples (Len,
// Get). An Example is an input tensor and a target tensor (usually a scalar
// int64 class label). TensorDataset holds all examples in two tensors;
// Subset and RandomSplit select and split datasets by index.
//
// # Loading batches
//
// A Loader groups examples into batches: inputs are stacked into a tensor of
// shape [B, ...] and targets into [B, ...] (for scalar labels: [B] int64).
// Background goroutines build the next batches while the current one is in
// use. The order of epoch e is a pure function of (Seed, e): it is the
// permutation rand.New(rand.NewPCG(Seed, e)).Perm(n) from math/rand/v2, so a
// resumed run reproduces the order (see Loader.EpochFrom). Random transforms
// draw from a generator derived from (Seed, epoch, example index), so
// augmentation is reproducible too and independent of the number of workers.
//
// # Errors
//
// Functions that read files or user data return errors that name the
// problem (file, row, column, field). Programmer errors, such as building a
// TensorDataset from tensors of different lengths, panic with a message
// naming the function.
package data

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/deepgo/deepgo/tensor"
)

// Example is one input and its target.
type Example struct {
	// Input is the model input, e.g. a float32 [1, 28, 28] image or an int64
	// sequence of token ids.
	Input *tensor.Tensor
	// Target is what the model should predict, usually a 0-dimensional int64
	// class label.
	Target *tensor.Tensor
}

// Dataset is a finite, randomly accessible collection of examples.
// Implementations must be safe for concurrent Get calls, and Get must not
// expect callers to modify the returned tensors (they may share storage).
type Dataset interface {
	// Len returns the number of examples.
	Len() int
	// Get returns example i, 0 <= i < Len().
	Get(i int) (Example, error)
}

// TensorDataset is an in-memory dataset whose examples are the slices along
// the first axis of an input tensor and a target tensor.
type TensorDataset struct {
	inputs, targets *tensor.Tensor
	n               int
	inShape         []int
	tShape          []int
	inStride        int
	tStride         int
}

// NewTensorDataset makes a dataset of inputs[i], targets[i] for each i along
// the first axis. Both tensors must have at least one dimension and the same
// first dimension; it panics otherwise. The tensors are not copied.
func NewTensorDataset(inputs, targets *tensor.Tensor) *TensorDataset {
	if inputs == nil || targets == nil {
		panic("data.NewTensorDataset: nil tensor")
	}
	is, ts := inputs.Shape(), targets.Shape()
	if len(is) == 0 || len(ts) == 0 || is[0] != ts[0] {
		panic(fmt.Sprintf("data.NewTensorDataset: inputs of shape %v and targets of shape %v need the same first dimension", is, ts))
	}
	d := &TensorDataset{inputs: inputs, targets: targets, n: is[0], inShape: is[1:], tShape: ts[1:]}
	d.inStride = prod(d.inShape)
	d.tStride = prod(d.tShape)
	return d
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// Len returns the number of examples.
func (d *TensorDataset) Len() int { return d.n }

// Get returns example i; its tensors share storage with the dataset's.
func (d *TensorDataset) Get(i int) (Example, error) {
	if i < 0 || i >= d.n {
		return Example{}, fmt.Errorf("data.TensorDataset: index %d out of range [0, %d)", i, d.n)
	}
	return Example{Input: row(d.inputs, i, d.inStride, d.inShape), Target: row(d.targets, i, d.tStride, d.tShape)}, nil
}

// Inputs returns the tensor of all inputs, shape [N, ...].
func (d *TensorDataset) Inputs() *tensor.Tensor { return d.inputs }

// Targets returns the tensor of all targets, shape [N, ...].
func (d *TensorDataset) Targets() *tensor.Tensor { return d.targets }

// row returns the i-th slice along the first axis as a tensor sharing storage.
func row(t *tensor.Tensor, i, stride int, shape []int) *tensor.Tensor {
	if t.DType() == tensor.Int64 {
		return tensor.FromInt64(t.Int64s()[i*stride:(i+1)*stride:(i+1)*stride], shape...)
	}
	return tensor.FromSlice(t.Data()[i*stride:(i+1)*stride:(i+1)*stride], shape...)
}

// Subset is a view of a dataset restricted to (and reordered by) indices.
type Subset struct {
	// Dataset is the underlying dataset.
	Dataset Dataset
	// Indices maps subset positions to indices of Dataset.
	Indices []int
}

// NewSubset returns the examples of ds at the given indices. It does not
// check the indices; Get reports out-of-range ones as errors.
func NewSubset(ds Dataset, indices []int) *Subset { return &Subset{Dataset: ds, Indices: indices} }

// Len returns the number of selected examples.
func (s *Subset) Len() int { return len(s.Indices) }

// Get returns example Indices[i] of the underlying dataset.
func (s *Subset) Get(i int) (Example, error) {
	if i < 0 || i >= len(s.Indices) {
		return Example{}, fmt.Errorf("data.Subset: index %d out of range [0, %d)", i, len(s.Indices))
	}
	return s.Dataset.Get(s.Indices[i])
}

// RandomSplit splits ds into disjoint random subsets whose sizes follow the
// given fractions, which must be positive and sum to 1 (within 1e-6). As in
// PyTorch's random_split, each subset first gets floor(n*fraction) examples
// and the remaining examples go one each to the first subsets in turn. The
// assignment is the permutation rand.New(rand.NewPCG(seed, 0)).Perm(n) cut
// into consecutive pieces; the same seed gives the same split.
func RandomSplit(ds Dataset, seed uint64, fractions ...float64) ([]*Subset, error) {
	if len(fractions) == 0 {
		return nil, fmt.Errorf("data.RandomSplit: no fractions given")
	}
	sum := 0.0
	for i, f := range fractions {
		if !(f > 0) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("data.RandomSplit: fraction %d is %v, want > 0", i, f)
		}
		sum += f
	}
	if math.Abs(sum-1) > 1e-6 {
		return nil, fmt.Errorf("data.RandomSplit: fractions %v sum to %v, want 1", fractions, sum)
	}
	n := ds.Len()
	sizes := make([]int, len(fractions))
	used := 0
	for i, f := range fractions {
		sizes[i] = int(math.Floor(float64(n) * f))
		used += sizes[i]
	}
	for i := 0; used < n; i = (i + 1) % len(sizes) {
		sizes[i]++
		used++
	}
	perm := rand.New(rand.NewPCG(seed, 0)).Perm(n)
	out := make([]*Subset, len(sizes))
	off := 0
	for i, s := range sizes {
		out[i] = NewSubset(ds, perm[off:off+s:off+s])
		off += s
	}
	return out, nil
}

// TrainValSplit splits ds into a training and a validation subset, the
// latter holding the fraction valFraction (0 < valFraction < 1) of the
// examples; see RandomSplit for the scheme.
func TrainValSplit(ds Dataset, valFraction float64, seed uint64) (train, val *Subset, err error) {
	if !(valFraction > 0 && valFraction < 1) {
		return nil, nil, fmt.Errorf("data.TrainValSplit: validation fraction %v, want 0 < f < 1", valFraction)
	}
	parts, err := RandomSplit(ds, seed, 1-valFraction, valFraction)
	if err != nil {
		return nil, nil, err
	}
	return parts[0], parts[1], nil
}
