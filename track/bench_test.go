package track_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/deepgo/deepgo/track"
	"github.com/deepgo/deepgo/train"
)

// BenchmarkLoggerMNISTEpoch measures what logging every step costs on an
// MNIST-sized epoch: 60000 examples of 784 features in batches of 32 (1875
// steps) through a 784-128-10 MLP with Adam. One op is one epoch with a
// Logger (batch loss every step, epoch logs, a SQLite store in a temporary
// directory) and one epoch without, alternated so both see the same machine
// load; the difference is reported as "overhead-%".
func BenchmarkLoggerMNISTEpoch(b *testing.B) {
	const n, in, hidden, classes, batch = 60000, 784, 128, 10, 32
	m, opt, ld := fitSetup(n, in, hidden, classes, batch)
	if ld.NumBatches() != 1875 {
		b.Fatalf("%d steps per epoch, want 1875", ld.NumBatches())
	}
	s, err := track.Open(filepath.Join(b.TempDir(), "store.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	epoch := func(log bool) time.Duration {
		var cbs []train.Callback
		var l *track.Logger
		if log {
			l = track.NewLogger(s, "bench", "", map[string]string{"batch_size": "32"})
			cbs = append(cbs, l)
		}
		t0 := time.Now()
		if _, err := train.Fit(context.Background(), m, train.Config{Epochs: 1, Optimizer: opt, Loss: ce, Train: ld, Callbacks: cbs, Quiet: true}); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0) // includes the Logger's final flush in OnTrainEnd
		if log {
			if err := l.Err(); err != nil {
				b.Fatal(err)
			}
			r, err := s.GetRun(context.Background(), l.RunID())
			if err != nil || r.Metrics["batch_loss"].Step != 1875 {
				b.Fatalf("logged run: %+v, %v", r.Metrics, err)
			}
		}
		return d
	}
	epoch(false) // warm up
	epoch(true)
	var with, without time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			with += epoch(true)
			without += epoch(false)
		} else {
			without += epoch(false)
			with += epoch(true)
		}
	}
	b.ReportMetric(float64(without.Nanoseconds())/float64(b.N), "bare-ns/epoch")
	b.ReportMetric(float64(with.Nanoseconds())/float64(b.N), "logged-ns/epoch")
	b.ReportMetric(100*float64(with-without)/float64(without), "overhead-%")
}

// BenchmarkLoggerOnBatchEnd is the cost the training goroutine pays per
// logged step (queueing the point; the writes happen on the Logger's
// goroutine).
func BenchmarkLoggerOnBatchEnd(b *testing.B) {
	s, err := track.Open(filepath.Join(b.TempDir(), "store.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := track.NewLogger(s, "bench", "", nil)
	if err := l.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	st := &train.State{BatchLoss: 0.5}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st.GlobalStep = i + 1
		l.OnBatchEnd(st)
	}
	b.StopTimer()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}
