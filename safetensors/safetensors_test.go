package safetensors

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden vector from the reference implementation's test suite.
var goldenHex = "4000000000000000" +
	hex.EncodeToString([]byte(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`)) +
	"00000000 0000803f 00000040 00004040 00008040 0000a040"

func golden(t *testing.T) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(goldenHex, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenBytes(t *testing.T) {
	want := golden(t)
	got, err := Marshal(map[string]Tensor{"attn.0": F32([]float32{0, 1, 2, 3, 4, 5}, 1, 2, 3)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal:\n got %x\nwant %x", got, want)
	}
	f, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Tensors["attn.0"].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range v {
		if x != float32(i) {
			t.Fatalf("value %d = %v", i, x)
		}
	}
}

func TestEmptyAndMetadataPadding(t *testing.T) {
	b, _ := Marshal(nil, nil)
	if n := b[0]; n != 8 || string(b[8:16]) != "{}      " {
		t.Fatalf("empty map: N=%d header %q", n, b[8:])
	}
	b, _ = Marshal(nil, map[string]string{"framework": "pt"})
	if n := b[0]; n != 40 || string(b[8:]) != `{"__metadata__":{"framework":"pt"}}     ` {
		t.Fatalf("metadata: N=%d header %q", n, b[8:])
	}
	f, err := Parse(b)
	if err != nil || f.Metadata["framework"] != "pt" {
		t.Fatalf("metadata round trip: %v %v", f, err)
	}
}

func TestOrderByAlignmentThenName(t *testing.T) {
	b, err := Marshal(map[string]Tensor{
		"b": F32([]float32{1}, 1), "a": F32([]float32{2}, 1), "steps": I64([]int64{7}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := string(b[8 : 8+b[0]])
	if !(strings.Index(h, `"steps"`) < strings.Index(h, `"a"`) && strings.Index(h, `"a"`) < strings.Index(h, `"b"`)) {
		t.Fatalf("order wrong: %s", h)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Tensors["steps"].Int64s(); v[0] != 7 || len(f.Tensors["steps"].Shape) != 0 {
		t.Fatalf("scalar i64: %v %v", v, f.Tensors["steps"].Shape)
	}
}

func TestRejectsBadFiles(t *testing.T) {
	g := golden(t)
	cases := map[string][]byte{
		"short":     g[:5],
		"truncated": g[:len(g)-4],
		"extra":     append(append([]byte{}, g...), 0),
		"hugeN":     append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0}, g[8:]...),
		"badjson":   append(append([]byte{}, g[:8]...), bytes.Repeat([]byte{'x'}, 64+24)...),
	}
	bad := bytes.Replace(g, []byte(`"F32"`), []byte(`"Q32"`), 1)
	cases["dtype"] = bad
	bad = bytes.Replace(g, []byte(`[1,2,3]`), []byte(`[1,2,4]`), 1)
	cases["shape"] = bad
	for name, b := range cases {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	if err := WriteFile(p, map[string]Tensor{"x": F32([]float32{1, 2}, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil || len(f.Tensors) != 1 {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(golden(&testing.T{}))
	b, _ := Marshal(map[string]Tensor{"a": F32([]float32{1, 2}, 2), "i": I64([]int64{3})}, map[string]string{"k": "v"})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		out, err := Marshal(file.Tensors, file.Metadata)
		if err != nil {
			t.Fatalf("re-marshal of a parsed file failed: %v", err)
		}
		again, err := Parse(out)
		if err != nil || len(again.Tensors) != len(file.Tensors) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
