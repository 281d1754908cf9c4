package torchimport

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"sort"
	"strings"

	"github.com/deepgo/deepgo/tensor"
)

// storageDType is the element type of a torch storage.
type storageDType int

const (
	dtFloat32 storageDType = iota + 1
	dtFloat64
	dtFloat16
	dtBFloat16
	dtInt64
	dtInt32
	dtInt16
	dtInt8
	dtUint8
	dtBool
)

var storageTypes = map[string]storageDType{
	"FloatStorage":    dtFloat32,
	"DoubleStorage":   dtFloat64,
	"HalfStorage":     dtFloat16,
	"BFloat16Storage": dtBFloat16,
	"LongStorage":     dtInt64,
	"IntStorage":      dtInt32,
	"ShortStorage":    dtInt16,
	"CharStorage":     dtInt8,
	"ByteStorage":     dtUint8,
	"BoolStorage":     dtBool,
}

func (d storageDType) size() int64 {
	switch d {
	case dtFloat64, dtInt64:
		return 8
	case dtFloat32, dtInt32:
		return 4
	case dtFloat16, dtBFloat16, dtInt16:
		return 2
	}
	return 1
}

func (d storageDType) isFloat() bool {
	return d == dtFloat32 || d == dtFloat64 || d == dtFloat16 || d == dtBFloat16
}

// Limits bounds what ReadTorch accepts, so that a hostile file is refused
// before it makes the reader allocate much more memory than the file holds.
type Limits struct {
	// MaxPickleBytes caps the size of data.pkl.
	MaxPickleBytes int64
	// MaxStorageBytes caps the total size of the tensor storages read.
	MaxStorageBytes int64
}

// DefaultLimits accepts data.pkl up to 256 MiB and 16 GiB of storages.
var DefaultLimits = Limits{MaxPickleBytes: 256 << 20, MaxStorageBytes: 16 << 30}

// legacyMagic starts a pre-1.6 (non-zip) torch.save file: PROTO 2 then the
// magic number 0x1950a86a20f9469cfc6c as a LONG1.
var legacyMagic = []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// ErrLegacyFormat is returned for checkpoints written in PyTorch's legacy
// (pre-1.6, non-zip) serialization format.
var ErrLegacyFormat = errors.New("legacy (pre-1.6, non-zip) torch.save format is not supported: load it in PyTorch and save it again with torch.save (zip format, the default since 1.6) or safetensors.torch.save_file")

// ReadTorch reads a state dict saved by torch.save (zip format) from r,
// which holds size bytes, with DefaultLimits. See ReadTorchLimits.
func ReadTorch(r io.ReaderAt, size int64) (map[string]*tensor.Tensor, error) {
	return ReadTorchLimits(r, size, DefaultLimits)
}

