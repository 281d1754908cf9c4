package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/serve"
)

// rtWaitGauge waits until a gauge of model gate reaches want.
func rtWaitGauge(t *testing.T, s *serve.Server, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for rtMetric(t, s.Registry(), name, map[string]string{"model": "gate"}) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %v (now %v)", name, want, rtMetric(t, s.Registry(), name, map[string]string{"model": "gate"}))
		}
		time.Sleep(time.Millisecond)
	}
}

func rtGateServer(t *testing.T, opts serve.Options) (*serve.Server, *rtGate) {
	t.Helper()
	s := serve.New(opts)
	g := newRTGate()
	if err := s.Repository().LoadPackage("gate", 1, rtGatePackage(g)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.release(); s.Close() })
	return s, g
}

func rtRows(i int) []float32 { return []float32{float32(i), 1, 0, 0} }

// TestBatching queues requests while the model is busy and checks they run
// as one batch, each request getting its own rows back.
func TestBatching(t *testing.T) {
	s, g := rtGateServer(t, serve.Options{MaxBatch: 64, MaxDelay: time.Millisecond, Instances: 1})
	const n = 17
	type res struct {
		i   int
		out serve.InferResponse
		err error
	}
	results := make(chan res, n)
	infer := func(i int, rows int) {
		var data []float32
		for r := 0; r < rows; r++ {
			data = append(data, rtRows(i)...)
		}
		out, err := s.Infer(context.Background(), serve.InferRequest{Model: "gate", ID: fmt.Sprint(i),
			Inputs: []serve.Tensor{{Name: "x", Datatype: serve.TypeFP32, Shape: []int64{int64(rows), 4}, FP32: data}}})
		results <- res{i, out, err}
	}
	go infer(0, 1)
	<-g.entered // the first request is in the model; the rest queue up
	for i := 1; i < n; i++ {
		go infer(i, 1+i%2)
	}
	rtWaitGauge(t, s, "deepgo_queue_depth", n-1)
	g.release()
	rowsTotal := 0
	for k := 0; k < n; k++ {
		r := <-results
		if r.err != nil {
			t.Fatalf("request %d: %v", r.i, r.err)
		}
		rows := 1 + r.i%2
		if r.i == 0 {
			rows = 1
		}
		rowsTotal += rows
		o := r.out.Outputs[0]
		if r.out.ID != fmt.Sprint(r.i) || len(o.Shape) != 2 || o.Shape[0] != int64(rows) || len(o.FP32) != 3*rows {
			t.Fatalf("request %d: response %+v", r.i, r.out)
		}
		for k := 0; k < rows; k++ {
			if o.FP32[3*k] != float32(r.i+1) { // row sum = i + 1: its own rows came back
				t.Fatalf("request %d got row sum %v", r.i, o.FP32[3*k])
			}
		}
		wantBatch := float32(1)
		if r.i > 0 {
			wantBatch = float32(rowsTotalQueued(n))
		}
		if o.FP32[1] != wantBatch {
			t.Errorf("request %d ran in a batch of %v rows, want %v", r.i, o.FP32[1], wantBatch)
		}
	}
	exec := rtMetric(t, s.Registry(), "nv_inference_exec_count", map[string]string{"model": "gate"})
	count := rtMetric(t, s.Registry(), "nv_inference_count", map[string]string{"model": "gate"})
	if exec != 2 || count != float64(rowsTotal) {
		t.Errorf("exec_count %v, inference_count %v; want 2 and %d", exec, count, rowsTotal)
	}
	if got := rtMetric(t, s.Registry(), "deepgo_batch_size", map[string]string{"model": "gate"}); got != 2 {
		t.Errorf("batch size histogram has %v samples, want 2", got)
	}
}

// rowsTotalQueued is the rows of requests 1..n-1 (1 + i%2 rows each).
func rowsTotalQueued(n int) int {
	s := 0
	for i := 1; i < n; i++ {
		s += 1 + i%2
	}
	return s
}

