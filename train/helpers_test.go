package train_test

import (
	"math"
	"slices"
	"sort"
	"testing"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/train"
)

// blobs returns n points of two Gaussian blobs centred at (-sep, -sep) and
// (sep, sep) with unit variance; a fraction flip of the labels is flipped.
func blobs(seed uint64, n int, sep, flip float64) *data.TensorDataset {
	r := tensor.NewRNG(seed)
	x := make([]float32, 2*n)
	y := make([]int64, n)
	for i := range n {
		c := int64(i % 2)
		m := -sep
		if c == 1 {
			m = sep
		}
		x[2*i] = float32(m + r.NormFloat64())
		x[2*i+1] = float32(m + r.NormFloat64())
		if r.Float64() < flip {
			c = 1 - c
		}
		y[i] = c
	}
	return data.NewTensorDataset(tensor.FromSlice(x, n, 2), tensor.FromInt64(y, n))
}

func mlp(seed uint64, hidden ...int) *nn.Sequential {
	r := tensor.NewRNG(seed)
	s := nn.NewSequential()
	in := 2
	for _, h := range hidden {
		s.Append(nn.NewLinear(r, in, h, true), &nn.ReLU{})
		in = h
	}
	return s.Append(nn.NewLinear(r, in, 2, true))
}

func ce(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) }

func loader(ds data.Dataset, bs int, shuffle bool, seed uint64) *data.Loader {
	return data.NewLoader(ds, data.LoaderConfig{BatchSize: bs, Shuffle: shuffle, Seed: seed, Workers: 2})
}

func adam(m nn.Module, lr float64) optim.Optimizer {
	return optim.NewAdam(nn.Parameters(m), optim.AdamConfig{LR: lr})
}

// weights copies every tensor of m's state dict.
func weights(m nn.Module) map[string][]float32 {
	out := map[string][]float32{}
	for k, t := range nn.StateDict(m) {
		out[k] = slices.Clone(t.Data())
	}
	return out
}

// sameWeights reports whether a and b are bitwise equal, and the first
// differing key.
func sameWeights(a, b map[string][]float32) (bool, string) {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(a) != len(b) {
		return false, "(key count)"
	}
	for _, k := range keys {
		bv, ok := b[k]
		if !ok || len(bv) != len(a[k]) {
			return false, k
		}
		for i, v := range a[k] {
			if math.Float32bits(v) != math.Float32bits(bv[i]) {
				return false, k
			}
		}
	}
	return true, ""
}

func requireSame(t *testing.T, what string, a, b map[string][]float32) {
	t.Helper()
	if ok, k := sameWeights(a, b); !ok {
		t.Fatalf("%s: weights differ at %q", what, k)
	}
}

// sameHistory compares two histories' logs and LRs exactly (not timings).
func sameHistory(t *testing.T, a, b *train.History) {
	t.Helper()
	if !slices.Equal(a.Names, b.Names) {
		t.Fatalf("history names %v vs %v", a.Names, b.Names)
	}
	if len(a.Epochs) != len(b.Epochs) {
		t.Fatalf("history has %d vs %d epochs", len(a.Epochs), len(b.Epochs))
	}
	for i := range a.Epochs {
		ea, eb := a.Epochs[i], b.Epochs[i]
		if ea.Epoch != eb.Epoch || ea.LR != eb.LR || ea.Steps != eb.Steps || len(ea.Logs) != len(eb.Logs) {
			t.Fatalf("epoch %d: %+v vs %+v", i, ea, eb)
		}
		for k, v := range ea.Logs {
			if w, ok := eb.Logs[k]; !ok || math.Float64bits(v) != math.Float64bits(w) {
				t.Fatalf("epoch %d: %s = %v vs %v", i, k, v, w)
			}
		}
	}
}
