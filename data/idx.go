package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// IDXType is the element type code of an IDX file (the third magic byte).
type IDXType byte

// IDX element types.
const (
	IDXUint8   IDXType = 0x08
	IDXInt8    IDXType = 0x09
	IDXInt16   IDXType = 0x0B
	IDXInt32   IDXType = 0x0C
	IDXFloat32 IDXType = 0x0D
	IDXFloat64 IDXType = 0x0E
)

// Size returns the size of one element in bytes (0 for unknown types).
func (t IDXType) Size() int {
	switch t {
	case IDXUint8, IDXInt8:
		return 1
	case IDXInt16:
		return 2
	case IDXInt32, IDXFloat32:
		return 4
	case IDXFloat64:
		return 8
	}
	return 0
}

func (t IDXType) String() string {
	switch t {
	case IDXUint8:
		return "ubyte"
	case IDXInt8:
		return "byte"
	case IDXInt16:
		return "short"
	case IDXInt32:
		return "int"
	case IDXFloat32:
		return "float"
	case IDXFloat64:
		return "double"
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(t))
}

// maxIDXBytes bounds the payload an IDX header may declare (16 GiB).
const maxIDXBytes = 1 << 34

// maxIDXDims bounds the number of dimensions an IDX header may declare.
const maxIDXDims = 16

// IDX is the content of an IDX file (the format of the MNIST files): an
// element type, dimensions, and the raw big-endian payload.
type IDX struct {
	// Type is the element type.
	Type IDXType
	// Dims are the dimensions, outermost first.
	Dims []int
	// Raw is the payload as stored: prod(Dims) big-endian elements.
	Raw []byte
}

// Len returns the number of elements.
func (x *IDX) Len() int { return len(x.Raw) / x.Type.Size() }

// Float32s converts every element to float32 (scale multiplies each value,
// e.g. 1/255 for pixels).
func (x *IDX) Float32s(scale float32) []float32 {
	n := x.Len()
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(x.at(i)) * scale
	}
	return out
}

// Int64s converts every element to int64 (floating values are truncated).
func (x *IDX) Int64s() []int64 {
	n := x.Len()
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(x.at(i))
	}
	return out
}

// at returns element i as float64.
func (x *IDX) at(i int) float64 {
	r := x.Raw
	switch x.Type {
	case IDXUint8:
		return float64(r[i])
	case IDXInt8:
		return float64(int8(r[i]))
	case IDXInt16:
		return float64(int16(binary.BigEndian.Uint16(r[2*i:])))
	case IDXInt32:
		return float64(int32(binary.BigEndian.Uint32(r[4*i:])))
	case IDXFloat32:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(r[4*i:])))
	case IDXFloat64:
		return math.Float64frombits(binary.BigEndian.Uint64(r[8*i:]))
	}
	return 0
}

// ReadIDX reads an IDX file, raw or gzip-compressed (detected by the gzip
// magic bytes 1f 8b). It checks the magic number, element type, number of
// dimensions and sizes, and that the payload is complete with nothing after
// it. Errors start with "idx:" and say what is wrong.
func ReadIDX(r io.Reader) (*IDX, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err != nil {
		return nil, fmt.Errorf("idx: file too short for a header (%d bytes): %w", len(head), errOrEOF(err))
	}
	var src io.Reader = br
	gz := head[0] == 0x1f && head[1] == 0x8b
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("idx: bad gzip header: %w", err)
		}
		zr.Multistream(false)
		defer zr.Close()
		src = zr
	}
	x, err := readIDX(src)
	if err != nil {
		if gz && errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("idx: gzip stream truncated (incomplete download?): %w", err)
		}
		if gz && !isIDXError(err) {
			return nil, fmt.Errorf("idx: corrupt gzip stream: %w", err)
		}
		return nil, err
	}
	return x, nil
}

type idxError struct{ msg string }

func (e *idxError) Error() string { return "idx: " + e.msg }

func idxErrorf(format string, a ...any) error { return &idxError{fmt.Sprintf(format, a...)} }

func isIDXError(err error) bool {
	var e *idxError
	return errors.As(err, &e)
}

func errOrEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readIDX parses the decompressed stream. Reader errors other than a clean
// end of data are returned unwrapped so the caller can blame gzip.
func readIDX(r io.Reader) (*IDX, error) {
	var magic [4]byte
	if n, err := io.ReadFull(r, magic[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, idxErrorf("file too short for the 4-byte magic number (%d bytes)", n)
		}
		return nil, err
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, idxErrorf("bad magic number %02x %02x %02x %02x: an IDX file starts with two zero bytes", magic[0], magic[1], magic[2], magic[3])
	}
	t := IDXType(magic[2])
	if t.Size() == 0 {
		return nil, idxErrorf("unknown element type code 0x%02x (want 08 ubyte, 09 byte, 0B short, 0C int, 0D float or 0E double)", magic[2])
	}
	nd := int(magic[3])
	if nd == 0 || nd > maxIDXDims {
		return nil, idxErrorf("%d dimensions in header, want 1 to %d", nd, maxIDXDims)
	}
	hdr := make([]byte, 4*nd)
	if n, err := io.ReadFull(r, hdr); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, idxErrorf("header truncated: %d dimensions need %d bytes, got %d", nd, 4*nd, n)
		}
		return nil, err
	}
	dims := make([]int, nd)
	total := int64(t.Size())
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4*i:])
		if d > math.MaxInt32 {
			return nil, idxErrorf("dimension %d is %d, too large", i, d)
		}
		dims[i] = int(d)
		if d > 0 && total > maxIDXBytes/int64(d) {
			return nil, idxErrorf("dimensions %v of %v exceed the %d-byte limit", dims[:i+1], t, int64(maxIDXBytes))
		}
		total *= int64(d)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(total, 16<<20)))
	n, err := io.CopyN(&buf, r, total)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, idxErrorf("data truncated: dimensions %v of %v need %d bytes, got %d", dims, t, total, n)
		}
		return nil, err
	}
	var extra [1]byte
	if k, err := io.ReadFull(r, extra[:]); k > 0 {
		return nil, idxErrorf("trailing bytes after the %d-byte payload of dimensions %v", total, dims)
	} else if err != io.EOF {
		return nil, err
	}
	return &IDX{Type: t, Dims: dims, Raw: buf.Bytes()}, nil
}

// ReadIDXFile reads an IDX file (raw or gzip) from disk; errors name the file.
func ReadIDXFile(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	x, err := ReadIDX(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return x, nil
}
