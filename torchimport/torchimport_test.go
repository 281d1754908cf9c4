package torchimport_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/torchimport"
)

func td(name string) string { return filepath.Join("testdata", name) }

func expected(t *testing.T) *testutil.Fixtures {
	return testutil.LoadFixtures(t, "torchimport/testdata/expected.safetensors")
}

func buildFrom(t *testing.T, manifest string) nn.Module {
	t.Helper()
	data, err := os.ReadFile(td(manifest))
	if err != nil {
		t.Fatal(err)
	}
	man, err := model.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Build(man.Architecture, model.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func forward(m nn.Module, x *tensor.Tensor) (y *tensor.Tensor) {
	nn.Eval(m)
	tensor.NoGrad(func() { y = m.Forward(x) })
	return y
}

func TestCNNLogitsMatchPyTorch(t *testing.T) {
	sd, err := torchimport.ReadStateDict(td("cnn.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sd) != 6 {
		t.Fatalf("got %d tensors, want 6", len(sd))
	}
	if s := sd["4.weight"].Shape(); !tensor.SameShape(s, []int{64, 5408}) {
		t.Fatalf("4.weight shape %v", s)
	}
	m := buildFrom(t, "cnn.json")
	rep, err := torchimport.Load(m, sd, true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Loaded) != 6 {
		t.Fatalf("report %+v", rep)
	}
	f := expected(t)
	testutil.AssertClose(t, "cnn logits", forward(m, f.Get(t, "cnn.x")), f.Get(t, "cnn.logits"), 1e-5, 1e-5)
}

func TestTinyBatchNormPtAndSafetensors(t *testing.T) {
	f := expected(t)
	for _, file := range []string{"tiny.pt", "tiny.safetensors", "checkpoint.pt"} {
		sd, err := torchimport.ReadStateDict(td(file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		nbt := sd["1.num_batches_tracked"]
		if nbt == nil || nbt.DType() != tensor.Int64 || len(nbt.Shape()) != 0 || nbt.Int64s()[0] != 2 {
			t.Fatalf("%s: num_batches_tracked = %v", file, nbt)
		}
		m := buildFrom(t, "tiny.json")
		if _, err := torchimport.Load(m, sd, true); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		testutil.AssertClose(t, file+" logits", forward(m, f.Get(t, "tiny.x")), f.Get(t, "tiny.logits"), 1e-5, 1e-6)
	}
}

func TestKindsDecodeExactly(t *testing.T) {
	sd, err := torchimport.ReadStateDict(td("kinds.pt"))
	if err != nil {
		t.Fatal(err)
	}
	f := expected(t)
	names := []string{"f64", "f16", "bf16", "i64", "i32", "bool", "scalar", "transposed", "view_row1", "view_col2", "base", "empty"}
	if len(sd) != len(names) {
		t.Fatalf("got %d tensors, want %d", len(sd), len(names))
	}
	for _, k := range names {
		got, want := sd[k], f.Get(t, "kinds."+k)
		if got == nil {
			t.Fatalf("%s missing", k)
		}
		if got.DType() != want.DType() || !tensor.SameShape(got.Shape(), want.Shape()) {
			t.Fatalf("%s: got %v %v, want %v %v", k, got.DType(), got.Shape(), want.DType(), want.Shape())
		}
		if want.DType() == tensor.Int64 {
			for i, v := range want.Int64s() {
				if got.Int64s()[i] != v {
					t.Fatalf("%s[%d] = %d, want %d", k, i, got.Int64s()[i], v)
				}
			}
			continue
		}
		for i, v := range want.Data() {
			if math.Float32bits(got.Data()[i]) != math.Float32bits(v) {
				t.Fatalf("%s[%d] = %v, want %v (bit-exact)", k, i, got.Data()[i], v)
			}
		}
	}
}

func TestReportListsProblems(t *testing.T) {
	sd, err := torchimport.ReadStateDict(td("tiny.pt"))
	if err != nil {
		t.Fatal(err)
	}
	delete(sd, "4.bias")
	sd["extra.weight"] = tensor.Zeros(2)
	sd["0.weight"] = tensor.Zeros(2, 1, 5, 5)
	m := buildFrom(t, "tiny.json")
	before := append([]float32(nil), nn.StateDict(m)["0.bias"].Data()...)
	rep, err := torchimport.Load(m, sd, true)
	var le *nn.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *nn.LoadError, got %v", err)
	}
	if strings.Join(rep.Missing, ",") != "4.bias" || strings.Join(rep.Unexpected, ",") != "extra.weight" {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Mismatched) != 1 || rep.Mismatched[0].Key != "0.weight" || !tensor.SameShape(rep.Mismatched[0].StateShape, []int{2, 1, 5, 5}) {
		t.Fatalf("mismatched %+v", rep.Mismatched)
	}
	if len(le.Missing) != 1 || len(le.Unexpected) != 1 || len(le.Mismatched) != 1 || len(rep.Loaded) != 0 {
		t.Fatalf("LoadError %+v, loaded %v", le, rep.Loaded)
	}
	if nn.StateDict(m)["0.bias"].Data()[0] != before[0] {
		t.Fatal("a failed Load changed the model")
	}
	for _, s := range []string{"4.bias", "extra.weight", "0.weight"} {
		if !strings.Contains(rep.String(), s) {
			t.Fatalf("report text %q lacks %s", rep.String(), s)
		}
	}

	// Non-strict: missing/unexpected are reported but loading goes on.
	sd["0.weight"] = tensor.Zeros(2, 1, 3, 3)
	rep, err = torchimport.Load(m, sd, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Missing) != 1 || len(rep.Unexpected) != 1 || len(rep.Loaded) != 8 {
		t.Fatalf("non-strict report %+v", rep)
	}
	if nn.StateDict(m)["0.weight"].Data()[0] != 0 {
		t.Fatal("non-strict Load did not copy 0.weight")
	}
}

func TestImportToPackage(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "pkg")
	_, rep, err := torchimport.ImportToPackage(td("cnn.pt"), torchimport.ImportOptions{Arch: td("cnn.json")}, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Loaded) != 6 {
		t.Fatalf("report %+v", rep)
	}
	pkg, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Metadata["imported_from"] != "cnn.pt" {
		t.Fatalf("metadata %v", pkg.Metadata)
	}
	f := expected(t)
	y, err := pkg.Predict(f.Get(t, "cnn.x"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "package logits", y, f.Get(t, "cnn.logits"), 1e-5, 1e-5)

	// --like: the architecture of an existing package; a mismatch is reported.
	out2 := filepath.Join(dir, "pkg2")
	_, rep, err = torchimport.ImportToPackage(td("tiny.pt"), torchimport.ImportOptions{Like: out}, out2)
	if err == nil || len(rep.Unexpected) == 0 || len(rep.Missing) == 0 {
		t.Fatalf("tiny.pt into the CNN: err %v, report %+v", err, rep)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Fatal("a failed import left a package behind")
	}
	if _, _, err := torchimport.ImportToPackage(td("tiny.safetensors"), torchimport.ImportOptions{Arch: td("tiny.json"), Name: "t"}, out2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := torchimport.ImportToPackage(td("tiny.pt"), torchimport.ImportOptions{}, out2); err == nil || !strings.Contains(err.Error(), "--arch") {
		t.Fatalf("no architecture: %v", err)
	}
}

// --- hostile inputs ---

// pk builds pickles.
type pk struct{ bytes.Buffer }

func (p *pk) op(b ...byte) *pk { p.Write(b); return p }
func (p *pk) str(s string) *pk {
	p.WriteByte('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}
func (p *pk) int(v int64) *pk {
	p.WriteByte(0x8a)
	p.WriteByte(8)
	binary.Write(&p.Buffer, binary.LittleEndian, v)
	return p
}
func (p *pk) global(mod, name string) *pk {
	p.WriteString("c" + mod + "\n" + name + "\n")
	return p
}
func (p *pk) ints(vs ...int64) *pk {
	p.op('(')
	for _, v := range vs {
		p.int(v)
	}
	return p.op('t')
}

// tensorPickle is {"w": _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}.
func tensorPickle(storage, key string, numel, offset int64, size, stride []int64) []byte {
	p := &pk{}
	p.op(0x80, 2).op('}').str("w")
	p.global("torch._utils", "_rebuild_tensor_v2").op('(')
	p.op('(').str("storage").global("torch", storage).str(key).str("cpu").int(numel).op('t', 'Q')
	p.int(offset).ints(size...).ints(stride...).op(0x89)
	p.global("collections", "OrderedDict").op(')', 'R')
	p.op('t', 'R', 's', '.')
	return p.Bytes()
}

func makeZip(t *testing.T, entries map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, name := range []string{"archive/data.pkl", "archive/data/0", "archive/version", "archive/constants.pkl", "archive/byteorder"} {
		data, ok := entries[name]
		if !ok {
			continue
		}
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func read(b []byte) (map[string]*tensor.Tensor, error) {
	return torchimport.ReadTorch(bytes.NewReader(b), int64(len(b)))
}

func f32bytes(n int) []byte { return make([]byte, 4*n) }

func TestCraftedValid(t *testing.T) {
	// The crafted-file builder itself produces readable files: a strided view.
	b := makeZip(t, map[string][]byte{
		"archive/data.pkl": tensorPickle("FloatStorage", "0", 6, 1, []int64{2, 2}, []int64{1, 2}),
		"archive/data/0":   {0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40},
	})
	sd, err := read(b)
	if err != nil {
		t.Fatal(err)
	}
	got := sd["w"].Data()
	want := []float32{1, 3, 2, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("strided view %v, want %v", got, want)
		}
	}
}

func TestHostileFiles(t *testing.T) {
	good, err := os.ReadFile(td("tiny.pt"))
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := os.ReadFile(td("legacy.pt"))
	if err != nil {
		t.Fatal(err)
	}
	data := f32bytes(6)
	z := func(pkl []byte) []byte {
		return makeZip(t, map[string][]byte{"archive/data.pkl": pkl, "archive/data/0": data})
	}
	tp := tensorPickle
	deep := &pk{}
	deep.op(0x80, 2)
	for range 70000 {
		deep.op('(')
	}
	lists := &pk{}
	lists.op(0x80, 2)
	for range 50000 {
		lists.op(']', 'q', 0, 'h', 0, 'a') // a list appended to itself, again and again
	}
	lists.op('.')
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "no zip signature", nil},
		{"garbage", "no zip signature", []byte("hello world, not a checkpoint")},
		{"legacy", "legacy", legacy},
		{"truncated zip", "zip", good[:len(good)/2]},
		{"truncated zip tail", "zip", good[:len(good)-10]},
		{"torchscript", "TorchScript", makeZip(t, map[string][]byte{"archive/constants.pkl": {}})},
		{"big endian", "byte order", makeZip(t, map[string][]byte{"archive/data.pkl": tp("FloatStorage", "0", 6, 0, []int64{6}, []int64{1}), "archive/data/0": data, "archive/byteorder": []byte("big")})},
		{"truncated pickle", "data.pkl: at byte", z(tp("FloatStorage", "0", 6, 0, []int64{6}, []int64{1})[:40])},
		{"no STOP", "STOP", z([]byte{0x80, 2, '}'})},
		{"unknown global", "os.system", z((&pk{}).op(0x80, 2).global("os", "system").str("rm -rf /").op(0x85, 'R', '.').Bytes())},
		{"unknown opcode", "opcode", z([]byte{0x80, 2, 'I', '1', '\n', '.'})},
		{"protocol 9", "protocol", z([]byte{0x80, 9, '}', '.'})},
		{"memo miss", "memo", z([]byte{0x80, 2, 'h', 7, '.'})},
		{"stack underflow", "underflow", z([]byte{0x80, 2, 'R', '.'})},
		{"mark bomb", "MARK", z(deep.Bytes())},
		{"self-referential lists", "not a dict", z(lists.Bytes())},
		{"huge string length", "truncated", z([]byte{0x80, 2, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '.'})},
		{"missing storage", "no entry", z(tp("FloatStorage", "9", 6, 0, []int64{6}, []int64{1}))},
		{"storage size lie", "declares", z(tp("FloatStorage", "0", 1<<40, 0, []int64{6}, []int64{1}))},
		{"storage dtype lie", "declares", z(tp("DoubleStorage", "0", 6, 0, []int64{6}, []int64{1}))},
		{"offset past end", "reaches element", z(tp("FloatStorage", "0", 6, 7, []int64{1}, []int64{1}))},
		{"size past end", "reaches element", z(tp("FloatStorage", "0", 6, 0, []int64{7}, []int64{1}))},
		{"stride past end", "reaches element", z(tp("FloatStorage", "0", 6, 0, []int64{2, 3}, []int64{3, 2}))},
		{"huge shape", "overflows", z(tp("FloatStorage", "0", 6, 0, []int64{1 << 40, 1 << 40, 1 << 40}, []int64{0, 0, 0}))},
		{"broadcast bomb", "far larger", z(tp("FloatStorage", "0", 6, 0, []int64{1 << 30, 1 << 20}, []int64{0, 0}))},
		{"stride overflow", "overflow", z(tp("FloatStorage", "0", 6, 0, []int64{3}, []int64{1 << 62}))},
		{"negative offset", "offset", z(tp("FloatStorage", "0", 6, -1, []int64{1}, []int64{1}))},
		{"rank mismatch", "differ in length", z(tp("FloatStorage", "0", 6, 0, []int64{2, 3}, []int64{1}))},
		{"unknown storage", "unsupported global", z(tp("ComplexFloatStorage", "0", 6, 0, []int64{6}, []int64{1}))},
		{"not a dict", "not a dict", z([]byte{0x80, 2, 'K', 1, '.'})},
		{"dict of ints", "not a tensor", z([]byte{0x80, 2, '}', 'X', 1, 0, 0, 0, 'a', 'K', 1, 's', '.'})},
		{"no data.pkl", "found 0", makeZip(t, map[string][]byte{"archive/version": []byte("3")})},
	}
	for _, c := range cases {
		sd, err := read(c.file)
		if err == nil {
			t.Errorf("%s: no error (got %d tensors)", c.name, len(sd))
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
	}
	if _, err := torchimport.ReadStateDict(td("legacy.pt")); !errors.Is(err, torchimport.ErrLegacyFormat) {
		t.Fatalf("legacy via ReadStateDict: %v", err)
	}
	if _, err := torchimport.ReadStateDict(td("cnn.json")); err == nil {
		t.Fatal("a JSON file read as a state dict")
	}
}

func TestLimits(t *testing.T) {
	b, err := os.ReadFile(td("tiny.pt"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = torchimport.ReadTorchLimits(bytes.NewReader(b), int64(len(b)), torchimport.Limits{MaxPickleBytes: 100, MaxStorageBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("pickle limit: %v", err)
	}
	_, err = torchimport.ReadTorchLimits(bytes.NewReader(b), int64(len(b)), torchimport.Limits{MaxPickleBytes: 1 << 20, MaxStorageBytes: 64})
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("storage limit: %v", err)
	}
}
