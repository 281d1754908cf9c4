package serve

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// ElementSize returns the byte size of one element of datatype dt in the
// raw (binary) layout, 0 for BYTES (variable) and -1 for an unknown type.
func ElementSize(dt string) int {
	switch dt {
	case TypeBool, TypeInt8, TypeUint8:
		return 1
	case TypeInt16, TypeUint16, TypeFP16, TypeBF16:
		return 2
	case TypeInt32, TypeUint32, TypeFP32:
		return 4
	case TypeInt64, TypeUint64, TypeFP64:
		return 8
	case TypeBytes:
		return 0
	}
	return -1
}

func isFloatType(dt string) bool {
	return dt == TypeFP16 || dt == TypeBF16 || dt == TypeFP32 || dt == TypeFP64
}

func isIntType(dt string) bool {
	switch dt {
	case TypeInt8, TypeInt16, TypeInt32, TypeInt64, TypeUint8, TypeUint16, TypeUint32, TypeUint64:
		return true
	}
	return false
}

// dataCount returns how many elements the set data field holds and which
// field it is.
func (t *Tensor) dataCount() (int, string) {
	switch {
	case t.FP32 != nil:
		return len(t.FP32), "FP32"
	case t.FP64 != nil:
		return len(t.FP64), "FP64"
	case t.Ints != nil:
		return len(t.Ints), "Ints"
	case t.Bytes != nil:
		return len(t.Bytes), "Bytes"
	}
	return -1, "Raw"
}

// rawCheck checks the raw byte length for n elements of t.Datatype.
func (t *Tensor) rawCheck(n int) error {
	size := ElementSize(t.Datatype)
	if size <= 0 {
		return fmt.Errorf("datatype %q cannot be read as numbers", t.Datatype)
	}
	if len(t.Raw) != n*size {
		return fmt.Errorf("shape %v needs %d bytes of %s data, got %d", t.Shape, n*size, t.Datatype, len(t.Raw))
	}
	return nil
}

// checkData validates the datatype and the element count against n.
func (t *Tensor) checkData(n int) error {
	if ElementSize(t.Datatype) < 0 {
		return fmt.Errorf("unknown datatype %q", t.Datatype)
	}
	if t.Datatype == TypeBytes || t.Datatype == TypeBool {
		return fmt.Errorf("datatype %s is not accepted: the model takes numbers", t.Datatype)
	}
	count, field := t.dataCount()
	if count < 0 {
		return t.rawCheck(n)
	}
	switch {
	case field == "Bytes", field == "Ints" && !isIntType(t.Datatype),
		(field == "FP32" || field == "FP64") && !isFloatType(t.Datatype):
		return fmt.Errorf("data does not match datatype %s", t.Datatype)
	}
	if count != n {
		return fmt.Errorf("shape %v has %d elements, data has %d", t.Shape, n, count)
	}
	return nil
}

