package tensorboard_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"testing"

	"github.com/deepgo/deepgo/track/tensorboard"
)

func TestCRC32CVectors(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	if got := crc32.Checksum([]byte("123456789"), tab); got != 0xE3069283 {
		t.Fatalf("crc32c(123456789) = %#x, want 0xE3069283", got)
	}
	if got := tensorboard.MaskedCRC([]byte("123456789")); got != 0xC78AB0E5 {
		t.Fatalf("masked crc32c(123456789) = %#x, want 0xC78AB0E5", got)
	}
	// RFC 3720 B.4: 32 bytes of zeros and of 0xff.
	if got := crc32.Checksum(make([]byte, 32), tab); got != 0x8A9136AA {
		t.Fatalf("crc32c(32 zeros) = %#x", got)
	}
	if got := crc32.Checksum(bytes.Repeat([]byte{0xff}, 32), tab); got != 0x62A8AB43 {
		t.Fatalf("crc32c(32 x 0xff) = %#x", got)
	}
}

// frame builds a record by hand, independently of the writer.
func frame(data []byte) []byte {
	mask := func(b []byte) uint32 {
		c := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
		return (c>>15 | c<<17) + 0xa282ead8
	}
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, mask(b[:8]))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, mask(data))
}

// writtenFile returns the bytes of an event file with a few records.
func writtenFile(t *testing.T) []byte {
	t.Helper()
	w, err := tensorboard.NewWriterOptions(t.TempDir(), tensorboard.Options{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Scalar("loss", float64(i)/3, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Histogram("w", []float32{-1, 0, 0.5, 2}, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordFramingMatchesHandBuilt(t *testing.T) {
	b := writtenFile(t)
	recs, err := tensorboard.ReadRecords(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5", len(recs))
	}
	var rebuilt []byte
	for _, r := range recs {
		rebuilt = append(rebuilt, frame(r)...)
	}
	if !bytes.Equal(rebuilt, b) {
		t.Fatal("the file's framing differs from the hand-built framing of its records")
	}
	// Empty and binary records read back.
	in := append(frame(nil), frame([]byte{0, 1, 2, 0xff})...)
	recs, err = tensorboard.ReadRecords(bytes.NewReader(in))
	if err != nil || len(recs) != 2 || len(recs[0]) != 0 || !bytes.Equal(recs[1], []byte{0, 1, 2, 0xff}) {
		t.Fatalf("got %q, %v", recs, err)
	}
}

func TestRecordReaderTruncated(t *testing.T) {
	b := writtenFile(t)
	full, err := tensorboard.ReadRecords(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// Record boundaries: cutting exactly there is a clean (shorter) file.
	bounds := map[int]bool{0: true}
	off := 0
	for _, r := range full {
		off += 16 + len(r)
		bounds[off] = true
	}
	for cut := range len(b) {
		recs, err := tensorboard.ReadRecords(bytes.NewReader(b[:cut]))
		if bounds[cut] {
			if err != nil {
				t.Fatalf("cut at record boundary %d: %v", cut, err)
			}
			continue
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d of %d: error %v, want io.ErrUnexpectedEOF", cut, len(b), err)
		}
		for i, r := range recs {
			if !bytes.Equal(r, full[i]) {
				t.Fatalf("cut at %d: record %d differs", cut, i)
			}
		}
	}
}

func TestRecordReaderCorrupt(t *testing.T) {
	b := writtenFile(t)
	for _, pos := range []int{0, 3, 8, 11, 12, 20, len(b) - 1} {
		c := bytes.Clone(b)
		c[pos] ^= 0x10
		_, err := tensorboard.ReadRecords(bytes.NewReader(c))
		if err == nil {
			t.Fatalf("flipping a bit of byte %d: no error", pos)
		}
		// A flipped length bit fails the length CRC before anything else.
		if pos < 12 && !errors.Is(err, tensorboard.ErrCorrupt) {
			t.Fatalf("flipping byte %d: %v, want ErrCorrupt", pos, err)
		}
	}
	// A huge length with a valid CRC is rejected without allocating it.
	var hdr []byte
	hdr = binary.LittleEndian.AppendUint64(hdr, 1<<40)
	hdr = binary.LittleEndian.AppendUint32(hdr, tensorboard.MaskedCRC(hdr))
	if _, err := tensorboard.ReadRecords(bytes.NewReader(hdr)); !errors.Is(err, tensorboard.ErrCorrupt) {
		t.Fatalf("huge length: %v", err)
	}
	// A plausible length on a short input is a truncation.
	hdr = binary.LittleEndian.AppendUint64(nil, 1<<20)
	hdr = binary.LittleEndian.AppendUint32(hdr, tensorboard.MaskedCRC(hdr))
	if _, err := tensorboard.ReadRecords(bytes.NewReader(append(hdr, 1, 2, 3))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short data: %v", err)
	}
}

func FuzzReadRecords(f *testing.F) {
	f.Add([]byte{})
	f.Add(frame([]byte("hello")))
	f.Add(append(frame(nil), frame([]byte{1, 2, 3})...))
	f.Add(frame([]byte("x"))[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		rr := tensorboard.NewRecordReader(bytes.NewReader(b))
		total := 0
		for {
			r, err := rr.Next()
			if err == io.EOF {
				if total != len(b) {
					t.Fatalf("clean end after %d of %d bytes", total, len(b))
				}
				return
			}
			if err != nil {
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, tensorboard.ErrCorrupt) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			total += 16 + len(r)
			if int64(total) != rr.Offset() {
				t.Fatalf("offset %d, want %d", rr.Offset(), total)
			}
			// A record that reads back re-frames to the same bytes.
			if fr := frame(r); !bytes.Equal(fr, b[total-len(fr):total]) {
				t.Fatal("record does not re-frame to its input bytes")
			}
		}
	})
}
