package tensor_test

import (
	"math"
	"slices"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

func TestRNGDeterministic(t *testing.T) {
	a, b, c := tensor.NewRNG(42), tensor.NewRNG(42), tensor.NewRNG(43)
	same, differ := true, false
	for range 100 {
		x, y, z := a.Float64(), b.Float64(), c.Float64()
		if x != y {
			same = false
		}
		if x != z {
			differ = true
		}
		if x < 0 || x >= 1 {
			t.Fatalf("Float64 = %v, outside [0, 1)", x)
		}
	}
	if !same || !differ {
		t.Errorf("same seed equal: %v (want true); different seeds differ: %v (want true)", same, differ)
	}
	ta, tb := tensor.RandN(tensor.NewRNG(7), 5, 6), tensor.RandN(tensor.NewRNG(7), 5, 6)
	testutil.AssertClose(t, "RandN same seed", ta, tb, 0, 0)
	if !slices.Equal(tensor.NewRNG(9).Perm(20), tensor.NewRNG(9).Perm(20)) {
		t.Errorf("Perm differs for the same seed")
	}
}

func TestRNGDistributions(t *testing.T) {
	r := tensor.NewRNG(1)
	const n = 20000
	x := tensor.RandN(r, n).Data()
	var s, s2 float64
	for _, v := range x {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	mean, std := s/n, math.Sqrt(s2/n-(s/n)*(s/n))
	if math.Abs(mean) > 0.05 || math.Abs(std-1) > 0.05 {
		t.Errorf("RandN mean %v std %v, want ~0, ~1", mean, std)
	}
	u := tensor.RandU(r, -3, 5, 100, 200)
	if !tensor.SameShape(u.Shape(), []int{100, 200}) {
		t.Fatalf("RandU shape %v", u.Shape())
	}
	s = 0
	for _, v := range u.Data() {
		if v < -3 || v >= 5 {
			t.Fatalf("RandU value %v outside [-3, 5)", v)
		}
		s += float64(v)
	}
	if m := s / float64(u.Numel()); math.Abs(m-1) > 0.05 {
		t.Errorf("RandU mean %v, want ~1", m)
	}
	if v := tensor.RandU(r, 2, 2, 3).Data(); v[0] != 2 || v[2] != 2 {
		t.Errorf("RandU(2, 2) = %v, want all 2", v)
	}
	counts := make([]int, 5)
	for range 5000 {
		counts[r.IntN(5)]++
	}
	for i, c := range counts {
		if c < 900 || c > 1100 {
			t.Errorf("IntN(5) hit %d %d times of 5000", i, c)
		}
	}
	p := r.Perm(50)
	sorted := slices.Clone(p)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != i {
			t.Fatalf("Perm(50) = %v is not a permutation", p)
		}
	}
	if slices.Equal(p, sorted) {
		t.Errorf("Perm(50) returned the identity")
	}
	if g := r.NormFloat64(); math.IsNaN(g) || math.IsInf(g, 0) {
		t.Errorf("NormFloat64 = %v", g)
	}
}

func TestDropout(t *testing.T) {
	const p = 0.3
	x := tensor.Full(2, 100, 100).SetRequiresGrad(true)
	y := tensor.Dropout(x, p, true, tensor.NewRNG(5))
	zeros := 0
	scale := float32(1 / (1 - p))
	for _, v := range y.Data() {
		switch v {
		case 0:
			zeros++
		case 2 * scale:
		default:
			t.Fatalf("Dropout output %v, want 0 or %v", v, 2*scale)
		}
	}
	if frac := float64(zeros) / 1e4; math.Abs(frac-p) > 0.02 {
		t.Errorf("dropped fraction %v, want ~%v", frac, p)
	}
	// Draw by draw, an element is kept exactly when the generator's next
	// Float64 is >= p (the definition the integer decision implements).
	ref := tensor.NewRNG(5)
	for i, v := range y.Data() {
		if keep := ref.Float64() >= p; keep != (v != 0) {
			t.Fatalf("element %d: output %v, but the draw says keep = %v", i, v, keep)
		}
	}
	// backward uses the same mask and scale
	tensor.Sum(y).Backward()
	for i, g := range x.Grad().Data() {
		if want := y.Data()[i] / 2; g != want {
			t.Fatalf("grad[%d] = %v, want %v (mask of the forward pass)", i, g, want)
		}
	}
	// same seed, same mask
	y2 := tensor.Dropout(x, p, true, tensor.NewRNG(5))
	testutil.AssertClose(t, "Dropout same seed", y2, y, 0, 0)
	// eval mode and p = 0 are the identity
	if tensor.Dropout(x, p, false, nil) != x || tensor.Dropout(x, 0, true, nil) != x {
		t.Errorf("Dropout in eval mode or with p = 0 must return its input")
	}
	// p = 1 drops everything, with zero gradient
	z := testutil.Rand(3, -1, 1, 4, 5)
	o := tensor.Dropout(z, 1, true, tensor.NewRNG(1))
	testutil.AssertClose(t, "Dropout p=1", o, tensor.Zeros(4, 5), 0, 0)
	tensor.Sum(o).Backward()
	testutil.AssertClose(t, "Dropout p=1 grad", z.Grad(), tensor.Zeros(4, 5), 0, 0)
}

func TestDropoutGradCheck(t *testing.T) {
	x := testutil.Rand(4, -2, 2, 6, 7)
	f := func(in []*tensor.Tensor) *tensor.Tensor {
		return tensor.Dropout(in[0], 0.4, true, tensor.NewRNG(11)) // fresh RNG: same mask every call
	}
	testutil.GradCheck(t, "Dropout", f, []*tensor.Tensor{x}, 1e-2, 1e-2)
}

func TestRandomPanics(t *testing.T) {
	x := tensor.Zeros(2, 3)
	testutil.MustPanic(t, "Dropout p", func() { tensor.Dropout(x, 1.5, true, tensor.NewRNG(1)) }, "tensor.Dropout", "1.5", "[2 3]")
	testutil.MustPanic(t, "Dropout nil rng", func() { tensor.Dropout(x, 0.5, true, nil) }, "tensor.Dropout", "nil RNG", "[2 3]")
	testutil.MustPanic(t, "IntN", func() { tensor.NewRNG(1).IntN(0) }, "tensor.RNG.IntN", "0")
	testutil.MustPanic(t, "RandU", func() { tensor.RandU(tensor.NewRNG(1), 2, 1, 3) }, "tensor.RandU", "[3]")
	testutil.MustPanic(t, "RandN nil", func() { tensor.RandN(nil, 3) }, "tensor.RandN", "[3]")
}

func TestRNGStateRoundTrip(t *testing.T) {
	a := tensor.NewRNG(42)
	a.Float64()
	st, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{a.Float64(), a.NormFloat64(), float64(a.IntN(1000))}
	b := tensor.NewRNG(7)
	if err := b.UnmarshalBinary(st); err != nil {
		t.Fatal(err)
	}
	got := []float64{b.Float64(), b.NormFloat64(), float64(b.IntN(1000))}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("restored RNG value %d = %v, want %v", i, got[i], want[i])
		}
	}
	if err := b.UnmarshalBinary([]byte("junk")); err == nil {
		t.Fatal("bad state accepted")
	}
}
