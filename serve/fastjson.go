package serve

import (
	"math"
	"strconv"
)

// fastRequest parses the JSON part of a REST infer request without
// reflection, for the common shape of the document: an object with the
// keys id, parameters, inputs and outputs spelled exactly so, strings
// without escapes or non-ASCII bytes, parameters holding strings, numbers
// and booleans, integer shapes, and data made of numbers, booleans,
// strings, NaN/Infinity tokens and arrays. It reports false for anything
// else (including every invalid document); DecodeInferRequest then uses
// encoding/json, so both paths accept the same documents with the same
// result.
func fastRequest(b []byte) (restRequest, bool) {
	p := fastParser{b: b}
	var rr restRequest
	ok := p.object(func(key string) bool {
		var ok bool
		switch key {
		case "id":
			rr.ID, ok = p.str()
		case "parameters":
			rr.Parameters, ok = p.params()
		case "inputs":
			rr.Inputs, ok = objects(&p, p.input)
		case "outputs":
			rr.Outputs, ok = objects(&p, p.output)
		}
		return ok
	})
	p.space()
	rr.typed = true
	return rr, ok && p.pos == len(p.b)
}

// fastParser is the cursor of fastRequest.
type fastParser struct {
	b   []byte
	pos int
}

func (p *fastParser) space() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// consume skips space and then c, reporting whether c was there.
func (p *fastParser) consume(c byte) bool {
	p.space()
	if p.pos < len(p.b) && p.b[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// object parses {"key": value, ...}, calling field for each key with the
// cursor before the value; a repeated key is refused.
func (p *fastParser) object(field func(key string) bool) bool {
	if !p.consume('{') {
		return false
	}
	if p.consume('}') {
		return true
	}
	var seen [8]string
	n := 0
	for {
		p.space()
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return false
		}
		for _, k := range seen[:n] {
			if k == key {
				return false
			}
		}
		if n == len(seen) {
			return false
		}
		seen[n] = key
		n++
		if !field(key) {
			return false
		}
		if p.consume(',') {
			continue
		}
		return p.consume('}')
	}
}

func (p *fastParser) arrayStart() bool { return p.consume('[') }

// elements parses the elements of an array after its '[' and the ']'.
func (p *fastParser) elements(elem func() bool) bool {
	if p.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.consume(',') {
			continue
		}
		return p.consume(']')
	}
}

// str parses a string of printable ASCII without escapes.
func (p *fastParser) str() (string, bool) {
	p.space()
	if p.pos >= len(p.b) || p.b[p.pos] != '"' {
		return "", false
	}
	start := p.pos + 1
	for i := start; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			p.pos = i + 1
			return internJSON(p.b[start:i]), true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// internJSON returns b as a string, without allocating for the keys and
// values common in infer requests.
func internJSON(b []byte) string {
	switch string(b) {
	case "id":
		return "id"
	case "parameters":
		return "parameters"
	case "inputs":
		return "inputs"
	case "outputs":
		return "outputs"
	case "name":
		return "name"
	case "shape":
		return "shape"
	case "datatype":
		return "datatype"
	case "data":
		return "data"
	case "binary_data_size":
		return "binary_data_size"
	case "binary_data_output":
		return "binary_data_output"
	case "binary_data":
		return "binary_data"
	case "classification":
		return "classification"
	case TypeFP32:
		return TypeFP32
	case TypeFP64:
		return TypeFP64
	case TypeFP16:
		return TypeFP16
	case TypeInt64:
		return TypeInt64
	case TypeInt32:
		return TypeInt32
	case TypeUint8:
		return TypeUint8
	case "logits":
		return "logits"
	case ProbabilitiesOutput:
		return ProbabilitiesOutput
	}
	return string(b)
}

// number returns the extent of a strict JSON number at the cursor.
func (p *fastParser) number() ([]byte, bool) {
	n := jsonNumberLen(p.b[p.pos:])
	if n == 0 {
		return nil, false
	}
	tok := p.b[p.pos : p.pos+n]
	p.pos += n
	return tok, true
}

// jsonNumberLen returns the length of the JSON number
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at the start of b, or 0.
func jsonNumberLen(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0
		}
	}
	return i
}

