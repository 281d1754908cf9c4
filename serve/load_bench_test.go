package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
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
	loadClient   = flag.String("serve.client", "raw", "BenchmarkServeLoad: load client: raw (lean HTTP/1.1 keep-alive client on net.Conn) or http (net/http.Client)")
	loadMaxBatch = flag.Int("serve.maxbatch", 32, "BenchmarkServeLoad: the server's Options.MaxBatch")
	loadDelay    = flag.Duration("serve.delay", 2*time.Millisecond, "BenchmarkServeLoad: the server's Options.MaxDelay")
	loadJSON     = flag.Bool("serve.json", true, "BenchmarkServeLoad: also run the JSON phase (false: binary only, for profiling)")
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
	cpuPerReq        time.Duration // process CPU time per served request (0: not measured)
}

// runLoad sends one-image requests from conns connections for d, with the
// client chosen by -serve.client. check validates a 200 response body.
func runLoad(b *testing.B, url string, body []byte, hdr map[string]string, check func(h http.Header, body []byte) error, conns int, d time.Duration) loadResult {
	var worker func(deadline time.Time) ([]time.Duration, int, error)
	switch *loadClient {
	case "http":
		tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		worker = func(deadline time.Time) ([]time.Duration, int, error) {
			return httpWorker(client, url, body, hdr, check, deadline)
		}
	case "raw":
		u, err := neturl.Parse(url)
		if err != nil {
			b.Fatal(err)
		}
		var req bytes.Buffer
		fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", u.RequestURI(), u.Host, len(body))
		for k, v := range hdr {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
		req.WriteString("\r\n")
		req.Write(body)
		worker = func(deadline time.Time) ([]time.Duration, int, error) {
			return rawWorker(u.Host, req.Bytes(), check, deadline)
		}
	default:
		b.Fatalf("-serve.client must be raw or http, got %q", *loadClient)
	}
	var mu sync.Mutex
	var lat []time.Duration
	failed := 0
	var firstErr error
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	deadline := start.Add(d)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, bad, err1 := worker(deadline)
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
	cpu := processCPU() - cpu0
	if firstErr != nil {
		b.Logf("first failure: %v", firstErr)
	}
	slices.Sort(lat)
	r := loadResult{requests: len(lat), failed: failed, rps: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
		r.cpuPerReq = cpu / time.Duration(len(lat))
	}
	return r
}

// httpWorker is one connection of the net/http client.
func httpWorker(client *http.Client, url string, body []byte, hdr map[string]string, check func(http.Header, []byte) error, deadline time.Time) (lat []time.Duration, bad int, first error) {
	var buf bytes.Buffer
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d: %s", resp.StatusCode, buf.Bytes())
			}
			if err == nil {
				err = check(resp.Header, buf.Bytes())
			}
		}
		if err != nil {
			bad++
			if first == nil {
				first = err
			}
			continue
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, bad, first
}

// rawWorker is one keep-alive connection of the lean client: it writes the
// prepared HTTP/1.1 request, reads the status line, the headers and the
// Content-Length body, and reconnects after an error or "Connection:
// close".
func rawWorker(addr string, req []byte, check func(http.Header, []byte) error, deadline time.Time) (lat []time.Duration, bad int, first error) {
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	fail := func(err error) {
		bad++
		if first == nil {
			first = err
		}
		if conn != nil {
			conn.Close()
			conn = nil
		}
	}
	hdr := http.Header{}
	var body []byte
	for time.Now().Before(deadline) {
		if conn == nil {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail(err)
				time.Sleep(time.Millisecond)
				continue
			}
			_ = c.SetDeadline(deadline.Add(30 * time.Second))
			conn, br = c, bufio.NewReaderSize(c, 16<<10)
		}
		t0 := time.Now()
		if _, err := conn.Write(req); err != nil {
			fail(err)
			continue
		}
		status, n, closeConn, err := readRawHeader(br, hdr)
		if err == nil {
			body = slices.Grow(body[:0], n)[:n]
			_, err = io.ReadFull(br, body)
		}
		if err == nil && status != 200 {
			err = fmt.Errorf("status %d: %s", status, body)
		}
		if err == nil {
			err = check(hdr, body)
		}
		if err != nil {
			fail(err)
			continue
		}
		lat = append(lat, time.Since(t0))
		if closeConn {
			conn.Close()
			conn = nil
		}
	}
	return lat, bad, first
}

