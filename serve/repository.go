package serve

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
)

// Repository holds the server's models: one loaded version per name, each
// behind its own batcher. Load, Reload and Unload may be called while the
// server takes traffic: a new version is loaded and warmed up with one
// forward pass before it is swapped in atomically; requests already queued
// on the old version finish on it, so a reload fails no request.
type Repository struct {
	s *Server
	// admin serialises Load, Reload and Unload.
	admin sync.Mutex
	mu    sync.RWMutex
	// models maps a name to its loaded version.
	models map[string]*modelVersion
	// dirs remembers where every model ever loaded came from, so a
	// repository load of an unloaded name finds it again.
	dirs map[string]string
}

func newRepository(s *Server) *Repository {
	return &Repository{s: s, models: map[string]*modelVersion{}, dirs: map[string]string{}}
}

// Load loads the model package in dir under name, replacing a loaded model
// of that name without failing requests. dir is either a package (holding
// model.json) or a Triton-style model directory whose integer-named
// subdirectories are versions (the highest is loaded). The version is the
// integer name of the package directory, else the integer "version" in the
// package metadata, else 1.
func (r *Repository) Load(name, dir string) error {
	if err := checkName(name); err != nil {
		return err
	}
	pkgDir, version, err := resolveVersion(dir)
	if err != nil {
		return err
	}
	pkg, err := model.Load(pkgDir)
	if err != nil {
		return err
	}
	if version == 0 {
		version = metadataVersion(pkg)
	}
	return r.add(name, dir, version, pkg)
}

// LoadPackage serves an already loaded package under name at version (> 0),
// replacing a loaded model of that name without failing requests. pkg must
// be in eval mode and not be modified afterwards.
func (r *Repository) LoadPackage(name string, version int64, pkg *model.Package) error {
	if err := checkName(name); err != nil {
		return err
	}
	if version <= 0 {
		return errorf(ErrInvalid, "serve: model %q: version must be positive, got %d", name, version)
	}
	if pkg == nil || pkg.Module == nil {
		return errorf(ErrInvalid, "serve: model %q: package has no module", name)
	}
	if err := pkg.Signature.Validate(); err != nil {
		return errorf(ErrInvalid, "serve: model %q: %v", name, err)
	}
	return r.add(name, "", version, pkg)
}

// Reload loads model name again from the directory it was loaded from
// (picking up a new version directory or new files) and swaps it in.
func (r *Repository) Reload(name string) error {
	r.mu.RLock()
	dir, ok := r.dirs[name]
	r.mu.RUnlock()
	if !ok || dir == "" {
		return errorf(ErrNotFound, "serve: model %q was not loaded from a directory", name)
	}
	return r.Load(name, dir)
}

// Unload stops serving model name: it disappears at once for new requests,
// and Unload returns after the requests already queued on it finished.
func (r *Repository) Unload(name string) error {
	r.admin.Lock()
	defer r.admin.Unlock()
	r.mu.Lock()
	mv, ok := r.models[name]
	delete(r.models, name)
	r.mu.Unlock()
	if !ok {
		return errorf(ErrNotFound, "serve: model %q is not loaded", name)
	}
	mv.close()
	r.s.log.Info("model unloaded", "model", name, "version", mv.version)
	return nil
}

