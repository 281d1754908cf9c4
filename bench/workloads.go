package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/deepgo/deepgo/apps/digits"
	"github.com/deepgo/deepgo/data/mnist"
	"github.com/deepgo/deepgo/internal/kernels"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

// imagePool is how many distinct images the model workloads cycle through.
const imagePool = 1024

// env is the state shared by the workloads of one Run.
type env struct {
	opt    Options
	data   string    // DataMNIST or DataRandom once loaded
	pixels []float32 // imagePool images of 28×28 in [0, 1]
	labels []int64   // imagePool labels in [0, 10)
}

// loadImages fills e.pixels and e.labels from MNIST or at random, then
// returns what it no longer needs to the operating system.
func (e *env) loadImages(ctx context.Context) error {
	const px = mnist.Rows * mnist.Cols
	if e.opt.Data != DataRandom {
		var train *mnist.Dataset
		var err error
		if e.opt.MNISTDir != "" {
			train, _, err = mnist.LoadDir(e.opt.MNISTDir)
		} else {
			train, _, err = (&mnist.Locator{Context: ctx}).Load()
		}
		switch {
		case err == nil && train.Len() >= imagePool:
			e.pixels = make([]float32, imagePool*px)
			for i, b := range train.Pixels()[:imagePool*px] {
				e.pixels[i] = float32(b) / 255
			}
			e.labels = append([]int64(nil), train.Labels()[:imagePool]...)
			e.data = DataMNIST
		case e.opt.Data == DataMNIST:
			if err == nil {
				err = fmt.Errorf("bench: MNIST has %d training images, need %d", train.Len(), imagePool)
			}
			return err
		}
	}
	if e.data == "" {
		r := tensor.NewRNG(e.opt.Seed + 1000)
		e.pixels = tensor.RandU(r, 0, 1, imagePool*px).Data()
		e.labels = make([]int64, imagePool)
		for i := range e.labels {
			e.labels[i] = int64(r.IntN(10))
		}
		e.data = DataRandom
	}
	runtime.GC()
	debug.FreeOSMemory()
	return nil
}

// batch is one prepared input and its class targets.
type batch struct{ x, y *tensor.Tensor }

// batches returns batches of size b cycling over the image pool: images
// [b, 1, 28, 28], or [b, 784] when flat.
func (e *env) batches(b int, flat bool) []batch {
	const px = mnist.Rows * mnist.Cols
	count := max(1, min(4, imagePool/b))
	out := make([]batch, count)
	for k := range out {
		x := make([]float32, b*px)
		y := make([]int64, b)
		for i := range b {
			j := (k*b + i) % imagePool
			copy(x[i*px:(i+1)*px], e.pixels[j*px:(j+1)*px])
			y[i] = e.labels[j]
		}
		shape := []int{b, 1, mnist.Rows, mnist.Cols}
		if flat {
			shape = []int{b, px}
		}
		out[k] = batch{tensor.FromSlice(x, shape...), tensor.FromInt64(y, b)}
	}
	return out
}

// newCNN is the seed CNN (digits.CNN).
func newCNN(r *tensor.RNG) nn.Module { return digits.CNN(r) }

// newMLP is the MLP 784-128-10 with a ReLU.
func newMLP(r *tensor.RNG) nn.Module {
	return nn.NewSequential(
		nn.NewLinear(r, 784, 128, true),
		&nn.ReLU{},
		nn.NewLinear(r, 128, 10, true),
	)
}

// withThreads runs f with Sgemm limited to t threads.
func withThreads(t int, f func() ([]Result, error)) ([]Result, error) {
	prev := kernels.SetThreads(t)
	defer kernels.SetThreads(prev)
	return f()
}

// runSgemm times C = A·B for n×n matrices on t threads.
func runSgemm(ctx context.Context, e *env, n, t int) ([]Result, error) {
	return withThreads(t, func() ([]Result, error) {
		r := tensor.NewRNG(e.opt.Seed)
		a := tensor.RandU(r, -1, 1, n, n).Data()
		b := tensor.RandU(r, -1, 1, n, n).Data()
		c := make([]float32, n*n)
		steps, d, _, err := timeSteps(ctx, e.opt, func() {
			kernels.Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		})
		if err != nil {
			return nil, err
		}
		flops := 2 * float64(n) * float64(n) * float64(n) * float64(steps)
		return []Result{{
			Name: fmt.Sprintf("sgemm_n%d_t%d", n, t), Value: flops / d.Seconds() / 1e9, Unit: UnitGFLOPS,
			HigherIsBetter: true, Steps: steps, Seconds: d.Seconds(), Threads: t,
		}}, nil
	})
}

// scalingPairs is the number of alternating 1-thread and t-thread spells
// of a scaling workload.
const scalingPairs = 8

