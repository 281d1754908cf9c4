package data_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

// seqDataset returns n examples whose input [1, 2, 2] is filled with i and
// whose target is i.
func seqDataset(n int) *data.TensorDataset {
	x := make([]float32, n*4)
	y := make([]int64, n)
	for i := 0; i < n; i++ {
		for k := 0; k < 4; k++ {
			x[i*4+k] = float32(i)
		}
		y[i] = int64(i)
	}
	return data.NewTensorDataset(tensor.FromSlice(x, n, 1, 2, 2), tensor.FromInt64(y, n))
}

func TestTensorDataset(t *testing.T) {
	ds := seqDataset(5)
	if ds.Len() != 5 {
		t.Fatalf("Len = %d", ds.Len())
	}
	ex, err := ds.Get(3)
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(ex.Input.Shape(), []int{1, 2, 2}) || ex.Input.At(0, 1, 1) != 3 {
		t.Errorf("input %v", ex.Input)
	}
	if ex.Target.Dim() != 0 || ex.Target.Int64s()[0] != 3 {
		t.Errorf("target %v", ex.Target)
	}
	for _, i := range []int{-1, 5} {
		if _, err := ds.Get(i); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("Get(%d) error %v", i, err)
		}
	}
	testutil.MustPanic(t, "mismatch", func() {
		data.NewTensorDataset(tensor.Zeros(3, 2), tensor.ZerosInt64(4))
	}, "data.NewTensorDataset", "[3 2]", "[4]")
}

func TestRandomSplit(t *testing.T) {
	ds := seqDataset(10)
	parts, err := data.RandomSplit(ds, 42, 0.33, 0.33, 0.34)
	if err != nil {
		t.Fatal(err)
	}
	// floor(3.3)=3, floor(3.3)=3, floor(3.4)=3, remainder 1 goes to the first.
	if got := []int{parts[0].Len(), parts[1].Len(), parts[2].Len()}; !slices.Equal(got, []int{4, 3, 3}) {
		t.Errorf("sizes %v, want [4 3 3]", got)
	}
	var all []int
	for _, p := range parts {
		for i := 0; i < p.Len(); i++ {
			ex, err := p.Get(i)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, int(ex.Target.Int64s()[0]))
		}
	}
	slices.Sort(all)
	if !slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("split is not a partition: %v", all)
	}
	again, _ := data.RandomSplit(ds, 42, 0.33, 0.33, 0.34)
	if !slices.Equal(again[0].Indices, parts[0].Indices) {
		t.Errorf("same seed gave %v then %v", parts[0].Indices, again[0].Indices)
	}
	other, _ := data.RandomSplit(ds, 43, 0.33, 0.33, 0.34)
	if slices.Equal(other[0].Indices, parts[0].Indices) && slices.Equal(other[1].Indices, parts[1].Indices) {
		t.Errorf("different seeds gave the same split")
	}
	for _, fr := range [][]float64{{0.5, 0.6}, {1.2, -0.2}, {}} {
		if _, err := data.RandomSplit(ds, 1, fr...); err == nil {
			t.Errorf("fractions %v: no error", fr)
		}
	}
	tr, va, err := data.TrainValSplit(ds, 0.2, 7)
	if err != nil || tr.Len() != 8 || va.Len() != 2 {
		t.Errorf("TrainValSplit: %v %v %v", tr, va, err)
	}
	if _, _, err := data.TrainValSplit(ds, 1, 7); err == nil {
		t.Errorf("TrainValSplit(1): no error")
	}
	if _, err := parts[0].Get(99); err == nil {
		t.Errorf("Subset.Get(99): no error")
	}
}

