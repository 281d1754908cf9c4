package data_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/data"
)

// idxBytes encodes an IDX file.
func idxBytes(typ byte, dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, typ, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(payload)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestReadIDX(t *testing.T) {
	raw := idxBytes(0x08, []uint32{2, 3}, []byte{0, 1, 2, 253, 254, 255})
	for name, in := range map[string][]byte{"raw": raw, "gzip": gz(raw)} {
		x, err := data.ReadIDX(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if x.Type != data.IDXUint8 || !slices.Equal(x.Dims, []int{2, 3}) || x.Len() != 6 {
			t.Errorf("%s: type %v dims %v", name, x.Type, x.Dims)
		}
		if got := x.Int64s(); !slices.Equal(got, []int64{0, 1, 2, 253, 254, 255}) {
			t.Errorf("%s: values %v", name, got)
		}
		if got := x.Float32s(1.0 / 255); got[5] != 1 || got[0] != 0 {
			t.Errorf("%s: scaled %v", name, got)
		}
	}
	// Other element types, big-endian.
	var p bytes.Buffer
	binary.Write(&p, binary.BigEndian, []int16{-2, 300})
	x, err := data.ReadIDX(bytes.NewReader(idxBytes(0x0B, []uint32{2}, p.Bytes())))
	if err != nil || !slices.Equal(x.Int64s(), []int64{-2, 300}) {
		t.Errorf("int16: %v %v", x, err)
	}
	p.Reset()
	binary.Write(&p, binary.BigEndian, []float32{1.5, -0.25})
	x, err = data.ReadIDX(bytes.NewReader(idxBytes(0x0D, []uint32{1, 2}, p.Bytes())))
	if err != nil || !slices.Equal(x.Float32s(1), []float32{1.5, -0.25}) {
		t.Errorf("float32: %v %v", x, err)
	}
	p.Reset()
	binary.Write(&p, binary.BigEndian, []float64{math.Pi})
	x, err = data.ReadIDX(bytes.NewReader(idxBytes(0x0E, []uint32{1}, p.Bytes())))
	if err != nil || x.Float32s(1)[0] != float32(math.Pi) {
		t.Errorf("float64: %v %v", x, err)
	}
	p.Reset()
	binary.Write(&p, binary.BigEndian, []int32{-70000})
	x, err = data.ReadIDX(bytes.NewReader(idxBytes(0x0C, []uint32{1}, p.Bytes())))
	if err != nil || x.Int64s()[0] != -70000 {
		t.Errorf("int32: %v %v", x, err)
	}
	x, err = data.ReadIDX(bytes.NewReader(idxBytes(0x09, []uint32{1}, []byte{0xff})))
	if err != nil || x.Int64s()[0] != -1 {
		t.Errorf("int8: %v %v", x, err)
	}
}

func TestReadIDXErrors(t *testing.T) {
	good := idxBytes(0x08, []uint32{2, 3}, []byte{0, 1, 2, 3, 4, 5})
	zgood := gz(good)
	corrupt := slices.Clone(zgood)
	corrupt[len(corrupt)-6] ^= 0xff // inside the CRC-32 trailer
	corruptBody := slices.Clone(zgood)
	corruptBody[12] ^= 0x55
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"short magic", []byte{0, 0, 8}, "too short"},
		{"bad magic", []byte{1, 2, 8, 1, 0, 0, 0, 0}, "bad magic"},
		{"bad type", idxBytes(0x07, []uint32{1}, []byte{0}), "unknown element type code 0x07"},
		{"zero dims", []byte{0, 0, 8, 0}, "0 dimensions"},
		{"too many dims", []byte{0, 0, 8, 40}, "40 dimensions"},
		{"short header", good[:9], "header truncated"},
		{"short data", good[:len(good)-1], "data truncated"},
		{"trailing", append(slices.Clone(good), 9), "trailing bytes"},
		{"huge", idxBytes(0x0E, []uint32{1 << 30, 1 << 30}, nil), "exceed"},
		{"truncated gzip", zgood[:len(zgood)-10], "truncated"},
		{"corrupt gzip crc", corrupt, "gzip"},
		{"corrupt gzip body", corruptBody, "idx:"},
		{"gzip of garbage header", gz([]byte{1, 2, 3, 4}), "bad magic"},
	}
	for _, c := range cases {
		_, err := data.ReadIDX(bytes.NewReader(c.in))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
	}
	// File variant names the file.
	path := filepath.Join(t.TempDir(), "bad.idx")
	os.WriteFile(path, []byte{1, 2, 3, 4}, 0o644)
	if _, err := data.ReadIDXFile(path); err == nil || !strings.Contains(err.Error(), "bad.idx") {
		t.Errorf("ReadIDXFile: %v", err)
	}
	if _, err := data.ReadIDXFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("missing file: no error")
	}
}

