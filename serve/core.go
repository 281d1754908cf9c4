// Package serve serves deepgo model packages over the Open Inference
// Protocol v2 (the KServe/Triton "v2" protocol), REST with the binary tensor
// extension, TF-Serving's :predict, and Prometheus metrics.
//
// The core is transport-independent: a Server holds a Repository of loaded
// models, each behind a dynamic batcher, and answers Infer, ModelMetadata,
// ModelReady, Live, Ready and Models. The REST handlers (Handler) and the
// gRPC service (GRPCServe, set by the gRPC file of this package) are thin
// codecs on top of it. Errors wrap ErrNotFound, ErrInvalid or ErrUnavailable
// so each transport maps them to its status codes (HTTP 404/400/503, gRPC
// NOT_FOUND/INVALID_ARGUMENT/UNAVAILABLE); a request whose context ends
// returns an error wrapping the context's error (gRPC DEADLINE_EXCEEDED or
// CANCELLED, HTTP 504).
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
)

// Error kinds. Every error the Server returns wraps one of them (or a
// context error); test with errors.Is.
var (
	// ErrNotFound: unknown model, or a version that is not loaded.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a malformed request (wrong datatype, shape, input name,
	// data size, parameters).
	ErrInvalid = errors.New("invalid request")
	// ErrUnavailable: the model or server cannot take the request now
	// (queue full, shutting down, model unloading).
	ErrUnavailable = errors.New("unavailable")
	// ErrQueueFull is returned when a model's bounded request queue is
	// full; it wraps ErrUnavailable (HTTP 503, gRPC UNAVAILABLE).
	ErrQueueFull = fmt.Errorf("request queue is full: %w", ErrUnavailable)
)

// kindError is an error message of one kind (ErrNotFound, ErrInvalid, ...).
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// errorf makes an error of the given kind whose message is the formatted
// text alone (the kind is not repeated in the message).
func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Datatypes of the Open Inference Protocol.
const (
	TypeBool   = "BOOL"
	TypeUint8  = "UINT8"
	TypeUint16 = "UINT16"
	TypeUint32 = "UINT32"
	TypeUint64 = "UINT64"
	TypeInt8   = "INT8"
	TypeInt16  = "INT16"
	TypeInt32  = "INT32"
	TypeInt64  = "INT64"
	TypeFP16   = "FP16"
	TypeBF16   = "BF16"
	TypeFP32   = "FP32"
	TypeFP64   = "FP64"
	TypeBytes  = "BYTES"
)

// Tensor is one input or output tensor of an inference. Exactly one of the
// data fields is set; its length must equal the product of Shape (for Raw:
// that product times the datatype's size, or for BYTES the concatenation
// of uint32-little-endian-length-prefixed elements).
//
//   - FP32 for FP32 (and FP16/BF16 converted by the caller)
//   - FP64 for FP64
//   - Ints for every integer datatype and BOOL (0/1)
//   - Bytes for BYTES (one []byte per element)
//   - Raw for any datatype as raw little-endian row-major bytes (the binary
//     extension's and gRPC's raw_input_contents layout)
type Tensor struct {
	// Name of the input or output.
	Name string
	// Datatype is one of the Type constants.
	Datatype string
	// Shape, row-major; every dimension is >= 0.
	Shape []int64
	// Parameters are the tensor's protocol parameters (binary_data_size,
	// classification, ...); values are bool, int64, float64 or string.
	Parameters map[string]any

	FP32  []float32
	FP64  []float64
	Ints  []int64
	Bytes [][]byte
	Raw   []byte
}

// RequestedOutput names an output the client wants.
type RequestedOutput struct {
	// Name of the output (see ModelMetadata.Outputs).
	Name string
	// Binary asks for the output as raw bytes (REST binary extension; the
	// gRPC side always answers raw or typed as it likes).
	Binary bool
	// Classification > 0 turns the output into the top Classification
	// classes per row, as BYTES "value:index[:label]" (Triton's
	// classification extension).
	Classification int
}