// literal consumes word at the cursor when it is followed by a delimiter.
func (p *fastParser) literal(word string) bool {
	end := p.pos + len(word)
	if end > len(p.b) || string(p.b[p.pos:end]) != word {
		return false
	}
	if end < len(p.b) {
		switch p.b[end] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	p.pos = end
	return true
}

// params parses a parameters object of strings, numbers and booleans into
// the typed values of InferRequest.Parameters (what jsonParams makes of
// encoding/json's result): integral numbers below 2^53 are int64, other
// numbers float64.
func (p *fastParser) params() (map[string]any, bool) {
	m := make(map[string]any, 2)
	ok := p.object(func(key string) bool {
		p.space()
		if p.pos >= len(p.b) {
			return false
		}
		switch c := p.b[p.pos]; {
		case c == '"':
			s, ok := p.str()
			m[key] = s
			return ok
		case c == 't':
			m[key] = true
			return p.literal("true")
		case c == 'f':
			m[key] = false
			return p.literal("false")
		default:
			tok, ok := p.number()
			if !ok {
				return false
			}
			if i, err := strconv.ParseInt(string(tok), 10, 64); err == nil && i > -1<<53 && i < 1<<53 {
				m[key] = i
				return true
			}
			f, err := strconv.ParseFloat(string(tok), 64)
			if err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				m[key] = int64(f)
				return true
			}
			m[key] = f
			return err == nil
		}
	})
	return m, ok
}

// objects parses an array of objects into a new slice, calling field for
// each key of each element with the cursor before the value.
func objects[T any](p *fastParser, field func(v *T, key string) bool) ([]T, bool) {
	if !p.arrayStart() {
		return nil, false
	}
	out := []T{}
	ok := p.elements(func() bool {
		// The element is filled in place: a local passed to field would
		// escape to the heap.
		var zero T
		out = append(out, zero)
		v := &out[len(out)-1]
		return p.object(func(key string) bool { return field(v, key) })
	})
	return out, ok
}

// output parses one field of an output object.
func (p *fastParser) output(o *restOutput, key string) bool {
	var ok bool
	switch key {
	case "name":
		o.Name, ok = p.str()
	case "parameters":
		o.Parameters, ok = p.params()
	}
	return ok
}

// input parses one field of an input object.
func (p *fastParser) input(in *restInput, key string) bool {
	var ok bool
	switch key {
	case "name":
		in.Name, ok = p.str()
	case "datatype":
		in.Datatype, ok = p.str()
	case "parameters":
		in.Parameters, ok = p.params()
	case "shape":
		if !p.arrayStart() {
			return false
		}
		in.Shape = make([]int64, 0, 4)
		ok = p.elements(func() bool {
			p.space()
			tok, ok := p.number()
			if !ok {
				return false
			}
			d, err := strconv.ParseInt(string(tok), 10, 64)
			in.Shape = append(in.Shape, d)
			return err == nil
		})
	case "data":
		p.space()
		start := p.pos
		if ok = p.data(0); ok {
			in.Data = p.b[start:p.pos]
		}
	}
	return ok
}

// data skips a data value (numbers, booleans, escape-free strings, the
// bare tokens NaN, Infinity and -Infinity, and arrays of them), checking
// that it is valid JSON apart from those tokens.
func (p *fastParser) data(depth int) bool {
	if depth > maxDataDepth || p.pos >= len(p.b) {
		return false
	}
	switch c := p.b[p.pos]; {
	case c == '[':
		p.pos++
		return p.elements(func() bool {
			p.space()
			return p.data(depth + 1)
		})
	case c == '"':
		_, ok := p.str()
		return ok
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'N':
		return p.literal("NaN")
	case c == 'I':
		return p.literal("Infinity")
	case c == '-' && p.pos+1 < len(p.b) && p.b[p.pos+1] == 'I':
		return p.literal("-Infinity")
	default:
		_, ok := p.number()
		return ok
	}
}
