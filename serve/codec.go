package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxDataDepth bounds the nesting of a tensor's JSON data.
const maxDataDepth = 32

// dataDecoder parses a JSON tensor "data" value: a number, boolean or
// string, or arrays of them nested to any regular or irregular shape
// (nested and flat are the same data, row-major). It records the nested
// shape when it is regular.
type dataDecoder struct {
	b   []byte
	pos int
	dt  string

	f32  []float32
	f64  []float64
	ints []int64
	strs [][]byte

	n       int
	shape   []int64 // length of the arrays at each depth
	leaf    int     // depth of the values, -1 until the first
	regular bool
}

// decodeData parses raw into a tensor's data field according to dt. It
// returns the tensor with the field set and the nested shape (nil when
// irregular).
func decodeData(raw []byte, dt string) (Tensor, []int64, error) {
	if ElementSize(dt) < 0 {
		return Tensor{}, nil, fmt.Errorf("unknown datatype %q", dt)
	}
	d := &dataDecoder{b: raw, dt: dt, leaf: -1, regular: true}
	d.skipSpace()
	if err := d.value(0); err != nil {
		return Tensor{}, nil, err
	}
	d.skipSpace()
	if d.pos != len(d.b) {
		return Tensor{}, nil, fmt.Errorf("data: unexpected %q at offset %d", d.b[d.pos], d.pos)
	}
	t := Tensor{Datatype: dt}
	switch {
	case dt == TypeFP64:
		t.FP64 = nonNil(d.f64)
	case isFloatType(dt):
		t.FP32 = nonNil(d.f32)
	case dt == TypeBytes:
		t.Bytes = d.strs
		if t.Bytes == nil {
			t.Bytes = [][]byte{}
		}
	default:
		t.Ints = nonNil(d.ints)
	}
	var shape []int64
	if d.regular {
		shape = d.shape
		if shape == nil {
			shape = []int64{}
		}
	}
	return t, shape, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (d *dataDecoder) skipSpace() {
	for d.pos < len(d.b) {
		switch d.b[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *dataDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("data at offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *dataDecoder) value(depth int) error {
	if d.pos >= len(d.b) {
		return d.errorf("unexpected end")
	}
	if d.b[d.pos] == '[' {
		return d.array(depth)
	}
	if d.leaf == -1 {
		d.leaf = depth
	} else if d.leaf != depth {
		d.regular = false
	}
	if d.n >= MaxElements {
		return d.errorf("more than %d elements", MaxElements)
	}
	d.n++
	switch c := d.b[d.pos]; {
	case c == '"':
		return d.str()
	case c == 't' || c == 'f':
		return d.boolean()
	default:
		return d.number()
	}
}

func (d *dataDecoder) array(depth int) error {
	if depth >= maxDataDepth {
		return d.errorf("nested deeper than %d", maxDataDepth)
	}
	d.pos++ // [
	if depth == len(d.shape) {
		d.shape = append(d.shape, -1) // filled in when the first array at this depth closes
	}
	count := int64(0)
	d.skipSpace()
	if d.pos < len(d.b) && d.b[d.pos] == ']' {
		d.pos++
	} else {
		for {
			d.skipSpace()
			if err := d.value(depth + 1); err != nil {
				return err
			}
			count++
			d.skipSpace()
			if d.pos >= len(d.b) {
				return d.errorf("unexpected end in array")
			}
			if d.b[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.b[d.pos] == ']' {
				d.pos++
				break
			}
			return d.errorf("expected ',' or ']', got %q", d.b[d.pos])
		}
	}
	if count == 0 && d.leaf != -1 && d.leaf <= depth {
		d.regular = false
	}
	switch {
	case depth >= len(d.shape):
		d.regular = false
	case d.shape[depth] == -1:
		d.shape[depth] = count
	case d.shape[depth] != count:
		d.regular = false
	}
	return nil
}

// token returns the bare token (number, literal) at pos.
func (d *dataDecoder) token() []byte {
	start := d.pos
	for d.pos < len(d.b) {
		switch d.b[d.pos] {
		case ',', ']', ' ', '\t', '\n', '\r':
			return d.b[start:d.pos]
		}
		d.pos++
	}
	return d.b[start:d.pos]
}

func (d *dataDecoder) number() error {
	tok := d.token()
	if len(tok) == 0 {
		return d.errorf("expected a value")
	}
	switch {
	case isFloatType(d.dt):
		v, err := strconv.ParseFloat(string(tok), 64)
		if err != nil || !validJSONNumber(tok) {
			if f, ok := nonFinite(tok); ok {
				v = f
			} else {
				return d.errorf("%q is not a number", tok)
			}
		}
		d.addFloat(v)
	case isIntType(d.dt):
		v, err := strconv.ParseInt(string(tok), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(tok), 64)
			if ferr != nil || !validJSONNumber(tok) || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return d.errorf("%q is not an integer (datatype %s)", tok, d.dt)
			}
			v = int64(f)
		}
		d.ints = append(d.ints, v)
	case d.dt == TypeBool:
		return d.errorf("%q is not a boolean (datatype BOOL)", tok)
	default:
		return d.errorf("%q is not a string (datatype BYTES)", tok)
	}
	return nil
}

func (d *dataDecoder) addFloat(v float64) {
	if d.dt == TypeFP64 {
		d.f64 = append(d.f64, v)
	} else {
		d.f32 = append(d.f32, float32(v))
	}
}

// validJSONNumber rejects the Go-only spellings ParseFloat accepts
// (hex, underscores, "inf", leading '+').
func validJSONNumber(tok []byte) bool {
	for i, c := range tok {
		switch {
		case c >= '0' && c <= '9', c == '.', c == 'e', c == 'E':
		case c == '-' || c == '+':
			if i == 0 && c == '+' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// nonFinite reads NaN and infinity spellings (TF-Serving's bare tokens and
// their string forms).
func nonFinite(tok []byte) (float64, bool) {
	switch string(tok) {
	case "NaN", "nan", "NAN":
		return math.NaN(), true
	case "Infinity", "inf", "Inf", "+Infinity", "+inf":
		return math.Inf(1), true
	case "-Infinity", "-inf", "-Inf":
		return math.Inf(-1), true
	}
	return 0, false
}

func (d *dataDecoder) boolean() error {
	tok := d.token()
	var v int64
	switch string(tok) {
	case "true":
		v = 1
	case "false":
	default:
		return d.errorf("%q is not a value", tok)
	}
	if d.dt != TypeBool {
		return d.errorf("boolean value for datatype %s", d.dt)
	}
	d.ints = append(d.ints, v)
	return nil
}

func (d *dataDecoder) str() error {
	start := d.pos
	d.pos++
	for d.pos < len(d.b) {
		switch d.b[d.pos] {
		case '\\':
			d.pos += 2
			continue
		case '"':
			d.pos++
			raw := d.b[start:d.pos]
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return d.errorf("bad string: %v", err)
			}
			if d.dt == TypeBytes {
				d.strs = append(d.strs, []byte(s))
				return nil
			}
			if f, ok := nonFinite([]byte(s)); ok && isFloatType(d.dt) {
				d.addFloat(f)
				return nil
			}
			return d.errorf("string %s for datatype %s", truncate(raw, 40), d.dt)
		}
		d.pos++
	}
	return d.errorf("unterminated string")
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]) + "…"
}

// quoteNonFinite rewrites the bare tokens NaN, Infinity and -Infinity
// outside JSON strings into strings ("NaN"), so that encoding/json accepts
// the document and decodeData reads them as floats. Bodies without such
// tokens are returned unchanged.
func quoteNonFinite(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
		return b
	}
	var out []byte
	last := 0
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			continue
		}
		for _, tok := range [...]string{"NaN", "Infinity", "-Infinity"} {
			if c == tok[0] && bytes.HasPrefix(b[i:], []byte(tok)) {
				out = append(out, b[last:i]...)
				out = append(out, '"')
				out = append(out, tok...)
				out = append(out, '"')
				i += len(tok) - 1
				last = i + 1
				break
			}
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// appendFloat appends v as a JSON number; NaN and infinities are written as
// the bare tokens NaN, Infinity and -Infinity (as Python's json module and
// TF-Serving do).
func appendFloat(buf []byte, v float64, bits int) []byte {
	switch {
	case math.IsNaN(v):
		return append(buf, "NaN"...)
	case math.IsInf(v, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(v, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, v, 'g', -1, bits)
}

// appendString appends s as a JSON string.
func appendString(buf []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		buf = append(buf, '"')
		buf = append(buf, s...)
		return append(buf, '"')
	}
	b, err := json.Marshal(s)
	if err != nil {
		return append(buf, `""`...)
	}
	return append(buf, b...)
}

// appendData appends t's data as a flat JSON array.
func appendData(buf []byte, t *Tensor) []byte {
	buf = append(buf, '[')
	switch {
	case t.FP32 != nil:
		for i, v := range t.FP32 {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendFloat(buf, float64(v), 32)
		}
	case t.FP64 != nil:
		for i, v := range t.FP64 {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendFloat(buf, v, 64)
		}
	case t.Ints != nil:
		for i, v := range t.Ints {
			if i > 0 {
				buf = append(buf, ',')
			}
			if t.Datatype == TypeBool {
				buf = strconv.AppendBool(buf, v != 0)
			} else {
				buf = strconv.AppendInt(buf, v, 10)
			}
		}
	case t.Bytes != nil:
		for i, v := range t.Bytes {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, string(v))
		}
	}
	return append(buf, ']')
}

// appendNested appends t's data nested by shape[1:] per row of dimension 0
// (TF-Serving's row format); a scalar or rank-1 tensor is appended flat.
func appendNested(buf []byte, t *Tensor, shape []int64) []byte {
	if len(shape) <= 1 {
		return appendData(buf, t)
	}
	var walk func(off int64, dims []int64) int64
	walk = func(off int64, dims []int64) int64 {
		buf = append(buf, '[')
		if len(dims) == 1 {
			for i := int64(0); i < dims[0]; i++ {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendElem(buf, t, off+i)
			}
			buf = append(buf, ']')
			return off + dims[0]
		}
		for i := int64(0); i < dims[0]; i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			off = walk(off, dims[1:])
		}
		buf = append(buf, ']')
		return off
	}
	walk(0, shape)
	return buf
}

func appendElem(buf []byte, t *Tensor, i int64) []byte {
	switch {
	case t.FP32 != nil && i < int64(len(t.FP32)):
		return appendFloat(buf, float64(t.FP32[i]), 32)
	case t.FP64 != nil && i < int64(len(t.FP64)):
		return appendFloat(buf, t.FP64[i], 64)
	case t.Ints != nil && i < int64(len(t.Ints)):
		return strconv.AppendInt(buf, t.Ints[i], 10)
	case t.Bytes != nil && i < int64(len(t.Bytes)):
		return appendString(buf, string(t.Bytes[i]))
	}
	return append(buf, "null"...)
}

// jsonParams converts decoded JSON parameters to the typed values of
// InferRequest.Parameters: integral numbers become int64.
func jsonParams(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			out[k] = int64(f)
			continue
		}
		out[k] = v
	}
	return out
}

// paramInt reads a non-negative integer parameter.
func paramInt(m map[string]any, key string) (int64, bool, error) {
	v, ok := m[key]
	if !ok {
		return 0, false, nil
	}
	switch x := v.(type) {
	case int64:
		if x >= 0 {
			return x, true, nil
		}
	case float64:
		if x >= 0 && x == math.Trunc(x) && x < 1<<53 {
			return int64(x), true, nil
		}
	}
	return 0, true, fmt.Errorf("parameter %q must be a non-negative integer, got %v", key, v)
}

// paramBool reads a boolean parameter.
func paramBool(m map[string]any, key string) (bool, bool, error) {
	v, ok := m[key]
	if !ok {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, true, fmt.Errorf("parameter %q must be a boolean, got %v", key, v)
	}
	return b, true, nil
}
