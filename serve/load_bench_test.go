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
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
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
	loadClient   = flag.String("serve.client", "raw", "BenchmarkServeLoad: load client: raw (lean HTTP/1.1 keep-alive client on net.Conn, no allocation per request) or http (net/http.Client)")
	loadProc     = flag.String("serve.proc", "both", "BenchmarkServeLoad: where the load client runs: sub (a separate process, the test binary re-executed, like Triton's perf_analyzer), in (goroutines of the benchmark process) or both (binary requests both ways; the headline and the JSON phase use sub)")
	loadMaxBatch = flag.Int("serve.maxbatch", 0, "BenchmarkServeLoad: the server's Options.MaxBatch (0: the server's default)")
	loadDelay    = flag.Duration("serve.delay", 0, "BenchmarkServeLoad: the server's Options.MaxDelay (0: the server's default)")
	loadCliProcs = flag.Int("serve.clientprocs", 1, "BenchmarkServeLoad: GOMAXPROCS of the load client process (0: the Go default); one OS thread runs the client's goroutines, as perf_analyzer's few threads do, so it competes less with the server")
	loadInst     = flag.Int("serve.instances", 0, "BenchmarkServeLoad: the server's Options.Instances (0: the server's default)")
	loadNetHTTP  = flag.Bool("serve.nethttp", false, "BenchmarkServeLoad: serve with Options.NetHTTPOnly (net/http for every request, no infer fast path), for comparison")
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

// loadSpec describes one load phase for a load client, in this process or
// in the client subprocess (sent on its stdin as JSON).
type loadSpec struct {
	URL      string            // infer URL
	Body     []byte            // request body
	Header   map[string]string // extra request headers
	Binary   bool              // binary-extension request and response
	Conns    int               // concurrent connections
	Warmup   time.Duration     // load before the measured window
	Duration time.Duration     // measured window
	Client   string            // "raw" or "http"
	Procs    int               // GOMAXPROCS of the client process (0: default)
}

// loadReport is a load client's figures for the measured window.
type loadReport struct {
	Requests int           // successful requests completed in the window
	Total    int           // successful requests, warm-up included
	Failed   int           // failed requests (any time)
	FirstErr string        // the first failure
	Elapsed  time.Duration // length of the window
	P50, P99 time.Duration // latency percentiles of the successful requests
	ClientCP time.Duration // CPU time of the client process (subprocess only)
}

// rps is the requests/s of the window.
func (r loadReport) rps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// runLoadClient runs spec's connections and returns the figures of the
// measured window. Every connection first connects, then all start
// together; requests completing during the warm-up are not counted.
func runLoadClient(spec loadSpec) (loadReport, error) {
	u, err := neturl.Parse(spec.URL)
	if err != nil {
		return loadReport{}, err
	}
	check := inferChecker(spec.Binary)
	var newWorker func() (loadWorker, error)
	switch spec.Client {
	case "raw":
		var req bytes.Buffer
		fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", u.RequestURI(), u.Host, len(spec.Body))
		for k, v := range spec.Header {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
		req.WriteString("\r\n")
		req.Write(spec.Body)
		newWorker = func() (loadWorker, error) { return newRawWorker(u.Host, req.Bytes(), check) }
	case "http":
		tr := &http.Transport{MaxIdleConnsPerHost: spec.Conns, MaxConnsPerHost: spec.Conns}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		newWorker = func() (loadWorker, error) {
			return &httpWorker{client: client, url: spec.URL, body: spec.Body, hdr: spec.Header, check: check}, nil
		}
	default:
		return loadReport{}, fmt.Errorf("-serve.client must be raw or http, got %q", spec.Client)
	}
	workers := make([]loadWorker, spec.Conns)
	for i := range workers {
		if workers[i], err = newWorker(); err != nil {
			for _, w := range workers[:i] {
				w.close()
			}
			return loadReport{}, err
		}
	}
	var wg sync.WaitGroup
	lats := make([][]time.Duration, spec.Conns)
	bads := make([]int, spec.Conns)
	warm := make([]int, spec.Conns)
	errs := make([]error, spec.Conns)
	begin := time.Now()
	start := begin.Add(spec.Warmup)
	end := start.Add(spec.Duration)
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.close()
			lat := make([]time.Duration, 0, 1<<14)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if err := w.do(); err != nil {
					bads[i]++
					if errs[i] == nil {
						errs[i] = err
					}
					continue
				}
				if t0.After(start) {
					lat = append(lat, time.Since(t0))
				} else {
					warm[i]++
				}
			}
			lats[i] = lat
		}()
	}
	wg.Wait()
	r := loadReport{Elapsed: time.Since(start)}
	var all []time.Duration
	for i := range lats {
		all = append(all, lats[i]...)
		r.Failed += bads[i]
		r.Total += warm[i]
		if errs[i] != nil && r.FirstErr == "" {
			r.FirstErr = errs[i].Error()
		}
	}
	slices.Sort(all)
	r.Requests = len(all)
	r.Total += len(all)
	if len(all) > 0 {
		r.P50, r.P99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r, nil
}

