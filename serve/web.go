package serve

import (
	"embed"
	"io/fs"
	"math"
	"net/http"
	"runtime"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/deepgo/deepgo/monitor"
)

//go:embed web
var webFiles embed.FS

// MountWeb mounts the web page on s (call it before Handler or Serve):
//
//   - GET / is a page where one draws a digit with the mouse or a finger
//     and sees the prediction and class probabilities live (it calls the
//     REST infer endpoint with JSON, after preprocessing the drawing like
//     MNIST in the browser), with the server's live metrics and drift
//     status;
//   - GET /web/… serves its script and style sheet (embedded, no CDN);
//   - GET /monitor/status answers the JSON the page polls: a summary of
//     the server's metrics per model and, when mon is not nil, the drift
//     status of every model (see monitor.Monitor.Status).
func MountWeb(s *Server, mon *monitor.Monitor) {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic("serve.MountWeb: " + err.Error()) // the embedded tree is fixed at build time
	}
	page, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic("serve.MountWeb: " + err.Error())
	}
	started := time.Now()
	s.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	}))
	s.Handle("GET /web/", http.StripPrefix("/web/", http.FileServerFS(sub)))
	s.Handle("GET /monitor/status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.webStatus(mon, started))
	}))
}

// WebStatus is the JSON of GET /monitor/status.
type WebStatus struct {
	Server struct {
		ServerMetadata
		Live          bool    `json:"live"`
		Ready         bool    `json:"ready"`
		UptimeSeconds float64 `json:"uptime_seconds"`
		Goroutines    int     `json:"goroutines"`
		HTTPInflight  float64 `json:"http_inflight"`
	} `json:"server"`
	// Models summarises each loaded model's serving metrics.
	Models []WebModel `json:"models"`
	// DriftEnabled says whether a drift monitor is attached; Drift is its
	// status per model.
	DriftEnabled bool                  `json:"drift_enabled"`
	Drift        []monitor.ModelStatus `json:"drift"`
	// Time of the snapshot.
	Time time.Time `json:"time"`
}

// WebModel is one model's serving metrics in WebStatus. Counters are
// totals since the version was loaded; latencies are estimated from the
// histograms (milliseconds).
type WebModel struct {
	ModelStatus
	Inputs     []TensorMetadata `json:"inputs"`
	Outputs    []TensorMetadata `json:"outputs"`
	Success    float64          `json:"success"`
	Failed     float64          `json:"failed"`
	Inferences float64          `json:"inferences"`
	Executions float64          `json:"executions"`
	AvgBatch   float64          `json:"avg_batch"`
	P50Ms      float64          `json:"latency_p50_ms"`
	P99Ms      float64          `json:"latency_p99_ms"`
	QueueDepth float64          `json:"queue_depth"`
	Inflight   float64          `json:"inflight"`
}

func (s *Server) webStatus(mon *monitor.Monitor, started time.Time) *WebStatus {
	st := &WebStatus{Time: time.Now().UTC(), Models: []WebModel{}, Drift: []monitor.ModelStatus{}}
	st.Server.ServerMetadata = s.ServerMetadata()
	st.Server.Live, st.Server.Ready = s.Live(), s.Ready()
	st.Server.UptimeSeconds = math.Round(time.Since(started).Seconds()*10) / 10
	st.Server.Goroutines = runtime.NumGoroutine()
	fams := map[string]*dto.MetricFamily{}
	if mfs, err := s.Registry().Gather(); err == nil {
		for _, mf := range mfs {
			fams[mf.GetName()] = mf
		}
	}
	if f := fams["deepgo_http_inflight_requests"]; f != nil && len(f.Metric) > 0 {
		st.Server.HTTPInflight = f.Metric[0].GetGauge().GetValue()
	}
	for _, m := range s.Models() {
		wm := WebModel{ModelStatus: m, Inputs: []TensorMetadata{}, Outputs: []TensorMetadata{}}
		if md, err := s.ModelMetadata(m.Name, ""); err == nil {
			wm.Inputs, wm.Outputs = md.Inputs, md.Outputs
		}
		want := map[string]string{"model": m.Name, "version": m.Version}
		each(fams["deepgo_requests_total"], want, func(mt *dto.Metric) {
			if label(mt, "outcome") == OutcomeSuccess {
				wm.Success += mt.GetCounter().GetValue()
			} else {
				wm.Failed += mt.GetCounter().GetValue()
			}
		})
		each(fams["nv_inference_count"], want, func(mt *dto.Metric) { wm.Inferences += mt.GetCounter().GetValue() })
		each(fams["nv_inference_exec_count"], want, func(mt *dto.Metric) { wm.Executions += mt.GetCounter().GetValue() })
		each(fams["deepgo_queue_depth"], want, func(mt *dto.Metric) { wm.QueueDepth += mt.GetGauge().GetValue() })
		each(fams["deepgo_inflight_requests"], want, func(mt *dto.Metric) { wm.Inflight += mt.GetGauge().GetValue() })
		each(fams["deepgo_request_duration_seconds"], want, func(mt *dto.Metric) {
			wm.P50Ms = 1000 * quantile(mt.GetHistogram(), 0.5)
			wm.P99Ms = 1000 * quantile(mt.GetHistogram(), 0.99)
		})
		if wm.Executions > 0 {
			wm.AvgBatch = wm.Inferences / wm.Executions
		}
		st.Models = append(st.Models, wm)
	}
	if mon != nil {
		st.DriftEnabled = true
		st.Drift = mon.Status()
	}
	return st
}

// each calls fn for every metric of f whose labels include want.
func each(f *dto.MetricFamily, want map[string]string, fn func(*dto.Metric)) {
	if f == nil {
		return
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			if label(m, k) != v {
				continue next
			}
		}
		fn(m)
	}
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// quantile estimates quantile q of a Prometheus histogram by linear
// interpolation inside the bucket holding it (as PromQL's
// histogram_quantile); 0 for an empty histogram.
func quantile(h *dto.Histogram, q float64) float64 {
	n := float64(h.GetSampleCount())
	if h == nil || n == 0 {
		return 0
	}
	bs := append([]*dto.Bucket(nil), h.GetBucket()...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
	rank := q * n
	lower, below := 0.0, 0.0
	for _, b := range bs {
		c := float64(b.GetCumulativeCount())
		if c >= rank {
			ub := b.GetUpperBound()
			if math.IsInf(ub, 1) {
				return lower
			}
			if c == below {
				return ub
			}
			return lower + (ub-lower)*(rank-below)/(c-below)
		}
		lower, below = b.GetUpperBound(), c
	}
	return lower
}
