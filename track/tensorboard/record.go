package tensorboard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// castagnoli is the CRC-32C table TFRecord framing uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC returns TFRecord's masked CRC-32C of b:
// rot15(crc32c(b)) + 0xa282ead8, in uint32 arithmetic.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

// MaxRecordSize is the largest record RecordReader accepts (256 MiB); a
// length above it is reported as corruption rather than allocated.
const MaxRecordSize = 256 << 20

// ErrCorrupt is wrapped by RecordReader errors for records whose length or
// data fails its CRC, or whose length is implausible.
var ErrCorrupt = errors.New("tensorboard: corrupt record")

// appendRecord appends data framed as one TFRecord: uint64 LE length,
// masked CRC of the length bytes, the data, masked CRC of the data.
func appendRecord(dst, data []byte) []byte {
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], MaskedCRC(hdr[:8]))
	dst = append(dst, hdr[:]...)
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, MaskedCRC(data))
}

// RecordReader reads TFRecord-framed records (the framing of TensorBoard
// event files), checking both CRCs of every record.
type RecordReader struct {
	r      io.Reader
	offset int64
	buf    bytes.Buffer
}

// NewRecordReader returns a reader of the records in r.
func NewRecordReader(r io.Reader) *RecordReader { return &RecordReader{r: r} }

// Offset returns the byte offset of the next record.
func (rr *RecordReader) Offset() int64 { return rr.offset }

// Next returns the next record's data, valid until the next call. At a clean
// end of input it returns io.EOF; a record cut short gives an error wrapping
// io.ErrUnexpectedEOF, and a CRC mismatch one wrapping ErrCorrupt. Errors
// name the record's byte offset.
func (rr *RecordReader) Next() ([]byte, error) {
	var hdr [12]byte
	n, err := io.ReadFull(rr.r, hdr[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard: record at offset %d: header has %d of 12 bytes: %w", rr.offset, n, io.ErrUnexpectedEOF)
	}
	if got, want := binary.LittleEndian.Uint32(hdr[8:]), MaskedCRC(hdr[:8]); got != want {
		return nil, fmt.Errorf("%w at offset %d: length CRC %#08x, want %#08x", ErrCorrupt, rr.offset, got, want)
	}
	size := binary.LittleEndian.Uint64(hdr[:8])
	if size > MaxRecordSize {
		return nil, fmt.Errorf("%w at offset %d: length %d exceeds %d", ErrCorrupt, rr.offset, size, MaxRecordSize)
	}
	// Read through a growing buffer so that a large length on a short input
	// does not allocate the whole length up front.
	rr.buf.Reset()
	got, err := io.CopyN(&rr.buf, rr.r, int64(size)+4)
	if err == io.EOF || got < int64(size)+4 {
		return nil, fmt.Errorf("tensorboard: record at offset %d: %d of %d data and CRC bytes: %w", rr.offset, got, size+4, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard: record at offset %d: %w", rr.offset, err)
	}
	b := rr.buf.Bytes()
	data := b[:size]
	if got, want := binary.LittleEndian.Uint32(b[size:]), MaskedCRC(data); got != want {
		return nil, fmt.Errorf("%w at offset %d: data CRC %#08x, want %#08x", ErrCorrupt, rr.offset, got, want)
	}
	rr.offset += 16 + int64(size)
	return data, nil
}

// ReadRecords reads every record of r (see RecordReader.Next), returning
// copies of their data. On error it returns the records read before it.
func ReadRecords(r io.Reader) ([][]byte, error) {
	rr := NewRecordReader(r)
	var out [][]byte
	for {
		b, err := rr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(b))
	}
}
