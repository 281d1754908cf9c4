package serve_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/serve"
)

func TestRESTHealthAndMetadata(t *testing.T) {
	e := rtStart(t, serve.Options{})
	for _, c := range []struct{ path, want string }{
		{"/v2/health/live", `{"live":true}`},
		{"/v2/health/ready", `{"ready":true}`},
	} {
		code, _, body := rtDo(t, "GET", e.url+c.path, nil, nil)
		if code != 200 || string(body) != c.want {
			t.Errorf("GET %s = %d %s, want 200 %s", c.path, code, body, c.want)
		}
	}
	code, _, body := rtDo(t, "GET", e.url+"/v2", nil, nil)
	md := rtJSON(t, body)
	if code != 200 || md["name"] != "deepgo" || !strings.Contains(fmt.Sprint(md["extensions"]), "binary_tensor_data") {
		t.Errorf("GET /v2 = %d %s", code, body)
	}
	code, _, body = rtDo(t, "GET", e.url+"/v2/models", nil, nil)
	if code != 200 || !strings.Contains(string(body), `"name":"lin","version":"1","state":"READY"`) {
		t.Errorf("GET /v2/models = %d %s", code, body)
	}
	want := `{"name":"lin","versions":["1"],"platform":"deepgo","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],` +
		`"outputs":[{"name":"logits","datatype":"FP32","shape":[-1,3]},{"name":"probabilities","datatype":"FP32","shape":[-1,3]}]}`
	for _, p := range []string{"/v2/models/lin", "/v2/models/lin/versions/1"} {
		code, _, body = rtDo(t, "GET", e.url+p, nil, nil)
		if code != 200 || string(body) != want {
			t.Errorf("GET %s = %d %s\nwant %s", p, code, body, want)
		}
		code, _, body = rtDo(t, "GET", e.url+p+"/ready", nil, nil)
		if code != 200 || string(body) != `{"name":"lin","ready":true}` {
			t.Errorf("GET %s/ready = %d %s", p, code, body)
		}
	}
	for _, p := range []string{"/v2/models/nope", "/v2/models/lin/versions/2", "/v2/models/lin/versions/x/ready", "/v2/models/nope/ready", "/v1/models/nope", "/nothing/here"} {
		code, _, body = rtDo(t, "GET", e.url+p, nil, nil)
		if code != 404 {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
		rtErrorBody(t, body)
	}
	code, _, body = rtDo(t, "GET", e.url+"/v1/models/lin", nil, nil)
	if code != 200 || !strings.Contains(string(body), `"model_version_status":[{"state":"AVAILABLE","status":{"error_code":"OK","error_message":""},"version":"1"}]`) {
		t.Errorf("GET /v1/models/lin = %d %s", code, body)
	}
	// Through the Go API too.
	if !e.s.Live() || !e.s.Ready() || len(e.s.Models()) != 1 {
		t.Errorf("Live %v Ready %v Models %v", e.s.Live(), e.s.Ready(), e.s.Models())
	}
	if _, err := e.s.ModelMetadata("lin", "7"); !errors.Is(err, serve.ErrNotFound) {
		t.Errorf("ModelMetadata(lin, 7) error %v, want ErrNotFound", err)
	}
}

// TestRESTInferJSON sends JSON requests as KServe's clients form them,
// with nested and flat data.
func TestRESTInferJSON(t *testing.T) {
	rtEachTransport(t, func(t *testing.T, tr rtTransport) {
		e := rtStartOn(t, serve.Options{}, tr)
		x := []float32{1, 2, 3, 4, -1, 0.5, 0, 2}
		want := rtWant(e.pkg, x)
		for name, data := range map[string]string{
			"flat":   `[1, 2, 3, 4, -1, 0.5, 0, 2]`,
			"nested": `[[1, 2, 3, 4], [-1, 0.5, 0, 2]]`,
		} {
			body := `{"id": "req-7", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": ` + data + `}], "outputs": [{"name": "logits"}]}`
			code, hdr, resp := rtDo(t, "POST", e.url+"/v2/models/lin/infer", []byte(body), map[string]string{"Content-Type": "application/json"})
			if code != 200 {
				t.Fatalf("%s: %d %s", name, code, resp)
			}
			if hdr.Get(serve.HeaderContentLength) != "" || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("%s: JSON response has headers %v", name, hdr)
			}
			m := rtJSON(t, resp)
			if m["model_name"] != "lin" || m["model_version"] != "1" || m["id"] != "req-7" {
				t.Errorf("%s: response envelope %s", name, resp)
			}
			outs := m["outputs"].([]any)
			if len(outs) != 1 {
				t.Fatalf("%s: %d outputs, want only the requested one: %s", name, len(outs), resp)
			}
			o := outs[0].(map[string]any)
			if o["name"] != "logits" || o["datatype"] != "FP32" || fmt.Sprint(o["shape"]) != "[2 3]" {
				t.Errorf("%s: output header %v", name, o)
			}
			rtClose(t, name, rtOutputData(t, o), want)
		}
		// Versioned path, every output, integer data converted to FP32.
		body := `{"inputs":[{"name":"x","shape":[1,4],"datatype":"INT32","data":[1,2,3,4]}]}`
		code, _, resp := rtDo(t, "POST", e.url+"/v2/models/lin/versions/1/infer", []byte(body), nil)
		if code != 200 {
			t.Fatalf("INT32 input: %d %s", code, resp)
		}
		outs := rtJSON(t, resp)["outputs"].([]any)
		if len(outs) != 2 {
			t.Fatalf("no outputs requested: got %d outputs, want 2", len(outs))
		}
		logits := rtWant(e.pkg, []float32{1, 2, 3, 4})
		rtClose(t, "INT32 logits", rtOutputData(t, outs[0].(map[string]any)), logits)
		probs := rtOutputData(t, outs[1].(map[string]any))
		m := math.Max(float64(logits[0]), math.Max(float64(logits[1]), float64(logits[2])))
		var sum float64
		for _, l := range logits {
			sum += math.Exp(float64(l) - m)
		}
		for i, l := range logits {
			if p := math.Exp(float64(l)-m) / sum; math.Abs(p-float64(probs[i])) > 1e-6 {
				t.Errorf("probabilities[%d] = %v, want %v", i, probs[i], p)
			}
		}
		// Classification extension: top 2 as "value:index:label".
		body = `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"logits","parameters":{"classification":2}}]}`
		code, _, resp = rtDo(t, "POST", e.url+"/v2/models/lin/infer", []byte(body), nil)
		if code != 200 {
			t.Fatalf("classification: %d %s", code, resp)
		}
		o := rtJSON(t, resp)["outputs"].([]any)[0].(map[string]any)
		best := 0
		for i := range logits {
			if logits[i] > logits[best] {
				best = i
			}
		}
		top := o["data"].([]any)
		if o["datatype"] != "BYTES" || fmt.Sprint(o["shape"]) != "[1 2]" || len(top) != 2 ||
			!strings.HasSuffix(top[0].(string), fmt.Sprintf(":%d:%s", best, "abc"[best:best+1])) {
			t.Errorf("classification output %v (logits %v)", o, logits)
		}
	})
}

