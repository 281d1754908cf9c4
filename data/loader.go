package data

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"

	"github.com/deepgo/deepgo/tensor"
)

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	// BatchSize is the number of examples per batch (default 1).
	BatchSize int
	// Shuffle visits examples in a seeded random order that changes every
	// epoch; otherwise they come in index order.
	Shuffle bool
	// Seed fixes the shuffle order and the random transforms.
	Seed uint64
	// DropLast drops the last batch of an epoch when it is smaller than
	// BatchSize.
	DropLast bool
	// Workers is the number of goroutines building batches (default 1).
	Workers int
	// Prefetch is the number of batches prepared ahead of the consumer
	// (default 2).
	Prefetch int
	// Transform, if not nil, is applied to each example's input.
	Transform Transform
}

// Loader turns a Dataset into a sequence of batches, epoch after epoch.
// A Loader is safe for concurrent use; each epoch iterator is not.
type Loader struct {
	ds  Dataset
	cfg LoaderConfig
}

// Batch is a group of examples stacked along a new first axis.
type Batch struct {
	// Input has shape [B, ...] (the examples' input shape), float32 or int64
	// like the examples.
	Input *tensor.Tensor
	// Target has shape [B, ...] (the examples' target shape).
	Target *tensor.Tensor
	// Indices are the dataset indices of the examples, in batch order.
	Indices []int
}

// Size returns the number of examples in the batch.
func (b *Batch) Size() int { return len(b.Indices) }

// NewLoader makes a loader over ds. It panics on a negative BatchSize,
// Workers or Prefetch.
func NewLoader(ds Dataset, cfg LoaderConfig) *Loader {
	if cfg.BatchSize < 0 || cfg.Workers < 0 || cfg.Prefetch < 0 {
		panic(fmt.Sprintf("data.NewLoader: negative setting (batch size %d, workers %d, prefetch %d)", cfg.BatchSize, cfg.Workers, cfg.Prefetch))
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 2
	}
	return &Loader{ds: ds, cfg: cfg}
}

// Dataset returns the loader's dataset.
func (l *Loader) Dataset() Dataset { return l.ds }

// Config returns the loader's configuration with defaults filled in.
func (l *Loader) Config() LoaderConfig { return l.cfg }

// NumBatches returns the number of batches per epoch.
func (l *Loader) NumBatches() int {
	n, b := l.ds.Len(), l.cfg.BatchSize
	if l.cfg.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// Order returns the dataset indices in the order epoch visits them: the
// identity without Shuffle, otherwise rand.New(rand.NewPCG(Seed,
// uint64(epoch))).Perm(n).
func (l *Loader) Order(epoch int) []int {
	n := l.ds.Len()
	if !l.cfg.Shuffle {
		o := make([]int, n)
		for i := range o {
			o[i] = i
		}
		return o
	}
	return rand.New(rand.NewPCG(l.cfg.Seed, uint64(epoch))).Perm(n)
}

// Epoch starts iterating over the batches of the given epoch (0-based).
// The caller must call Close on the iterator (deferring it is simplest)
// unless it has run to the end.
func (l *Loader) Epoch(epoch int) *Iter { return l.EpochFrom(epoch, 0) }

// EpochFrom is Epoch starting at batch number start, for resuming an
// interrupted epoch: it yields exactly the batches start, start+1, ... that
// Epoch(epoch) would have yielded.
func (l *Loader) EpochFrom(epoch, start int) *Iter {
	nb := l.NumBatches()
	if start < 0 {
		start = 0
	}
	it := &Iter{
		done:    make(chan struct{}),
		pending: make(chan chan batchResult, l.cfg.Prefetch),
	}
	order := l.Order(epoch)
	jobs := make(chan batchJob)
	it.wg.Add(1 + l.cfg.Workers)
	go func() { // dispatcher: hands out batch numbers in order
		defer it.wg.Done()
		defer close(jobs)
		defer close(it.pending)
		for j := start; j < nb; j++ {
			slot := make(chan batchResult, 1)
			select {
			case it.pending <- slot:
			case <-it.done:
				return
			}
			select {
			case jobs <- batchJob{j, slot}:
			case <-it.done:
				return
			}
		}
	}()
	for w := 0; w < l.cfg.Workers; w++ {
		go func() {
			defer it.wg.Done()
			for job := range jobs {
				select {
				case <-it.done:
					continue
				default:
				}
				lo := job.n * l.cfg.BatchSize
				hi := min(lo+l.cfg.BatchSize, len(order))
				b, err := l.build(epoch, order[lo:hi])
				job.slot <- batchResult{b, err}
			}
		}()
	}
	return it
}

// Batches returns the batches of an epoch as a range-over-func sequence;
// breaking out of the loop stops the background goroutines. After an error
// the sequence ends.
func (l *Loader) Batches(epoch int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		it := l.Epoch(epoch)
		defer it.Close()
		for it.Next() {
			if !yield(it.Batch(), nil) {
				return
			}
		}
		if err := it.Err(); err != nil {
			yield(nil, err)
		}
	}
}