// toFloat32s converts t's data (any float or integer datatype) to float32;
// data that needs converting goes into dst when it has the capacity.
func toFloat32s(t *Tensor, n int, dst []float32) ([]float32, error) {
	if err := t.checkData(n); err != nil {
		return nil, err
	}
	switch {
	case t.FP32 != nil:
		return t.FP32, nil
	case t.FP64 != nil:
		out := make([]float32, n)
		for i, v := range t.FP64 {
			out[i] = float32(v)
		}
		return out, nil
	case t.Ints != nil:
		out := make([]float32, n)
		for i, v := range t.Ints {
			out[i] = float32(v)
		}
		return out, nil
	}
	var out []float32
	if cap(dst) >= n {
		out = dst[:n]
	} else {
		out = make([]float32, n)
	}
	b := t.Raw
	switch t.Datatype {
	case TypeFP32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case TypeFP64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case TypeFP16:
		for i := range out {
			out[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case TypeBF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	default:
		ints, err := rawInts(t.Datatype, b, n)
		if err != nil {
			return nil, err
		}
		for i, v := range ints {
			out[i] = float32(v)
		}
	}
	return out, nil
}

// toInt64s converts t's data (integer datatypes only) to int64.
func toInt64s(t *Tensor, n int) ([]int64, error) {
	if isFloatType(t.Datatype) {
		return nil, fmt.Errorf("datatype %s is not accepted: the model takes integers", t.Datatype)
	}
	if err := t.checkData(n); err != nil {
		return nil, err
	}
	if t.Ints != nil {
		return t.Ints, nil
	}
	return rawInts(t.Datatype, t.Raw, n)
}

// rawInts decodes n little-endian integers of datatype dt.
func rawInts(dt string, b []byte, n int) ([]int64, error) {
	out := make([]int64, n)
	le := binary.LittleEndian
	for i := range out {
		switch dt {
		case TypeInt8:
			out[i] = int64(int8(b[i]))
		case TypeUint8, TypeBool:
			out[i] = int64(b[i])
		case TypeInt16:
			out[i] = int64(int16(le.Uint16(b[2*i:])))
		case TypeUint16:
			out[i] = int64(le.Uint16(b[2*i:]))
		case TypeInt32:
			out[i] = int64(int32(le.Uint32(b[4*i:])))
		case TypeUint32:
			out[i] = int64(le.Uint32(b[4*i:]))
		case TypeInt64:
			out[i] = int64(le.Uint64(b[8*i:]))
		case TypeUint64:
			v := le.Uint64(b[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("UINT64 value %d does not fit the model's int64", v)
			}
			out[i] = int64(v)
		default:
			return nil, fmt.Errorf("datatype %s is not an integer type", dt)
		}
	}
	return out, nil
}

// halfToFloat converts IEEE 754 binary16 bits to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// RawBytes returns t's data in the raw little-endian layout of its
// datatype (BYTES: each element as a uint32 length then its bytes), as the
// binary extension and gRPC's raw_output_contents carry it. A tensor that
// already holds Raw returns it unchanged.
func (t *Tensor) RawBytes() []byte {
	switch {
	case t.Raw != nil:
		return t.Raw
	case t.Bytes != nil:
		n := 0
		for _, b := range t.Bytes {
			n += 4 + len(b)
		}
		out := make([]byte, 0, n)
		for _, b := range t.Bytes {
			out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
			out = append(out, b...)
		}
		return out
	case t.FP32 != nil:
		out := make([]byte, 4*len(t.FP32))
		for i, v := range t.FP32 {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out
	case t.FP64 != nil:
		out := make([]byte, 8*len(t.FP64))
		for i, v := range t.FP64 {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(v))
		}
		return out
	case t.Ints != nil:
		size := ElementSize(t.Datatype)
		if size <= 0 {
			size = 8
		}
		out := make([]byte, size*len(t.Ints))
		for i, v := range t.Ints {
			switch size {
			case 1:
				out[i] = byte(v)
			case 2:
				binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
			case 4:
				binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
			default:
				binary.LittleEndian.PutUint64(out[8*i:], uint64(v))
			}
		}
		return out
	}
	return []byte{}
}

// rawSize is len(t.RawBytes()).
func (t *Tensor) rawSize() int {
	switch {
	case t.Raw != nil:
		return len(t.Raw)
	case t.FP32 != nil:
		return 4 * len(t.FP32)
	}
	return len(t.RawBytes())
}

// appendRaw appends t.RawBytes() to buf, without a copy for FP32 data.
func (t *Tensor) appendRaw(buf []byte) []byte {
	if t.Raw == nil && t.FP32 != nil {
		buf = slices.Grow(buf, 4*len(t.FP32))
		for _, v := range t.FP32 {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		return buf
	}
	return append(buf, t.RawBytes()...)
}

// textElements returns the n elements of a BYTES tensor: its Bytes, or its
// raw layout (each element a uint32 little-endian length then its bytes,
// as the binary extension and gRPC raw_input_contents carry them). The
// elements alias t's data.
func (t *Tensor) textElements(n int) ([][]byte, error) {
	if t.Datatype != TypeBytes {
		return nil, fmt.Errorf("datatype %s is not BYTES", t.Datatype)
	}
	if count, field := t.dataCount(); count >= 0 {
		if field != "Bytes" {
			return nil, fmt.Errorf("data does not match datatype %s", t.Datatype)
		}
		if count != n {
			return nil, fmt.Errorf("shape %v has %d elements, data has %d", t.Shape, n, count)
		}
		return t.Bytes, nil
	}
	out := make([][]byte, 0, min(n, len(t.Raw)/4+1))
	b := t.Raw
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("raw BYTES data: element %d has a truncated length prefix (%d bytes)", len(out), len(b))
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return nil, fmt.Errorf("raw BYTES data: element %d has length %d but only %d bytes follow", len(out), l, len(b)-4)
		}
		if len(out) == n {
			return nil, fmt.Errorf("shape %v has %d elements, raw BYTES data has more", t.Shape, n)
		}
		out = append(out, b[4:4+l:4+l])
		b = b[4+l:]
	}
	if len(out) != n {
		return nil, fmt.Errorf("shape %v has %d elements, raw BYTES data has %d", t.Shape, n, len(out))
	}
	return out, nil
}
