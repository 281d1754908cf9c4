package torchimport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/safetensors"
	"github.com/deepgo/deepgo/tensor"
)

// ReadStateDict reads the state dict in the file at path. The format is
// recognised from the content, not the extension: a zip archive is a
// torch.save checkpoint (.pt, .pth, .bin; see ReadTorchLimits), a file
// starting with a little-endian header length followed by '{' is
// safetensors (see ReadSafetensors). Legacy non-zip torch.save files give
// ErrLegacyFormat. Float tensors come back as float32 and integer ones as
// int64, with PyTorch's key names ("0.weight", "bn.running_mean", …).
func ReadStateDict(path string) (map[string]*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("torchimport: %s is a directory", path)
	}
	head := make([]byte, 16)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, legacyMagic[:2]):
		sd, err := ReadTorch(f, st.Size())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return sd, nil
	case len(head) > 8 && head[8] == '{' && binary.LittleEndian.Uint64(head) <= uint64(st.Size()):
		return ReadSafetensors(path)
	}
	return nil, fmt.Errorf("torchimport: %s: neither a torch.save zip checkpoint nor a safetensors file", path)
}

// ReadSafetensors reads a safetensors state dict (such as one written by
// safetensors.torch.save_file). F32, F64, F16 and BF16 tensors become
// float32 tensors; I64, I32, U64, U8 and BOOL tensors become int64 tensors.
func ReadSafetensors(path string) (map[string]*tensor.Tensor, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("torchimport: %s: %v", path, err)
	}
	sd := make(map[string]*tensor.Tensor, len(f.Tensors))
	for k, st := range f.Tensors {
		switch st.DType {
		case "F32", "F64", "F16", "BF16":
			v, err := st.Float32s()
			if err != nil {
				return nil, fmt.Errorf("torchimport: %s: tensor %q: %v", path, k, err)
			}
			sd[k] = tensor.FromSlice(v, st.Shape...)
		case "I64", "I32", "U64", "U8", "BOOL":
			v, err := st.Int64s()
			if err != nil {
				return nil, fmt.Errorf("torchimport: %s: tensor %q: %v", path, k, err)
			}
			sd[k] = tensor.FromInt64(v, st.Shape...)
		default:
			return nil, fmt.Errorf("torchimport: %s: tensor %q: unsupported dtype %s", path, k, st.DType)
		}
	}
	return sd, nil
}

// Report says how a state dict matched a model's parameters and buffers.
type Report struct {
	// Loaded lists the keys copied into the model (empty when Load failed).
	Loaded []string
	// Missing lists the model's keys absent from the state dict.
	Missing []string
	// Unexpected lists the state dict's keys the model does not have.
	Unexpected []string
	// Mismatched lists the keys whose shapes differ.
	Mismatched []nn.ShapeMismatch
}

// OK reports whether every key matched: nothing missing, unexpected or
// mis-shaped.
func (r Report) OK() bool {
	return len(r.Missing)+len(r.Unexpected)+len(r.Mismatched) == 0
}

// String renders the report in a few lines for the CLI.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "loaded %d tensor(s)", len(r.Loaded))
	if len(r.Missing) > 0 {
		fmt.Fprintf(&b, "\nmissing (in the model, not in the file): %s", strings.Join(r.Missing, ", "))
	}
	if len(r.Unexpected) > 0 {
		fmt.Fprintf(&b, "\nunexpected (in the file, not in the model): %s", strings.Join(r.Unexpected, ", "))
	}
	for _, mm := range r.Mismatched {
		fmt.Fprintf(&b, "\nshape mismatch for %s: file has %v, model has %v", mm.Key, mm.StateShape, mm.ModelShape)
	}
	return b.String()
}