// TestQueueFull fills a model's queue: the next request gets 503 /
// ErrQueueFull, and the queued ones still succeed.
func TestQueueFull(t *testing.T) {
	s, g := rtGateServer(t, serve.Options{MaxBatch: 1, QueueSize: 2, Instances: 1})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	codes := make(chan int, 3)
	post := func() {
		code, _, _ := rtDo(t, "POST", ts.URL+"/v2/models/gate/infer", rtInferBody(rtRows(1)), nil)
		codes <- code
	}
	go post()
	<-g.entered
	go post()
	go post()
	rtWaitGauge(t, s, "deepgo_queue_depth", 2)
	code, _, body := rtDo(t, "POST", ts.URL+"/v2/models/gate/infer", rtInferBody(rtRows(1)), nil)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("request on a full queue: %d %s, want 503", code, body)
	}
	rtContains(t, "queue full", rtErrorBody(t, body), "queue is full")
	_, err := s.Infer(context.Background(), serve.InferRequest{Model: "gate",
		Inputs: []serve.Tensor{{Name: "x", Datatype: serve.TypeFP32, Shape: []int64{1, 4}, FP32: rtRows(1)}}})
	if !errors.Is(err, serve.ErrQueueFull) || !errors.Is(err, serve.ErrUnavailable) {
		t.Errorf("Infer on a full queue: %v, want ErrQueueFull", err)
	}
	g.release()
	for i := 0; i < 3; i++ {
		if c := <-codes; c != 200 {
			t.Errorf("queued request: %d", c)
		}
	}
	if got := rtMetric(t, s.Registry(), "deepgo_requests_total", map[string]string{"model": "gate", "outcome": "unavailable"}); got != 2 {
		t.Errorf("unavailable count %v, want 2", got)
	}
}

// TestRequestTimeout: a request not answered within RequestTimeout gets 504.
func TestRequestTimeout(t *testing.T) {
	s, _ := rtGateServer(t, serve.Options{RequestTimeout: 50 * time.Millisecond})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	code, _, body := rtDo(t, "POST", ts.URL+"/v2/models/gate/infer", rtInferBody(rtRows(1)), nil)
	if code != http.StatusGatewayTimeout {
		t.Fatalf("timed-out request: %d %s, want 504", code, body)
	}
	rtContains(t, "timeout", rtErrorBody(t, body), "in time")
}

// rtLoad runs workers posting requests until stop is closed and counts
// failures; each worker checks its answers against check.
func rtLoad(t *testing.T, url string, workers int, stop <-chan struct{}, check func([]byte) error) (ok, failed *atomic.Int64, wait func()) {
	ok, failed = new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(url, "application/json", strings.NewReader(string(rtInferBody([]float32{1, 2, 3, 4}))))
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed: %v", err)
					return
				}
				var body []byte
				body, err = readAllClose(resp)
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
				}
				if err == nil {
					err = check(body)
				}
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed: %v", err)
					return
				}
				ok.Add(1)
			}
		}()
	}
	return ok, failed, func() { wg.Wait(); client.CloseIdleConnections() }
}

func readAllClose(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if err.Error() == "EOF" {
				return []byte(b.String()), nil
			}
			return nil, err
		}
	}
}

