package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/monitor"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Fatalf("%s = %.12g, want %.12g (±%g)", what, got, want, tol)
	}
}

func TestPSIHandComputed(t *testing.T) {
	// e = (¼, ¼, ½), a = (½, ¼, ¼): ¼·ln 2 + 0 + (−¼)·ln ½ = ½·ln 2.
	near(t, "PSI", monitor.PSI([]float64{0.25, 0.25, 0.5}, []float64{0.5, 0.25, 0.25}, 0), 0.5*math.Ln2, 1e-12)
	// Counts are normalised: the same distributions as counts.
	near(t, "PSI of counts", monitor.PSI([]float64{1, 1, 2}, []float64{20, 10, 10}, 0), 0.5*math.Ln2, 1e-12)
	// Smoothing ε = 0.1 over k = 3 bins: p → (p + 0.1)/1.3, so
	// e = (.35, .35, .6)/1.3 and a = (.6, .35, .35)/1.3:
	// PSI = 2 · (0.25/1.3) · ln(0.6/0.35).
	near(t, "PSI ε=0.1", monitor.PSI([]float64{0.25, 0.25, 0.5}, []float64{0.5, 0.25, 0.25}, 0.1), 2*0.25/1.3*math.Log(0.6/0.35), 1e-12)
	// An empty bin is finite with smoothing: e = (½, ½), a = (1, 0), ε = 1e-4:
	// a' = (1.0001, 0.0001)/1.0002, e' = (½, ½).
	a1, a2 := 1.0001/1.0002, 0.0001/1.0002
	want := (a1-0.5)*math.Log(a1/0.5) + (a2-0.5)*math.Log(a2/0.5)
	near(t, "PSI empty bin", monitor.PSI([]float64{1, 1}, []float64{5, 0}, 1e-4), want, 1e-12)
	if v := monitor.PSI([]float64{1, 1}, []float64{5, 0}, 0); !math.IsInf(v, 1) {
		t.Fatalf("PSI with an empty bin and no smoothing = %v, want +Inf", v)
	}
	// Identical distributions: 0.
	near(t, "PSI same", monitor.PSI([]float64{3, 1, 6}, []float64{0.3, 0.1, 0.6}, 1e-4), 0, 1e-12)
	if v := monitor.PSI([]float64{0, 0}, []float64{1, 1}, 0); !math.IsNaN(v) {
		t.Fatalf("PSI of an empty reference = %v, want NaN", v)
	}
	testutil.MustPanic(t, "monitor.PSI: 2 expected bins and 3 actual bins", func() { monitor.PSI([]float64{1, 1}, []float64{1, 1, 1}, 0) })
	testutil.MustPanic(t, "monitor.PSI: actual bin 1 is -1", func() { monitor.PSI([]float64{1, 1}, []float64{1, -1}, 0) })
	testutil.MustPanic(t, "monitor.PSI: epsilon -1", func() { monitor.PSI([]float64{1}, []float64{1}, -1) })
}

func TestQuantileCutsAndBins(t *testing.T) {
	vs := make([]float64, 100)
	for i := range vs {
		vs[i] = float64(i + 1)
	}
	cuts := monitor.QuantileCuts(append([]float64(nil), vs...), 4)
	if !reflect.DeepEqual(cuts, []float64{25, 50, 75}) {
		t.Fatalf("cuts = %v, want [25 50 75]", cuts)
	}
	if p := monitor.Proportions(cuts, vs); !reflect.DeepEqual(p, []float64{0.25, 0.25, 0.25, 0.25}) {
		t.Fatalf("proportions = %v", p)
	}
	for x, want := range map[float64]int{-5: 0, 25: 0, 25.5: 1, 50: 1, 75: 2, 76: 3, math.NaN(): 3} {
		if got := monitor.Bin(cuts, x); got != want {
			t.Errorf("Bin(%v) = %d, want %d", x, got, want)
		}
	}
	// 70% zeros: the repeated value merges the lower bins.
	zs := make([]float64, 100)
	for i := 70; i < 100; i++ {
		zs[i] = float64(i)
	}
	zc := monitor.QuantileCuts(zs, 10)
	if zc[0] != 0 || len(zc) != 3 {
		t.Fatalf("cuts with 70%% zeros = %v, want 0 then two more", zc)
	}
	if c := monitor.QuantileCuts([]float64{2, 2, 2}, 10); !reflect.DeepEqual(c, []float64{2}) {
		t.Fatalf("constant cuts = %v", c)
	}
	testutil.MustPanic(t, "monitor.QuantileCuts: 1 bins", func() { monitor.QuantileCuts(vs, 1) })
}

