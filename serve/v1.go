package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// v1Path splits a TF-Serving path below /v1/models/ into the model, the
// version ("" for any) and the verb after ':' ("" for none).
func v1Path(rest string) (name, version, verb string, err error) {
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest, verb = rest[:i], rest[i+1:]
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1:
		return parts[0], "", verb, nil
	case len(parts) == 2 && parts[1] == "metadata":
		return parts[0], "", "metadata", nil
	case len(parts) == 3 && parts[1] == "versions":
		return parts[0], parts[2], verb, nil
	case len(parts) == 4 && parts[1] == "versions" && parts[3] == "metadata":
		return parts[0], parts[2], "metadata", nil
	case len(parts) == 3 && parts[1] == "labels":
		return "", "", "", errorf(ErrNotFound, "version labels are not supported (label %q)", parts[2])
	}
	return "", "", "", errorf(ErrNotFound, "no endpoint /v1/models/%s", rest)
}

func (s *Server) handleV1Get(w http.ResponseWriter, r *http.Request) {
	name, version, verb, err := v1Path(r.PathValue("rest"))
	if err == nil && verb != "" && verb != "metadata" {
		err = errorf(ErrNotFound, "no GET endpoint :%s", verb)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	md, err := s.ModelMetadata(name, version)
	if err != nil {
		writeErr(w, err)
		return
	}
	if verb == "metadata" {
		writeJSON(w, http.StatusOK, map[string]any{
			"model_spec": map[string]string{"name": md.Name, "signature_name": "serving_default", "version": md.Versions[0]},
			"metadata":   md,
		})
		return
	}
	state := "AVAILABLE"
	if ok, _ := s.ModelReady(name, version); !ok {
		state = "UNLOADING"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": md.Name, "ready": state == "AVAILABLE",
		"model_version_status": []map[string]any{{
			"version": md.Versions[0], "state": state,
			"status": map[string]string{"error_code": "OK", "error_message": ""},
		}},
	})
}

type v1Request struct {
	SignatureName string          `json:"signature_name"`
	Instances     json.RawMessage `json:"instances"`
	Inputs        json.RawMessage `json:"inputs"`
}

func present(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }

func (s *Server) handleV1Post(w http.ResponseWriter, r *http.Request) {
	name, version, verb, err := v1Path(r.PathValue("rest"))
	if err == nil && verb != "predict" {
		err = errorf(ErrNotFound, "unsupported verb %q (only :predict is served)", verb)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	mv, err := s.repo.get(name, version)
	if err != nil {
		writeErr(w, err)
		return
	}
	in, rowsFormat, err := decodeV1(body, mv)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp, err := s.Infer(r.Context(), InferRequest{Model: name, Version: version, Inputs: []Tensor{in},
		Outputs: []RequestedOutput{{Name: mv.out.Name}}})
	if err != nil {
		writeErr(w, err)
		return
	}
	out := &resp.Outputs[0]
	buf := make([]byte, 0, 64+16*len(out.FP32))
	if rowsFormat {
		buf = append(buf, `{"predictions":`...)
	} else {
		buf = append(buf, `{"outputs":`...)
	}
	buf = appendNested(buf, out, out.Shape)
	buf = append(buf, '}')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	_, _ = w.Write(buf)
}

// decodeV1 turns a TF-Serving predict body into the model's input tensor.
// rowsFormat is true for "instances" (answered with "predictions").
func decodeV1(body []byte, mv *modelVersion) (Tensor, bool, error) {
	var req v1Request
	if err := json.Unmarshal(quoteNonFinite(body), &req); err != nil {
		return Tensor{}, false, errorf(ErrInvalid, "request JSON: %v", err)
	}
	hasI, hasN := present(req.Instances), present(req.Inputs)
	switch {
	case hasI && hasN:
		return Tensor{}, false, errorf(ErrInvalid, `request has both "instances" and "inputs"`)
	case !hasI && !hasN:
		return Tensor{}, false, errorf(ErrInvalid, `request needs "instances" or "inputs"`)
	}
	dt := dtypeToOIP(mv.in.DType)
	if hasI {
		t, err := v1Instances(req.Instances, mv, dt)
		return t, true, err
	}
	raw := req.Inputs
	if raw[0] == '{' {
		var named map[string]json.RawMessage
		if err := json.Unmarshal(raw, &named); err != nil {
			return Tensor{}, false, errorf(ErrInvalid, "inputs: %v", err)
		}
		v, ok := named[mv.in.Name]
		if !ok || len(named) != 1 {
			return Tensor{}, false, errorf(ErrInvalid, "inputs: the model takes one input named %q", mv.in.Name)
		}
		raw = v
	}
	t, err := v1Tensor(raw, mv, dt, "inputs")
	return t, false, err
}

// v1Instances reads "instances": a list of rows, each a value or an object
// {input: value}.
func v1Instances(raw json.RawMessage, mv *modelVersion, dt string) (Tensor, error) {
	if raw[0] != '[' {
		return Tensor{}, errorf(ErrInvalid, "instances must be a list")
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return Tensor{}, errorf(ErrInvalid, "instances: %v", err)
	}
	if len(rows) == 0 {
		return Tensor{}, errorf(ErrInvalid, "instances is empty")
	}
	if rows[0][0] != '{' {
		return v1Tensor(raw, mv, dt, "instances")
	}
	// Object rows: concatenate each row's value of the input.
	buf := []byte{'['}
	for i, row := range rows {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(row, &obj); err != nil {
			return Tensor{}, errorf(ErrInvalid, "instances[%d]: %v", i, err)
		}
		v, ok := obj[mv.in.Name]
		if !ok || len(obj) != 1 {
			return Tensor{}, errorf(ErrInvalid, "instances[%d]: the model takes one input named %q", i, mv.in.Name)
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, v...)
	}
	buf = append(buf, ']')
	return v1Tensor(buf, mv, dt, "instances")
}

// v1Tensor parses a batch-major value and fits it to the model's input:
// its nested shape when that matches the signature, else rows of the
// signature's row shape when the element count fits.
func v1Tensor(raw []byte, mv *modelVersion, dt, what string) (Tensor, error) {
	t, nested, err := decodeData(raw, dt)
	if err != nil {
		return Tensor{}, errorf(ErrInvalid, "%s: %v", what, err)
	}
	t.Name = mv.in.Name
	n, _ := t.dataCount()
	if len(nested) >= 1 {
		if mv.in.Matches(intShape(nested)) {
			t.Shape = nested
			return t, nil
		}
		per := 1
		for _, d := range mv.inShape[1:] {
			if d < 0 {
				per = -1
				break
			}
			per *= d
		}
		if mv.batchable && per > 0 && nested[0] > 0 && int64(n) == nested[0]*int64(per) {
			t.Shape = append([]int64{nested[0]}, shape64(mv.inShape[1:])...)
			return t, nil
		}
	}
	return Tensor{}, errorf(ErrInvalid, "%s: data of shape %s does not fit the model input %q of shape %v", what, shapeString(nested), mv.in.Name, mv.in.Shape)
}

func intShape(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

func shapeString(s []int64) string {
	if s == nil {
		return "(irregular)"
	}
	return fmt.Sprint(s)
}
