package torchimport_test

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

var seedFiles = []string{"tiny.pt", "kinds.pt", "checkpoint.pt", "legacy.pt"}

// FuzzReadTorch feeds whole files (seeded with the fixtures) to the zip
// reader: any input gives tensors or an error, never a panic.
func FuzzReadTorch(f *testing.F) {
	for _, name := range seedFiles {
		b, err := os.ReadFile(td(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := read(b)
		if err == nil && sd == nil {
			t.Fatal("nil state dict without an error")
		}
	})
}

// FuzzUnpickle feeds pickles (seeded with the fixtures' data.pkl) to the
// unpickler, inside a zip whose storages "0".."7" hold 24 bytes each.
func FuzzUnpickle(f *testing.F) {
	for _, name := range seedFiles[:3] {
		b, err := os.ReadFile(td(name))
		if err != nil {
			f.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range zr.File {
			if strings.HasSuffix(e.Name, "/data.pkl") {
				rc, err := e.Open()
				if err != nil {
					f.Fatal(err)
				}
				pkl, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					f.Fatal(err)
				}
				f.Add(pkl)
			}
		}
	}
	f.Add(tensorPickle("FloatStorage", "0", 6, 1, []int64{2, 2}, []int64{1, 2}))
	f.Fuzz(func(t *testing.T, pkl []byte) {
		var b bytes.Buffer
		w := zip.NewWriter(&b)
		add := func(name string, data []byte) {
			fw, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
			if err != nil {
				t.Fatal(err)
			}
			fw.Write(data)
		}
		add("archive/data.pkl", pkl)
		for _, k := range []string{"0", "1", "2", "3", "4", "5", "6", "7"} {
			add("archive/data/"+k, make([]byte, 24))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, _ = read(b.Bytes())
	})
}