// blobs makes n 28×28 images of a bright square at a random place; shift
// moves them right by that many pixels and invert inverts them.
func blobs(r *rand.Rand, n, shift int, invert bool) *tensor.Tensor {
	px := make([]float32, n*28*28)
	for i := 0; i < n; i++ {
		x0, y0 := 4+r.IntN(10)+shift, 4+r.IntN(10)
		s := 6 + r.IntN(6)
		for y := y0; y < min(y0+s, 28); y++ {
			for x := x0; x < min(x0+s, 28); x++ {
				px[i*784+y*28+x] = 0.5 + 0.5*r.Float32()
			}
		}
		if invert {
			for k := i * 784; k < (i+1)*784; k++ {
				px[k] = 1 - px[k]
			}
		}
	}
	return tensor.FromSlice(px, n, 1, 28, 28)
}

func mlpPackage(seed uint64) *model.Package {
	r := tensor.NewRNG(seed)
	net := nn.NewSequential(nn.NewFlatten(), nn.NewLinear(r, 784, 16, true), &nn.ReLU{}, nn.NewLinear(r, 16, 10, true))
	nn.Eval(net)
	return &model.Package{
		Name: "blobs", Module: net,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "image", DType: model.DTypeFloat32, Shape: []int{-1, 1, 28, 28}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 10}}},
		},
		Labels: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
	}
}