// tritonBinaryRequest forms a request as tritonclient.http does: the JSON
// header (Python json.dumps spacing) then the raw little-endian inputs.
func tritonBinaryRequest(x []float32, rows int, outputs string) ([]byte, string) {
	raw := rtF32(x)
	var hdr string
	if outputs == "" {
		hdr = fmt.Sprintf(`{"inputs": [{"name": "x", "shape": [%d, 4], "datatype": "FP32", "parameters": {"binary_data_size": %d}}], "parameters": {"binary_data_output": true}}`, rows, len(raw))
	} else {
		hdr = fmt.Sprintf(`{"id": "1", "inputs": [{"name": "x", "shape": [%d, 4], "datatype": "FP32", "parameters": {"binary_data_size": %d}}], "outputs": %s}`, rows, len(raw), outputs)
	}
	return append([]byte(hdr), raw...), strconv.Itoa(len(hdr))
}

func TestRESTInferBinary(t *testing.T) {
	rtEachTransport(t, func(t *testing.T, tr rtTransport) {
		e := rtStartOn(t, serve.Options{}, tr)
		x := []float32{0.25, -2, 3, 1e-3, 7, 8, -9, 10, 0, 0, 0, 1}
		want := rtWant(e.pkg, x)

		// Binary input, binary output requested explicitly.
		body, hl := tritonBinaryRequest(x, 3, `[{"name": "logits", "parameters": {"binary_data": true}}]`)
		code, hdr, resp := rtDo(t, "POST", e.url+"/v2/models/lin/infer", body,
			map[string]string{serve.HeaderContentLength: hl, "Content-Type": "application/octet-stream"})
		if code != 200 {
			t.Fatalf("binary request: %d %s", code, resp)
		}
		n, err := strconv.Atoi(hdr.Get(serve.HeaderContentLength))
		if err != nil || n > len(resp) || hdr.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("binary response headers %v (body %d bytes)", hdr, len(resp))
		}
		wantHdr := `{"model_name":"lin","model_version":"1","id":"1","outputs":[{"name":"logits","datatype":"FP32","shape":[3,3],"parameters":{"binary_data_size":36}}]}`
		if string(resp[:n]) != wantHdr {
			t.Errorf("binary response header\n got %s\nwant %s", resp[:n], wantHdr)
		}
		rtClose(t, "binary logits", rtFromF32(t, resp[n:]), want)

		// Binary input, JSON output.
		body, hl = tritonBinaryRequest(x, 3, `[{"name": "logits", "parameters": {"binary_data": false}}]`)
		code, hdr, resp = rtDo(t, "POST", e.url+"/v2/models/lin/infer", body, map[string]string{serve.HeaderContentLength: hl})
		if code != 200 || hdr.Get(serve.HeaderContentLength) != "" {
			t.Fatalf("binary in, JSON out: %d %v %s", code, hdr, resp)
		}
		rtClose(t, "JSON logits", rtOutputData(t, rtJSON(t, resp)["outputs"].([]any)[0].(map[string]any)), want)

		// The client's default: no outputs named, binary_data_output: every output raw.
		body, hl = tritonBinaryRequest(x[:4], 1, "")
		code, hdr, resp = rtDo(t, "POST", e.url+"/v2/models/lin/infer", body, map[string]string{serve.HeaderContentLength: hl})
		if code != 200 {
			t.Fatalf("default binary request: %d %s", code, resp)
		}
		n, _ = strconv.Atoi(hdr.Get(serve.HeaderContentLength))
		var jh struct {
			Outputs []struct {
				Name       string
				Parameters map[string]int
			}
		}
		if err := json.Unmarshal(resp[:n], &jh); err != nil || len(jh.Outputs) != 2 {
			t.Fatalf("default binary response header %q: %v", resp[:n], err)
		}
		raw := resp[n:]
		if jh.Outputs[0].Name != "logits" || jh.Outputs[0].Parameters["binary_data_size"] != 12 ||
			jh.Outputs[1].Name != "probabilities" || jh.Outputs[1].Parameters["binary_data_size"] != 12 || len(raw) != 24 {
			t.Fatalf("default binary response %s + %d bytes", resp[:n], len(raw))
		}
		rtClose(t, "default binary logits", rtFromF32(t, raw[:12]), want[:3])
		var sum float32
		for _, p := range rtFromF32(t, raw[12:]) {
			sum += p
		}
		if math.Abs(float64(sum-1)) > 1e-5 {
			t.Errorf("binary probabilities sum to %v", sum)
		}
	})
}