// runSgemmScaling measures how much faster C = A·B for n×n matrices runs on
// t threads than on 1: scalingPairs pairs of spells, each spell a
// 1/(2·scalingPairs) share of the workload's duration (or of its fixed
// steps) on 1 thread and then on t threads; the value is the median of
// the pairs' GFLOPS ratios.
func runSgemmScaling(ctx context.Context, e *env, n, t int) ([]Result, error) {
	r := tensor.NewRNG(e.opt.Seed)
	a := tensor.RandU(r, -1, 1, n, n).Data()
	b := tensor.RandU(r, -1, 1, n, n).Data()
	c := make([]float32, n*n)
	step := func() { kernels.Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n) }
	spell := e.opt
	spell.Duration = e.opt.Duration / (2 * scalingPairs)
	spell.MinSteps = max(1, e.opt.MinSteps/2)
	spell.Warmup = min(e.opt.Warmup, 1) // one step to switch thread counts
	if e.opt.Steps > 0 {
		spell.Steps = max(1, e.opt.Steps/2)
	}
	rate := func(threads int) (float64, int, time.Duration, error) {
		prev := kernels.SetThreads(threads)
		defer kernels.SetThreads(prev)
		steps, d, _, err := timeSteps(ctx, spell, step)
		return float64(steps) / d.Seconds(), steps, d, err
	}
	ratios := make([]float64, 0, scalingPairs)
	total, secs := 0, 0.0
	for range scalingPairs {
		r1, s1, d1, err := rate(1)
		if err != nil {
			return nil, err
		}
		rt, st, dt, err := rate(t)
		if err != nil {
			return nil, err
		}
		ratios = append(ratios, rt/r1)
		total += s1 + st
		secs += d1.Seconds() + dt.Seconds()
	}
	return []Result{{
		Name: fmt.Sprintf("sgemm_n%d_scaling", n), Value: median(ratios), Unit: UnitRatio,
		HigherIsBetter: true, Steps: total, Seconds: secs, Threads: t,
		Note: fmt.Sprintf("%d-thread over 1-thread GFLOPS, median of %d alternating pairs of spells", t, scalingPairs),
	}}, nil
}

// runTrain times training steps of a fresh model at batch size b and
// counts the allocations per step. A step is what train.Fit runs: in a
// step arena (tensor.Arena) that is reset after the loss is read.
func runTrain(ctx context.Context, e *env, name string, mk func(*tensor.RNG) nn.Module, b int, flat bool) ([]Result, error) {
	return withThreads(e.opt.Threads, func() ([]Result, error) {
		model := mk(tensor.NewRNG(e.opt.Seed))
		nn.Train(model)
		opt := optim.NewAdam(nn.Parameters(model), optim.AdamConfig{LR: 1e-3})
		bs := e.batches(b, flat)
		arena := tensor.NewArena()
		i := 0
		steps, d, mallocs, err := timeSteps(ctx, e.opt, func() {
			bt := bs[i%len(bs)]
			i++
			opt.ZeroGrad()
			loss := nn.CrossEntropy(model.Forward(arena.Adopt(bt.x)), bt.y)
			loss.Backward()
			opt.Step()
			loss.Item() // read as Fit reads it, before Reset
			arena.Reset()
		})
		if err != nil {
			return nil, err
		}
		return []Result{
			{Name: name, Value: float64(steps*b) / d.Seconds(), Unit: UnitImagesSec, HigherIsBetter: true,
				Steps: steps, Seconds: d.Seconds(), Threads: e.opt.Threads},
			{Name: name + "_allocs", Value: float64(mallocs) / float64(steps), Unit: UnitAllocs,
				Steps: steps, Seconds: d.Seconds(), Threads: e.opt.Threads,
				Note: "runtime.MemStats.Mallocs delta over the timed steps / steps"},
		}, nil
	})
}

// Sequence workloads: batch seqBatch of seqLen steps of seqIn features
// (random, fixed), the i-th sequence seqLen−i steps long for the LSTM and
// 16+i for the Transformer's key padding mask.
const (
	seqBatch = 32
	seqLen   = 64
	seqIn    = 64
)

// runSeqTrain times training steps (zero grads, forward, mean of the
// output, backward, Adam lr 1e-3) of a sequence model, in sequences per
// second. forward returns the model's output for the fixed input.
func runSeqTrain(ctx context.Context, e *env, name string, params []*tensor.Tensor, forward func() *tensor.Tensor) ([]Result, error) {
	return withThreads(e.opt.Threads, func() ([]Result, error) {
		opt := optim.NewAdam(params, optim.AdamConfig{LR: 1e-3})
		steps, d, _, err := timeSteps(ctx, e.opt, func() {
			opt.ZeroGrad()
			loss := tensor.Mean(forward())
			loss.Backward()
			opt.Step()
			loss.Item()
		})
		if err != nil {
			return nil, err
		}
		return []Result{{Name: name, Value: float64(steps*seqBatch) / d.Seconds(), Unit: UnitSeqSec, HigherIsBetter: true,
			Steps: steps, Seconds: d.Seconds(), Threads: e.opt.Threads}}, nil
	})
}