func TestProfileRoundTripThroughPackage(t *testing.T) {
	pkg := mlpPackage(1)
	x := blobs(rand.New(rand.NewPCG(1, 2)), 400, 0, false)
	y, err := pkg.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := monitor.BuildProfile(x, y, monitor.PackageOptions(pkg))
	if err != nil {
		t.Fatal(err)
	}
	if prof.Input.Kind != monitor.KindImage || prof.Output != monitor.OutputLogits || prof.Samples != 400 {
		t.Fatalf("profile kind %q output %q samples %d", prof.Input.Kind, prof.Output, prof.Samples)
	}
	if len(prof.Features) != 5+16 || prof.Features[0].Name != "mean" || prof.Features[5].Name != "block_0_0" {
		t.Fatalf("features: %d, first %q", len(prof.Features), prof.Features[0].Name)
	}
	var s float64
	for _, f := range prof.Classes.Freq {
		s += f
	}
	near(t, "sum of class shares", s, 1, 1e-9)
	if prof.Confidence.Mean <= 0.1 || prof.Confidence.Mean > 1 {
		t.Fatalf("mean confidence %v", prof.Confidence.Mean)
	}
	if err := prof.Attach(pkg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() + "/pkg"
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	loaded, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := monitor.FromPackage(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, prof) {
		a, _ := json.Marshal(prof)
		b, _ := json.Marshal(back)
		t.Fatalf("profile changed through the package:\n%s\n%s", a, b)
	}
	if _, err := monitor.FromPackage(mlpPackage(2)); err != monitor.ErrNoProfile {
		t.Fatalf("FromPackage without a profile: %v, want ErrNoProfile", err)
	}
	// A profile for other rows does not attach.
	tab, err := monitor.BuildProfile(tensor.FromSlice([]float32{1, 2, 3, 4}, 2, 2), tensor.FromSlice([]float32{1, 0, 0, 1}, 2, 2), monitor.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tab.Output != monitor.OutputProbabilities || tab.Input.Kind != monitor.KindTabular {
		t.Fatalf("tabular profile: output %q kind %q", tab.Output, tab.Input.Kind)
	}
	if err := tab.Attach(pkg); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Fatalf("attaching a profile of [2] rows to a [1 28 28] model: %v", err)
	}
}

func TestParseProfileErrors(t *testing.T) {
	x := tensor.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	y := tensor.FromSlice([]float32{3, 1, 0, 2, 1, 1}, 3, 2)
	prof, err := monitor.BuildProfile(x, y, monitor.ProfileOptions{FeatureNames: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	good, err := prof.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := monitor.ParseProfile(good); err != nil {
		t.Fatalf("good profile: %v", err)
	}
	for name, mutate := range map[string]func(string) string{
		"syntax":        func(s string) string { return s[:len(s)-3] },
		"unknown field": func(s string) string { return strings.Replace(s, `"format":1`, `"format":1,"bogus":2`, 1) },
		"format":        func(s string) string { return strings.Replace(s, `"format":1`, `"format":7`, 1) },
		"kind":          func(s string) string { return strings.Replace(s, `"kind":"tabular"`, `"kind":"image"`, 1) },
		"output":        func(s string) string { return strings.Replace(s, `"output":"logits"`, `"output":"maybe"`, 1) },
		"freq length":   func(s string) string { return strings.Replace(s, `"freq":[`, `"freq":[0.5,`, 1) },
	} {
		if _, err := monitor.ParseProfile([]byte(mutate(string(good)))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := monitor.BuildProfile(x, tensor.FromSlice([]float32{1, 2}, 2, 1), monitor.ProfileOptions{}); err == nil {
		t.Error("BuildProfile with 2 output rows for 3 inputs: no error")
	}
}

func TestParseRule(t *testing.T) {
	r, err := monitor.ParseRule("feature_psi_max>=0.25,for=3,severity=critical,name=drift")
	if err != nil {
		t.Fatal(err)
	}
	want := monitor.Rule{Name: "drift", Metric: "feature_psi_max", Op: ">=", Threshold: 0.25, For: 3, Severity: "critical"}
	if r != want {
		t.Fatalf("rule = %+v, want %+v", r, want)
	}
	if back, err := monitor.ParseRule(r.String()); err != nil || back != r {
		t.Fatalf("String round trip: %+v, %v", back, err)
	}
	r, err = monitor.ParseRule("feature_psi:mean < 1e-3, for=2m")
	if err != nil || r.ForDuration != 2*time.Minute || r.For != 1 || r.Op != "<" || r.Severity != "warning" {
		t.Fatalf("rule = %+v, %v", r, err)
	}
	for _, bad := range []string{"psi", "bogus>1", "prediction_psi>x", "prediction_psi>1,for=-2", "prediction_psi>1,severity=loud", "prediction_psi>1,colour=red", "prediction_psi=>1"} {
		if _, err := monitor.ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q): no error", bad)
		}
	}
}

// hook is an httptest webhook receiver.
type hook struct {
	mu     sync.Mutex
	alerts []monitor.Alert
	fail   int // answer 500 to this many requests first
	srv    *httptest.Server
}

func newHook(t *testing.T, fail int) *hook {
	h := &hook{fail: fail}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fail > 0 {
			h.fail--
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		var a monitor.Alert
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&a) != nil {
			http.Error(w, "bad alert", http.StatusBadRequest)
			return
		}
		h.alerts = append(h.alerts, a)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() []monitor.Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]monitor.Alert(nil), h.alerts...)
}

func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// tabular makes n rows of two uniform columns plus shift, and 2-class
// logits that favour class 0 when the first column is below 0.5.
func tabular(r *rand.Rand, n int, shift float32) (*tensor.Tensor, *tensor.Tensor) {
	x := make([]float32, 2*n)
	y := make([]float32, 2*n)
	for i := 0; i < n; i++ {
		x[2*i], x[2*i+1] = r.Float32()+shift, r.Float32()
		if x[2*i] < 0.5 {
			y[2*i] = 2
		} else {
			y[2*i+1] = 2
		}
	}
	return tensor.FromSlice(x, n, 2), tensor.FromSlice(y, n, 2)
}

func TestAlertFiresResolvesAndPostsWebhook(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ref, refOut := tabular(r, 2000, 0)
	prof, err := monitor.BuildProfile(ref, refOut, monitor.ProfileOptions{FeatureNames: []string{"x", "y"}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHook(t, 1) // the first delivery fails and is retried
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	var logMu sync.Mutex
	mon, err := monitor.New(monitor.Options{
		Window: 200, Registerer: reg, Webhook: h.srv.URL, WebhookBackoff: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil)),
		Rules:  []monitor.Rule{{Name: "input_drift", Metric: "feature_psi_max", Threshold: 0.25, For: 2, Severity: "critical"}},
		Profiles: func(model, version string) (*monitor.Profile, error) {
			if model != "tab" {
				return nil, monitor.ErrNoProfile
			}
			return prof, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	feed := func(shift float32, batches int) {
		for i := 0; i < batches; i++ {
			x, y := tabular(r, 50, shift)
			mon.Observe("tab", "1", x, y)
		}
	}
	feed(0, 12) // 3 windows of normal rows
	st := mon.Status()[0]
	if st.Windows != 3 || st.Alerts[0].State != "ok" || st.Last.FeaturePSIMax > 0.1 {
		t.Fatalf("normal traffic: %d windows, alert %s, max PSI %v", st.Windows, st.Alerts[0].State, st.Last.FeaturePSIMax)
	}
	feed(0.6, 4) // one shifted window: pending
	if st = mon.Status()[0]; st.Alerts[0].State != "pending" || st.Last.MaxFeature != "x" || st.Last.FeaturePSIMax < 0.25 {
		t.Fatalf("one shifted window: alert %s, max feature %q PSI %v", st.Alerts[0].State, st.Last.MaxFeature, st.Last.FeaturePSIMax)
	}
	feed(0.6, 8) // two more: fires once
	if st = mon.Status()[0]; st.Alerts[0].State != "firing" {
		t.Fatalf("three shifted windows: alert %s", st.Alerts[0].State)
	}
	if v := gauge(t, reg, "deepgo_drift_alert_firing", map[string]string{"model": "tab", "rule": "input_drift"}); v != 1 {
		t.Fatalf("deepgo_drift_alert_firing = %v", v)
	}
	if v := gauge(t, reg, "deepgo_drift_psi", map[string]string{"model": "tab", "feature": "x"}); v < 0.25 {
		t.Fatalf("deepgo_drift_psi{feature=x} = %v", v)
	}
	feed(0, 4) // back to normal: resolves
	mon.Observe("other", "1", ref, refOut)
	mon.Close(context.Background())
	got := h.got()
	if len(got) != 2 || got[0].Status != "firing" || got[1].Status != "resolved" {
		t.Fatalf("webhook got %+v, want one firing then one resolved alert", got)
	}
	a := got[0]
	if a.Rule != "input_drift" || a.Model != "tab" || a.Version != "1" || a.Severity != "critical" || a.Feature != "x" || a.Windows != 2 || a.Value < 0.25 || a.WindowRows != 200 {
		t.Fatalf("firing alert %+v", a)
	}
	if v := gauge(t, reg, "deepgo_drift_webhook_deliveries_total", map[string]string{"outcome": "delivered"}); v != 2 {
		t.Fatalf("delivered webhooks = %v, want 2", v)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "drift alert firing") || !strings.Contains(out, "rule=input_drift") || !strings.Contains(out, "drift alert resolved") {
		t.Fatalf("logs lack the alert lines:\n%s", out)
	}
	sts := mon.Status()
	if len(sts) != 2 || sts[0].Model != "other" || sts[0].Monitored || !strings.Contains(sts[0].Reason, "no monitor profile") {
		t.Fatalf("status of a model without a profile: %+v", sts[0])
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSlidingAndTimeWindows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ref, refOut := tabular(r, 1000, 0)
	prof, err := monitor.BuildProfile(ref, refOut, monitor.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	mon, err := monitor.New(monitor.Options{Window: 100, Step: 10, MaxAge: time.Minute, MinRows: 20, Rules: []monitor.Rule{},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close(context.Background())
	if err := mon.SetProfile("m", "3", prof); err != nil {
		t.Fatal(err)
	}
	x, y := tabular(r, 10, 0)
	mon.Observe("m", "3", x, y)
	if st := mon.Status()[0]; st.Windows != 0 || st.WindowRows != 10 {
		t.Fatalf("10 rows with MinRows 20: %d windows, %d rows", st.Windows, st.WindowRows)
	}
	for i := 0; i < 14; i++ {
		x, y := tabular(r, 10, 0)
		mon.Observe("m", "3", x, y)
	}
	st := mon.Status()[0]
	if st.WindowRows != 100 || st.Windows != 14 || st.Last.Rows != 100 {
		t.Fatalf("sliding window: %d rows held, %d windows, last of %d rows", st.WindowRows, st.Windows, st.Last.Rows)
	}
	now = now.Add(2 * time.Minute) // every row has aged out
	x, y = tabular(r, 30, 0)
	mon.Observe("m", "3", x, y)
	if st := mon.Status()[0]; st.Last.Rows != 30 {
		t.Fatalf("after MaxAge the window holds %d rows, want the 30 new ones", st.Last.Rows)
	}
	// A batch of the wrong shape is skipped, not a panic.
	mon.Observe("m", "3", tensor.Zeros(4, 3), tensor.Zeros(4, 2))
	if st := mon.Status()[0]; st.Skipped != 4 {
		t.Fatalf("skipped = %d, want 4", st.Skipped)
	}
	// A new version asks for its profile again and starts over.
	mon.Observe("m", "4", x, y)
	if st := mon.Status()[0]; st.Version != "4" || st.Monitored {
		t.Fatalf("new version without a Profiles function: %+v", st)
	}
}

func TestWebhookNeverBlocks(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	r := rand.New(rand.NewPCG(7, 8))
	ref, refOut := tabular(r, 500, 0)
	prof, err := monitor.BuildProfile(ref, refOut, monitor.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	mon, err := monitor.New(monitor.Options{Window: 20, Registerer: reg, Webhook: srv.URL, WebhookQueue: 1, WebhookRetries: -1,
		WebhookTimeout: 50 * time.Millisecond,
		Rules:          []monitor.Rule{{Metric: "feature_psi_max", Threshold: 0.25}, {Metric: "prediction_psi", Threshold: 0.25}, {Metric: "confidence_mean", Op: "<", Threshold: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.SetProfile("m", "1", prof); err != nil {
		t.Fatal(err)
	}
	// Three rules fire at once: one is in delivery, one queued, one dropped;
	// Observe returns anyway.
	x, y := tabular(r, 20, 5)
	mon.Observe("m", "1", x, y)
	if st := mon.Status()[0]; st.Alerts[0].State != "firing" || st.Alerts[1].State != "firing" || st.Alerts[2].State != "firing" {
		t.Fatalf("alerts %+v", st.Alerts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	mon.Close(ctx)
	dropped := gauge(t, reg, "deepgo_drift_webhook_deliveries_total", map[string]string{"outcome": "dropped"})
	failed := gauge(t, reg, "deepgo_drift_webhook_deliveries_total", map[string]string{"outcome": "failed"})
	if dropped < 1 || dropped+failed != 3 {
		t.Fatalf("dropped %v, failed %v: want at least one dropped, three in all", dropped, failed)
	}
}