func TestTFServingPredict(t *testing.T) {
	rtEachTransport(t, func(t *testing.T, tr rtTransport) {
		e := rtStartOn(t, serve.Options{}, tr)
		want := rtWant(e.pkg, []float32{1, 2, 3, 4, 5, 6, 7, 8})
		for name, body := range map[string]string{
			"instances rows":    `{"instances": [[1, 2, 3, 4], [5, 6, 7, 8]]}`,
			"instances objects": `{"signature_name": "serving_default", "instances": [{"x": [1, 2, 3, 4]}, {"x": [5, 6, 7, 8]}]}`,
			"inputs value":      `{"inputs": [[1, 2, 3, 4], [5, 6, 7, 8]]}`,
			"inputs named":      `{"inputs": {"x": [[1, 2, 3, 4], [5, 6, 7, 8]]}}`,
		} {
			for _, path := range []string{"/v1/models/lin:predict", "/v1/models/lin/versions/1:predict"} {
				code, _, resp := rtDo(t, "POST", e.url+path, []byte(body), nil)
				if code != 200 {
					t.Fatalf("%s %s: %d %s", name, path, code, resp)
				}
				var got map[string][][]float32
				if err := json.Unmarshal(resp, &got); err != nil {
					t.Fatalf("%s: %s: %v", name, resp, err)
				}
				key := "predictions"
				if strings.HasPrefix(name, "inputs") {
					key = "outputs"
				}
				rows := got[key]
				if len(rows) != 2 {
					t.Fatalf("%s: response %s has no %q rows", name, resp, key)
				}
				rtClose(t, name, append(rows[0], rows[1]...), want)
			}
		}
		for name, body := range map[string]string{
			"both":      `{"instances": [[1,2,3,4]], "inputs": [[1,2,3,4]]}`,
			"neither":   `{"signature_name": "x"}`,
			"ragged":    `{"instances": [[1,2,3,4], [5,6]]}`,
			"wrong row": `{"instances": [[1,2,3]]}`,
			"bad name":  `{"instances": [{"y": [1,2,3,4]}]}`,
			"strings":   `{"instances": [["a","b","c","d"]]}`,
		} {
			code, _, resp := rtDo(t, "POST", e.url+"/v1/models/lin:predict", []byte(body), nil)
			if code != 400 {
				t.Errorf("%s: %d %s, want 400", name, code, resp)
			}
			rtErrorBody(t, resp)
		}
		code, _, resp := rtDo(t, "POST", e.url+"/v1/models/lin:classify", []byte(`{"instances": [[1,2,3,4]]}`), nil)
		if code != 404 {
			t.Errorf(":classify = %d %s, want 404", code, resp)
		}
	})
}