// Known lists every model name ever loaded from a directory with its
// directory and whether it is loaded now, sorted by name.
func (r *Repository) Known() []ModelStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []ModelStatus
	for name, dir := range r.dirs {
		st := ModelStatus{Name: name, Dir: dir, State: "UNAVAILABLE"}
		if mv, ok := r.models[name]; ok {
			st.Version, st.State = strconv.FormatInt(mv.version, 10), "READY"
		}
		out = append(out, st)
	}
	for name, mv := range r.models {
		if _, ok := r.dirs[name]; !ok {
			out = append(out, ModelStatus{Name: name, Version: strconv.FormatInt(mv.version, 10), State: "READY"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// add warms pkg up, builds its batcher and swaps it in.
func (r *Repository) add(name, dir string, version int64, pkg *model.Package) error {
	mv, err := newModelVersion(r.s, name, version, pkg)
	if err != nil {
		return err
	}
	if err := mv.warmUp(); err != nil {
		return err
	}
	r.admin.Lock()
	defer r.admin.Unlock()
	if r.s.closed.Load() {
		return errorf(ErrUnavailable, "serve: server is closed")
	}
	mv.dir = dir
	mv.start()
	r.mu.Lock()
	old := r.models[name]
	r.models[name] = mv
	if dir != "" {
		r.dirs[name] = dir
	}
	r.mu.Unlock()
	r.s.log.Info("model loaded", "model", name, "version", version, "dir", dir)
	if old != nil {
		old.close() // queued requests finish on the old version
	}
	return nil
}

// get resolves name and version ("" = loaded one).
func (r *Repository) get(name, version string) (*modelVersion, error) {
	r.mu.RLock()
	mv, ok := r.models[name]
	r.mu.RUnlock()
	if !ok {
		return nil, errorf(ErrNotFound, "model %q is not loaded", name)
	}
	if version != "" && version != strconv.FormatInt(mv.version, 10) {
		return nil, errorf(ErrNotFound, "model %q has no version %q (loaded: %d)", name, version, mv.version)
	}
	return mv, nil
}

func (r *Repository) list() []ModelStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]ModelStatus, 0, len(r.models))
	for name, mv := range r.models {
		st := "READY"
		if !mv.ready() {
			st = "UNAVAILABLE"
		}
		out = append(out, ModelStatus{Name: name, Version: strconv.FormatInt(mv.version, 10), State: st, Dir: mv.dir})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *Repository) allReady() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, mv := range r.models {
		if !mv.ready() {
			return false
		}
	}
	return true
}

// closeAll unloads everything, waiting for queued requests.
func (r *Repository) closeAll() {
	r.admin.Lock()
	defer r.admin.Unlock()
	r.mu.Lock()
	all := r.models
	r.models = map[string]*modelVersion{}
	r.mu.Unlock()
	for _, mv := range all {
		mv.close()
	}
}

// checkName accepts names usable in a URL path segment.
func checkName(name string) error {
	if name == "" || len(name) > 200 || strings.ContainsAny(name, "/?#%: \t\r\n") {
		return errorf(ErrInvalid, "serve: invalid model name %q (non-empty, no '/', '?', '#', '%%', ':' or spaces)", name)
	}
	return nil
}

// resolveVersion finds the package directory and its version (0 when the
// directory name does not tell).
func resolveVersion(dir string) (string, int64, error) {
	if _, err := os.Stat(filepath.Join(dir, model.ManifestFile)); err == nil {
		if v, err := strconv.ParseInt(filepath.Base(filepath.Clean(dir)), 10, 64); err == nil && v > 0 {
			return dir, v, nil
		}
		return dir, 0, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", 0, errorf(ErrNotFound, "serve: %s: %v", dir, err)
	}
	best := int64(0)
	for _, e := range entries {
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || v <= 0 || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), model.ManifestFile)); err == nil && v > best {
			best = v
		}
	}
	if best == 0 {
		return "", 0, errorf(ErrNotFound, "serve: %s: neither a model package (no %s) nor a directory of numbered versions", dir, model.ManifestFile)
	}
	return filepath.Join(dir, strconv.FormatInt(best, 10)), best, nil
}

// metadataVersion reads an integer "version" from the package metadata,
// defaulting to 1.
func metadataVersion(pkg *model.Package) int64 {
	switch v := pkg.Metadata["version"].(type) {
	case float64:
		if v >= 1 && v <= math.MaxInt32 && v == math.Trunc(v) {
			return int64(v)
		}
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 1
}

// warmUp runs one forward pass of one row before the model takes traffic.
func (mv *modelVersion) warmUp() error {
	shape := append([]int(nil), mv.inShape...)
	n := 1
	for i, d := range shape {
		if d < 0 {
			d = 1
			shape[i] = 1
		}
		n *= d
	}
	if n > 1<<26 {
		return nil // too large to try; model.Load has checked what it could
	}
	var x *tensor.Tensor
	if mv.inInt {
		x = tensor.ZerosInt64(shape...)
	} else {
		x = tensor.Zeros(shape...)
	}
	if _, err := mv.pkg.Predict(x); err != nil {
		return fmt.Errorf("serve: model %q: warm-up forward pass: %v", mv.name, err)
	}
	return nil
}
