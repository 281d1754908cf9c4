package nn_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/deepgo/deepgo/apps/digits"
	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

// seedCNN is the reference MNIST network (digits.CNN).
func seedCNN(seed uint64) *nn.Sequential { return digits.CNN(tensor.NewRNG(seed)) }

// seedMLP is Flatten → Linear(784, 128) → ReLU → Linear(128, 10).
func seedMLP(seed uint64) *nn.Sequential {
	r := tensor.NewRNG(seed)
	return nn.NewSequential(
		nn.NewFlatten(),
		nn.NewLinear(r, 28*28, 128, true),
		&nn.ReLU{},
		nn.NewLinear(r, 128, 10, true),
	)
}

// mnistBatch is a deterministic fake MNIST batch: images [n, 1, 28, 28] in
// [0, 1) and labels [n] in 0..9.
func mnistBatch(n int, seed uint64) (*tensor.Tensor, *tensor.Tensor) {
	r := tensor.NewRNG(seed)
	x := tensor.RandU(r, 0, 1, n, 1, 28, 28)
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(r.IntN(10))
	}
	return x, tensor.FromInt64(y, n)
}

// trainStep is one optimisation step as train.Fit runs it: the batch is
// adopted by the step arena a, and the loss is read before a.Reset. A nil
// arena runs the step without one.
func trainStep(m nn.Module, opt optim.Optimizer, a *tensor.Arena, x, y *tensor.Tensor) float32 {
	opt.ZeroGrad()
	out := m.Forward(a.Adopt(x))
	loss := nn.CrossEntropy(out, y)
	loss.Backward()
	opt.Step()
	v := loss.Item()
	a.Reset()
	return v
}

func benchTrain(b *testing.B, m *nn.Sequential, batch int) {
	x, y := mnistBatch(batch, 7)
	opt := optim.NewAdam(nn.Parameters(m), optim.AdamConfig{})
	a := tensor.NewArena()
	for range 3 { // warm up buffers and optimizer state
		trainStep(m, opt, a, x, y)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		trainStep(m, opt, a, x, y)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "img/s")
}

func BenchmarkCNNTrainStep32(b *testing.B)  { benchTrain(b, seedCNN(1), 32) }
func BenchmarkCNNTrainStep128(b *testing.B) { benchTrain(b, seedCNN(1), 128) }
func BenchmarkMLPTrainStep64(b *testing.B)  { benchTrain(b, seedMLP(1), 64) }

func BenchmarkCNNInfer1(b *testing.B) {
	m := seedCNN(1)
	x, _ := mnistBatch(1, 7)
	b.ReportAllocs()
	tensor.NoGrad(func() {
		for b.Loop() {
			m.Forward(x)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
}

// TestTrainStepAllocs checks the allocations of a warmed-up training step
// as train.Fit runs it (with a step arena) against the target of at most
// 10, and that the step still learns (the loss falls on a fixed batch).
// Before buffer recycling, fused ops, closure-free backward rules and the
// step arena the CNN step made about 190 allocations.
func TestTrainStepAllocs(t *testing.T) {
	cases := []struct {
		name  string
		model *nn.Sequential
		batch int
	}{
		{"CNN batch 32", seedCNN(1), 32},
		{"CNN batch 128", seedCNN(1), 128},
		{"MLP batch 64", seedMLP(1), 64},
	}
	for _, c := range cases {
		x, y := mnistBatch(c.batch, 7)
		opt := optim.NewAdam(nn.Parameters(c.model), optim.AdamConfig{})
		a := tensor.NewArena()
		first := trainStep(c.model, opt, a, x, y)
		for range 3 {
			trainStep(c.model, opt, a, x, y)
		}
		allocs := testing.AllocsPerRun(5, func() { trainStep(c.model, opt, a, x, y) })
		t.Logf("%s train step: %.1f allocations", c.name, allocs)
		// A garbage collection during the runs empties sync.Pool (the
		// engine's and the kernels' working state), which may add a few.
		if allocs > 10 && !raceEnabled {
			t.Errorf("%s train step made %.1f allocations, want at most 10", c.name, allocs)
		}
		last := trainStep(c.model, opt, a, x, y)
		if !(last < first) {
			t.Fatalf("%s: loss did not fall on a fixed batch: first %v, after 10 steps %v", c.name, first, last)
		}
	}
}

// TestSequentialFusionMatchesLayers checks that Sequential's fused ops give
// the values and parameter gradients of running the layers one by one.
func TestSequentialFusionMatchesLayers(t *testing.T) {
	x, y := mnistBatch(6, 3)
	run := func(fused bool) (*tensor.Tensor, []*tensor.Tensor) {
		m := seedCNN(5)
		out := x
		if fused {
			out = m.Forward(x)
		} else {
			for _, l := range m.Layers {
				out = l.Forward(out)
			}
		}
		nn.CrossEntropy(out, y).Backward()
		var grads []*tensor.Tensor
		for _, p := range nn.Parameters(m) {
			grads = append(grads, p.Grad())
		}
		return out, grads
	}
	yf, gf := run(true)
	yl, gl := run(false)
	testutil.AssertClose(t, "output", yf, yl, 1e-6, 0)
	for i := range gf {
		testutil.AssertClose(t, fmt.Sprintf("grad %d", i), gf[i], gl[i], 1e-5, 1e-7)
	}
}

// TestArenaBatchNormRunningStats trains a model with BatchNorm (whose
// running statistics live across steps) with and without a step arena,
// then evaluates it, and checks that the running statistics, the weights
// and the eval-mode outputs are bitwise the same: no module state may end
// up in arena memory.
func TestArenaBatchNormRunningStats(t *testing.T) {
	run := func(a *tensor.Arena) (stats, weights []float32, eval []float32) {
		r := tensor.NewRNG(4)
		m := nn.NewSequential(
			nn.NewConv2D(r, 1, 4, 3, tensor.Conv2DOptions{}, true),
			nn.NewBatchNorm2D(4, nn.DefaultBatchNorm),
			&nn.ReLU{},
			nn.NewMaxPool2D(2),
			nn.NewFlatten(),
			nn.NewLinear(r, 4*13*13, 10, true),
		)
		opt := optim.NewAdam(nn.Parameters(m), optim.AdamConfig{})
		for step := range 4 {
			x, y := mnistBatch(8, uint64(step))
			trainStep(m, opt, a, x, y)
		}
		for _, b := range nn.NamedBuffers(m) {
			if b.Tensor.DType() == tensor.Float32 {
				stats = append(stats, b.Tensor.Data()...)
			}
		}
		for _, p := range nn.Parameters(m) {
			weights = append(weights, p.Data()...)
		}
		nn.Eval(m)
		x, _ := mnistBatch(3, 9)
		tensor.NoGrad(func() {
			eval = append(eval, m.Forward(a.Adopt(x)).Data()...)
			a.Reset()
		})
		return stats, weights, eval
	}
	s0, w0, e0 := run(nil)
	s1, w1, e1 := run(tensor.NewArena())
	if len(s0) != 8 {
		t.Fatalf("%d running-stat values, want 8 (mean and var of 4 channels)", len(s0))
	}
	for name, p := range map[string][2][]float32{"running stats": {s0, s1}, "weights": {w0, w1}, "eval output": {e0, e1}} {
		for i := range p[0] {
			if math.Float32bits(p[0][i]) != math.Float32bits(p[1][i]) {
				t.Fatalf("%s[%d]: %v with the arena, %v without", name, i, p[1][i], p[0][i])
			}
		}
	}
}