// loadWorker is one connection of a load client.
type loadWorker interface {
	do() error // one request: sent, answered 200 and checked
	close()
}

// httpWorker is one connection of the net/http client.
type httpWorker struct {
	client *http.Client
	url    string
	body   []byte
	hdr    map[string]string
	check  func(ctype, hl, body []byte) error
	buf    bytes.Buffer
}

func (w *httpWorker) do() error {
	req, err := http.NewRequest("POST", w.url, bytes.NewReader(w.body))
	if err != nil {
		return err
	}
	for k, v := range w.hdr {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, w.buf.Bytes())
	}
	return w.check([]byte(resp.Header.Get("Content-Type")), []byte(resp.Header.Get(serve.HeaderContentLength)), w.buf.Bytes())
}

func (w *httpWorker) close() {}

// rawWorker is one keep-alive connection of the lean client, in the manner
// of Triton's perf_analyzer: it writes the prepared HTTP/1.1 request and
// reads the response into a reused buffer, parsing only the status line
// and the headers the check needs; it allocates nothing per request. After
// an error or "Connection: close" it reconnects.
type rawWorker struct {
	addr  string
	req   []byte
	check func(ctype, hl, body []byte) error
	conn  net.Conn
	buf   []byte
}

func newRawWorker(addr string, req []byte, check func(ctype, hl, body []byte) error) (*rawWorker, error) {
	w := &rawWorker{addr: addr, req: req, check: check, buf: make([]byte, 16<<10)}
	return w, w.dial()
}

func (w *rawWorker) dial() error {
	c, err := net.Dial("tcp", w.addr)
	if err != nil {
		return err
	}
	w.conn = c
	return nil
}

func (w *rawWorker) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

func (w *rawWorker) do() error {
	if w.conn == nil {
		if err := w.dial(); err != nil {
			time.Sleep(time.Millisecond)
			return err
		}
	}
	closeConn, err := w.exchange()
	if err != nil || closeConn {
		w.close()
	}
	return err
}

var (
	crlf       = []byte("\r\n")
	crlf2      = []byte("\r\n\r\n")
	colon      = []byte(":")
	hContLen   = []byte("Content-Length")
	hConn      = []byte("Connection")
	hCType     = []byte("Content-Type")
	hInferLen  = []byte(serve.HeaderContentLength)
	httpPrefix = []byte("HTTP/1.1 ")
	closeVal   = []byte("close")
)

