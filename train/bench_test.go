package train_test

import (
	"context"
	"testing"
	"time"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/train"
)

// BenchmarkFitOverhead compares Fit (with an accuracy metric, no progress
// bar) on an MLP with a bare loop of forward, loss, backward and step over
// the same batches of the same loader. One op is one epoch of each; the
// overhead of Fit is reported as "overhead-%".
func BenchmarkFitOverhead(b *testing.B) {
	const n, in, classes = 1024, 32, 10
	r := tensor.NewRNG(1)
	x := tensor.RandN(r, n, in)
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(r.IntN(classes))
	}
	ld := data.NewLoader(data.NewTensorDataset(x, tensor.FromInt64(y, n)), data.LoaderConfig{BatchSize: 64, Shuffle: true, Seed: 1})
	model := func() *nn.Sequential {
		r := tensor.NewRNG(2)
		return nn.NewSequential(nn.NewLinear(r, in, 128, true), &nn.ReLU{}, nn.NewLinear(r, 128, 128, true), &nn.ReLU{}, nn.NewLinear(r, 128, classes, true))
	}
	bareModel := model()
	bareOpt := adam(bareModel, 1e-3)
	bare := func(epoch int) {
		it := ld.Epoch(epoch)
		defer it.Close()
		for it.Next() {
			bt := it.Batch()
			bareOpt.ZeroGrad()
			loss := ce(bareModel.Forward(bt.Input), bt.Target)
			loss.Backward()
			bareOpt.Step()
		}
		if it.Err() != nil {
			b.Fatal(it.Err())
		}
	}
	fitModel := model()
	fitOpt := adam(fitModel, 1e-3)
	// The bare epochs run inside Fit, between its epochs, so that both see
	// the same machine load; their time is subtracted from Fit's.
	var bareDur time.Duration
	interleave := &train.Funcs{EpochEnd: func(s *train.State) error {
		t0 := time.Now()
		bare(s.Epoch)
		bareDur += time.Since(t0)
		return nil
	}}
	fit := func(epochs int) time.Duration {
		t0 := time.Now()
		_, err := train.Fit(context.Background(), fitModel, train.Config{
			Epochs: epochs, Optimizer: fitOpt, Loss: ce, Train: ld,
			Metrics: []train.Metric{train.Accuracy()}, Callbacks: []train.Callback{interleave}, Quiet: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	fit(1) // warm up both
	bareDur = 0
	b.ResetTimer()
	fitDur := fit(b.N) - bareDur
	bareNs := float64(bareDur.Nanoseconds()) / float64(b.N)
	fitNs := float64(fitDur.Nanoseconds()) / float64(b.N)
	b.ReportMetric(bareNs, "bare-ns/epoch")
	b.ReportMetric(fitNs, "fit-ns/epoch")
	b.ReportMetric(100*(fitNs-bareNs)/bareNs, "overhead-%")
}
