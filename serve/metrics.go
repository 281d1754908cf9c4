package serve

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Request outcomes, the "outcome" label of deepgo_requests_total.
const (
	OutcomeSuccess     = "success"
	OutcomeInvalid     = "invalid"
	OutcomeUnavailable = "unavailable"
	OutcomeTimeout     = "timeout"
	OutcomeError       = "error"
)

// Metrics are the server's Prometheus metrics. Registry is what /metrics
// serves; other packages (drift monitoring) register their collectors on
// it. Per-model series carry the labels model and version.
type Metrics struct {
	// Registry holds every collector below plus the Go and process
	// collectors.
	Registry *prometheus.Registry

	requests  *prometheus.CounterVec   // deepgo_requests_total{model,version,outcome}
	unknown   prometheus.Counter       // deepgo_unknown_model_requests_total
	reqDur    *prometheus.HistogramVec // deepgo_request_duration_seconds
	queueDur  *prometheus.HistogramVec // deepgo_queue_duration_seconds
	compDur   *prometheus.HistogramVec // deepgo_compute_duration_seconds
	batchSize *prometheus.HistogramVec // deepgo_batch_size
	depth     *prometheus.GaugeVec     // deepgo_queue_depth
	inflight  *prometheus.GaugeVec     // deepgo_inflight_requests
	httpInfl  prometheus.Gauge         // deepgo_http_inflight_requests

	nvSuccess *prometheus.CounterVec // nv_inference_request_success
	nvFailure *prometheus.CounterVec // nv_inference_request_failure
	nvCount   *prometheus.CounterVec // nv_inference_count
	nvExec    *prometheus.CounterVec // nv_inference_exec_count
	nvReqUs   *prometheus.CounterVec // nv_inference_request_duration_us
	nvQueueUs *prometheus.CounterVec // nv_inference_queue_duration_us
	nvInferUs *prometheus.CounterVec // nv_inference_compute_infer_duration_us
	nvPending *prometheus.GaugeVec   // nv_inference_pending_request_count
}

var modelLabels = []string{"model", "version"}

// latencyBuckets cover 100µs to ~30s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 14)

func newMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	hist := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, modelLabels)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, modelLabels)
	}
	m := &Metrics{
		Registry:  reg,
		requests:  counter("deepgo_requests_total", "Inference requests by model, version and outcome.", "model", "version", "outcome"),
		unknown:   prometheus.NewCounter(prometheus.CounterOpts{Name: "deepgo_unknown_model_requests_total", Help: "Inference requests for a model or version that is not loaded."}),
		reqDur:    hist("deepgo_request_duration_seconds", "End-to-end inference request latency in seconds (queue and compute).", latencyBuckets),
		queueDur:  hist("deepgo_queue_duration_seconds", "Time requests wait in the batch queue, in seconds.", latencyBuckets),
		compDur:   hist("deepgo_compute_duration_seconds", "Time one batch takes in the model, in seconds.", latencyBuckets),
		batchSize: hist("deepgo_batch_size", "Rows per executed batch.", prometheus.ExponentialBuckets(1, 2, 10)),
		depth:     gauge("deepgo_queue_depth", "Requests waiting in the batch queue."),
		inflight:  gauge("deepgo_inflight_requests", "Inference requests being processed (queued or computing)."),
		httpInfl:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "deepgo_http_inflight_requests", Help: "HTTP requests being served."}),

		nvSuccess: counter("nv_inference_request_success", "Number of successful inference requests, all batch sizes (Triton name).", modelLabels...),
		nvFailure: counter("nv_inference_request_failure", "Number of failed inference requests, all batch sizes (Triton name).", modelLabels...),
		nvCount:   counter("nv_inference_count", "Number of inferences performed; a batch of n counts n (Triton name).", modelLabels...),
		nvExec:    counter("nv_inference_exec_count", "Number of model executions (batches) performed (Triton name).", modelLabels...),
		nvReqUs:   counter("nv_inference_request_duration_us", "Cumulative inference request duration in microseconds (Triton name).", modelLabels...),
		nvQueueUs: counter("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds (Triton name).", modelLabels...),
		nvInferUs: counter("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds (Triton name).", modelLabels...),
		nvPending: gauge("nv_inference_pending_request_count", "Instantaneous number of pending requests awaiting execution (Triton name)."),
	}
	reg.MustRegister(m.requests, m.unknown, m.reqDur, m.queueDur, m.compDur, m.batchSize, m.depth, m.inflight, m.httpInfl,
		m.nvSuccess, m.nvFailure, m.nvCount, m.nvExec, m.nvReqUs, m.nvQueueUs, m.nvInferUs, m.nvPending)
	return m
}

// modelMetrics are the series of one model version, resolved once.
type modelMetrics struct {
	success, invalid, unavailable, timeout, failed prometheus.Counter
	reqDur, queueDur, compDur, batchSize           prometheus.Observer
	depth, pending, inflight                       prometheus.Gauge
	nvSuccess, nvFailure, nvCount, nvExec          prometheus.Counter
	nvReqUs, nvQueueUs, nvInferUs                  prometheus.Counter
}

func (m *Metrics) forModel(name, version string) *modelMetrics {
	l := prometheus.Labels{"model": name, "version": version}
	out := func(o string) prometheus.Counter {
		return m.requests.With(prometheus.Labels{"model": name, "version": version, "outcome": o})
	}
	return &modelMetrics{
		success: out(OutcomeSuccess), invalid: out(OutcomeInvalid), unavailable: out(OutcomeUnavailable),
		timeout: out(OutcomeTimeout), failed: out(OutcomeError),
		reqDur: m.reqDur.With(l), queueDur: m.queueDur.With(l), compDur: m.compDur.With(l), batchSize: m.batchSize.With(l),
		depth: m.depth.With(l), pending: m.nvPending.With(l), inflight: m.inflight.With(l),
		nvSuccess: m.nvSuccess.With(l), nvFailure: m.nvFailure.With(l), nvCount: m.nvCount.With(l), nvExec: m.nvExec.With(l),
		nvReqUs: m.nvReqUs.With(l), nvQueueUs: m.nvQueueUs.With(l), nvInferUs: m.nvInferUs.With(l),
	}
}

// done records the end of one request.
func (mm *modelMetrics) done(outcome string, d time.Duration) {
	switch outcome {
	case OutcomeSuccess:
		mm.success.Inc()
		mm.nvSuccess.Inc()
		mm.reqDur.Observe(d.Seconds())
		mm.nvReqUs.Add(float64(d.Microseconds()))
		return
	case OutcomeInvalid:
		mm.invalid.Inc()
	case OutcomeUnavailable:
		mm.unavailable.Inc()
	case OutcomeTimeout:
		mm.timeout.Inc()
	default:
		mm.failed.Inc()
	}
	mm.nvFailure.Inc()
}

// queued adjusts the queue depth gauges by delta.
func (mm *modelMetrics) queued(delta float64) {
	mm.depth.Add(delta)
	mm.pending.Add(delta)
}
