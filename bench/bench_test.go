package bench

// The Go benchmarks live in package bench itself (not bench_test) so that
// they time exactly the models and batches that Run uses.

import (
	"fmt"
	"testing"

	"github.com/deepgo/deepgo/internal/kernels"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

// benchEnv returns an env with random MNIST-shaped images: the Go
// benchmarks never touch the network or the module cache.
func benchEnv(b *testing.B) *env {
	b.Helper()
	e := &env{opt: Options{Data: DataRandom}.withDefaults()}
	if err := e.loadImages(b.Context()); err != nil {
		b.Fatal(err)
	}
	return e
}

func threads(b *testing.B, t int) {
	prev := kernels.SetThreads(t)
	b.Cleanup(func() { kernels.SetThreads(prev) })
}

// BenchmarkSgemm times C = A·B for n×n float32 matrices on 1 and 2 threads.
func BenchmarkSgemm(b *testing.B) {
	for _, t := range []int{1, 2} {
		for _, n := range []int{256, 512, 1024, 2048} {
			b.Run(fmt.Sprintf("n=%d/t=%d", n, t), func(b *testing.B) {
				threads(b, t)
				r := tensor.NewRNG(1)
				x := tensor.RandU(r, -1, 1, n, n).Data()
				y := tensor.RandU(r, -1, 1, n, n).Data()
				c := make([]float32, n*n)
				b.ResetTimer()
				for b.Loop() {
					kernels.Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, c, n)
				}
				b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}

// benchTrain times training steps; allocs/op is allocations per step.
func benchTrain(b *testing.B, mk func(*tensor.RNG) nn.Module, bs int, flat bool) {
	e := benchEnv(b)
	threads(b, e.opt.Threads)
	model := mk(tensor.NewRNG(1))
	opt := optim.NewAdam(nn.Parameters(model), optim.AdamConfig{LR: 1e-3})
	batches := e.batches(bs, flat)
	i := 0
	step := func() {
		bt := batches[i%len(batches)]
		i++
		opt.ZeroGrad()
		loss := nn.CrossEntropy(model.Forward(bt.x), bt.y)
		loss.Backward()
		opt.Step()
	}
	for range 3 {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.N*bs)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkCNNTrain times training steps of the seed CNN at batch 32 and 128.
func BenchmarkCNNTrain(b *testing.B) {
	for _, bs := range []int{32, 128} {
		b.Run(fmt.Sprintf("b=%d", bs), func(b *testing.B) { benchTrain(b, newCNN, bs, false) })
	}
}

// BenchmarkMLPTrain times training steps of the MLP 784-128-10 at batch 64.
func BenchmarkMLPTrain(b *testing.B) {
	b.Run("b=64", func(b *testing.B) { benchTrain(b, newMLP, 64, true) })
}

// BenchmarkCNNInfer times forward passes of the seed CNN in eval mode
// without gradients at batch 1 (ns/op is the latency) and 256.
func BenchmarkCNNInfer(b *testing.B) {
	for _, bs := range []int{1, 256} {
		b.Run(fmt.Sprintf("b=%d", bs), func(b *testing.B) {
			e := benchEnv(b)
			threads(b, e.opt.Threads)
			model := evalCNN(e)
			batches := e.batches(bs, false)
			tensor.NoGrad(func() {
				for k := range 3 {
					model.Forward(batches[k%len(batches)].x)
				}
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					model.Forward(batches[i%len(batches)].x)
					i++
				}
			})
			b.ReportMetric(float64(b.N*bs)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
