package serve_test

import (
	"bytes"
	"encoding/binary"
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
		fuzzPost(t, h, path, body, headerLen)
	})
}

// FuzzTextElements: splitting raw BYTES data (uint32 little-endian length,
// then the bytes, per element) never panics, and what it accepts is
// exactly n elements that encode back to the input.
func FuzzTextElements(f *testing.F) {
	f.Add([]byte("\x02\x00\x00\x00hi\x00\x00\x00\x00"), uint8(2))
	f.Add([]byte("\x05\x00\x00\x00hi"), uint8(1))
	f.Add([]byte("\xff\xff\xff\xff"), uint8(1))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, raw []byte, n uint8) {
		in := &serve.Tensor{Name: "text", Datatype: serve.TypeBytes, Shape: []int64{int64(n)}, Raw: raw}
		els, err := serve.TextElements(in, int(n))
		if err != nil {
			return
		}
		if len(els) != int(n) {
			t.Fatalf("%d elements for n = %d", len(els), n)
		}
		var back []byte
		for _, e := range els {
			back = binary.LittleEndian.AppendUint32(back, uint32(len(e)))
			back = append(back, e...)
		}
		if !bytes.Equal(back, raw) {
			t.Fatalf("elements %q encode to %q, not the input %q", els, back, raw)
		}
	})
}

// FuzzTextInfer posts fuzzed bodies to a text model's infer endpoint (raw
// texts as BYTES, JSON or binary): never a 500, errors carry {"error": ...}.
func FuzzTextInfer(f *testing.F) {
	f.Add([]byte(`{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["shares fall","market rose"]}]}`), int64(-1))
	f.Add([]byte(`{"inputs":[{"name":"ids","shape":[1,1],"datatype":"BYTES","data":["\u00e9t\u00e9"]}],"outputs":[{"name":"logits","parameters":{"classification":2}}]}`), int64(-1))
	hdr := `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`
	f.Add([]byte(hdr+"\x05\x00\x00\x00hello"), int64(len(hdr)))
	s := serve.New(serve.Options{})
	f.Cleanup(s.Close)
	if err := s.Repository().Load("txt", txPackage(f)); err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte, headerLen int64) {
		fuzzPost(t, h, "/v2/models/txt/infer", body, headerLen)
	})
}

// fuzzPost posts body to path on h (with the binary extension's header
// length when headerLen >= 0) and fails on any answer but a 200, or a 400
// or 404 that carries {"error": ...}.
func fuzzPost(t *testing.T, h http.Handler, path string, body []byte, headerLen int64) {
	t.Helper()
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
}