type batchJob struct {
	n    int
	slot chan batchResult
}

type batchResult struct {
	b   *Batch
	err error
}

// exampleRNG returns the generator used for the transform of example idx in
// epoch: a PCG seeded from a mix of (seed, epoch) and the index.
func exampleRNG(seed uint64, epoch, idx int) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix(seed^splitmix(uint64(epoch)+0x632be59bd9b4e019)), uint64(idx)))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// build loads, transforms and stacks the examples at idx. Panics raised by
// the dataset or a transform are returned as errors so that a bad example
// does not kill the process from a background goroutine.
func (l *Loader) build(epoch int, idx []int) (b *Batch, err error) {
	cur := -1
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("data.Loader: example %d: %v", cur, r)
		}
	}()
	inputs := make([]*tensor.Tensor, len(idx))
	targets := make([]*tensor.Tensor, len(idx))
	for k, i := range idx {
		cur = i
		ex, err := l.ds.Get(i)
		if err != nil {
			return nil, fmt.Errorf("data.Loader: example %d: %w", i, err)
		}
		if ex.Input == nil || ex.Target == nil {
			return nil, fmt.Errorf("data.Loader: example %d has a nil input or target", i)
		}
		if l.cfg.Transform != nil {
			ex.Input = l.cfg.Transform(ex.Input, exampleRNG(l.cfg.Seed, epoch, i))
		}
		inputs[k], targets[k] = ex.Input, ex.Target
	}
	in, err := stack(inputs, idx, "input")
	if err != nil {
		return nil, err
	}
	tg, err := stack(targets, idx, "target")
	if err != nil {
		return nil, err
	}
	return &Batch{Input: in, Target: tg, Indices: append([]int(nil), idx...)}, nil
}

// stack copies same-shaped, same-dtype tensors into one of shape [len(ts), ...].
func stack(ts []*tensor.Tensor, idx []int, what string) (*tensor.Tensor, error) {
	shape, dt := ts[0].Shape(), ts[0].DType()
	for k, t := range ts[1:] {
		if !tensor.SameShape(shape, t.Shape()) || t.DType() != dt {
			return nil, fmt.Errorf("data.Loader: cannot batch example %d (%s %v %v) with example %d (%s %v %v)",
				idx[0], what, shape, dt, idx[k+1], what, t.Shape(), t.DType())
		}
	}
	m := prod(shape)
	full := append([]int{len(ts)}, shape...)
	if dt == tensor.Int64 {
		out := make([]int64, m*len(ts))
		for k, t := range ts {
			copy(out[k*m:], t.Int64s())
		}
		return tensor.FromInt64(out, full...), nil
	}
	out := make([]float32, m*len(ts))
	for k, t := range ts {
		copy(out[k*m:], t.Data())
	}
	return tensor.FromSlice(out, full...), nil
}

// Iter iterates over the batches of one epoch, in the style of bufio.Scanner:
//
//	it := loader.Epoch(e)
//	defer it.Close()
//	for it.Next() {
//		b := it.Batch()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
type Iter struct {
	done    chan struct{}
	pending chan chan batchResult
	wg      sync.WaitGroup
	once    sync.Once
	cur     *Batch
	err     error
	closed  bool
}

// Next advances to the next batch and reports whether there is one. It
// returns false at the end of the epoch, after an error, or after Close.
func (it *Iter) Next() bool {
	if it.closed {
		return false
	}
	slot, ok := <-it.pending
	if !ok {
		it.Close()
		return false
	}
	r := <-slot
	if r.err != nil {
		it.err = r.err
		it.Close()
		return false
	}
	it.cur = r.b
	return true
}

// Batch returns the current batch (valid after Next returned true).
func (it *Iter) Batch() *Batch { return it.cur }

// Err returns the first error met, or nil.
func (it *Iter) Err() error { return it.err }

// Close stops the background goroutines and waits for them to exit. It is
// safe to call more than once.
func (it *Iter) Close() error {
	it.once.Do(func() {
		it.closed = true
		close(it.done) // unblocks the dispatcher and makes workers skip the rest
		it.wg.Wait()
	})
	return nil
}
