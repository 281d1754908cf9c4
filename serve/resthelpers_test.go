package serve_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/serve"
	"github.com/deepgo/deepgo/tensor"
)

// rtLinear is a Linear(4, 3) classifier package: input "x" [-1, 4], output
// "logits" [-1, 3], labels a, b, c.
func rtLinear(seed uint64) *model.Package {
	lin := nn.NewLinear(tensor.NewRNG(seed), 4, 3, true)
	return &model.Package{
		Name:   "lin",
		Module: nn.NewSequential(lin),
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "x", DType: model.DTypeFloat32, Shape: []int{-1, 4}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 3}}},
		},
		Labels: []string{"a", "b", "c"},
	}
}

// rtWant computes the Linear package's logits for rows of 4 values.
func rtWant(pkg *model.Package, x []float32) []float32 {
	lin := pkg.Module.(*nn.Sequential).Layers[0].(*nn.Linear)
	w, b := lin.Weight.Data(), lin.Bias.Data()
	var out []float32
	for r := 0; r+4 <= len(x); r += 4 {
		for o := 0; o < 3; o++ {
			s := float64(b[o])
			for i := 0; i < 4; i++ {
				s += float64(w[o*4+i]) * float64(x[r+i])
			}
			out = append(out, float32(s))
		}
	}
	return out
}

// rtSave saves pkg under root/name/version (a Triton-style layout) and
// returns root/name.
func rtSave(t testing.TB, root string, pkg *model.Package, version int) string {
	t.Helper()
	dir := filepath.Join(root, "lin")
	if err := model.Save(filepath.Join(dir, strconv.Itoa(version)), pkg); err != nil {
		t.Fatal(err)
	}
	return dir
}

// rtEnv is a server with the Linear model "lin" behind an HTTP listener.
type rtEnv struct {
	s   *serve.Server
	url string // http://host:port
	pkg *model.Package
	dir string
}

// rtTransport is how a test serves REST: "serve" runs Server.Serve (infer
// requests on the fast path, other connections handed to net/http),
// "handler" serves Server.Handler with net/http alone (httptest).
type rtTransport string

// rtEachTransport runs f once per transport, as subtests.
func rtEachTransport(t *testing.T, f func(t *testing.T, tr rtTransport)) {
	for _, tr := range []rtTransport{"serve", "handler"} {
		t.Run(string(tr), func(t *testing.T) { f(t, tr) })
	}
}

// rtListen serves s over tr and returns the base URL; cleanup stops it.
func rtListen(t testing.TB, s *serve.Server, tr rtTransport) string {
	t.Helper()
	if tr == "handler" {
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(func() { ts.Close(); s.Close() })
		return ts.URL
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// rtStart serves the Linear model through Serve.
func rtStart(t testing.TB, opts serve.Options) *rtEnv { return rtStartOn(t, opts, "serve") }

func rtStartOn(t testing.TB, opts serve.Options, tr rtTransport) *rtEnv {
	t.Helper()
	pkg := rtLinear(1)
	dir := rtSave(t, t.TempDir(), pkg, 1)
	s := serve.New(opts)
	if err := s.Repository().Load("lin", dir); err != nil {
		t.Fatal(err)
	}
	loaded, _, err := s.Package("lin")
	if err != nil {
		t.Fatal(err)
	}
	return &rtEnv{s: s, url: rtListen(t, s, tr), pkg: loaded, dir: dir}
}

// rtDo sends a request and returns the status, headers and body.
func rtDo(t testing.TB, method, url string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// rtJSON decodes a JSON body.
func rtJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("response %q is not JSON: %v", b, err)
	}
	return m
}

// rtErrorBody checks an {"error": "..."} body and returns the message.
func rtErrorBody(t testing.TB, b []byte) string {
	t.Helper()
	m := rtJSON(t, b)
	msg, _ := m["error"].(string)
	if msg == "" {
		t.Fatalf("error response %q has no error message", b)
	}
	return msg
}

func rtF32(xs []float32) []byte {
	b := make([]byte, 4*len(xs))
	for i, v := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func rtFromF32(t testing.TB, b []byte) []float32 {
	t.Helper()
	if len(b)%4 != 0 {
		t.Fatalf("%d bytes are not float32s", len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// rtClose checks got against want within 1e-5 (relative) / 1e-6.
func rtClose(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-6+1e-5*math.Abs(float64(want[i])) {
			t.Fatalf("%s[%d] = %v, want %v (all: %v vs %v)", what, i, got[i], want[i], got, want)
		}
	}
}

// rtOutputData extracts a JSON output's data as float32s.
func rtOutputData(t testing.TB, out map[string]any) []float32 {
	t.Helper()
	data, ok := out["data"].([]any)
	if !ok {
		t.Fatalf("output %v has no data array", out)
	}
	f := make([]float32, len(data))
	for i, v := range data {
		x, ok := v.(float64)
		if !ok {
			t.Fatalf("output data %v is not numeric", data)
		}
		f[i] = float32(x)
	}
	return f
}

// rtMetric sums the values of metric name whose labels include want.
func rtMetric(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// rtGate is a model whose forward pass blocks while the gate is closed; it
// returns [rows, 3] with row i = (sum of row i of x, rows, calls).
type rtGate struct {
	mu      sync.Mutex
	open    chan struct{}
	entered chan struct{}
	calls   atomic.Int64
	free    atomic.Int64 // calls that pass without waiting (the warm-up)
	panicOn float32      // a first input value that makes Forward panic (0: never)
}

func newRTGate() *rtGate {
	g := &rtGate{open: make(chan struct{}), entered: make(chan struct{}, 1024)}
	g.free.Store(1)
	return g
}

func (g *rtGate) Forward(x *tensor.Tensor) *tensor.Tensor {
	if g.free.Add(-1) < 0 {
		g.entered <- struct{}{}
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		<-open
	}
	c := g.calls.Add(1)
	rows := x.Shape()[0]
	d := x.Data()
	if g.panicOn != 0 && d[0] == g.panicOn {
		panic("rtGate: asked to panic")
	}
	per := len(d) / rows
	out := make([]float32, 0, rows*3)
	for r := 0; r < rows; r++ {
		s := float32(0)
		for _, v := range d[r*per : (r+1)*per] {
			s += v
		}
		out = append(out, s, float32(rows), float32(c))
	}
	return tensor.FromSlice(out, rows, 3)
}

// release opens the gate for good.
func (g *rtGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// rtGatePackage wraps g in a package with the Linear model's signature.
func rtGatePackage(g *rtGate) *model.Package {
	p := rtLinear(1)
	p.Name, p.Module = "gate", g
	return p
}

// rtInferBody is a KServe-style JSON request with one row per element of rows.
func rtInferBody(rows ...[]float32) []byte {
	var flat []float32
	for _, r := range rows {
		flat = append(flat, r...)
	}
	b, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "x", "shape": []int{len(rows), 4}, "datatype": "FP32", "data": flat,
	}}})
	return b
}

func rtContains(t testing.TB, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%s: %q does not contain %q", what, s, sub)
	}
}
