package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/serve"
	"github.com/deepgo/deepgo/tensor"
)

var (
	loadDuration = flag.Duration("serve.duration", 3*time.Second, "BenchmarkServeLoad: how long each load phase runs (the issue's figure uses 30s)")
	loadModel    = flag.String("serve.model", "", "BenchmarkServeLoad: model package to serve (default: the seed MNIST CNN architecture with random weights)")
	loadConns    = flag.Int("serve.conns", 64, "BenchmarkServeLoad: concurrent connections")
)

// rtSeedCNN is the seed MNIST CNN architecture (Conv 1→32 k3, ReLU,
// MaxPool 2, Flatten, Linear 5408→64, ReLU, Linear 64→10) with random
// weights: the same compute as the trained model.
func rtSeedCNN() *model.Package {
	r := tensor.NewRNG(1)
	opt := tensor.Conv2DOptions{Stride: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1}
	m := nn.NewSequential(nn.NewConv2D(r, 1, 32, 3, opt, true), &nn.ReLU{}, nn.NewMaxPool2D(2), nn.NewFlatten(),
		nn.NewLinear(r, 5408, 64, true), &nn.ReLU{}, nn.NewLinear(r, 64, 10, true))
	nn.Eval(m)
	return &model.Package{Name: "mnist-cnn", Module: m, Signature: model.Signature{
		Inputs:  []model.TensorSpec{{Name: "image", DType: model.DTypeFloat32, Shape: []int{-1, 1, 28, 28}}},
		Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 10}}},
	}}
}

// loadResult is one load phase's figures.
type loadResult struct {
	requests, failed int
	rps              float64
	p50, p99         time.Duration
}

// runLoad sends one-image requests from conns connections for d.
func runLoad(b *testing.B, url string, body []byte, hdr map[string]string, conns int, d time.Duration) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var lat []time.Duration
	failed := 0
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			var err1 error
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					bad++
					if err1 == nil {
						err1 = err
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			failed += bad
			if firstErr == nil {
				firstErr = err1
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Logf("first failure: %v", firstErr)
	}
	slices.Sort(lat)
	r := loadResult{requests: len(lat), failed: failed, rps: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// BenchmarkServeLoad is the load test: one-image binary REST requests (as
// Triton's client sends them) from 64 concurrent connections on loopback
// for -serve.duration, then the same with JSON requests. It reports
// requests/s, p50/p99 latency, failed requests, and the ratio of served
// images/s to the model's in-process batched throughput (batches of 32)
// measured in the same run. Run it with
//
//	go test ./serve -run '^$' -bench ServeLoad -benchtime 1x -serve.duration 30s
func BenchmarkServeLoad(b *testing.B) {
	pkg := rtSeedCNN()
	if *loadModel != "" {
		var err error
		if pkg, err = model.Load(*loadModel); err != nil {
			b.Fatal(err)
		}
	}
	// In-process batched throughput.
	x := tensor.Zeros(32, 1, 28, 28)
	for i, d := 0, x.Data(); i < len(d); i++ {
		d[i] = float32(i%255) / 255
	}
	phase := max(*loadDuration/3, time.Second)
	images := 0
	t0 := time.Now()
	for time.Since(t0) < phase {
		if _, err := pkg.Predict(x); err != nil {
			b.Fatal(err)
		}
		images += 32
	}
	inproc := float64(images) / time.Since(t0).Seconds()

	s := serve.New(serve.Options{MaxBatch: 32, MaxDelay: 2 * time.Millisecond, QueueSize: 1024})
	if err := s.Repository().LoadPackage("cnn", 1, pkg); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, nil) }()
	url := "http://" + ln.Addr().String() + "/v2/models/cnn/infer"
	img := x.Data()[:784]

	raw := rtF32(img)
	hdr := fmt.Sprintf(`{"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "parameters": {"binary_data_size": %d}}], "parameters": {"binary_data_output": true}}`, len(raw))
	binBody := append([]byte(hdr), raw...)
	bin := runLoad(b, url, binBody, map[string]string{serve.HeaderContentLength: strconv.Itoa(len(hdr)), "Content-Type": "application/octet-stream"}, *loadConns, *loadDuration)

	jsonBody, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "image", "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": img}}})
	js := runLoad(b, url, jsonBody, map[string]string{"Content-Type": "application/json"}, *loadConns, *loadDuration)

	exec := rtMetric(b, s.Registry(), "nv_inference_exec_count", map[string]string{"model": "cnn"})
	count := rtMetric(b, s.Registry(), "nv_inference_count", map[string]string{"model": "cnn"})
	cancel()
	if err := <-served; err != nil {
		b.Error(err)
	}
	b.ReportMetric(bin.rps, "req/s")
	b.ReportMetric(float64(bin.p50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(bin.p99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(bin.failed), "failed")
	b.ReportMetric(bin.rps/inproc, "ratio")
	b.ReportMetric(js.rps, "json_req/s")
	b.ReportMetric(float64(js.p50.Microseconds())/1000, "json_p50_ms")
	b.ReportMetric(float64(js.p99.Microseconds())/1000, "json_p99_ms")
	b.ReportMetric(float64(js.failed), "json_failed")
	b.Logf("in-process batched: %.0f images/s; mean batch %.1f", inproc, count/max(exec, 1))
	b.Logf("binary: %d requests, %.0f req/s, p50 %v, p99 %v, %d failed, ratio %.2f", bin.requests, bin.rps, bin.p50, bin.p99, bin.failed, bin.rps/inproc)
	b.Logf("JSON:   %d requests, %.0f req/s, p50 %v, p99 %v, %d failed, ratio %.2f", js.requests, js.rps, js.p50, js.p99, js.failed, js.rps/inproc)
}