// zeroReader yields zero bytes forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestRESTHostileInputs sends malformed and hostile requests: each gets a
// 4xx with an error message, and the next good request still works.
func TestRESTHostileInputs(t *testing.T) {
	rtEachTransport(t, func(t *testing.T, tr rtTransport) {
		e := rtStartOn(t, serve.Options{}, tr)
		url := e.url + "/v2/models/lin/infer"
		good := func() {
			t.Helper()
			code, _, resp := rtDo(t, "POST", url, rtInferBody([]float32{1, 2, 3, 4}), nil)
			if code != 200 {
				t.Fatalf("good request after a bad one: %d %s", code, resp)
			}
			rtClose(t, "good request", rtOutputData(t, rtJSON(t, resp)["outputs"].([]any)[0].(map[string]any)), rtWant(e.pkg, []float32{1, 2, 3, 4}))
		}
		in := func(shape, dt, data string) string {
			return `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"` + dt + `","data":` + data + `}]}`
		}
		bin := func(shape string, size int, payload []byte) ([]byte, map[string]string) {
			h := `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"FP32","parameters":{"binary_data_size":` + strconv.Itoa(size) + `}}]}`
			return append([]byte(h), payload...), map[string]string{serve.HeaderContentLength: strconv.Itoa(len(h))}
		}
		type tc struct {
			name   string
			path   string
			body   []byte
			hdr    map[string]string
			status int
			msg    string
		}
		cases := []tc{
			{name: "BYTES datatype", body: []byte(in("[1,4]", "BYTES", `["a","b","c","d"]`)), status: 400, msg: "BYTES"},
			{name: "BOOL datatype", body: []byte(in("[1,4]", "BOOL", `[true,false,true,true]`)), status: 400, msg: "BOOL"},
			{name: "unknown datatype", body: []byte(in("[1,4]", "FP128", `[1,2,3,4]`)), status: 400, msg: "datatype"},
			{name: "strings as FP32", body: []byte(in("[1,4]", "FP32", `["a","b","c","d"]`)), status: 400, msg: "FP32"},
			{name: "shape/data mismatch", body: []byte(in("[1,4]", "FP32", `[1,2,3]`)), status: 400, msg: "elements"},
			{name: "shape vs signature", body: []byte(in("[1,5]", "FP32", `[1,2,3,4,5]`)), status: 400, msg: "does not match"},
			{name: "rank vs signature", body: []byte(in("[4]", "FP32", `[1,2,3,4]`)), status: 400, msg: "does not match"},
			{name: "negative dim", body: []byte(in("[-1,4]", "FP32", `[1,2,3,4]`)), status: 400, msg: "negative"},
			{name: "huge dims", body: []byte(in("[4294967296,4294967296]", "FP32", `[1,2,3,4]`)), status: 400, msg: "too large"},
			{name: "dim beyond int64", body: []byte(in("[1e30,4]", "FP32", `[1,2,3,4]`)), status: 400, msg: "JSON"},
			{name: "empty batch", body: []byte(in("[0,4]", "FP32", `[]`)), status: 400, msg: "empty batch"},
			{name: "missing shape", body: []byte(`{"inputs":[{"name":"x","datatype":"FP32","data":[1,2,3,4]}]}`), status: 400, msg: "shape"},
			{name: "missing data", body: []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32"}]}`), status: 400, msg: "data"},
			{name: "wrong input name", body: []byte(`{"inputs":[{"name":"y","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`), status: 400, msg: `"x"`},
			{name: "two inputs", body: []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`), status: 400, msg: "1 input"},
			{name: "no inputs", body: []byte(`{"inputs":[]}`), status: 400, msg: "no inputs"},
			{name: "unknown output", body: []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"z"}]}`), status: 400, msg: `"z"`},
			{name: "not JSON", body: []byte(`{"inputs": [`), status: 400, msg: "JSON"},
			{name: "empty body", body: nil, status: 400, msg: "empty"},
			{name: "deeply nested JSON", body: []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}]}`), status: 400, msg: "JSON"},
			{name: "nested data too deep", body: []byte(in("[1,4]", "FP32", strings.Repeat("[", 40)+"1"+strings.Repeat("]", 40))), status: 400, msg: "deeper"},
			{name: "unknown model", path: "/v2/models/nope/infer", body: rtInferBody([]float32{1, 2, 3, 4}), status: 404, msg: "nope"},
			{name: "unknown version", path: "/v2/models/lin/versions/9/infer", body: rtInferBody([]float32{1, 2, 3, 4}), status: 404, msg: "version"},
			{name: "bad header length", body: []byte(in("[1,4]", "FP32", `[1,2,3,4]`)), hdr: map[string]string{serve.HeaderContentLength: "-3"}, status: 400, msg: serve.HeaderContentLength},
			{name: "header length past body", body: []byte(in("[1,4]", "FP32", `[1,2,3,4]`)), hdr: map[string]string{serve.HeaderContentLength: "100000"}, status: 400, msg: "body"},
			{name: "unknown endpoint", path: "/v2/models/lin/explain", body: []byte(`{}`), status: 404, msg: "no endpoint"},
		}
		b, h := bin("[1,4]", 1<<20, rtF32([]float32{1, 2, 3, 4}))
		cases = append(cases, tc{name: "binary size > body", body: b, hdr: h, status: 400, msg: "exceeds"})
		b, h = bin("[1,4]", 12, rtF32([]float32{1, 2, 3, 4}))
		cases = append(cases, tc{name: "binary size < data", body: b, hdr: h, status: 400, msg: "not used"})
		b, h = bin("[2,4]", 16, rtF32([]float32{1, 2, 3, 4}))
		cases = append(cases, tc{name: "binary size vs shape", body: b, hdr: h, status: 400, msg: "bytes"})
		b, h = bin("[1,4]", -16, rtF32([]float32{1, 2, 3, 4}))
		cases = append(cases, tc{name: "negative binary size", body: b, hdr: h, status: 400, msg: "binary_data_size"})
		b, _ = bin("[1,4]", 16, rtF32([]float32{1, 2, 3, 4}))
		cases = append(cases, tc{name: "binary without header", body: b, status: 400, msg: "JSON"})
		for _, c := range cases {
			path := c.path
			if path == "" {
				path = "/v2/models/lin/infer"
			}
			code, _, resp := rtDo(t, "POST", e.url+path, c.body, c.hdr)
			if code != c.status {
				t.Errorf("%s: status %d (%s), want %d", c.name, code, resp, c.status)
				continue
			}
			rtContains(t, c.name, rtErrorBody(t, resp), c.msg)
			good()
		}

		// A 100 MB body: refused with 413 (declared length, and streamed without one).
		for _, chunked := range []bool{false, true} {
			req, _ := http.NewRequest("POST", url, io.LimitReader(zeroReader{}, 100<<20))
			if !chunked {
				req.ContentLength = 100 << 20
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("100 MB body (chunked %v): %v", chunked, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("100 MB body (chunked %v): %d %s, want 413", chunked, resp.StatusCode, body)
			} else {
				rtContains(t, "100 MB body", rtErrorBody(t, body), "larger than")
			}
			good()
		}

		// NaN and Inf are valid data: JSON tokens, strings and binary.
		for name, req := range map[string][]byte{
			"tokens":  []byte(in("[1,4]", "FP32", `[NaN, Infinity, -Infinity, 1]`)),
			"strings": []byte(in("[1,4]", "FP32", `["NaN", "Infinity", "-Infinity", 1]`)),
		} {
			code, _, resp := rtDo(t, "POST", url, req, nil)
			if code != 200 || !strings.Contains(string(resp), "NaN") {
				t.Errorf("NaN/Inf %s: %d %s, want 200 with NaN outputs", name, code, resp)
			}
		}
		b, h = bin("[1,4]", 16, rtF32([]float32{float32(math.NaN()), float32(math.Inf(1)), 0, 1}))
		if code, _, resp := rtDo(t, "POST", url, b, h); code != 200 {
			t.Errorf("binary NaN/Inf: %d %s", code, resp)
		}
		good()
	})
}

func TestRESTRepositoryAndMetrics(t *testing.T) {
	e := rtStart(t, serve.Options{})
	url := e.url + "/v2/models/lin/infer"
	for i := 0; i < 3; i++ {
		if code, _, resp := rtDo(t, "POST", url, rtInferBody([]float32{1, 2, 3, 4}), nil); code != 200 {
			t.Fatalf("infer: %d %s", code, resp)
		}
	}
	rtDo(t, "POST", url, []byte(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`), nil)
	code, _, body := rtDo(t, "GET", e.url+"/metrics", nil, nil)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`nv_inference_request_success{model="lin",version="1"} 3`,
		`nv_inference_request_failure{model="lin",version="1"} 1`,
		`nv_inference_count{model="lin",version="1"} 3`,
		`deepgo_requests_total{model="lin",outcome="success",version="1"} 3`,
		`deepgo_requests_total{model="lin",outcome="invalid",version="1"} 1`,
		`deepgo_request_duration_seconds_count{model="lin",version="1"} 3`,
		`deepgo_batch_size_bucket{model="lin",version="1",le="1"}`,
		`nv_inference_exec_count{model="lin",version="1"}`,
		`nv_inference_request_duration_us{model="lin",version="1"}`,
		`nv_inference_queue_duration_us{model="lin",version="1"}`,
		`nv_inference_compute_infer_duration_us{model="lin",version="1"}`,
		`deepgo_queue_depth{model="lin",version="1"} 0`,
		`deepgo_inflight_requests{model="lin",version="1"} 0`,
		`go_goroutines`,
	} {
		rtContains(t, "/metrics", string(body), want)
	}
	// Repository API: index, unload, load.
	code, _, body = rtDo(t, "POST", e.url+"/v2/repository/index", nil, nil)
	if code != 200 || !strings.Contains(string(body), `"name":"lin","version":"1","state":"READY"`) {
		t.Errorf("index: %d %s", code, body)
	}
	if code, _, body = rtDo(t, "POST", e.url+"/v2/repository/models/lin/unload", nil, nil); code != 200 {
		t.Fatalf("unload: %d %s", code, body)
	}
	if code, _, body = rtDo(t, "POST", url, rtInferBody([]float32{1, 2, 3, 4}), nil); code != 404 {
		t.Errorf("infer after unload: %d %s, want 404", code, body)
	}
	code, _, body = rtDo(t, "POST", e.url+"/v2/repository/index", nil, nil)
	if !strings.Contains(string(body), `"name":"lin","state":"UNAVAILABLE"`) {
		t.Errorf("index after unload: %d %s", code, body)
	}
	if code, _, body = rtDo(t, "POST", e.url+"/v2/repository/models/nope/load", nil, nil); code != 404 {
		t.Errorf("load of an unknown model: %d %s, want 404", code, body)
	}
	if code, _, body = rtDo(t, "POST", e.url+"/v2/repository/models/lin/load", []byte(`{}`), nil); code != 200 {
		t.Fatalf("load: %d %s", code, body)
	}
	if code, _, body = rtDo(t, "POST", url, rtInferBody([]float32{1, 2, 3, 4}), nil); code != 200 {
		t.Errorf("infer after load: %d %s", code, body)
	}
}

