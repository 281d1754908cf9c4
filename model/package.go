package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/safetensors"
	"github.com/deepgo/deepgo/tensor"
)

// Package is a model with everything needed to use it: the module, the spec
// it was built from, its input/output signature, preprocessing, class labels
// and free-form metadata.
type Package struct {
	// Name is a short human-readable model name.
	Name string
	// Module is the network. Load returns it in eval mode.
	Module nn.Module
	// Spec is Module's architecture. Save derives it from Module with the
	// package function Spec when it is zero.
	Spec LayerSpec
	// Signature describes the inputs and outputs.
	Signature Signature
	// Preprocess is applied in order to raw inputs before Predict.
	Preprocess []PreprocessOp
	// Labels names the output classes, index by index.
	Labels []string
	// Metadata is free-form (epochs, metrics, seed, created, deepgo_version…);
	// values must be JSON-encodable.
	Metadata map[string]any
	// Monitor is an optional drift reference profile, stored verbatim.
	Monitor json.RawMessage
}

// Manifest returns the model.json content for p, deriving the architecture
// from p.Module when p.Spec is zero, and validates it.
func (p *Package) Manifest() (*Manifest, error) {
	if p == nil || p.Module == nil {
		return nil, errors.New("package has no module")
	}
	spec := p.Spec
	if spec.Type == "" {
		var err error
		if spec, err = Spec(p.Module); err != nil {
			return nil, err
		}
	}
	m := &Manifest{
		FormatVersion: FormatVersion,
		Name:          p.Name,
		Architecture:  spec,
		Signature:     p.Signature,
		Preprocessing: p.Preprocess,
		Labels:        p.Labels,
		Metadata:      p.Metadata,
		Monitor:       p.Monitor,
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Predict runs the module on inputs in eval mode under tensor.NoGrad and
// returns its output. The input must match the first input of the
// signature (dtype, rank and every dimension that is not -1); otherwise the
// error names both shapes. A panic inside the forward pass (for example an
// out-of-range embedding id) becomes an error. The intermediate results
// live in a recycled step arena (tensor.Arena) for the duration of the
// call; the returned output is a tensor of its own.
//
// Predict switches a module found in training mode to eval mode and leaves
// it there; on a module already in eval mode (as Load returns it) it only
// reads, so concurrent Predict calls are safe.
func (p *Package) Predict(inputs *tensor.Tensor) (out *tensor.Tensor, err error) {
	if p == nil || p.Module == nil {
		return nil, errors.New("model.Predict: package has no module")
	}
	if inputs == nil {
		return nil, errors.New("model.Predict: nil input")
	}
	if len(p.Signature.Inputs) > 0 {
		in := p.Signature.Inputs[0]
		if inputs.DType().String() != in.DType {
			return nil, fmt.Errorf("model.Predict: input has dtype %v, signature input %q wants %s", inputs.DType(), in.Name, in.DType)
		}
		if !in.Matches(inputs.Shape()) {
			return nil, fmt.Errorf("model.Predict: input shape %v does not match signature input %q shape %v", inputs.Shape(), in.Name, in.Shape)
		}
	}
	a := predictArenas.Get().(*tensor.Arena)
	defer func() {
		if r := recover(); r != nil {
			// The arena is dropped: a pass that failed part-way leaves it to
			// the garbage collector.
			out, err = nil, fmt.Errorf("model.Predict: forward pass failed: %v", r)
			return
		}
		a.ResetTrim() // batch sizes vary: keep one call's storage, not every size's
		predictArenas.Put(a)
	}()
	if anyTraining(p.Module) {
		nn.Eval(p.Module)
	}
	tensor.NoGrad(func() {
		if y := p.Module.Forward(a.Adopt(inputs)); y != nil {
			// The output outlives the arena's Reset.
			out = y.Clone()
		}
	})
	if out == nil {
		return nil, errors.New("model.Predict: module returned no output")
	}
	return out, nil
}

// predictArenas recycles Predict's step arenas (tensor.Arena): the
// intermediate results of a forward pass take their storage from one and
// give it back at once, instead of each being a fresh, zeroed allocation
// for the garbage collector. Concurrent Predict calls take different arenas.
var predictArenas = sync.Pool{New: func() any { return tensor.NewArena() }}

func anyTraining(m nn.Module) bool {
	for _, nm := range nn.NamedModules(m) {
		if s, ok := nm.Module.(nn.ModeSetter); ok && s.Training() {
			return true
		}
	}
	return false
}

// ReadManifest reads and validates dir/model.json without building the
// module or reading the weights.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %v", path, err)
	}
	return m, nil
}

