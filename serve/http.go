package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the REST API: the Open Inference Protocol v2 endpoints
// (health, server and model metadata, model list, ready, infer with the
// binary tensor extension), the KServe repository endpoints
// (/v2/repository/index, /v2/repository/models/{m}/load|unload),
// TF-Serving's /v1/models/{m}[/versions/{v}]:predict and /v1/models/{m},
// Prometheus /metrics and the handlers added with Handle. Every request is
// logged, counted, bounded by Options.MaxBodyBytes, and recovered from
// panics (500 with {"error": ...}). Errors are {"error": "..."}.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/live", s.handleLive)
	mux.HandleFunc("GET /v2/health/ready", s.handleReady)
	mux.HandleFunc("GET /v2", s.handleServerMetadata)
	mux.HandleFunc("GET /v2/{$}", s.handleServerMetadata)
	mux.HandleFunc("GET /v2/models", s.handleModels)
	mux.HandleFunc("GET /v2/models/{$}", s.handleModels)
	mux.HandleFunc("GET /v2/models/{m}", s.handleModelMetadata)
	mux.HandleFunc("GET /v2/models/{m}/versions/{v}", s.handleModelMetadata)
	mux.HandleFunc("GET /v2/models/{m}/ready", s.handleModelReady)
	mux.HandleFunc("GET /v2/models/{m}/versions/{v}/ready", s.handleModelReady)
	mux.HandleFunc("POST /v2/models/{m}/infer", s.handleInfer)
	mux.HandleFunc("POST /v2/models/{m}/versions/{v}/infer", s.handleInfer)
	mux.HandleFunc("POST /v2/repository/index", s.handleIndex)
	mux.HandleFunc("GET /v2/repository/index", s.handleIndex)
	mux.HandleFunc("POST /v2/repository/models/{m}/load", s.handleLoad)
	mux.HandleFunc("POST /v2/repository/models/{m}/unload", s.handleUnload)
	mux.HandleFunc("GET /v1/models/{rest...}", s.handleV1Get)
	mux.HandleFunc("POST /v1/models/{rest...}", s.handleV1Post)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.log}}))
	root := false
	for _, r := range s.handlers {
		mux.Handle(r.pattern, r.h)
		root = root || r.pattern == "/"
	}
	if !root {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
		})
	}
	return s.middleware(mux)
}

// slogPrinter adapts a slog.Logger to promhttp's Println logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Error("metrics", "error", fmt.Sprint(v...)) }

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusWriterPool recycles the statusWriters of middleware.
var statusWriterPool = sync.Pool{New: func() any { return new(statusWriter) }}

// middleware adds panic recovery, the in-flight gauge and request logs.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriterPool.Get().(*statusWriter)
		*sw = statusWriter{ResponseWriter: w}
		s.metrics.httpInfl.Inc()
		defer func() {
			s.metrics.httpInfl.Dec()
			defer func() {
				// The handler has returned (or panicked): nothing else
				// holds sw.
				*sw = statusWriter{}
				statusWriterPool.Put(sw)
			}()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logPanic(r.Method, r.URL.Path, p)
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p))
				}
			}
			if lvl := requestLevel(sw.status); s.log.Enabled(r.Context(), lvl) {
				s.logRequest(r.Context(), lvl, r.Method, r.URL.Path, sw.status, r.ContentLength, sw.bytes, start, r.RemoteAddr)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// logPanic logs a panic recovered while serving a request.
func (s *Server) logPanic(method, path string, p any) {
	s.log.Error("panic serving request", "method", method, "path", path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
}

// requestLevel is the level of a request's log line: Warn for a 5xx status.
func requestLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// logRequest writes a request's log line at lvl. Callers check that lvl is
// enabled first, so that a server without request logs builds nothing.
func (s *Server) logRequest(ctx context.Context, lvl slog.Level, method, path string, status int, bytesIn, bytesOut int64, start time.Time, remote string) {
	s.log.LogAttrs(ctx, lvl, "request",
		slog.String("method", method), slog.String("path", path), slog.Int("status", status),
		slog.Int64("bytes_in", bytesIn), slog.Int64("bytes_out", bytesOut),
		slog.Duration("duration", time.Since(start)), slog.String("remote", remote))
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// StatusCode maps a Server error to its HTTP status: ErrNotFound 404,
// ErrInvalid 400, ErrUnavailable 503, a request deadline 504, others 500.
func StatusCode(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeErr(w http.ResponseWriter, err error) { writeError(w, StatusCode(err), err.Error()) }

// readBody reads the request body within Options.MaxBodyBytes; a larger
// body gives 413.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	return s.readBodyInto(w, r, nil)
}

// bodyPool recycles infer request bodies and response buffers of up to
// maxPooled bytes.
var bodyPool sync.Pool

const maxPooled = 1 << 20

func getBuf() *[]byte {
	if b, ok := bodyPool.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		bodyPool.Put(b)
	}
}

// readBodyInto is readBody reading into *into (grown as needed) when into
// is not nil.
func (s *Server) readBodyInto(w http.ResponseWriter, r *http.Request, into *[]byte) ([]byte, bool) {
	max := s.opts.MaxBodyBytes
	if r.ContentLength > max {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, max))
		return nil, false
	}
	var buf []byte
	var err error
	if r.ContentLength > 0 {
		// The server's body reader stops at Content-Length, within max.
		if into != nil {
			buf = slices.Grow((*into)[:0], int(r.ContentLength))[:r.ContentLength]
			*into = buf
		} else {
			buf = make([]byte, r.ContentLength)
		}
		_, err = io.ReadFull(r.Body, buf)
	} else {
		buf, err = io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of %d bytes", max))
		} else {
			writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		}
		return nil, false
	}
	return buf, true
}