// exchange sends the request and reads and checks one response.
func (w *rawWorker) exchange() (closeConn bool, err error) {
	if _, err := w.conn.Write(w.req); err != nil {
		return false, err
	}
	n, hdrEnd := 0, -1
	for hdrEnd < 0 {
		if n == len(w.buf) {
			return false, errors.New("response headers larger than the read buffer")
		}
		m, err := w.conn.Read(w.buf[n:])
		if err != nil {
			return false, err
		}
		n += m
		if i := bytes.Index(w.buf[:n], crlf2); i >= 0 {
			hdrEnd = i + 4
		}
	}
	line, head, _ := bytes.Cut(w.buf[:hdrEnd-2], crlf)
	if len(line) < 12 || !bytes.HasPrefix(line, httpPrefix) {
		return false, fmt.Errorf("bad status line %q", line)
	}
	status := atoi(line[9:12])
	size := -1
	for len(head) > 0 {
		line, head, _ = bytes.Cut(head, crlf)
		k, v, ok := bytes.Cut(line, colon)
		if !ok {
			return false, fmt.Errorf("bad header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, hContLen):
			if size = atoi(v); size < 0 {
				return false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, hConn):
			closeConn = bytes.EqualFold(v, closeVal)
		}
	}
	if size < 0 {
		return true, errors.New("response without Content-Length")
	}
	total := hdrEnd + size
	if total > len(w.buf) {
		nb := make([]byte, total)
		copy(nb, w.buf[:n])
		w.buf = nb
	}
	for n < total {
		m, err := w.conn.Read(w.buf[n:total])
		if err != nil {
			return false, err
		}
		n += m
	}
	if n > total {
		return true, fmt.Errorf("%d bytes after the response", n-total)
	}
	body := w.buf[hdrEnd:total]
	if status != http.StatusOK {
		return true, fmt.Errorf("status %d: %.300s", status, body)
	}
	var ctype, hl []byte
	_, head, _ = bytes.Cut(w.buf[:hdrEnd-2], crlf)
	for len(head) > 0 {
		line, head, _ = bytes.Cut(head, crlf)
		k, v, _ := bytes.Cut(line, colon)
		switch {
		case bytes.EqualFold(k, hCType):
			ctype = bytes.TrimSpace(v)
		case bytes.EqualFold(k, hInferLen):
			hl = bytes.TrimSpace(v)
		}
	}
	return closeConn, w.check(ctype, hl, body)
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

// inferChecker validates an infer response of model "cnn" with a logits
// and a probabilities output of shape [1 10], binary (raw FP32 after the
// JSON header, hl its length) or JSON; it does not allocate.
func inferChecker(binary bool) func(ctype, hl, body []byte) error {
	want := []byte("application/json")
	if binary {
		want = []byte("application/octet-stream")
	}
	prefix := []byte(`{"model_name":"cnn","model_version":"1","outputs":[{"name":"logits","datatype":"FP32","shape":[1,10]`)
	probs := []byte(`{"name":"probabilities","datatype":"FP32","shape":[1,10]`)
	return func(ctype, hl, body []byte) error {
		js := body
		if !bytes.Equal(ctype, want) {
			return fmt.Errorf("Content-Type %q, want %q", ctype, want)
		}
		if binary {
			n := atoi(hl)
			if n < 0 || n > len(body) {
				return fmt.Errorf("binary response: bad %s %q for a body of %d bytes", serve.HeaderContentLength, hl, len(body))
			}
			if raw := len(body) - n; raw != 2*10*4 {
				return fmt.Errorf("binary response: %d bytes of binary data, want 80", raw)
			}
			js = body[:n]
		}
		if !bytes.HasPrefix(js, prefix) || !bytes.Contains(js, probs) || !bytes.HasSuffix(js, []byte("]}")) {
			return fmt.Errorf("unexpected response %.300s", js)
		}
		return nil
	}
}

// loadClientEnv marks the re-executed test binary as the load client
// process of BenchmarkServeLoad.
const loadClientEnv = "DEEPGO_SERVELOAD_CLIENT"

// loadResultPrefix starts the client process's result line on its stdout.
const loadResultPrefix = "serveload-client-result "

// TestServeLoadClient is not a test: it is the load client process of
// BenchmarkServeLoad (the test binary re-executed with loadClientEnv set),
// which reads a loadSpec on stdin and prints its loadReport.
func TestServeLoadClient(t *testing.T) {
	if os.Getenv(loadClientEnv) == "" {
		t.Skip("the load client process of BenchmarkServeLoad; runs only when re-executed by it")
	}
	var spec loadSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		t.Fatal(err)
	}
	if spec.Procs > 0 {
		runtime.GOMAXPROCS(spec.Procs)
	}
	r, err := runLoadClient(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	fmt.Printf("\n%s%s\n", loadResultPrefix, b)
}

// runLoadProcess runs spec in a client subprocess and returns its report,
// with the subprocess's CPU time.
func runLoadProcess(spec loadSpec) (loadReport, error) {
	in, err := json.Marshal(spec)
	if err != nil {
		return loadReport{}, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeLoadClient$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), loadClientEnv+"=1")
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return loadReport{}, fmt.Errorf("load client process: %v: %s", err, out.Bytes())
	}
	var r loadReport
	sc := bufio.NewScanner(&out)
	found := false
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), loadResultPrefix); ok {
			if err := json.Unmarshal([]byte(s), &r); err != nil {
				return loadReport{}, err
			}
			found = true
		}
	}
	if !found {
		return loadReport{}, fmt.Errorf("load client process printed no result: %s", out.Bytes())
	}
	r.ClientCP = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}