// fileError turns an I/O error into a one-line error naming the file.
func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("model: %s: %v", path, err)
}

// Load reads the package in dir: it parses model.json, rebuilds the module
// from the architecture with the layer registry, loads weights.safetensors
// strictly (every key present, none extra, every shape equal) and checks the
// signature with a forward pass on a batch of one (when only the batch
// dimension is -1). Every failure is a one-line error naming the file and
// the problem; Load never panics on bad files. The module is returned in
// eval mode.
func Load(dir string) (*Package, error) { return load(dir, dir) }

// load loads the package in dir, naming files as if it were in shown.
func load(dir, shown string) (pkg *Package, err error) {
	mpath, wpath := filepath.Join(shown, ManifestFile), filepath.Join(shown, WeightsFile)
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fileError(mpath, err)
	}
	man, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %v", mpath, err)
	}
	wdata, err := os.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fileError(wpath, err)
	}
	sd, values, err := decodeWeights(wdata)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %v", wpath, err)
	}
	budget := values + LoadSlack
	ctx := &BuildContext{rng: tensor.NewRNG(0), path: "architecture", budget: &budget}
	m, err := ctx.build(man.Architecture)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %v", mpath, err)
	}
	defer func() {
		if r := recover(); r != nil {
			pkg, err = nil, fmt.Errorf("model: %s: %v", mpath, r)
		}
	}()
	if err := nn.LoadStateDict(m, sd, true); err != nil {
		return nil, fmt.Errorf("model: %s: does not match the architecture in %s: %v", wpath, ManifestFile, err)
	}
	nn.Eval(m)
	pkg = &Package{
		Name:       man.Name,
		Module:     m,
		Spec:       man.Architecture,
		Signature:  man.Signature,
		Preprocess: man.Preprocessing,
		Labels:     man.Labels,
		Metadata:   man.Metadata,
		Monitor:    man.Monitor,
	}
	if err := checkSignature(pkg); err != nil {
		return nil, fmt.Errorf("model: %s: signature check: %v", mpath, err)
	}
	return pkg, nil
}

// decodeWeights parses a safetensors file into a state dict, as
// nn.LoadStateDictFile, and counts its values.
func decodeWeights(data []byte) (map[string]*tensor.Tensor, int64, error) {
	f, err := safetensors.Parse(data)
	if err != nil {
		return nil, 0, err
	}
	sd := make(map[string]*tensor.Tensor, len(f.Tensors))
	var values int64
	for k, st := range f.Tensors {
		switch st.DType {
		case "F32", "F64", "F16", "BF16":
			v, err := st.Float32s()
			if err != nil {
				return nil, 0, fmt.Errorf("tensor %q: %v", k, err)
			}
			sd[k] = tensor.FromSlice(v, st.Shape...)
			values += int64(len(v))
		case "I64", "I32", "U64", "U8", "BOOL":
			v, err := st.Int64s()
			if err != nil {
				return nil, 0, fmt.Errorf("tensor %q: %v", k, err)
			}
			sd[k] = tensor.FromInt64(v, st.Shape...)
			values += int64(len(v))
		default:
			return nil, 0, fmt.Errorf("tensor %q: unsupported dtype %s", k, st.DType)
		}
	}
	return sd, values, nil
}

// maxCheckValues bounds the input of the forward pass Load uses to check the
// signature; larger inputs skip the check.
const maxCheckValues = 1 << 22

// checkSignature runs a batch of one through the module when only the batch
// dimension of the input is variable, and compares the output with the
// signature's first output.
func checkSignature(p *Package) error {
	in, out := p.Signature.Inputs[0], p.Signature.Outputs[0]
	shape := append([]int(nil), in.Shape...)
	n := int64(1)
	for i, d := range shape {
		if d == -1 {
			if i != 0 {
				return nil // variable non-batch dimensions: nothing to try safely
			}
			d, shape[i] = 1, 1
		}
		n *= int64(d)
		if n > maxCheckValues {
			return nil
		}
	}
	var x *tensor.Tensor
	if in.DType == DTypeInt64 {
		x = tensor.ZerosInt64(shape...)
	} else {
		x = tensor.Zeros(shape...)
	}
	y, err := p.Predict(x)
	if err != nil {
		return fmt.Errorf("input %q %v: %v", in.Name, in.Shape, err)
	}
	if y.DType().String() != out.DType || !out.Matches(y.Shape()) {
		return fmt.Errorf("input %q of shape %v gives a %v output of shape %v, but output %q is %s of shape %v",
			in.Name, shape, y.DType(), y.Shape(), out.Name, out.DType, out.Shape)
	}
	return nil
}