// runLSTMTrain: a one-layer bidirectional LSTM, 64 → 128 per direction,
// batch first, variable lengths.
func runLSTMTrain(ctx context.Context, e *env) ([]Result, error) {
	r := tensor.NewRNG(e.opt.Seed)
	m := nn.NewLSTM(r, seqIn, 128, nn.RNNOptions{Bias: true, BatchFirst: true, Bidirectional: true})
	nn.Train(m)
	x := tensor.RandU(r, -1, 1, seqBatch, seqLen, seqIn)
	lengths := make([]int, seqBatch)
	for i := range lengths {
		lengths[i] = seqLen - i
	}
	return runSeqTrain(ctx, e, "lstm_train_b32", nn.Parameters(m), func() *tensor.Tensor {
		out, _, _ := m.ForwardSeq(x, lengths, nil, nil)
		return out
	})
}

// runTransformerTrain: a two-layer Transformer encoder, d 128, 4 heads,
// feed-forward 512, GELU, dropout 0.1, post-norm, batch first, with a key
// padding mask.
func runTransformerTrain(ctx context.Context, e *env) ([]Result, error) {
	r := tensor.NewRNG(e.opt.Seed)
	cfg := nn.DefaultTransformerEncoderLayer(128, 4)
	cfg.DimFeedforward, cfg.BatchFirst, cfg.Activation = 512, true, "gelu"
	m := nn.NewTransformerEncoder(r, cfg, 2, false)
	nn.Train(m)
	x := tensor.RandU(r, -1, 1, seqBatch, seqLen, 128)
	lengths := make([]int, seqBatch)
	for i := range lengths {
		lengths[i] = 16 + i
	}
	kpm := nn.PaddingMask(lengths, seqLen)
	return runSeqTrain(ctx, e, "transformer_train_b32", nn.Parameters(m), func() *tensor.Tensor {
		return m.ForwardMasked(x, nil, kpm)
	})
}

// evalCNN returns a seed CNN in eval mode.
func evalCNN(e *env) nn.Module {
	m := newCNN(tensor.NewRNG(e.opt.Seed))
	nn.Eval(m)
	return m
}

// runInferLatency times single forward passes of one image and reports the
// median.
func runInferLatency(ctx context.Context, e *env) ([]Result, error) {
	return withThreads(e.opt.Threads, func() ([]Result, error) {
		model := evalCNN(e)
		bs := e.batches(1, false)
		var lat []float64
		var err error
		var steps int
		var d time.Duration
		tensor.NoGrad(func() {
			i := 0
			timing := false
			steps, d, _, err = timeSteps(ctx, e.opt, func() {
				x := bs[i%len(bs)].x
				i++
				t0 := time.Now()
				model.Forward(x)
				if timing {
					lat = append(lat, float64(time.Since(t0).Nanoseconds())/1e3)
				} else if i == e.opt.Warmup {
					timing = true
				}
			})
		})
		if err != nil {
			return nil, err
		}
		return []Result{{Name: "cnn_infer_b1", Value: median(lat), Unit: UnitLatencyUS, Steps: steps,
			Seconds: d.Seconds(), Threads: e.opt.Threads, Note: "median of per-call latencies"}}, nil
	})
}

// runInferThroughput times forward passes on batches of b images.
func runInferThroughput(ctx context.Context, e *env, b int) ([]Result, error) {
	return withThreads(e.opt.Threads, func() ([]Result, error) {
		model := evalCNN(e)
		bs := e.batches(b, false)
		var err error
		var steps int
		var d time.Duration
		tensor.NoGrad(func() {
			i := 0
			steps, d, _, err = timeSteps(ctx, e.opt, func() {
				model.Forward(bs[i%len(bs)].x)
				i++
			})
		})
		if err != nil {
			return nil, err
		}
		return []Result{{Name: fmt.Sprintf("cnn_infer_b%d", b), Value: float64(steps*b) / d.Seconds(),
			Unit: UnitImagesSec, HigherIsBetter: true, Steps: steps, Seconds: d.Seconds(), Threads: e.opt.Threads}}, nil
	})
}

// resetPeakRSS resets the kernel's peak-RSS counter (VmHWM) of this process
// and returns a note for the peak_rss_models result.
func resetPeakRSS() string {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return "VmHWM could not be reset (" + err.Error() + "): peak of the whole process"
	}
	return "VmHWM reset (clear_refs) after loading data, before the model workloads"
}

// peakRSS returns VmHWM of this process in bytes, if /proc says.
func peakRSS() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) < 1 {
				return 0, false
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}