func FuzzReadIDX(f *testing.F) {
	good := idxBytes(0x08, []uint32{2, 3}, []byte{0, 1, 2, 3, 4, 5})
	f.Add(good)
	f.Add(gz(good))
	f.Add(idxBytes(0x0D, []uint32{1}, []byte{0x3f, 0x80, 0, 0}))
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 0})
	f.Add(gz(idxBytes(0x0E, []uint32{0xffffffff}, nil)))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := data.ReadIDX(bytes.NewReader(in))
		if err != nil {
			if x != nil || !strings.HasPrefix(err.Error(), "idx:") {
				t.Fatalf("error %q with result %v", err, x)
			}
			return
		}
		n := x.Type.Size()
		for _, d := range x.Dims {
			n *= d
		}
		if n != len(x.Raw) || len(x.Int64s()) != x.Len() {
			t.Fatalf("dims %v of %v but %d payload bytes", x.Dims, x.Type, len(x.Raw))
		}
	})
}

func TestReadCSV(t *testing.T) {
	in := "a, b ,label\n1,2.5,0\n-3,4e2,2\n\n5,6,1\n"
	d, err := data.ReadCSV(strings.NewReader(in), data.CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || !slices.Equal(d.Features, []string{"a", "b"}) || d.Label != "label" {
		t.Fatalf("len %d features %v label %q", d.Len(), d.Features, d.Label)
	}
	if got := d.Inputs().Data(); !slices.Equal(got, []float32{1, 2.5, -3, 400, 5, 6}) {
		t.Errorf("inputs %v", got)
	}
	if got := d.Targets().Int64s(); !slices.Equal(got, []int64{0, 2, 1}) {
		t.Errorf("targets %v", got)
	}

	// Chosen columns, label first, string classes, semicolons.
	in = "y;x1;x2;skip\npos;1;2;z\nneg;3;4;z\nneu;5;6;z\npos;7;8;z\n"
	d, err = data.ReadCSV(strings.NewReader(in), data.CSVOptions{Label: "y", Features: []string{"x2", "x1"}, StringLabels: true, Comma: ';'})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Classes, []string{"neg", "neu", "pos"}) || !slices.Equal(d.Targets().Int64s(), []int64{2, 0, 1, 2}) {
		t.Errorf("classes %v targets %v", d.Classes, d.Targets().Int64s())
	}
	if !slices.Equal(d.Inputs().Data()[:2], []float32{2, 1}) {
		t.Errorf("feature order: %v", d.Inputs().Data())
	}

	path := filepath.Join(t.TempDir(), "ok.csv")
	os.WriteFile(path, []byte("f,label\n1,1\n"), 0o644)
	if d, err := data.ReadCSVFile(path, data.CSVOptions{}); err != nil || d.Len() != 1 {
		t.Errorf("ReadCSVFile: %v", err)
	}
}

func TestReadCSVErrors(t *testing.T) {
	cases := []struct {
		name, in string
		opt      data.CSVOptions
		want     []string
	}{
		{"bad value", "a,b,label\n1,2,0\n3,x,1\n", data.CSVOptions{}, []string{"line 3", "column 2", `"b"`, `"x"`}},
		{"nan", "a,label\nNaN,0\n", data.CSVOptions{}, []string{"line 2", `"a"`, "finite"}},
		{"bad label", "a,label\n1,0\n2,cat\n", data.CSVOptions{}, []string{"line 3", "column 2", `"label"`, `"cat"`, "StringLabels"}},
		{"negative label", "a,label\n1,-1\n", data.CSVOptions{}, []string{"line 2", `"-1"`}},
		{"missing label", "a,b\n1,2\n", data.CSVOptions{Label: "y"}, []string{`no label column "y"`}},
		{"missing feature", "a,b\n1,2\n", data.CSVOptions{Features: []string{"c"}}, []string{`no feature column "c"`}},
		{"feature is label", "a,b\n1,2\n", data.CSVOptions{Features: []string{"b"}}, []string{"both"}},
		{"ragged", "a,b\n1,2\n3\n", data.CSVOptions{}, []string{"line 3", "wrong number of fields"}},
		{"empty", "", data.CSVOptions{}, []string{"header"}},
		{"no rows", "a,b\n", data.CSVOptions{}, []string{"no data rows"}},
		{"only label", "label\n1\n", data.CSVOptions{}, []string{"no feature columns"}},
		{"duplicate header", "a,a,label\n1,2,3\n", data.CSVOptions{}, []string{`"a" twice`}},
	}
	for _, c := range cases {
		_, err := data.ReadCSV(strings.NewReader(c.in), c.opt)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %s", c.name, err, w)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(path, []byte("a,label\nz,1\n"), 0o644)
	if _, err := data.ReadCSVFile(path, data.CSVOptions{}); err == nil || !strings.Contains(err.Error(), "bad.csv") {
		t.Errorf("ReadCSVFile: %v", err)
	}
}