// loadPhase is one measured load phase.
type loadPhase struct {
	loadReport
	cpu    time.Duration // CPU time of server and client per request, warm-up included
	client time.Duration // the client process's share of cpu (subprocess only)
}

// runPhase runs spec in a subprocess (sub) or in this process.
func runPhase(b *testing.B, spec loadSpec, sub bool) loadPhase {
	cpu0 := processCPU()
	var r loadReport
	var err error
	if sub {
		r, err = runLoadProcess(spec)
	} else {
		r, err = runLoadClient(spec)
	}
	if err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - cpu0 + r.ClientCP
	if r.FirstErr != "" {
		b.Logf("first failure: %s", r.FirstErr)
	}
	p := loadPhase{loadReport: r}
	if r.Total > 0 {
		p.cpu = cpu / time.Duration(r.Total) // warm-up included
		p.client = r.ClientCP / time.Duration(r.Total)
	}
	return p
}

// refResult is the in-process batched throughput at one batch size.
type refResult struct {
	batch  int
	imgS   float64       // images/s
	cpuImg time.Duration // CPU time per image
}

// refThroughput measures pkg.Predict on batches of n images for d.
func refThroughput(b *testing.B, pkg *model.Package, n int, d time.Duration) refResult {
	x := tensor.Zeros(n, 1, 28, 28)
	for i, v := 0, x.Data(); i < len(v); i++ {
		v[i] = float32(i%255) / 255
	}
	if _, err := pkg.Predict(x); err != nil { // warm-up
		b.Fatal(err)
	}
	images := 0
	cpu0 := processCPU()
	t0 := time.Now()
	for time.Since(t0) < d {
		if _, err := pkg.Predict(x); err != nil {
			b.Fatal(err)
		}
		images += n
	}
	return refResult{batch: n, imgS: float64(images) / time.Since(t0).Seconds(), cpuImg: (processCPU() - cpu0) / time.Duration(images)}
}

// bestRef measures the in-process throughput at each batch size and
// returns the best, with all figures for the log.
func bestRef(b *testing.B, pkg *model.Package, sizes []int, d time.Duration) (best refResult, all []refResult) {
	for _, n := range sizes {
		r := refThroughput(b, pkg, n, d)
		all = append(all, r)
		if r.imgS > best.imgS {
			best = r
		}
	}
	return best, all
}

// batchHistogram returns the executed-batch histogram of model "cnn" as
// "le:count" pairs of the non-empty buckets (counts per bucket, not
// cumulative), and the mean batch size.
func batchHistogram(b *testing.B, s *serve.Server) (string, float64) {
	mfs, err := s.Registry().Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "deepgo_batch_size" {
			continue
		}
		var parts []string
		mean := 0.0
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			prev := uint64(0)
			for _, bk := range h.GetBucket() {
				if c := bk.GetCumulativeCount() - prev; c > 0 {
					parts = append(parts, fmt.Sprintf("%g:%d", bk.GetUpperBound(), c))
				}
				prev = bk.GetCumulativeCount()
			}
			if h.GetSampleCount() > 0 {
				mean = h.GetSampleSum() / float64(h.GetSampleCount())
			}
		}
		return strings.Join(parts, ","), mean
	}
	return "", 0
}

