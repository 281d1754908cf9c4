// Package ui is deepgo's experiment-tracking web dashboard: an http.Handler
// that serves a read-only JSON API over a track.Store and a single-page app
// that draws from it.
//
// The API (documented in docs/ui-api.md) lives under /api/ and is meant for
// scripts as much as for the page: experiments, runs with filters and
// sorting, one run's params, tags, latest metrics, artifacts, confusion
// matrix and per-class scores, metric histories, a side-by-side comparison
// of runs, and the model registry with versions, aliases and the run behind
// each version. Errors are JSON objects {"error": "..."} with a 4xx status
// (5xx when the store itself fails).
//
// The page is plain HTML, CSS and JavaScript embedded in the binary with
// embed.FS: no Node build step, nothing fetched from the internet. Its charts
// are drawn as SVG by its own code: metric curves of several runs overlaid,
// with a log-scale toggle, and a confusion-matrix heat map.
//
// # Confusion matrix and per-class metrics
//
// A run shows a confusion matrix when it has an artifact named
// confusion_matrix.json (at the top of its artifact directory, or the
// shortest path ending in /confusion_matrix.json), holding
//
//	{"labels": ["0", "1", ...], "counts": [[...], ...]}
//
// with counts[true][predicted] as in metrics.ConfusionMatrix (whose plain
// json.Marshal output, {"Counts": ..., "Labels": ...}, is accepted as is).
// Per-class scores come from metric keys class_<label>_<score>, with score
// one of precision, recall, f1 and support (an optional "test_" or "val_"
// prefix is allowed; "test_" wins over "val_" over none); a run without such
// keys but with a confusion matrix gets them computed from the matrix.
package ui

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"

	"github.com/deepgo/deepgo/track"
)

//go:embed assets
var assets embed.FS

// Handler returns the dashboard for store: the JSON API under /api/ and the
// single-page app at /. It only reads from store, and does not close it.
func Handler(store track.Store) http.Handler {
	if store == nil {
		panic("ui.Handler: nil store")
	}
	a := &api{store: store}
	mux := http.NewServeMux()
	mux.Handle("/api/experiments", get(a.experiments))
	mux.Handle("/api/runs", get(a.runs))
	mux.Handle("/api/runs/{id}", get(a.run))
	mux.Handle("/api/runs/{id}/metrics", get(a.metrics))
	mux.Handle("/api/runs/{id}/artifacts/{path...}", get(a.artifact))
	mux.Handle("/api/compare", get(a.compare))
	mux.Handle("/api/models", get(a.models))
	mux.Handle("/api/models/{name}", get(a.model))
	mux.Handle("/api/", get(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no API endpoint "+r.URL.Path+" (see docs/ui-api.md)")
	}))
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("ui.Handler: " + err.Error())
	}
	files := http.FileServerFS(static)
	mux.Handle("/", get(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	return mux
}

// get restricts h to GET and HEAD, answering other methods with a JSON 405.
func get(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: the dashboard API is read-only (GET)")
			return
		}
		h(w, r)
	})
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

// errorBody is the JSON form of every API error.
type errorBody struct {
	Error string `json:"error"`
}

// writeError writes {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// storeError answers a store error: 404 for track.ErrNotFound, 400 for
// track.ErrInvalid, 409 for track.ErrConflict, 500 otherwise.
func storeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, track.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, track.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, track.ErrConflict):
		status = http.StatusConflict
	}
	writeError(w, status, err.Error())
}

// splitList splits a comma-separated query value, dropping empty items and
// surrounding spaces.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
