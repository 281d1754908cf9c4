package serve

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// HeaderContentLength is the HTTP header of the binary tensor extension
// giving the length of the JSON part of a body.
const HeaderContentLength = "Inference-Header-Content-Length"

type restInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

type restOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters"`
}

type restRequest struct {
	ID         string         `json:"id"`
	Parameters map[string]any `json:"parameters"`
	Inputs     []restInput    `json:"inputs"`
	Outputs    []restOutput   `json:"outputs"`

	typed bool // the parameters already hold jsonParams's typed values (fastRequest)
}

// params returns m with the typed values of InferRequest.Parameters.
func (rr *restRequest) params(m map[string]any) map[string]any {
	if rr.typed {
		return m
	}
	return jsonParams(m)
}

// DecodeInferRequest parses the body of a REST infer request. headerLen is
// the value of the Inference-Header-Content-Length header, or -1 when it is
// absent (the body is JSON only). With the binary tensor extension the body
// is the JSON header followed by the raw input tensors, in input order, each
// input marked with the parameter "binary_data_size". binaryAll reports the
// request parameter "binary_data_output" (all outputs in binary). Errors
// wrap ErrInvalid; DecodeInferRequest never panics.
func DecodeInferRequest(body []byte, headerLen int64) (req InferRequest, binaryAll bool, err error) {
	return decodeInferRequest(body, headerLen, true)
}

// decodeInferRequest is DecodeInferRequest; fast enables the reflection-free
// JSON parser (false: encoding/json only, the reference behaviour).
func decodeInferRequest(body []byte, headerLen int64, fast bool) (req InferRequest, binaryAll bool, err error) {
	js, bin := body, []byte(nil)
	if headerLen >= 0 {
		if headerLen > int64(len(body)) {
			return req, false, errorf(ErrInvalid, "%s is %d but the body has %d bytes", HeaderContentLength, headerLen, len(body))
		}
		js, bin = body[:headerLen], body[headerLen:]
	}
	if len(js) == 0 {
		return req, false, errorf(ErrInvalid, "empty request body")
	}
	if fast {
		if rr, ok := fastRequest(js); ok {
			if req, binaryAll, err = decodeRequest(&rr, bin, headerLen); err == nil {
				return req, binaryAll, nil
			}
			// Decode again the reference way, so that errors read the same.
		}
	}
	var rr restRequest
	if err := json.Unmarshal(quoteNonFinite(js), &rr); err != nil {
		return InferRequest{}, false, errorf(ErrInvalid, "request JSON: %v", err)
	}
	return decodeRequest(&rr, bin, headerLen)
}