func TestRESTRecoversPanics(t *testing.T) {
	rtEachTransport(t, func(t *testing.T, tr rtTransport) {
		s := serve.New(serve.Options{})
		g := newRTGate()
		g.panicOn = 13
		g.release()
		if err := s.Repository().LoadPackage("gate", 1, rtGatePackage(g)); err != nil {
			t.Fatal(err)
		}
		s.Handle("GET /boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler exploded") }))
		url := rtListen(t, s, tr)
		code, _, body := rtDo(t, "GET", url+"/boom", nil, nil)
		if code != 500 {
			t.Fatalf("panicking handler: %d %s", code, body)
		}
		rtContains(t, "handler panic", rtErrorBody(t, body), "handler exploded")
		code, _, body = rtDo(t, "POST", url+"/v2/models/gate/infer", rtInferBody([]float32{13, 0, 0, 0}), nil)
		if code != 500 {
			t.Fatalf("panicking model: %d %s", code, body)
		}
		rtContains(t, "model panic", rtErrorBody(t, body), "asked to panic")
		code, _, body = rtDo(t, "POST", url+"/v2/models/gate/infer", rtInferBody([]float32{1, 2, 3, 4}), nil)
		if code != 200 || !strings.Contains(string(body), `"data":[10,1,`) {
			t.Fatalf("request after panics: %d %s", code, body)
		}
	})
}