// Load copies sd into m's parameters and buffers and reports how the keys
// matched. The report always lists every missing, unexpected and
// mis-shaped key. A mis-shaped key is always an error; in strict mode a
// missing or unexpected key is an error too. On error nothing is copied and
// the error is an *nn.LoadError listing every problem; otherwise the
// matching keys are copied (float values into int64 buffers such as
// num_batches_tracked are truncated) and listed in Report.Loaded.
func Load(m nn.Module, sd map[string]*tensor.Tensor, strict bool) (Report, error) {
	if m == nil {
		return Report{}, errors.New("torchimport.Load: nil module")
	}
	own := nn.StateDict(m)
	var r Report
	for _, k := range slices.Sorted(maps.Keys(own)) {
		src, ok := sd[k]
		switch {
		case !ok:
			r.Missing = append(r.Missing, k)
		case src == nil:
			r.Mismatched = append(r.Mismatched, nn.ShapeMismatch{Key: k, ModelShape: own[k].Shape()})
		case !tensor.SameShape(src.Shape(), own[k].Shape()):
			r.Mismatched = append(r.Mismatched, nn.ShapeMismatch{Key: k, ModelShape: own[k].Shape(), StateShape: src.Shape()})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(sd)) {
		if _, ok := own[k]; !ok {
			r.Unexpected = append(r.Unexpected, k)
		}
	}
	if len(r.Mismatched) > 0 || (strict && !r.OK()) {
		e := &nn.LoadError{Mismatched: r.Mismatched}
		if strict {
			e.Missing, e.Unexpected = r.Missing, r.Unexpected
		}
		return r, e
	}
	if err := nn.LoadStateDict(m, sd, false); err != nil {
		return r, err
	}
	for _, k := range slices.Sorted(maps.Keys(own)) {
		if _, ok := sd[k]; ok {
			r.Loaded = append(r.Loaded, k)
		}
	}
	return r, nil
}

// ImportOptions says where ImportToPackage takes the architecture from and
// how strictly the weights must match it. Exactly one of Arch and Like is set.
type ImportOptions struct {
	// Arch is the path of a model.json manifest (the format of a model
	// package's model.json, docs/model-format.md): its architecture,
	// signature, preprocessing and labels describe the imported model.
	// `deepgo import IN.pt --arch model.json --out DIR`.
	Arch string
	// Like is an existing model package directory whose model.json is used
	// as with Arch (its weights are not read).
	// `deepgo import IN.pt --like DIR --out DIR2`.
	Like string
	// Name replaces the manifest's model name when not empty.
	Name string
	// StripPrefix is removed from every key that starts with it before
	// loading, such as "module." for checkpoints of nn.DataParallel models.
	StripPrefix string
	// NonStrict allows missing and unexpected keys (missing parameters keep
	// their fresh initialisation); mis-shaped keys are always errors.
	NonStrict bool
}

// ImportToPackage reads the PyTorch state dict at in (a torch.save .pt/.pth
// zip checkpoint or a .safetensors file, see ReadStateDict), builds the
// architecture named by opt (a model.json manifest or an existing package:
// a state dict alone holds no architecture), loads the weights into it with
// Load, and saves a model package to out with model.Save (which loads it
// back and checks the signature with a forward pass). The manifest's
// metadata gains "imported_from" (the file's base name). The report is
// returned also when the weights do not match, so the caller can print it.
func ImportToPackage(in string, opt ImportOptions, out string) (*model.Package, Report, error) {
	var man *model.Manifest
	var err error
	switch {
	case opt.Arch != "" && opt.Like != "":
		return nil, Report{}, errors.New("torchimport: give the architecture as a manifest (Arch) or a package (Like), not both")
	case opt.Arch != "":
		data, rerr := os.ReadFile(opt.Arch)
		if rerr != nil {
			return nil, Report{}, fmt.Errorf("torchimport: architecture: %v", rerr)
		}
		if man, err = model.ParseManifest(data); err != nil {
			return nil, Report{}, fmt.Errorf("torchimport: architecture %s: %v", opt.Arch, err)
		}
	case opt.Like != "":
		if man, err = model.ReadManifest(opt.Like); err != nil {
			return nil, Report{}, fmt.Errorf("torchimport: architecture: %v", err)
		}
	default:
		return nil, Report{}, errors.New("torchimport: a state dict holds no architecture: give a model.json manifest (--arch) or a model package to copy it from (--like)")
	}
	sd, err := ReadStateDict(in)
	if err != nil {
		return nil, Report{}, err
	}
	if opt.StripPrefix != "" {
		stripped := make(map[string]*tensor.Tensor, len(sd))
		for k, v := range sd {
			stripped[strings.TrimPrefix(k, opt.StripPrefix)] = v
		}
		sd = stripped
	}
	var values int64
	for _, t := range sd {
		values += int64(t.Numel())
	}
	m, err := model.Build(man.Architecture, model.BuildOptions{MaxValues: values + model.LoadSlack})
	if err != nil {
		return nil, Report{}, fmt.Errorf("torchimport: architecture: %v", err)
	}
	rep, err := Load(m, sd, !opt.NonStrict)
	if err != nil {
		return nil, rep, fmt.Errorf("torchimport: %s does not match the architecture: %v", in, err)
	}
	nn.Eval(m)
	meta := map[string]any{}
	for k, v := range man.Metadata {
		meta[k] = v
	}
	meta["imported_from"] = filepath.Base(in)
	pkg := &model.Package{
		Name:       man.Name,
		Module:     m,
		Spec:       man.Architecture,
		Signature:  man.Signature,
		Preprocess: man.Preprocessing,
		Labels:     man.Labels,
		Metadata:   meta,
		Monitor:    man.Monitor,
	}
	if opt.Name != "" {
		pkg.Name = opt.Name
	}
	if err := model.Save(out, pkg); err != nil {
		return nil, rep, fmt.Errorf("torchimport: %v", err)
	}
	return pkg, rep, nil
}