// BenchmarkServeLoad is the load test: one-image binary REST requests (as
// Triton's client sends them) from -serve.conns (64) concurrent keep-alive
// connections on loopback for -serve.duration (after a warm-up of a tenth
// of it, at most 1s), then the same with JSON requests. The server runs
// with its default options. The load client is lean (pre-encoded request,
// reused connection and buffers, no allocation per request) and checks
// that every response is a 200 with the expected outputs; it runs in a
// separate process (the test binary re-executed) and, with -serve.proc
// both, also in the benchmark process. The reference is the model's own
// in-process batched throughput (pkg.Predict on batches of 16, 32 and 64
// images, the best one) measured in the same run before and after the
// load phases; the higher of the two is used, so the ratio of served
// images/s to it is the conservative one. It reports requests/s, p50/p99
// latency, failed requests, the ratio, CPU time per request (server and
// client) against CPU time per image in process, and the executed batch
// sizes, and prints all figures as one line of key=value pairs starting
// with "serveload". Run it with
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
	var subBin, subJSON, inBin bool
	switch *loadProc {
	case "sub":
		subBin, subJSON = true, true
	case "in":
		inBin = true
	case "both":
		subBin, subJSON, inBin = true, true, true
	default:
		b.Fatalf("-serve.proc must be sub, in or both, got %q", *loadProc)
	}

	s := serve.New(serve.Options{MaxBatch: *loadMaxBatch, MaxDelay: *loadDelay, NetHTTPOnly: *loadNetHTTP, Instances: *loadInst})
	opts := s.Options()
	sizes := []int{16, 32, 64}
	if !slices.Contains(sizes, opts.MaxBatch) {
		sizes = append(sizes, opts.MaxBatch)
	}
	refPhase := max(*loadDuration/(3*time.Duration(len(sizes))), 500*time.Millisecond)
	ref1, refAll1 := bestRef(b, pkg, sizes, refPhase)

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
	img := make([]float32, 784)
	for i := range img {
		img[i] = float32(i%255) / 255
	}
	raw := rtF32(img)
	hdr := fmt.Sprintf(`{"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "parameters": {"binary_data_size": %d}}], "parameters": {"binary_data_output": true}}`, len(raw))
	binSpec := loadSpec{
		URL: url, Body: append([]byte(hdr), raw...), Binary: true,
		Header: map[string]string{serve.HeaderContentLength: strconv.Itoa(len(hdr)), "Content-Type": "application/octet-stream"},
		Conns:  *loadConns, Warmup: min(*loadDuration/10, time.Second), Duration: *loadDuration, Client: *loadClient,
		Procs: *loadCliProcs,
	}
	jsonBody, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "image", "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": img}}})
	jsonSpec := binSpec
	jsonSpec.Body, jsonSpec.Binary, jsonSpec.Header = jsonBody, false, map[string]string{"Content-Type": "application/json"}

	var bin, binIn, js loadPhase
	if subBin {
		bin = runPhase(b, binSpec, true)
	}
	hist, meanBatch := batchHistogram(b, s)
	if inBin {
		binIn = runPhase(b, binSpec, false)
	}
	if *loadJSON {
		js = runPhase(b, jsonSpec, subJSON)
	}
	cancel()
	if err := <-served; err != nil {
		b.Error(err)
	}
	ref2, refAll2 := bestRef(b, pkg, sizes, refPhase)
	ref := ref1
	if ref2.imgS > ref.imgS {
		ref = ref2
	}
	head := bin
	if !subBin {
		head = binIn
	}
	ratio := func(p loadPhase) float64 { return p.rps() / ref.imgS }
	cpuRatio := func(p loadPhase) float64 { return float64(ref.cpuImg) / float64(max(p.cpu, 1)) }
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) }
	us := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Nanoseconds())/1000, 'f', 1, 64) }

	b.ReportMetric(head.rps(), "req/s")
	b.ReportMetric(float64(head.P50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(head.P99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(head.Failed), "failed")
	b.ReportMetric(ratio(head), "ratio")
	b.ReportMetric(js.rps(), "json_req/s")

	for _, r := range append(refAll1, refAll2...) {
		b.Logf("in-process batch %d: %.0f images/s, %v CPU per image", r.batch, r.imgS, r.cpuImg)
	}
	kv := []string{"serveload",
		"gomaxprocs=" + strconv.Itoa(runtime.GOMAXPROCS(0)),
		"conns=" + strconv.Itoa(*loadConns), "duration=" + loadDuration.String(), "client=" + *loadClient, "proc=" + *loadProc, "clientprocs=" + strconv.Itoa(*loadCliProcs),
		"nethttp=" + strconv.FormatBool(*loadNetHTTP), "instances=" + strconv.Itoa(opts.Instances),
		"maxbatch=" + strconv.Itoa(opts.MaxBatch), "delay=" + opts.MaxDelay.String(),
		"ref_batch=" + strconv.Itoa(ref.batch), fmt.Sprintf("ref_img_s=%.0f", ref.imgS), "ref_cpu_us=" + us(ref.cpuImg),
		fmt.Sprintf("ref_before_img_s=%.0f", ref1.imgS), fmt.Sprintf("ref_after_img_s=%.0f", ref2.imgS),
	}
	add := func(prefix string, p loadPhase) {
		kv = append(kv, fmt.Sprintf("%s_req_s=%.0f", prefix, p.rps()), prefix+"_p50_ms="+ms(p.P50), prefix+"_p99_ms="+ms(p.P99),
			prefix+"_failed="+strconv.Itoa(p.Failed), fmt.Sprintf("%s_ratio=%.3f", prefix, ratio(p)),
			prefix+"_cpu_us="+us(p.cpu), fmt.Sprintf("%s_cpu_ratio=%.3f", prefix, cpuRatio(p)))
		if p.client > 0 {
			kv = append(kv, prefix+"_client_cpu_us="+us(p.client))
		}
	}
	if subBin {
		add("bin", bin)
		kv = append(kv, fmt.Sprintf("bin_mean_batch=%.1f", meanBatch), "bin_batches="+hist)
	}
	if inBin {
		add("bin_inproc_client", binIn)
	}
	if *loadJSON {
		add("json", js)
	}
	fmt.Println(strings.Join(kv, " "))
	for _, p := range []loadPhase{bin, binIn, js} {
		if p.Failed > 0 {
			b.Errorf("%d failed requests; first: %s", p.Failed, p.FirstErr)
		}
	}
}

// TestServeLoadClientChecks runs the lean load client against a fake
// server that answers every third request with a 500 and every other
// third with a truncated output: both count as failures, the good answers
// as requests.
func TestServeLoadClientChecks(t *testing.T) {
	js := `{"model_name":"cnn","model_version":"1","outputs":[{"name":"logits","datatype":"FP32","shape":[1,10],"parameters":{"binary_data_size":40}},{"name":"probabilities","datatype":"FP32","shape":[1,10],"parameters":{"binary_data_size":40}}]}`
	var mu sync.Mutex
	n := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		n++
		k := n % 3
		mu.Unlock()
		if k == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		raw := 80
		if k == 2 {
			raw = 40
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set(serve.HeaderContentLength, strconv.Itoa(len(js)))
		_, _ = w.Write(append([]byte(js), make([]byte, raw)...))
	}))
	defer ts.Close()
	for _, client := range []string{"raw", "http"} {
		r, err := runLoadClient(loadSpec{URL: ts.URL + "/v2/models/cnn/infer", Body: []byte("{}"), Binary: true,
			Conns: 2, Duration: 100 * time.Millisecond, Client: client})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests == 0 || r.Failed == 0 || r.Total != r.Requests {
			t.Fatalf("%s client: %d requests, %d failed, %d in all; want some of each", client, r.Requests, r.Failed, r.Total)
		}
		if !strings.Contains(r.FirstErr, "status 500") && !strings.Contains(r.FirstErr, "40 bytes of binary data") {
			t.Errorf("%s client: first failure %q", client, r.FirstErr)
		}
	}
}

// BenchmarkLoopbackFloor is the floor under BenchmarkServeLoad's per-request
// cost: 64 connections of bare Go TCP on loopback, each writing a request
// of a binary one-image OIP request's size (3.4 kB) and reading a 200-byte
// answer, client and server in this process, no HTTP. It reports the CPU
// time per round trip, both sides together.
func BenchmarkLoopbackFloor(b *testing.B) {
	const conns, reqSize, respSize = 64, 3400, 200
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, resp := make([]byte, reqSize), make([]byte, respSize)
				for {
					if _, err := io.ReadFull(c, req); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	clients := make([]net.Conn, conns)
	for i := range clients {
		if clients[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			b.Fatal(err)
		}
		defer clients[i].Close()
	}
	work := make(chan struct{}, conns)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := make([]byte, reqSize), make([]byte, respSize)
			for range work {
				if _, err := c.Write(req); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	cpu0 := processCPU()
	b.ResetTimer()
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu_us/op")
}