// TestReloadUnderLoad reloads new versions while clients send requests:
// no request fails, every answer comes from one of the versions, and the
// last version ends up serving.
func TestReloadUnderLoad(t *testing.T) {
	rtEachTransport(t, func(t *testing.T, tr rtTransport) {
		root := t.TempDir()
		const versions = 4
		var pkgs []*model.Package
		for v := 1; v <= versions; v++ {
			p := rtLinear(uint64(v))
			p.Name = fmt.Sprint(v) // names the version the logits belong to
			pkgs = append(pkgs, p)
		}
		dir := rtSave(t, root, pkgs[0], 1)
		s := serve.New(serve.Options{MaxDelay: 100 * time.Microsecond})
		defer s.Close()
		if err := s.Repository().Load("lin", dir); err != nil {
			t.Fatal(err)
		}
		url := rtListen(t, s, tr)
		stop := make(chan struct{})
		var seen sync.Map
		ok, failed, wait := rtLoad(t, url+"/v2/models/lin/infer", 8, stop, func(b []byte) error {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			out := m["outputs"].([]any)[0].(map[string]any)["data"].([]any)
			f := make([]float32, len(out))
			for i, v := range out {
				f[i] = float32(v.(float64))
			}
			v, found := "", false
			for _, p := range pkgs {
				if rtNear(f, rtWant(p, []float32{1, 2, 3, 4})) {
					v, found = p.Name, true
				}
			}
			if !found || v != m["model_version"] {
				return fmt.Errorf("logits %v do not belong to version %v", f, m["model_version"])
			}
			seen.Store(v, true)
			return nil
		})
		for v := 2; v <= versions; v++ {
			before := ok.Load()
			for ok.Load() < before+20 && failed.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			rtSave(t, root, pkgs[v-1], v)
			if err := s.Repository().Reload("lin"); err != nil {
				t.Fatal(err)
			}
		}
		before := ok.Load()
		for ok.Load() < before+20 && failed.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		close(stop)
		wait()
		if failed.Load() != 0 {
			t.Fatalf("%d of %d requests failed during reloads", failed.Load(), ok.Load()+failed.Load())
		}
		if _, found := seen.Load(fmt.Sprint(versions)); !found {
			t.Errorf("no answer from the last version")
		}
		if _, found := seen.Load("1"); !found {
			t.Errorf("no answer from the first version")
		}
		if m := s.Models(); len(m) != 1 || m[0].Version != fmt.Sprint(versions) {
			t.Errorf("Models() = %+v, want version %d", m, versions)
		}
		if ready, err := s.ModelReady("lin", "1"); ready || !errors.Is(err, serve.ErrNotFound) {
			t.Errorf("old version still ready: %v %v", ready, err)
		}
	})
}

// TestVersionDirectories: a Triton-style model directory serves its
// highest numbered version; a package's own directory name is its version.
func TestVersionDirectories(t *testing.T) {
	root := t.TempDir()
	rtSave(t, root, rtLinear(1), 3)
	dir := rtSave(t, root, rtLinear(2), 12)
	s := serve.New(serve.Options{})
	defer s.Close()
	if err := s.Repository().Load("lin", dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Repository().Load("lin3", dir+"/3"); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(s.Models())
	if want := "[{lin 12 READY " + dir + "} {lin3 3 READY " + dir + "/3}]"; got != want {
		t.Errorf("Models() = %s, want %s", got, want)
	}
	if err := s.Repository().Load("bad", t.TempDir()); !errors.Is(err, serve.ErrNotFound) {
		t.Errorf("Load of an empty directory: %v, want ErrNotFound", err)
	}
	if err := s.Repository().Load("a/b", dir); !errors.Is(err, serve.ErrInvalid) {
		t.Errorf("Load with a bad name: %v, want ErrInvalid", err)
	}
	if err := s.Repository().Unload("nope"); !errors.Is(err, serve.ErrNotFound) {
		t.Errorf("Unload of an unknown model: %v, want ErrNotFound", err)
	}
}

// TestGracefulShutdown cancels Serve while requests are in the model: they
// all finish with 200, readiness turns false at once, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	s, g := rtGateServer(t, serve.Options{MaxBatch: 2, ShutdownTimeout: 20 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, nil) }()
	url := "http://" + ln.Addr().String() + "/v2/models/gate/infer"
	const n = 6
	codes := make(chan int, n)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := 0; i < n; i++ {
		go func() {
			resp, err := client.Post(url, "application/json", strings.NewReader(string(rtInferBody(rtRows(i)))))
			if err != nil {
				t.Errorf("accepted request failed: %v", err)
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-g.entered
	rtWaitGauge(t, s, "deepgo_inflight_requests", n)
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for s.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("still ready after shutdown began")
		}
		time.Sleep(time.Millisecond)
	}
	g.release()
	for i := 0; i < n; i++ {
		if c := <-codes; c != 200 {
			t.Errorf("in-flight request during shutdown: status %d", c)
		}
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if s.Live() {
		t.Error("server still live after Serve returned")
	}
	if _, err := s.Infer(context.Background(), serve.InferRequest{Model: "gate"}); !errors.Is(err, serve.ErrUnavailable) {
		t.Errorf("Infer after shutdown: %v, want ErrUnavailable", err)
	}
}

// rtNear reports whether a and b agree within 1e-5 relative / 1e-6.
func rtNear(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		d := float64(a[i] - b[i])
		if d < 0 {
			d = -d
		}
		w := float64(b[i])
		if w < 0 {
			w = -w
		}
		if d > 1e-6+1e-5*w {
			return false
		}
	}
	return true
}