// collect runs an epoch and returns the target of every example per batch.
func collect(t *testing.T, l *data.Loader, epoch, start int) [][]int64 {
	t.Helper()
	it := l.EpochFrom(epoch, start)
	defer it.Close()
	var out [][]int64
	for it.Next() {
		b := it.Batch()
		tg := b.Target.Int64s()
		in := b.Input.Data()
		if b.Input.Size(0) != len(tg) || b.Size() != len(tg) {
			t.Fatalf("batch input %v, targets %d", b.Input.Shape(), len(tg))
		}
		for k, y := range tg {
			if in[k*4] != float32(y) || b.Indices[k] != int(y) {
				t.Fatalf("batch row %d: input %v, target %d, index %d", k, in[k*4], y, b.Indices[k])
			}
		}
		out = append(out, slices.Clone(tg))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoaderOrderAndBatching(t *testing.T) {
	ds := seqDataset(10)
	l := data.NewLoader(ds, data.LoaderConfig{BatchSize: 4})
	got := collect(t, l, 0, 0)
	want := [][]int64{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}
	if fmt.Sprint(got) != fmt.Sprint(want) || l.NumBatches() != 3 {
		t.Errorf("batches %v (NumBatches %d), want %v", got, l.NumBatches(), want)
	}
	it := l.Epoch(0)
	it.Next()
	if s := it.Batch().Input.Shape(); !slices.Equal(s, []int{4, 1, 2, 2}) {
		t.Errorf("input shape %v", s)
	}
	if s := it.Batch().Target.Shape(); !slices.Equal(s, []int{4}) || it.Batch().Target.DType() != tensor.Int64 {
		t.Errorf("target shape %v", s)
	}
	it.Close()
	if it.Next() {
		t.Errorf("Next after Close returned true")
	}

	ld := data.NewLoader(ds, data.LoaderConfig{BatchSize: 4, DropLast: true})
	if got := collect(t, ld, 0, 0); len(got) != 2 || ld.NumBatches() != 2 {
		t.Errorf("drop-last batches %v", got)
	}
}

func TestLoaderShuffleDeterministic(t *testing.T) {
	ds := seqDataset(23)
	cfg := data.LoaderConfig{BatchSize: 5, Shuffle: true, Seed: 9}
	l1 := data.NewLoader(ds, cfg)
	cfg.Workers = 4
	cfg.Prefetch = 1
	l4 := data.NewLoader(ds, cfg)
	e0, e1 := collect(t, l1, 0, 0), collect(t, l1, 1, 0)
	if fmt.Sprint(e0) == fmt.Sprint(e1) {
		t.Errorf("epochs 0 and 1 have the same order %v", e0)
	}
	if fmt.Sprint(collect(t, l4, 1, 0)) != fmt.Sprint(e1) {
		t.Errorf("4 workers changed the order")
	}
	if fmt.Sprint(collect(t, data.NewLoader(ds, data.LoaderConfig{BatchSize: 5, Shuffle: true, Seed: 9}), 1, 0)) != fmt.Sprint(e1) {
		t.Errorf("a new loader with the same seed changed the order")
	}
	// The documented scheme.
	perm := rand.New(rand.NewPCG(9, 1)).Perm(23)
	var flat []int
	for _, b := range e1 {
		for _, v := range b {
			flat = append(flat, int(v))
		}
	}
	if !slices.Equal(flat, perm) {
		t.Errorf("epoch 1 order %v, documented scheme gives %v", flat, perm)
	}
	if !slices.Equal(l1.Order(1), perm) {
		t.Errorf("Order(1) = %v", l1.Order(1))
	}
	// Resume from batch 2 gives the rest of the epoch.
	if got := collect(t, l4, 1, 2); fmt.Sprint(got) != fmt.Sprint(e1[2:]) {
		t.Errorf("resume: %v, want %v", got, e1[2:])
	}
	slices.Sort(flat)
	for i, v := range flat {
		if v != i {
			t.Fatalf("epoch is not a permutation: %v", flat)
		}
	}
}

func TestLoaderTransformsReproducible(t *testing.T) {
	ds := seqDataset(12)
	tf := func(x *tensor.Tensor, rng *rand.Rand) *tensor.Tensor {
		d := slices.Clone(x.Data())
		d[1] = float32(rng.Float64())
		return tensor.FromSlice(d, x.Shape()...)
	}
	run := func(workers, epoch int) []float32 {
		l := data.NewLoader(ds, data.LoaderConfig{BatchSize: 5, Shuffle: true, Seed: 3, Workers: workers, Transform: tf})
		var out []float32
		for b, err := range l.Batches(epoch) {
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < b.Size(); k++ {
				out = append(out, b.Input.Data()[k*4+1])
			}
		}
		return out
	}
	a, b := run(1, 0), run(3, 0)
	if !slices.Equal(a, b) || len(a) != 12 {
		t.Errorf("transform draws differ with workers: %v vs %v", a, b)
	}
	if slices.Equal(a, run(1, 1)) {
		t.Errorf("epoch 1 repeated epoch 0's augmentation")
	}
	// The dataset itself is not modified by transforms.
	ex, _ := ds.Get(4)
	if ex.Input.Data()[1] != 4 {
		t.Errorf("transform modified the dataset: %v", ex.Input)
	}
}

type failing struct {
	data.Dataset
	bad int
}

func (f failing) Get(i int) (data.Example, error) {
	if i == f.bad {
		return data.Example{}, errors.New("disk on fire")
	}
	return f.Dataset.Get(i)
}

func TestLoaderErrors(t *testing.T) {
	l := data.NewLoader(failing{seqDataset(10), 6}, data.LoaderConfig{BatchSize: 3, Workers: 2})
	it := l.Epoch(0)
	n := 0
	for it.Next() {
		n++
	}
	if err := it.Err(); err == nil || !strings.Contains(err.Error(), "example 6") || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("error %v", err)
	}
	if n != 2 {
		t.Errorf("got %d batches before the error, want 2", n)
	}
	it.Close()

	// A transform panic becomes an error naming the example.
	l = data.NewLoader(seqDataset(4), data.LoaderConfig{BatchSize: 2, Transform: data.Normalize([]float32{0, 0}, []float32{1, 1})})
	for _, err := range l.Batches(0) {
		if err == nil || !strings.Contains(err.Error(), "data.Normalize") || !strings.Contains(err.Error(), "example 0") {
			t.Errorf("transform panic: %v", err)
		}
	}

	// Examples of different shapes cannot be batched.
	mixed := mixedDataset{}
	l = data.NewLoader(mixed, data.LoaderConfig{BatchSize: 2})
	for _, err := range l.Batches(0) {
		if err == nil || !strings.Contains(err.Error(), "[2]") || !strings.Contains(err.Error(), "[3]") {
			t.Errorf("mixed shapes: %v", err)
		}
	}
	testutil.MustPanic(t, "negative batch", func() { data.NewLoader(mixed, data.LoaderConfig{BatchSize: -1}) }, "data.NewLoader", "-1")
}

type mixedDataset struct{}

func (mixedDataset) Len() int { return 2 }
func (mixedDataset) Get(i int) (data.Example, error) {
	return data.Example{Input: tensor.Zeros(2 + i), Target: tensor.ZerosInt64()}, nil
}

// waitGoroutines polls until the goroutine count drops to at most n. Exited
// goroutines can be counted for a moment after wg.Wait returns, so it retries
// (this bounds the wait, it is not a timing assertion).
func waitGoroutines(n int) int {
	var g int
	for i := 0; i < 500; i++ {
		if g = runtime.NumGoroutine(); g <= n {
			return g
		}
		time.Sleep(2 * time.Millisecond)
	}
	return g
}

// slowDataset blocks each Get until release is closed.
type slowDataset struct {
	*data.TensorDataset
	release chan struct{}
}

func (s slowDataset) Get(i int) (data.Example, error) {
	if i > 0 {
		<-s.release
	}
	return s.TensorDataset.Get(i)
}

func TestLoaderNoGoroutineLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	ds := seqDataset(100)
	l := data.NewLoader(ds, data.LoaderConfig{BatchSize: 3, Shuffle: true, Workers: 4, Prefetch: 3})
	for k := 0; k < 10; k++ {
		// Stop early with Close.
		it := l.Epoch(k)
		for j := 0; j < k && it.Next(); j++ {
		}
		it.Close()
		it.Close() // idempotent
		// Break out of a range loop.
		j := 0
		for _, err := range l.Batches(k) {
			if err != nil {
				t.Fatal(err)
			}
			if j++; j > k {
				break
			}
		}
		// Run to the end without Close.
		it = l.Epoch(k)
		for it.Next() {
		}
	}
	if g := waitGoroutines(base); g > base {
		t.Errorf("%d goroutines left running, started with %d", g, base)
	}

	// Prefetch really runs ahead: while the consumer holds batch 0 the
	// workers are already blocked inside Get for later batches; Close while
	// they are blocked must still return once they are released.
	slow := slowDataset{ds, make(chan struct{})}
	ls := data.NewLoader(slow, data.LoaderConfig{BatchSize: 1, Workers: 2})
	it := ls.Epoch(0)
	if !it.Next() || it.Batch().Indices[0] != 0 {
		t.Fatal("first batch")
	}
	closed := make(chan struct{})
	go func() { it.Close(); close(closed) }()
	close(slow.release)
	<-closed
	if g := waitGoroutines(base); g > base {
		t.Errorf("%d goroutines left running after blocked Close, started with %d", g, base)
	}
}

func TestLoaderEmpty(t *testing.T) {
	l := data.NewLoader(seqDataset(0), data.LoaderConfig{BatchSize: 4})
	if got := collect(t, l, 0, 0); len(got) != 0 {
		t.Errorf("empty dataset gave %v", got)
	}
}

func TestLoaderInt64InputsFloatTargets(t *testing.T) {
	// Token-id inputs and regression targets batch with their own dtypes.
	ds := data.NewTensorDataset(tensor.FromInt64([]int64{1, 2, 3, 4, 5, 6}, 3, 2), tensor.FromSlice([]float32{0.5, 1.5, 2.5}, 3))
	l := data.NewLoader(ds, data.LoaderConfig{BatchSize: 2})
	it := l.Epoch(0)
	defer it.Close()
	if !it.Next() {
		t.Fatal(it.Err())
	}
	b := it.Batch()
	if !slices.Equal(b.Input.Int64s(), []int64{1, 2, 3, 4}) || !slices.Equal(b.Target.Data(), []float32{0.5, 1.5}) {
		t.Errorf("batch %v %v", b.Input, b.Target)
	}
}
