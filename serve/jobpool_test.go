package serve_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/deepgo/deepgo/serve"
)

// TestConcurrentAnswersMatchRequests: under concurrent load mixed with
// requests whose deadline passes while queued (their jobs are abandoned,
// the others are recycled), every answered request gets the output of its
// own input.
func TestConcurrentAnswersMatchRequests(t *testing.T) {
	for _, inst := range []int{1, 3} {
		t.Run(fmt.Sprintf("instances=%d", inst), func(t *testing.T) { testConcurrentAnswers(t, inst) })
	}
}

func testConcurrentAnswers(t *testing.T, instances int) {
	e := rtStart(t, serve.Options{MaxBatch: 8, MaxDelay: time.Millisecond, Instances: instances})
	const workers, perWorker = 8, 60
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	answered := make([]int, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				row := rtRows(w*1000 + i)
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if i%5 == 4 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i%3)*50*time.Microsecond)
				}
				resp, err := e.s.Infer(ctx, serve.InferRequest{Model: "lin", Outputs: []serve.RequestedOutput{{Name: "logits"}},
					Inputs: []serve.Tensor{{Name: "x", Datatype: serve.TypeFP32, Shape: []int64{1, 4}, FP32: row}}})
				cancel()
				if err != nil {
					if i%5 == 4 && errors.Is(err, context.DeadlineExceeded) {
						continue
					}
					errc <- err
					return
				}
				got, want := resp.Outputs[0].FP32, rtWant(e.pkg, row)
				if !rtNear(got, want) {
					errc <- errors.New("a request got another request's answer")
					return
				}
				answered[w]++
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	total := 0
	for _, n := range answered {
		total += n
	}
	if total < workers*perWorker*4/5 {
		t.Fatalf("%d of %d requests answered, want at least every request without a deadline", total, workers*perWorker)
	}
}