// InferRequest is one inference request.
type InferRequest struct {
	// Model name and Version ("" = the loaded version).
	Model, Version string
	// ID is echoed in the response.
	ID string
	// Parameters are request parameters; values are bool, int64, float64 or
	// string. Unknown ones are ignored.
	Parameters map[string]any
	// Inputs, one per model input.
	Inputs []Tensor
	// Outputs to return; empty returns all of them.
	Outputs []RequestedOutput
}

// InferResponse is the answer to an InferRequest.
type InferResponse struct {
	// Model name and Version that answered.
	Model, Version string
	// ID echoes the request's ID.
	ID string
	// Outputs in the order requested (model order when none were named).
	// Outputs[i].Parameters has "binary_data": true when the request asked
	// for it in binary.
	Outputs []Tensor
}

// TensorMetadata describes a model input or output; -1 marks a variable
// dimension (the batch).
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata describes a loaded model.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// ServerMetadata describes the server.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// ModelStatus is one entry of Models.
type ModelStatus struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// State is "READY" or "UNAVAILABLE".
	State string `json:"state"`
	// Dir is the package directory it was loaded from.
	Dir string `json:"dir,omitempty"`
}

// Platform is the platform string reported in model metadata.
const Platform = "deepgo"

// Extensions lists the protocol extensions the server implements.
var Extensions = []string{"binary_tensor_data", "classification", "model_repository"}

// Version is the server version reported in server metadata (cmd/deepgo
// sets it to its own version).
var Version = "dev"

// Options configures a Server. Zero values take the defaults.
type Options struct {
	// MaxBatch is the largest number of rows run as one batch (default
	// 16). Under load from many clients a batch takes what is queued at
	// once, so it fills as soon as MaxBatch requests are waiting. With the
	// default two Instances, the load test's 64 connections keep two
	// batches of 16 running while the other requests arrive and are
	// decoded: on 2 cores that served 9–51% more requests/s with the load
	// client in a separate process and 26–34% more with it in process than
	// one instance with batches of 32, the best single-instance setting
	// (4 interleaved rounds; see BENCHMARKS.md).
	MaxBatch int
	// MaxDelay is how long the first request of a batch waits for others
	// (default 2ms; negative: no wait, batch only what is already queued).
	// It bounds the latency added at low load; at high load batches fill
	// before it expires.
	MaxDelay time.Duration
	// QueueSize bounds each model's queue of waiting requests (default
	// 1024); a full queue answers ErrQueueFull.
	QueueSize int
	// Instances is the number of batches of one model run at the same time
	// (default 2): while one batch waits for its requests or its kernels'
	// threads, the other computes.
	Instances int
	// MaxBodyBytes bounds a REST request body (default 64 MiB).
	MaxBodyBytes int64
	// RequestTimeout bounds one request, queueing included (default 30s;
	// negative: none).
	RequestTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of Serve (default 30s).
	ShutdownTimeout time.Duration
	// Logger receives structured request and lifecycle logs (default: discard).
	Logger *slog.Logger
	// NetHTTPOnly makes Serve answer every REST request with net/http.
	// By default Serve answers plain HTTP/1.1 infer requests on a fast
	// path of its own, whose serving path (HTTP, system calls, decoding,
	// batching, the load client) took 37–48% less CPU per request in the
	// load benchmark (see BENCHMARKS.md), and hands every other connection
	// to net/http; the responses are the same. One difference: a fast-path
	// request is not cancelled when its client disconnects (RequestTimeout
	// bounds it).
	NetHTTPOnly bool
	// Registry receives the server's metrics (default: a new registry with
	// the Go and process collectors).
	Registry *prometheus.Registry
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 16
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 2 * time.Millisecond
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.Instances <= 0 {
		o.Instances = 2
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 20
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// BatchObserver sees every executed batch after it ran: the model, its
// version, the batched input and the model output (rows in the same order).
// It is called on the batch goroutine and must be quick, must not modify
// the tensors and must not keep them after it returns (the server reuses
// the input's memory for the next batch).
type BatchObserver func(model string, version int64, input, output *tensor.Tensor)

// Server is the transport-independent inference server. Create it with New;
// all methods are safe for concurrent use.
type Server struct {
	opts     Options
	repo     *Repository
	metrics  *Metrics
	log      *slog.Logger
	draining atomic.Bool
	closed   atomic.Bool
	handlers []route
	obs      atomic.Pointer[[]BatchObserver]
}

// route is an extra HTTP handler mounted with Handle.
type route struct {
	pattern string
	h       http.Handler
}

// New makes a Server with no models; add them with Repository().Load.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{opts: opts, log: opts.Logger}
	s.metrics = newMetrics(opts.Registry)
	s.repo = newRepository(s)
	return s
}

// Options returns the options in effect (defaults filled in).
func (s *Server) Options() Options { return s.opts }

// Repository returns the server's model repository.
func (s *Server) Repository() *Repository { return s.repo }

// Metrics returns the server's metrics; register more collectors (drift
// metrics) on Metrics().Registry.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Registry returns the Prometheus registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.Registry }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Observe adds a BatchObserver (used by drift monitoring).
func (s *Server) Observe(fn BatchObserver) {
	for {
		old := s.obs.Load()
		var list []BatchObserver
		if old != nil {
			list = append(list, *old...)
		}
		list = append(list, fn)
		if s.obs.CompareAndSwap(old, &list) {
			return
		}
	}
}

// Handle mounts an extra HTTP handler on the REST mux (pattern as
// http.ServeMux, e.g. "GET /{$}" for a web page). Call it before Handler.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.handlers = append(s.handlers, route{pattern, h})
}