// ReadTorchLimits reads a state dict saved by torch.save in the zip format:
// <name>/data.pkl (the pickled dict), <name>/data/<key> (one raw
// little-endian storage per key) and <name>/version. The root object must be
// a dict of tensors (torch.save(model.state_dict())), or a checkpoint dict
// holding one under "state_dict", "model_state_dict", "model", "net" or
// "module". Float storages (float32, float64, float16, bfloat16) become
// float32 tensors; integer and bool storages become int64 tensors.
// Non-contiguous views (transposes, slices, views sharing a storage) are
// copied into contiguous tensors. Legacy non-zip files give ErrLegacyFormat;
// TorchScript archives, unknown pickle globals, truncated or inconsistent
// files give an error. It never panics.
func ReadTorchLimits(r io.ReaderAt, size int64, lim Limits) (sd map[string]*tensor.Tensor, err error) {
	defer func() {
		if p := recover(); p != nil { // defence in depth: the reader checks everything itself
			sd, err = nil, fmt.Errorf("torchimport: malformed checkpoint: %v", p)
		}
	}()
	head := make([]byte, len(legacyMagic))
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	if bytes.Equal(head, legacyMagic) {
		return nil, fmt.Errorf("torchimport: %w", ErrLegacyFormat)
	}
	if !bytes.HasPrefix(head, []byte("PK\x03\x04")) {
		return nil, errors.New("torchimport: not a torch.save zip checkpoint (no zip signature)")
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("torchimport: reading zip: %v", err)
	}
	files := map[string]*zip.File{}
	var pkls []string
	for _, f := range zr.File {
		files[f.Name] = f
		dir, base := path.Split(f.Name)
		if base == "data.pkl" && dir != "" && !strings.Contains(strings.TrimSuffix(dir, "/"), "/") {
			pkls = append(pkls, f.Name)
		}
	}
	if len(pkls) != 1 {
		for name := range files {
			if strings.HasSuffix(name, "/constants.pkl") || strings.Contains(name, "/code/") {
				return nil, errors.New("torchimport: this is a TorchScript archive (torch.jit.save), not a state dict: save model.state_dict() with torch.save")
			}
		}
		return nil, fmt.Errorf("torchimport: expected one <name>/data.pkl in the zip, found %d", len(pkls))
	}
	prefix := strings.TrimSuffix(pkls[0], "data.pkl")
	if f, ok := files[prefix+"byteorder"]; ok {
		b, err := readEntry(f, 16, size)
		if err != nil {
			return nil, fmt.Errorf("torchimport: %s: %v", f.Name, err)
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fmt.Errorf("torchimport: byte order %q is not supported (only little)", s)
		}
	}
	pkl, err := readEntry(files[pkls[0]], lim.MaxPickleBytes, size)
	if err != nil {
		return nil, fmt.Errorf("torchimport: %s: %v", pkls[0], err)
	}
	root, err := unpickle(pkl)
	if err != nil {
		return nil, fmt.Errorf("torchimport: %v", err)
	}
	d, err := findStateDict(root)
	if err != nil {
		return nil, fmt.Errorf("torchimport: %v", err)
	}
	m := &materializer{files: files, prefix: prefix + "data/", fileSize: size, lim: lim, data: map[*storageRef][]byte{}}
	sd = make(map[string]*tensor.Tensor, len(d.keys))
	refs := make([]*tensorRef, len(d.keys))
	for i, k := range d.keys {
		name := k.(string) // findStateDict checked
		refs[i] = d.vals[i].(*tensorRef)
		if err := m.load(refs[i].storage); err != nil {
			return nil, fmt.Errorf("torchimport: tensor %q: %v", name, err)
		}
	}
	// Every view may at most copy its storage a few times over: this bounds
	// broadcast (stride 0) tricks to the size of the data in the file.
	budget := 4*m.loaded + 1<<20
	for i, k := range d.keys {
		name := k.(string)
		t, n, err := m.tensor(refs[i], budget)
		if err != nil {
			return nil, fmt.Errorf("torchimport: tensor %q: %v", name, err)
		}
		budget -= n
		sd[name] = t
	}
	return sd, nil
}

// stateDictKeys are the checkpoint keys searched for a nested state dict.
var stateDictKeys = []string{"state_dict", "model_state_dict", "model", "net", "module"}

func isTensorDict(v any) (*pdict, error) {
	d, ok := v.(*pdict)
	if !ok {
		return nil, fmt.Errorf("the checkpoint holds a %s, not a dict of tensors", typeName(v))
	}
	for i, k := range d.keys {
		ks, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("the checkpoint dict has a %s key, not a str", typeName(k))
		}
		if _, ok := d.vals[i].(*tensorRef); !ok {
			return nil, fmt.Errorf("entry %q is a %s, not a tensor", ks, typeName(d.vals[i]))
		}
	}
	return d, nil
}

