package serve_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/deepgo/deepgo/serve"
)

// fastCases are JSON headers (and binary tails) for the differential test:
// those marked fast must take the reflection-free parser; every one must
// decode exactly as encoding/json does.
var fastCases = []struct {
	body string
	hl   int64 // -1: JSON only; -2: JSON up to the last '}', then binary
	fast bool
}{
	{`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, -1, true},
	{` { "id" : "r1" , "inputs" : [ { "name" : "x" , "shape" : [ 2 , 2 ] , "datatype" : "FP32" , "data" : [ [ 1.5e3 , -0.25 ] , [ 0 , 7E-2 ] ] } ] } `, -1, true},
	{`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[NaN,Infinity,-Infinity,"NaN"]}]}`, -1, true},
	{`{"inputs":[{"name":"x","shape":[1,4],"datatype":"INT64","data":[1,2,3,4]}],"parameters":{"binary_data_output":true,"k":"v","n":3,"f":0.5}}`, -1, true},
	{`{"inputs":[{"name":"x","shape":[2],"datatype":"BOOL","data":[true,false]}],"outputs":[{"name":"logits","parameters":{"classification":2,"binary_data":false}},{"name":"p"}]}`, -1, true},
	{`{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","data":["a","bc"]}]}`, -1, true},
	{`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}],"parameters":{"binary_data_output":true}}` + "\x00\x00\x80\x3f\x00\x00\x00\x40", -2, true},
	{`{"inputs":[],"outputs":[],"parameters":{}}`, -1, true},
	// Errors found by the shared validation: the fast parse is redone.
	{`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}`, -1, true},
	{`{"inputs":[{"name":"x","shape":[1,4],"datatype":"INT64","data":[1.5,2,3,4]}]}`, -1, true},
	{`{"inputs":[{"name":"x","shape":[1,-4],"datatype":"FP32","data":[1]}]}`, -1, true},
	{`{"inputs":[{"name":"","shape":[1],"datatype":"FP32","data":[1]}]}`, -1, true},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP99","data":[1]}]}`, -1, true},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":1}}`, -1, true},
	// Left to encoding/json.
	{`{"Inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, -1, false},
	{`{"inputs":[{"name":"x\u0041","shape":[1],"datatype":"FP32","data":[1]}]}`, -1, false},
	{`{"inputs":[{"name":"é","shape":[1],"datatype":"FP32","data":[1]}]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"extra":{"a":[1]}}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"inputs":[]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1.0],"datatype":"FP32","data":[1]}]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[01]}]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1.]}]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[nan]}]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1,]}]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":{"a":1}}]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":null}]}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"p":null}}`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} x`, -1, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]`, -1, false},
	{`[]`, -1, false},
	{`null`, -1, false},
}

// decodeSame checks that DecodeInferRequest and the encoding/json
// reference agree on body.
func decodeSame(t *testing.T, body []byte, hl int64) {
	t.Helper()
	got, gotBin, gotErr := serve.DecodeInferRequest(body, hl)
	want, wantBin, wantErr := serve.DecodeInferRequestReference(body, hl)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("body %q: error %v, reference %v", body, gotErr, wantErr)
	}
	if gotErr != nil {
		if !errors.Is(gotErr, serve.ErrInvalid) {
			t.Fatalf("body %q: error %v is not ErrInvalid", body, gotErr)
		}
		return
	}
	if gotBin != wantBin || !sameRequest(got, want) {
		t.Fatalf("body %q:\n got  %#v %v\n want %#v %v", body, got, gotBin, want, wantBin)
	}
}

// sameRequest compares requests, NaNs equal.
func sameRequest(a, b serve.InferRequest) bool {
	nan := func(r serve.InferRequest) serve.InferRequest {
		r.Inputs = append([]serve.Tensor(nil), r.Inputs...)
		for i := range r.Inputs {
			in := &r.Inputs[i]
			if in.FP32 != nil {
				f := append([]float32(nil), in.FP32...)
				for k, v := range f {
					if math.IsNaN(float64(v)) {
						f[k] = -12345 // NaN != NaN for DeepEqual
					}
				}
				in.FP32 = f
			}
		}
		return r
	}
	return reflect.DeepEqual(nan(a), nan(b))
}

func TestFastDecodeMatchesReference(t *testing.T) {
	for _, c := range fastCases {
		body, hl := []byte(c.body), c.hl
		js := body
		if hl == -2 {
			hl = int64(bytes.LastIndexByte(body, '}') + 1)
			js = body[:hl]
		}
		if got := serve.FastRequestAccepts(js); got != c.fast {
			t.Errorf("fast parser accepts %q: %v, want %v", js, got, c.fast)
		}
		decodeSame(t, body, hl)
	}
}

// FuzzFastDecode: the fast parser and encoding/json decode every body the
// same way (same request or same error).
func FuzzFastDecode(f *testing.F) {
	for _, c := range fastCases {
		hl := c.hl
		if hl == -2 {
			hl = int64(bytes.LastIndexByte([]byte(c.body), '}') + 1)
		}
		f.Add([]byte(c.body), hl)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), int64(-1))
	}
	f.Fuzz(func(t *testing.T, body []byte, hl int64) {
		decodeSame(t, body, hl)
	})
}