// Live reports whether the server is up (false once closed).
func (s *Server) Live() bool { return !s.closed.Load() }

// Ready reports whether the server takes inference requests: it is live,
// not draining for shutdown, and every loaded model is ready.
func (s *Server) Ready() bool {
	if s.closed.Load() || s.draining.Load() {
		return false
	}
	return s.repo.allReady()
}

// ServerMetadata describes the server.
func (s *Server) ServerMetadata() ServerMetadata {
	return ServerMetadata{Name: "deepgo", Version: Version, Extensions: append([]string(nil), Extensions...)}
}

// Models lists the loaded models, sorted by name.
func (s *Server) Models() []ModelStatus { return s.repo.list() }

// ModelMetadata describes model name at version ("" = the loaded one). It
// fails with ErrNotFound for an unknown model or version.
func (s *Server) ModelMetadata(name, version string) (ModelMetadata, error) {
	mv, err := s.repo.get(name, version)
	if err != nil {
		return ModelMetadata{}, err
	}
	return mv.metadata(), nil
}

// ModelReady reports whether model name at version ("" = the loaded one)
// takes requests; unknown models or versions give false and ErrNotFound.
func (s *Server) ModelReady(name, version string) (bool, error) {
	mv, err := s.repo.get(name, version)
	if err != nil {
		return false, err
	}
	return mv.ready() && !s.draining.Load(), nil
}

// Package returns the loaded package of model name and its version.
func (s *Server) Package(name string) (*model.Package, int64, error) {
	mv, err := s.repo.get(name, "")
	if err != nil {
		return nil, 0, err
	}
	return mv.pkg, mv.version, nil
}

// Infer runs one inference through the model's batcher. The request is
// validated first (ErrInvalid, ErrNotFound); a full queue gives
// ErrQueueFull; ctx bounds the wait (Options.RequestTimeout applies too).
func (s *Server) Infer(ctx context.Context, req InferRequest) (InferResponse, error) {
	return s.infer(ctx, &req)
}

// GRPCServe, when set (the gRPC file of this package sets it in an init
// function), serves the gRPC API of s on ln until ctx is cancelled, then
// stops gracefully (in-flight calls finish) and returns. A nil GRPCServe
// means the binary has no gRPC support and `deepgo serve` serves REST only.
var GRPCServe func(ctx context.Context, s *Server, ln net.Listener) error

// Close unloads every model after finishing their queued requests and
// marks the server not live. It is idempotent.
func (s *Server) Close() {
	s.draining.Store(true)
	if s.closed.Swap(true) {
		return
	}
	s.repo.closeAll()
}