func findStateDict(root any) (*pdict, error) {
	d, err := isTensorDict(root)
	if err == nil {
		return d, nil
	}
	if top, ok := root.(*pdict); ok {
		for _, k := range stateDictKeys {
			if v, ok := top.get(k); ok {
				if d, err2 := isTensorDict(v); err2 == nil {
					return d, nil
				}
			}
		}
		var keys []string
		for _, k := range top.keys {
			if s, ok := k.(string); ok {
				keys = append(keys, s)
			}
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("%v; and no state dict under any of %v (top-level keys: %v)", err, stateDictKeys, keys)
	}
	return nil, err
}

// readEntry reads a whole zip entry of at most limit bytes. A stored entry
// must lie inside the file; a compressed one is read incrementally, so the
// allocation follows the bytes actually decompressed.
func readEntry(f *zip.File, limit, fileSize int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("entry of %d bytes is over the limit of %d", f.UncompressedSize64, limit)
	}
	want := int64(f.UncompressedSize64)
	if f.Method == zip.Store {
		off, err := f.DataOffset()
		if err != nil {
			return nil, err
		}
		if f.CompressedSize64 != f.UncompressedSize64 || off < 0 || off > fileSize || want > fileSize-off {
			return nil, errors.New("entry extends past the end of the file")
		}
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if f.Method == zip.Store {
		buf.Grow(int(want))
	}
	n, err := io.Copy(&buf, io.LimitReader(rc, want+1))
	if err != nil {
		return nil, err
	}
	if n != want {
		return nil, fmt.Errorf("entry holds %d bytes, its header says %d", n, want)
	}
	return buf.Bytes(), nil
}

// materializer reads storages and copies tensor views out of them.
type materializer struct {
	files    map[string]*zip.File
	prefix   string
	fileSize int64
	lim      Limits
	data     map[*storageRef][]byte
	loaded   int64 // elements in the storages read
	bytes    int64
}

func (m *materializer) load(s *storageRef) error {
	if _, ok := m.data[s]; ok {
		return nil
	}
	f, ok := m.files[m.prefix+s.key]
	if !ok {
		return fmt.Errorf("storage %q: no entry %s%s in the zip", s.key, m.prefix, s.key)
	}
	es := s.dtype.size()
	if s.numel > math.MaxInt64/es {
		return fmt.Errorf("storage %q: %d elements overflow", s.key, s.numel)
	}
	want := s.numel * es
	if f.UncompressedSize64 != uint64(want) {
		return fmt.Errorf("storage %q: entry holds %d bytes, the pickle declares %d elements of %d bytes", s.key, f.UncompressedSize64, s.numel, es)
	}
	if want > m.lim.MaxStorageBytes-m.bytes {
		return fmt.Errorf("storage %q: storages exceed the limit of %d bytes", s.key, m.lim.MaxStorageBytes)
	}
	b, err := readEntry(f, want, m.fileSize)
	if err != nil {
		return fmt.Errorf("storage %q: %v", s.key, err)
	}
	m.data[s] = b
	m.loaded += s.numel
	m.bytes += want
	return nil
}

// tensor copies the view t into a new contiguous tensor of at most budget
// elements and returns it with its element count.
func (m *materializer) tensor(t *tensorRef, budget int64) (*tensor.Tensor, int64, error) {
	s := t.storage
	shape := make([]int, len(t.size))
	numel := int64(1)
	for i, d := range t.size {
		if d != 0 && numel > math.MaxInt64/d {
			return nil, 0, fmt.Errorf("shape %v overflows", t.size)
		}
		numel *= d
		shape[i] = int(d)
	}
	if numel > budget {
		return nil, 0, fmt.Errorf("shape %v (%d elements) is far larger than the storages in the file", t.size, numel)
	}
	if numel > 0 {
		// Highest storage index the view touches.
		last := t.offset
		for i, d := range t.size {
			if t.stride[i] != 0 && d-1 > (math.MaxInt64-last)/t.stride[i] {
				return nil, 0, fmt.Errorf("size %v, stride %v and offset %d overflow", t.size, t.stride, t.offset)
			}
			last += (d - 1) * t.stride[i]
		}
		if last >= s.numel {
			return nil, 0, fmt.Errorf("view (offset %d, size %v, stride %v) reaches element %d of a storage of %d", t.offset, t.size, t.stride, last, s.numel)
		}
	}
	raw := m.data[s]
	idx := viewIndices(t, numel)
	if s.dtype.isFloat() {
		out := make([]float32, numel)
		for i, j := range idx {
			out[i] = floatAt(raw, s.dtype, j)
		}
		return tensor.FromSlice(out, shape...), numel, nil
	}
	out := make([]int64, numel)
	for i, j := range idx {
		out[i] = intAt(raw, s.dtype, j)
	}
	return tensor.FromInt64(out, shape...), numel, nil
}

// viewIndices lists the storage index of every element of the view in
// row-major order (bounds were checked by the caller).
func viewIndices(t *tensorRef, numel int64) []int64 {
	idx := make([]int64, numel)
	if numel == 0 {
		return idx
	}
	rank := len(t.size)
	pos := make([]int64, rank)
	cur := t.offset
	for i := range idx {
		idx[i] = cur
		for d := rank - 1; d >= 0; d-- {
			pos[d]++
			cur += t.stride[d]
			if pos[d] < t.size[d] {
				break
			}
			cur -= pos[d] * t.stride[d]
			pos[d] = 0
		}
	}
	return idx
}

func floatAt(b []byte, dt storageDType, i int64) float32 {
	switch dt {
	case dtFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	case dtFloat64:
		return float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
	case dtFloat16:
		return halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
	default: // dtBFloat16
		return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
	}
}

func intAt(b []byte, dt storageDType, i int64) int64 {
	switch dt {
	case dtInt64:
		return int64(binary.LittleEndian.Uint64(b[8*i:]))
	case dtInt32:
		return int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
	case dtInt16:
		return int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
	case dtInt8:
		return int64(int8(b[i]))
	default: // dtUint8, dtBool
		return int64(b[i])
	}
}

// halfToFloat converts an IEEE 754 binary16 value to float32 exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant × 2^-24
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}