// decodeRequest builds the InferRequest of a parsed JSON header; bin is the
// binary part of the body.
func decodeRequest(rr *restRequest, bin []byte, headerLen int64) (req InferRequest, binaryAll bool, err error) {
	req.ID = rr.ID
	req.Parameters = rr.params(rr.Parameters)
	if binaryAll, _, err = paramBool(req.Parameters, "binary_data_output"); err != nil {
		return req, false, errorf(ErrInvalid, "%v", err)
	}
	if len(rr.Inputs) == 0 {
		return req, false, errorf(ErrInvalid, "request has no inputs")
	}
	off := int64(0)
	req.Inputs = make([]Tensor, len(rr.Inputs))
	for i := range rr.Inputs {
		in := &rr.Inputs[i]
		if in.Name == "" {
			return req, false, errorf(ErrInvalid, "input %d: missing name", i)
		}
		where := inputWhere(in.Name)
		if ElementSize(in.Datatype) < 0 {
			return req, false, errorf(ErrInvalid, "%s: unknown datatype %q", where, in.Datatype)
		}
		if in.Shape == nil {
			return req, false, errorf(ErrInvalid, "%s: missing shape", where)
		}
		if _, err := checkShape(in.Shape); err != nil {
			return req, false, errorf(ErrInvalid, "%s: %v", where, err)
		}
		params := rr.params(in.Parameters)
		size, isBinary, err := paramInt(params, "binary_data_size")
		if err != nil {
			return req, false, errorf(ErrInvalid, "%s: %v", where, err)
		}
		var t Tensor
		switch {
		case isBinary:
			if len(in.Data) > 0 && string(in.Data) != "null" {
				return req, false, errorf(ErrInvalid, "%s: has both binary_data_size and data", where)
			}
			if headerLen < 0 {
				return req, false, errorf(ErrInvalid, "%s: binary_data_size without the %s header", where, HeaderContentLength)
			}
			if size > int64(len(bin))-off {
				return req, false, errorf(ErrInvalid, "%s: binary_data_size %d exceeds the %d bytes of binary data left in the body", where, size, int64(len(bin))-off)
			}
			t.Raw = bin[off : off+size]
			off += size
		case len(in.Data) == 0 || string(in.Data) == "null":
			return req, false, errorf(ErrInvalid, "%s: missing data", where)
		default:
			t, _, err = decodeData(in.Data, in.Datatype)
			if err != nil {
				return req, false, errorf(ErrInvalid, "%s: %v", where, err)
			}
		}
		t.Name, t.Datatype, t.Shape, t.Parameters = in.Name, in.Datatype, in.Shape, params
		req.Inputs[i] = t
	}
	if off != int64(len(bin)) {
		return req, false, errorf(ErrInvalid, "%d bytes of binary data after the inputs are not used by any input", int64(len(bin))-off)
	}
	for _, o := range rr.Outputs {
		if o.Name == "" {
			return req, false, errorf(ErrInvalid, "requested output without a name")
		}
		p := rr.params(o.Parameters)
		bin, set, err := paramBool(p, "binary_data")
		if err != nil {
			return req, false, errorf(ErrInvalid, "output %q: %v", o.Name, err)
		}
		if !set {
			bin = binaryAll
		}
		cls, _, err := paramInt(p, "classification")
		if err != nil {
			return req, false, errorf(ErrInvalid, "output %q: %v", o.Name, err)
		}
		if cls > 1<<20 {
			cls = 1 << 20
		}
		req.Outputs = append(req.Outputs, RequestedOutput{Name: o.Name, Binary: bin, Classification: int(cls)})
	}
	return req, binaryAll, nil
}

// inputWhere names an input in error messages; it formats only when
// printed.
type inputWhere string

func (w inputWhere) String() string { return fmt.Sprintf("input %q", string(w)) }

// EncodeInferResponse writes resp as a REST infer response body. Outputs
// whose Parameters hold "binary_data": true (or all when binaryAll) are
// sent raw after the JSON header with "binary_data_size"; headerLen is then
// the JSON length for the Inference-Header-Content-Length header, else -1.
func EncodeInferResponse(resp InferResponse, binaryAll bool) (body []byte, headerLen int) {
	return appendInferResponse(make([]byte, 0, 256), resp, binaryAll)
}

// appendInferResponse is EncodeInferResponse appending to buf.
func appendInferResponse(buf []byte, resp InferResponse, binaryAll bool) (body []byte, headerLen int) {
	buf = append(buf, `{"model_name":`...)
	buf = appendString(buf, resp.Model)
	if resp.Version != "" {
		buf = append(buf, `,"model_version":`...)
		buf = appendString(buf, resp.Version)
	}
	if resp.ID != "" {
		buf = append(buf, `,"id":`...)
		buf = appendString(buf, resp.ID)
	}
	buf = append(buf, `,"outputs":[`...)
	binary := false
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"name":`...)
		buf = appendString(buf, t.Name)
		buf = append(buf, `,"datatype":`...)
		buf = appendString(buf, t.Datatype)
		buf = append(buf, `,"shape":[`...)
		for k, d := range t.Shape {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, d, 10)
		}
		buf = append(buf, ']')
		if isBinary(t, binaryAll) {
			binary = true
			buf = append(buf, `,"parameters":{"binary_data_size":`...)
			buf = strconv.AppendInt(buf, int64(t.rawSize()), 10)
			buf = append(buf, "}}"...)
			continue
		}
		buf = append(buf, `,"data":`...)
		buf = appendData(buf, t)
		buf = append(buf, '}')
	}
	buf = append(buf, "]}"...)
	if !binary {
		return buf, -1
	}
	headerLen = len(buf)
	for i := range resp.Outputs {
		if t := &resp.Outputs[i]; isBinary(t, binaryAll) {
			buf = t.appendRaw(buf)
		}
	}
	return buf, headerLen
}

// isBinary reports whether output t goes in binary.
func isBinary(t *Tensor, binaryAll bool) bool {
	b, _ := t.Parameters["binary_data"].(bool)
	return b || binaryAll
}