// Save writes pkg to the directory dir atomically: the whole package is
// written to a temporary directory next to dir, synced, loaded back and
// checked, then renamed into place. An existing package at dir is moved
// aside first and removed only after the rename succeeded, so a failed Save
// leaves it untouched and leaves no temporary directory behind. To protect
// unrelated data, an existing dir must be empty or hold a model.json.
func Save(dir string, pkg *Package) (err error) {
	dir = filepath.Clean(dir)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("model.Save: %s: %v", dir, r)
		}
	}()
	man, err := pkg.Manifest()
	if err != nil {
		return fmt.Errorf("model.Save: %s: %v", dir, err)
	}
	manJSON, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fmt.Errorf("model.Save: %s: encoding %s: %v", dir, ManifestFile, err)
	}
	manJSON = append(compactArrays(manJSON), '\n')
	exists, err := checkTarget(dir)
	if err != nil {
		return err
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("model.Save: %v", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("model.Save: %v", err)
	}
	defer func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("model.Save: %v", err)
	}
	if err := writeFileSync(filepath.Join(tmp, ManifestFile), manJSON); err != nil {
		return fmt.Errorf("model.Save: %v", err)
	}
	if err := nn.SaveStateDict(filepath.Join(tmp, WeightsFile), nn.StateDict(pkg.Module)); err != nil {
		return fmt.Errorf("model.Save: %s: %v", filepath.Join(dir, WeightsFile), err)
	}
	if _, err := load(tmp, dir); err != nil {
		return fmt.Errorf("model.Save: the package would not load back: %v", err)
	}
	syncDir(tmp)
	if !exists {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("model.Save: %v", err)
		}
		tmp = ""
		syncDir(parent)
		return nil
	}
	old, err := os.MkdirTemp(parent, "."+base+".old-")
	if err != nil {
		return fmt.Errorf("model.Save: %v", err)
	}
	if err := os.Remove(old); err != nil {
		return fmt.Errorf("model.Save: %v", err)
	}
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("model.Save: moving the old package aside: %v", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("model.Save: %v; the old package is left at %s (%v)", err, old, rerr)
		}
		return fmt.Errorf("model.Save: %v", err)
	}
	tmp = ""
	syncDir(parent)
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("model.Save: saved, but removing the old package at %s: %v", old, err)
	}
	return nil
}

// flatArray matches a JSON array without nested arrays or objects.
var flatArray = regexp.MustCompile(`\[[^\[\]{}]*\]`)

var newlineIndent = regexp.MustCompile(`\n\s*`)

// compactArrays puts arrays of scalars (shapes, labels, means) of indented
// JSON on one line. It only removes newlines and their indentation, which
// never occur inside JSON strings, so the value is unchanged.
func compactArrays(b []byte) []byte {
	return flatArray.ReplaceAllFunc(b, func(a []byte) []byte {
		a = newlineIndent.ReplaceAll(a, []byte(" "))
		a = bytes.Replace(a, []byte("[ "), []byte("["), 1)
		if n := len(a); n >= 2 && a[n-2] == ' ' {
			a = append(a[:n-2], ']')
		}
		return a
	})
}

// checkTarget reports whether dir exists, and refuses to replace anything
// but an empty directory or a model package.
func checkTarget(dir string) (bool, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("model.Save: %v", err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("model.Save: %s exists and is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("model.Save: %v", err)
	}
	if len(entries) == 0 {
		return true, nil
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
		return false, fmt.Errorf("model.Save: refusing to replace %s: it is not empty and holds no %s", dir, ManifestFile)
	}
	return true, nil
}

// writeFileSync writes data to a new file at path and syncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir flushes a directory's entries to disk where the platform allows
// it (best effort: some systems cannot sync directories).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
