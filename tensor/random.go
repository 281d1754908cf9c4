package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// RNG is a seeded, deterministic random source for initialisation, shuffling
// and dropout: the same seed gives the same sequence on every run. It wraps a
// math/rand/v2 PCG generator. An RNG is not safe for concurrent use; give each
// goroutine its own.
type RNG struct {
	r   *rand.Rand
	src *rand.PCG
}

// rngStream is the fixed PCG stream constant paired with the user's seed.
const rngStream = 0x9e3779b97f4a7c15

// NewRNG returns a generator seeded with seed.
func NewRNG(seed uint64) *RNG {
	src := rand.NewPCG(seed, rngStream)
	return &RNG{r: rand.New(src), src: src}
}

// MarshalBinary returns the generator's state, so that a checkpoint can
// resume the exact random sequence (dropout masks, augmentation).
func (r *RNG) MarshalBinary() ([]byte, error) { return r.src.MarshalBinary() }

// UnmarshalBinary restores a state written by MarshalBinary.
func (r *RNG) UnmarshalBinary(b []byte) error {
	if err := r.src.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("tensor.RNG: bad state: %w", err)
	}
	return nil
}

// Float64 returns a uniform value in [0, 1).
func (r *RNG) Float64() float64 { return r.r.Float64() }

// NormFloat64 returns a standard normal value.
func (r *RNG) NormFloat64() float64 { return r.r.NormFloat64() }

// IntN returns a uniform int in [0, n). It panics if n <= 0.
func (r *RNG) IntN(n int) int {
	if n <= 0 {
		panic(fmt.Sprintf("tensor.RNG.IntN: n = %d must be positive", n))
	}
	return r.r.IntN(n)
}

// Perm returns a random permutation of [0, n).
func (r *RNG) Perm(n int) []int {
	if n < 0 {
		panic(fmt.Sprintf("tensor.RNG.Perm: n = %d must not be negative", n))
	}
	return r.r.Perm(n)
}

// RandN returns a tensor of standard normal values.
func RandN(r *RNG, shape ...int) *Tensor {
	if r == nil {
		panic(fmt.Sprintf("tensor.RandN: nil RNG for shape %v", shape))
	}
	t := Zeros(shape...)
	for i := range t.data {
		t.data[i] = float32(r.r.NormFloat64())
	}
	return t
}

// RandU returns a tensor of values uniform in [lo, hi). It panics unless lo <= hi.
func RandU(r *RNG, lo, hi float32, shape ...int) *Tensor {
	if r == nil {
		panic(fmt.Sprintf("tensor.RandU: nil RNG for shape %v", shape))
	}
	if !(lo <= hi) {
		panic(fmt.Sprintf("tensor.RandU: lo %v > hi %v for shape %v", lo, hi, shape))
	}
	t := Zeros(shape...)
	l, w := float64(lo), float64(hi)-float64(lo)
	below := math.Nextafter32(hi, float32(math.Inf(-1)))
	for i := range t.data {
		v := float32(l + w*r.r.Float64())
		if v >= hi && lo < hi { // rounding to float32 may land on hi
			v = max(below, lo)
		}
		t.data[i] = v
	}
	return t
}

// Dropout zeroes elements with probability p and scales the rest by 1/(1-p)
// when training (inverted dropout, as torch.nn.functional.dropout); otherwise,
// or when p is 0, it returns a unchanged. p = 1 zeroes everything. The
// backward pass applies the same mask and scale. r must not be nil when
// training with p > 0.
func Dropout(a *Tensor, p float32, training bool, r *RNG) *Tensor {
	mustFloat("Dropout", a)
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("tensor.Dropout: probability %v not in [0, 1] (input shape %v)", p, a.shape))
	}
	if !training || p == 0 {
		return a
	}
	if r == nil {
		panic(fmt.Sprintf("tensor.Dropout: nil RNG while training (input shape %v)", a.shape))
	}
	// mask holds 0 for dropped elements and 1/(1-p) for kept ones.
	mask := make([]float32, len(a.data))
	out := newOut(a.shape)
	if p < 1 {
		scale := float32(1 / (1 - float64(p)))
		// Keep an element when rand.Rand.Float64() >= p, decided on the
		// integer it is made of (its low 53 bits over 2⁵³, exact), straight
		// from the PCG source: the same draws and masks, without the
		// interface call and the float conversion per element. The
		// decision is branch-free: u − keep wraps around (top bit set)
		// exactly when u < keep, and that bit picks 0 from vals.
		keep := uint64(math.Ceil(float64(p) * (1 << 53)))
		vals := [2]float32{scale, 0}
		for i, v := range a.data {
			m := vals[((r.src.Uint64()&(1<<53-1))-keep)>>63]
			mask[i] = m
			out.data[i] = v * m
		}
	} else {
		for i, v := range a.data {
			out.data[i] = v * 0
		}
	}
	return record("Dropout", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			ga.data[i] = v * mask[i]
		}
		return []*Tensor{ga}
	}, a)
}
