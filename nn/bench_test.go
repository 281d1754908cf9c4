package nn_test

import (
	"fmt"
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

// trainStep is one optimisation step as train.Fit runs it.
func trainStep(m nn.Module, opt optim.Optimizer, x, y *tensor.Tensor) *tensor.Tensor {
	opt.ZeroGrad()
	out := m.Forward(x)
	loss := nn.CrossEntropy(out, y)
	loss.Backward()
	opt.Step()
	return loss
}

func benchTrain(b *testing.B, m *nn.Sequential, batch int) {
	x, y := mnistBatch(batch, 7)
	opt := optim.NewAdam(nn.Parameters(m), optim.AdamConfig{})
	for range 3 { // warm up buffers and optimizer state
		trainStep(m, opt, x, y)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		trainStep(m, opt, x, y)
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

// TestTrainStepAllocs reports the allocations of a warmed-up training step
// and checks that the step still learns (the loss falls on a fixed batch).
func TestTrainStepAllocs(t *testing.T) {
	m := seedCNN(1)
	x, y := mnistBatch(32, 7)
	opt := optim.NewAdam(nn.Parameters(m), optim.AdamConfig{})
	first := trainStep(m, opt, x, y).Item()
	for range 3 {
		trainStep(m, opt, x, y)
	}
	allocs := testing.AllocsPerRun(5, func() { trainStep(m, opt, x, y) })
	t.Logf("CNN train step (batch 32): %.0f allocations", allocs)
	// A regression guard: the step made about 190 allocations before buffer
	// recycling and fused ops, about 42 after (sync.Pool may drop a few
	// records at a garbage collection, hence the margin).
	if allocs > 80 && !raceEnabled {
		t.Errorf("CNN train step made %.0f allocations, want at most 80", allocs)
	}
	last := trainStep(m, opt, x, y).Item()
	if !(last < first) {
		t.Fatalf("loss did not fall on a fixed batch: first %v, after 10 steps %v", first, last)
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
