// Package testutil holds helpers shared by deepgo's tests: finite-difference
// gradient checks, PyTorch golden fixtures stored as safetensors files, and
// tolerant tensor comparison.
package testutil

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/deepgo/deepgo/safetensors"
	"github.com/deepgo/deepgo/tensor"
)

// RepoRoot returns the repository root (for fixture paths).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Fixtures is a set of named tensors loaded from a golden safetensors file.
type Fixtures struct {
	path string
	file *safetensors.File
}

// LoadFixtures reads testdata fixtures written by the PyTorch scripts in
// tools/fixtures. A relative path is taken from the repository root.
func LoadFixtures(t testing.TB, path string) *Fixtures {
	t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join(RepoRoot(), path)
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatalf("load fixtures: %v (regenerate with tools/fixtures/*.py)", err)
	}
	return &Fixtures{path: path, file: f}
}

// Has reports whether the fixture file holds name.
func (f *Fixtures) Has(name string) bool { _, ok := f.file.Tensors[name]; return ok }

// Names lists the tensors in the fixture file.
func (f *Fixtures) Names() []string {
	var out []string
	for k := range f.file.Tensors {
		out = append(out, k)
	}
	return out
}

// Get returns the named fixture as a tensor (F32 → float32, I64 → int64).
func (f *Fixtures) Get(t testing.TB, name string) *tensor.Tensor {
	t.Helper()
	st, ok := f.file.Tensors[name]
	if !ok {
		t.Fatalf("fixture %q not in %s", name, f.path)
	}
	if st.DType == "I64" {
		v, err := st.Int64s()
		if err != nil {
			t.Fatal(err)
		}
		return tensor.FromInt64(v, st.Shape...)
	}
	v, err := st.Float32s()
	if err != nil {
		t.Fatalf("fixture %q: %v", name, err)
	}
	return tensor.FromSlice(v, st.Shape...)
}

// Meta returns a metadata string of the fixture file.
func (f *Fixtures) Meta(key string) string { return f.file.Metadata[key] }

// AssertClose fails t unless got and want have the same shape and
// |got-want| <= atol + rtol*|want| elementwise.
func AssertClose(t testing.TB, what string, got, want *tensor.Tensor, rtol, atol float64) {
	t.Helper()
	if err := Close(got, want, rtol, atol); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// Close returns an error describing the worst mismatch, or nil.
func Close(got, want *tensor.Tensor, rtol, atol float64) error {
	if got == nil || want == nil {
		return fmt.Errorf("nil tensor (got %v, want %v)", got == nil, want == nil)
	}
	if !tensor.SameShape(got.Shape(), want.Shape()) {
		return fmt.Errorf("shape %v, want %v", got.Shape(), want.Shape())
	}
	g, w := got.Float().Data(), want.Float().Data()
	worst, wi := 0.0, -1
	for i := range g {
		d := math.Abs(float64(g[i]) - float64(w[i]))
		lim := atol + rtol*math.Abs(float64(w[i]))
		if math.IsNaN(float64(g[i])) != math.IsNaN(float64(w[i])) || d > lim {
			if ex := d - lim; wi < 0 || ex > worst || math.IsNaN(d) {
				worst, wi = ex, i
			}
		}
	}
	if wi >= 0 {
		return fmt.Errorf("element %d = %v, want %v (rtol %g, atol %g)", wi, g[wi], w[wi], rtol, atol)
	}
	return nil
}

// GradCheck compares the analytic gradients of f with central finite
// differences. f maps the inputs to any tensor; the check uses the scalar
// L = sum(f(inputs) * R) with a fixed random R, so every output element
// contributes. Only inputs with RequiresGrad are checked. eps is the step
// (1e-2 suits float32), tol the allowed |analytic-numeric| / max(1, |numeric|).
func GradCheck(t testing.TB, name string, f func(in []*tensor.Tensor) *tensor.Tensor, inputs []*tensor.Tensor, eps, tol float64) {
	t.Helper()
	for _, in := range inputs {
		if in.RequiresGrad() {
			in.SetGrad(nil)
		}
	}
	out := f(inputs)
	rng := rand.New(rand.NewPCG(7, 11))
	r := make([]float32, out.Numel())
	for i := range r {
		r[i] = float32(rng.Float64()*2 - 1)
	}
	R := tensor.FromSlice(r, out.Shape()...)
	loss := tensor.Sum(tensor.Mul(out, R))
	loss.Backward()
	eval := func() float64 {
		var s float64
		tensor.NoGrad(func() {
			o := f(inputs).Data()
			for i, v := range o {
				s += float64(v) * float64(r[i])
			}
		})
		return s
	}
	for k, in := range inputs {
		if !in.RequiresGrad() {
			continue
		}
		g := in.Grad()
		if g == nil {
			t.Errorf("%s: input %d got no gradient", name, k)
			continue
		}
		d := in.Data()
		for i := range d {
			orig := d[i]
			d[i] = orig + float32(eps)
			lp := eval()
			d[i] = orig - float32(eps)
			lm := eval()
			d[i] = orig
			num := (lp - lm) / (2 * eps)
			ana := float64(g.Data()[i])
			if math.Abs(ana-num) > tol*math.Max(1, math.Abs(num)) {
				t.Errorf("%s: input %d element %d: analytic grad %.6g, numeric %.6g", name, k, i, ana, num)
				return
			}
		}
	}
}

// Rand returns a seeded tensor of values uniform in [lo, hi) that requires grad.
func Rand(seed uint64, lo, hi float32, shape ...int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(seed, 99))
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*float32(rng.Float64())
	}
	return tensor.FromSlice(v, shape...).SetRequiresGrad(true)
}

// MustPanic fails t unless f panics with a message containing every part.
func MustPanic(t testing.TB, what string, f func(), parts ...string) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s: did not panic", what)
			return
		}
		msg := fmt.Sprint(r)
		for _, p := range parts {
			if !contains(msg, p) {
				t.Errorf("%s: panic %q does not mention %q", what, msg, p)
			}
		}
	}()
	f()
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