func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	if !s.Live() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"live": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !s.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"ready": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

func (s *Server) handleServerMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.ServerMetadata())
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"models": s.Models()})
}

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) {
	md, err := s.ModelMetadata(r.PathValue("m"), r.PathValue("v"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, md)
}

func (s *Server) handleModelReady(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("m")
	ok, err := s.ModelReady(name, r.PathValue("v"))
	if err != nil {
		writeErr(w, err)
		return
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"name": name, "ready": ok})
}

func (s *Server) handleInfer(w http.ResponseWriter, r *http.Request) {
	// The body is not referenced once Infer returns (inputs are copied
	// into the job), so it goes back to the pool.
	pooled := getBuf()
	defer putBuf(pooled)
	body, ok := s.readBodyInto(w, r, pooled)
	if !ok {
		return
	}
	var ihcl []byte
	if h := r.Header.Get(HeaderContentLength); h != "" {
		ihcl = []byte(h)
	}
	outBuf := getBuf()
	defer putBuf(outBuf)
	out, hl, status, msg := s.inferREST(r.Context(), (*outBuf)[:0], body, ihcl, r.PathValue("m"), r.PathValue("v"))
	*outBuf = out
	if status != http.StatusOK {
		writeError(w, status, msg)
		return
	}
	h := w.Header()
	if hl >= 0 {
		h["Content-Type"] = ctOctetStream
		h[HeaderContentLength] = []string{strconv.Itoa(hl)}
	} else {
		h["Content-Type"] = ctJSON
	}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	_, _ = w.Write(out)
}

// inferREST runs a REST infer request for model and version: body, with
// ihcl the value of its Inference-Header-Content-Length header (nil:
// absent), is decoded, inferred and its response appended to out. On
// success status is 200 and hl the binary header length (-1: JSON only);
// otherwise status and msg are the error response's. Handler's infer route
// and the fast path (fasthttp.go) both answer through it.
func (s *Server) inferREST(ctx context.Context, out, body, ihcl []byte, model, version string) (resp []byte, hl, status int, msg string) {
	headerLen := int64(-1)
	if ihcl != nil {
		n, err := strconv.ParseInt(string(ihcl), 10, 64)
		if err != nil || n < 0 {
			return out, -1, http.StatusBadRequest, fmt.Sprintf("bad %s header %q", HeaderContentLength, ihcl)
		}
		headerLen = n
	}
	req, binaryAll, err := DecodeInferRequest(body, headerLen)
	if err != nil {
		return out, -1, StatusCode(err), err.Error()
	}
	req.Model, req.Version = model, version
	res, err := s.Infer(ctx, req)
	if err != nil {
		return out, -1, StatusCode(err), err.Error()
	}
	out, hl = appendInferResponse(out, res, binaryAll && len(req.Outputs) == 0)
	return out, hl, http.StatusOK, ""
}

// Content-Type values of infer responses, shared (net/http copies header
// values before writing them; nothing modifies them).
var (
	ctOctetStream = []string{"application/octet-stream"}
	ctJSON        = []string{"application/json"}
)

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	type entry struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
		State   string `json:"state"`
		Reason  string `json:"reason"`
	}
	out := []entry{}
	for _, m := range s.repo.Known() {
		out = append(out, entry{Name: m.Name, Version: m.Version, State: m.State})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleLoad(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("m")
	if _, ok := s.readBody(w, r); !ok {
		return
	}
	if err := s.repo.Reload(name); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "load": true})
}

func (s *Server) handleUnload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("m")
	if _, ok := s.readBody(w, r); !ok {
		return
	}
	if err := s.repo.Unload(name); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "unload": true})
}