// readRawHeader reads an HTTP/1.1 response's status line and headers; it
// keeps in hdr only Content-Type and Inference-Header-Content-Length (what
// the checks read), and returns the status, the Content-Length (required)
// and whether the server closes the connection.
func readRawHeader(br *bufio.Reader, hdr http.Header) (status, n int, closeConn bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, 0, false, fmt.Errorf("bad status line %q", line)
	}
	if status = atoi(line[9:12]); status < 0 {
		return 0, 0, false, fmt.Errorf("bad status line %q", line)
	}
	n = -1
	ctype, hl := "", ""
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, false, fmt.Errorf("bad header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if n = atoi(v); n < 0 {
				return 0, 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Connection")):
			closeConn = bytes.EqualFold(v, []byte("close"))
		case bytes.EqualFold(k, []byte("Content-Type")):
			ctype = internStr(v, "application/octet-stream", "application/json")
		case bytes.EqualFold(k, []byte(serve.HeaderContentLength)):
			hl = string(v)
		}
	}
	if n < 0 {
		return 0, 0, false, errors.New("response without Content-Length")
	}
	setHeader(hdr, "Content-Type", ctype)
	setHeader(hdr, serve.HeaderContentLength, hl)
	return status, n, closeConn, nil
}

// setHeader sets or deletes key in h, reusing its value slice.
func setHeader(h http.Header, key, v string) {
	if v == "" {
		delete(h, key)
		return
	}
	if old := h[key]; len(old) == 1 {
		old[0] = v
		return
	}
	h[key] = []string{v}
}

// internStr returns the string of b, without allocating when it is one of
// the known values.
func internStr(b []byte, known ...string) string {
	for _, k := range known {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}

// atoi parses a non-negative decimal, -1 when b is not one.
func atoi(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// checkInferResponse validates an infer response of model "cnn" with a
// logits and a probabilities output of shape [1 10], binary (raw FP32
// after the JSON header) or JSON.
func checkInferResponse(binary bool) func(http.Header, []byte) error {
	want := "application/json"
	if binary {
		want = "application/octet-stream"
	}
	return func(h http.Header, body []byte) error {
		js := body
		if ct := h.Get("Content-Type"); ct != want {
			return fmt.Errorf("Content-Type %q, want %q", ct, want)
		}
		if binary {
			hl, err := strconv.Atoi(h.Get(serve.HeaderContentLength))
			if err != nil || hl < 0 || hl > len(body) {
				return fmt.Errorf("binary response: bad %s %q for a body of %d bytes", serve.HeaderContentLength, h.Get(serve.HeaderContentLength), len(body))
			}
			if raw := len(body) - hl; raw != 2*10*4 {
				return fmt.Errorf("binary response: %d bytes of binary data, want 80", raw)
			}
			js = body[:hl]
		}
		if !bytes.HasPrefix(js, []byte(`{"model_name":"cnn","model_version":"1","outputs":[{"name":"logits","datatype":"FP32","shape":[1,10]`)) ||
			!bytes.Contains(js, []byte(`{"name":"probabilities","datatype":"FP32","shape":[1,10]`)) || !bytes.HasSuffix(js, []byte("]}")) {
			return fmt.Errorf("unexpected response %.300s", js)
		}
		return nil
	}
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
	cpu0 := processCPU()
	t0 := time.Now()
	for time.Since(t0) < phase {
		if _, err := pkg.Predict(x); err != nil {
			b.Fatal(err)
		}
		images += 32
	}
	inproc := float64(images) / time.Since(t0).Seconds()
	inprocCPU := (processCPU() - cpu0) / time.Duration(images)

	s := serve.New(serve.Options{MaxBatch: *loadMaxBatch, MaxDelay: *loadDelay, QueueSize: 1024})
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
	bin := runLoad(b, url, binBody, map[string]string{serve.HeaderContentLength: strconv.Itoa(len(hdr)), "Content-Type": "application/octet-stream"}, checkInferResponse(true), *loadConns, *loadDuration)

	var js loadResult
	if *loadJSON {
		jsonBody, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "image", "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": img}}})
		js = runLoad(b, url, jsonBody, map[string]string{"Content-Type": "application/json"}, checkInferResponse(false), *loadConns, *loadDuration)
	}

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
	b.Logf("in-process batched: %.0f images/s, %v CPU per image; mean batch %.1f", inproc, inprocCPU, count/max(exec, 1))
	// The machine may be shared: CPU time per request (client included)
	// against CPU time per image in process is the steadier figure.
	b.Logf("CPU per request: binary %v (CPU ratio %.2f), JSON %v (CPU ratio %.2f)",
		bin.cpuPerReq, float64(inprocCPU)/float64(max(bin.cpuPerReq, 1)), js.cpuPerReq, float64(inprocCPU)/float64(max(js.cpuPerReq, 1)))
	b.Logf("binary: %d requests, %.0f req/s, p50 %v, p99 %v, %d failed, ratio %.2f", bin.requests, bin.rps, bin.p50, bin.p99, bin.failed, bin.rps/inproc)
	b.Logf("JSON:   %d requests, %.0f req/s, p50 %v, p99 %v, %d failed, ratio %.2f", js.requests, js.rps, js.p50, js.p99, js.failed, js.rps/inproc)
}
