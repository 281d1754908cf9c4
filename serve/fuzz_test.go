package serve_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/deepgo/deepgo/serve"
)

var fuzzSeeds = []string{
	`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`,
	`{"id":"a","inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,8]]}],"outputs":[{"name":"logits","parameters":{"classification":2}}]}`,
	`{"inputs":[{"name":"x","shape":[1,4],"datatype":"INT64","data":[1,2,3,4]}],"parameters":{"binary_data_output":true}}`,
	`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[NaN,Infinity,-Infinity,"NaN"]}]}`,
	`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}` + "\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40",
	`{"inputs":[{"name":"x","shape":[1,4],"datatype":"BYTES","data":["a","b","c","d"]}]}`,
	`{"instances":[[1,2,3,4]]}`,
	`{"inputs":{"x":[[1,2,3,4]]}}`,
	`{"instances":[{"x":[1,2,3,4]}]}`,
}

// FuzzDecodeInferRequest: the REST/binary decoder never panics, and every
// error it returns is an ErrInvalid.
func FuzzDecodeInferRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), int64(-1))
		if i := bytes.IndexByte([]byte(s), 0); i > 0 {
			f.Add([]byte(s), int64(bytes.LastIndexByte([]byte(s[:i]), '}')+1))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, headerLen int64) {
		req, _, err := serve.DecodeInferRequest(body, headerLen)
		if err != nil {
			if !errors.Is(err, serve.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if len(req.Inputs) == 0 {
			t.Fatal("decoded a request without inputs")
		}
		for _, in := range req.Inputs {
			_ = in.RawBytes()
		}
	})
}

// FuzzRESTHandlers posts fuzzed bodies to the infer and predict endpoints
// of a live handler: the answer is never a 500 (a recovered panic or an
// unexpected failure), and errors carry {"error": ...}.
func FuzzRESTHandlers(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), int64(-1), false)
		f.Add([]byte(s), int64(-1), true)
	}
	e := rtStart(f, serve.Options{})
	h := e.s.Handler()
	f.Fuzz(func(t *testing.T, body []byte, headerLen int64, v1 bool) {
		path := "/v2/models/lin/infer"
		if v1 {
			path = "/v1/models/lin:predict"
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		if headerLen >= 0 {
			req.Header.Set(serve.HeaderContentLength, strconv.FormatInt(headerLen, 10))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusNotFound:
			rtErrorBody(t, w.Body.Bytes())
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.Bytes())
		}
	})
}
