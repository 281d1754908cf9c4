package serve_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/serve"
	"github.com/deepgo/deepgo/serve/pb"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
)

// txMaxLen is the toy text model's tokenize max_len.
const txMaxLen = 16

// txEnv is a server with the toy text classifier "txt" and the Linear
// model "lin" behind REST and gRPC.
type txEnv struct {
	s      *serve.Server
	url    string // REST base
	client pb.GRPCInferenceServiceClient
	pkg    *model.Package // the text package as loaded from disk
}

// txPackage saves a small (untrained: its random weights already give
// every text different logits) bag-of-words classifier package with a
// tokenize op, as `deepgo train text` does, and returns its directory.
func txPackage(t testing.TB) string {
	t.Helper()
	corpus := []string{
		"the stock market rose today", "shares fall after weak report", "company holds steady",
		"price surge beats the quarter", "news of a loss", "unchanged flat market",
	}
	tok, err := text.TrainWordLevel(corpus, text.WordLevelConfig{Normalizer: text.Normalizer{Lowercase: true}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := textmodel.DefaultConfig(textmodel.ArchBOW, tok.Vocab().Len(), 3)
	cfg.Dim, cfg.Buckets = 16, 64
	op, err := textmodel.TokenizeOp(tok, txMaxLen, false)
	if err != nil {
		t.Fatal(err)
	}
	pkg := &model.Package{Name: "txt", Module: textmodel.NewBOW(tensor.NewRNG(5), cfg),
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 3}}},
		},
		Preprocess: []model.PreprocessOp{op}, Labels: []string{"pos", "neg", "neu"}}
	dir := filepath.Join(t.TempDir(), "txt")
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	return dir
}

// txStart serves the toy packages through Serve (REST) and gRPC.
func txStart(t *testing.T, opts serve.Options) *txEnv { return txStartOn(t, opts, "serve") }

func txStartOn(t *testing.T, opts serve.Options, tr rtTransport) *txEnv {
	t.Helper()
	dir := txPackage(t)
	pkg, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !textmodel.IsTextModel(pkg.Preprocess) {
		t.Fatal("the toy package is not a text model")
	}
	s := serve.New(opts)
	t.Cleanup(s.Close)
	if err := s.Repository().Load("txt", dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Repository().LoadPackage("lin", 1, rtLinear(1)); err != nil {
		t.Fatal(err)
	}
	url := rtListen(t, s, tr)
	_, client := startGRPC(t, s)
	return &txEnv{s: s, url: url, client: client, pkg: pkg}
}

// txWant runs the package in process on texts: the expected logits.
func txWant(t *testing.T, pkg *model.Package, texts []string) []float32 {
	t.Helper()
	out, err := textmodel.PredictTexts(pkg, texts)
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Shape(); len(s) != 2 || s[0] != len(texts) || s[1] != 3 {
		t.Fatalf("PredictTexts gave shape %v for %d texts", s, len(texts))
	}
	return out.Data()
}

// txJSONBody is a REST request with texts as a JSON BYTES input.
func txJSONBody(name, shape string, texts []string) []byte {
	data, _ := json.Marshal(texts)
	return []byte(`{"inputs":[{"name":"` + name + `","shape":` + shape + `,"datatype":"BYTES","data":` + string(data) + `}]}`)
}

// txRaw is the raw BYTES layout: a uint32 little-endian length then the
// bytes, per element.
func txRaw(texts []string) []byte {
	var b []byte
	for _, s := range texts {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// txBinaryBody forms a binary-extension request as tritonclient.http does
// for a BYTES input: the JSON header, then the length-prefixed texts.
func txBinaryBody(name, shape string, raw []byte) ([]byte, map[string]string) {
	h := fmt.Sprintf(`{"inputs": [{"name": "%s", "shape": %s, "datatype": "BYTES", "parameters": {"binary_data_size": %d}}], "outputs": [{"name": "logits", "parameters": {"binary_data": true}}]}`, name, shape, len(raw))
	return append([]byte(h), raw...), map[string]string{serve.HeaderContentLength: strconv.Itoa(len(h)), "Content-Type": "application/octet-stream"}
}

// txLogits posts a JSON request and returns the logits output.
func txLogits(t *testing.T, url string, body []byte) []float32 {
	t.Helper()
	code, _, resp := rtDo(t, "POST", url, body, nil)
	if code != 200 {
		t.Fatalf("text request: %d %s", code, resp)
	}
	outs := rtJSON(t, resp)["outputs"].([]any)
	for _, o := range outs {
		if m := o.(map[string]any); m["name"] == "logits" {
			return rtOutputData(t, m)
		}
	}
	t.Fatalf("response %s has no logits", resp)
	return nil
}

// txClose checks got against want within 1e-6 (absolute and relative).
func txClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-6*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %v, want %v (all: %v vs %v)", what, i, got[i], want[i], got, want)
		}
	}
}

var txTexts = []string{
	"the stock market rose today",
	"",
	"Shares FALL after a weak report, the company said; the price and the quarter and the news and the market all moved",
	"naïve café ünïcode words unknown to the vocabulary",
}

func TestTextInferREST(t *testing.T) {
	rtEachTransport(t, func(t *testing.T, tr rtTransport) {
		e := txStartOn(t, serve.Options{}, tr)
		url := e.url + "/v2/models/txt/infer"
		want := txWant(t, e.pkg, txTexts)
		if fmt.Sprint(want[:3]) == fmt.Sprint(want[3:6]) {
			t.Fatalf("the toy model gives two texts the same logits %v: the comparison would be weak", want[:6])
		}
		n := strconv.Itoa(len(txTexts))

		// JSON strings, under the signature's input name and under "text",
		// shapes [N] and [N, 1].
		txClose(t, "JSON ids [N]", txLogits(t, url, txJSONBody("ids", "["+n+"]", txTexts)), want)
		txClose(t, "JSON text [N,1]", txLogits(t, url, txJSONBody("text", "["+n+",1]", txTexts)), want)

		// Each text alone gives the same row.
		for i, s := range txTexts {
			txClose(t, fmt.Sprintf("text %d alone", i), txLogits(t, url, txJSONBody("text", "[1]", []string{s})), want[3*i:3*i+3])
		}

		// The binary extension: length-prefixed raw texts, raw logits back.
		body, hdr := txBinaryBody("text", "["+n+"]", txRaw(txTexts))
		code, rh, resp := rtDo(t, "POST", url, body, hdr)
		if code != 200 {
			t.Fatalf("binary text request: %d %s", code, resp)
		}
		hl, err := strconv.Atoi(rh.Get(serve.HeaderContentLength))
		if err != nil || hl > len(resp) {
			t.Fatalf("binary response headers %v", rh)
		}
		txClose(t, "binary", rtFromF32(t, resp[hl:]), want)

		// Probabilities and the classification extension are derived as for
		// any logits.
		code, _, resp = rtDo(t, "POST", url, []byte(`{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["the stock market rose today"]}],"outputs":[{"name":"logits","parameters":{"classification":1}}]}`), nil)
		if code != 200 {
			t.Fatalf("classification: %d %s", code, resp)
		}
		o := rtJSON(t, resp)["outputs"].([]any)[0].(map[string]any)
		best := 0
		for c := range 3 {
			if want[c] > want[best] {
				best = c
			}
		}
		if top := o["data"].([]any); o["datatype"] != "BYTES" || len(top) != 1 ||
			!strings.HasSuffix(top[0].(string), fmt.Sprintf(":%d:%s", best, []string{"pos", "neg", "neu"}[best])) {
			t.Errorf("classification output %v (logits %v)", o, want[:3])
		}

		// The metadata still lists the int64 ids input.
		code, _, resp = rtDo(t, "GET", e.url+"/v2/models/txt", nil, nil)
		if code != 200 || !strings.Contains(string(resp), `"name":"ids","datatype":"INT64","shape":[-1,-1]`) {
			t.Errorf("metadata: %d %s", code, resp)
		}

		// Pre-tokenized ids still work.
		enc, err := textmodel.NewTextEncoder(e.pkg.Preprocess)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := enc.Encode(txTexts[:1])
		if err != nil {
			t.Fatal(err)
		}
		idsJSON, _ := json.Marshal(ids.Int64s())
		txClose(t, "ids", txLogits(t, url, []byte(fmt.Sprintf(`{"inputs":[{"name":"ids","shape":[1,%d],"datatype":"INT64","data":%s}]}`, ids.Size(1), idsJSON))), want[:3])
	})
}

func TestTextInferGRPC(t *testing.T) {
	e := txStart(t, serve.Options{})
	ctx := ctxT(t)
	want := tensor.FromSlice(txWant(t, e.pkg, txTexts), len(txTexts), 3)
	elems := make([][]byte, len(txTexts))
	for i, s := range txTexts {
		elems[i] = []byte(s)
	}
	resp, err := e.client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "txt",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "text", Datatype: "BYTES", Shape: []int64{int64(len(txTexts))},
			Contents: &pb.InferTensorContents{BytesContents: elems}}},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}})
	if err != nil {
		t.Fatalf("bytes_contents: %v", err)
	}
	checkOutput(t, "gRPC bytes_contents", resp, []string{"logits"}, want)

	resp, err = e.client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "txt",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "ids", Datatype: "BYTES", Shape: []int64{int64(len(txTexts)), 1}}},
		Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}},
		RawInputContents: [][]byte{txRaw(txTexts)}})
	if err != nil {
		t.Fatalf("raw_input_contents: %v", err)
	}
	checkOutput(t, "gRPC raw_input_contents", resp, []string{"logits"}, want)

	// Invalid UTF-8 and a bad shape are InvalidArgument.
	for name, in := range map[string]*pb.ModelInferRequest_InferInputTensor{
		"invalid UTF-8": {Name: "text", Datatype: "BYTES", Shape: []int64{1}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("ok \xff\xfe")}}},
		"shape [1,2]":   {Name: "text", Datatype: "BYTES", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("a"), []byte("b")}}},
	} {
		_, err := e.client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "txt", Inputs: []*pb.ModelInferRequest_InferInputTensor{in}})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("gRPC %s: %v, want InvalidArgument", name, err)
		}
	}
}

func TestTextBatching(t *testing.T) {
	// One instance, MaxBatch 3 and a long delay: the worker runs one batch once the
	// 1-text and the 2-text requests are both queued.
	e := txStart(t, serve.Options{MaxBatch: 3, MaxDelay: time.Minute, Instances: 1})
	var mu sync.Mutex
	var batches [][]int
	e.s.Observe(func(m string, _ int64, in, _ *tensor.Tensor) {
		if m == "txt" {
			mu.Lock()
			batches = append(batches, in.Shape())
			mu.Unlock()
		}
	})
	url := e.url + "/v2/models/txt/infer"
	a := []string{"the stock market rose today"}
	b := []string{"news", "shares fall after weak report and the company holds steady while the price"}
	wantA, wantB := txWant(t, e.pkg, a), txWant(t, e.pkg, b)
	var gotA, gotB []float32
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); gotA = txLogitsAsync(url, txJSONBody("text", "[1]", a)) }()
	go func() { defer wg.Done(); gotB = txLogitsAsync(url, txJSONBody("text", "[2,1]", b)) }()
	wg.Wait()
	txClose(t, "batched request A", gotA, wantA)
	txClose(t, "batched request B", gotB, wantB)
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 1 || fmt.Sprint(batches[0]) != fmt.Sprint([]int{3, txMaxLen}) {
		t.Errorf("batches %v, want one of [3 %d]", batches, txMaxLen)
	}
}

// txLogitsAsync is txLogits for a goroutine: a failure gives nil logits.
func txLogitsAsync(url string, body []byte) []float32 {
	resp, err := http.Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var r struct {
		Outputs []struct {
			Name string
			Data []float32
		}
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&r) != nil {
		return nil
	}
	for _, o := range r.Outputs {
		if o.Name == "logits" {
			return o.Data
		}
	}
	return nil
}

func TestTextHostileInputs(t *testing.T) {
	rtEachTransport(t, func(t *testing.T, tr rtTransport) {
		e := txStartOn(t, serve.Options{}, tr)
		url := e.url + "/v2/models/txt/infer"
		good := func() {
			t.Helper()
			txClose(t, "good request", txLogits(t, url, txJSONBody("text", "[1]", txTexts[:1])), txWant(t, e.pkg, txTexts[:1]))
		}

		// A 1 MB text is clipped as predict clips it.
		big := strings.Repeat("stock ", 1<<20/6) + "surge"
		txClose(t, "1 MB text", txLogits(t, url, txJSONBody("text", "[2]", []string{big, "market"})), txWant(t, e.pkg, []string{big, "market"}))
		body, hdr := txBinaryBody("text", "[1]", txRaw([]string{big}))
		if code, _, resp := rtDo(t, "POST", url, body, hdr); code != 200 {
			t.Errorf("binary 1 MB text: %d %s", code, resp)
		}
		// Empty texts classify from an empty bag.
		txClose(t, "empty texts", txLogits(t, url, txJSONBody("text", "[2]", []string{"", ""})), txWant(t, e.pkg, []string{"", ""}))
		good()

		type tc struct {
			name   string
			model  string
			body   []byte
			hdr    map[string]string
			status int
			msg    string
		}
		bin := func(shape string, raw []byte) ([]byte, map[string]string) { return txBinaryBody("text", shape, raw) }
		b1, h1 := bin("[1]", txRaw([]string{"bad \xff\xfe utf8"}))
		b2, h2 := bin("[2]", txRaw([]string{"one"}))
		b3, h3 := bin("[1]", txRaw([]string{"one", "two"}))
		b4, h4 := bin("[1]", []byte{5, 0, 0, 0, 'a'})
		b5, h5 := bin("[1]", []byte{1, 0})
		cases := []tc{
			{name: "invalid UTF-8", body: b1, hdr: h1, status: 400, msg: "not valid UTF-8"},
			{name: "raw: fewer texts than the shape", body: b2, hdr: h2, status: 400, msg: "has 1"},
			{name: "raw: more texts than the shape", body: b3, hdr: h3, status: 400, msg: "more"},
			{name: "raw: length past the end", body: b4, hdr: h4, status: 400, msg: "only 1 bytes follow"},
			{name: "raw: truncated length prefix", body: b5, hdr: h5, status: 400, msg: "truncated length prefix"},
			{name: "shape [1,2]", body: txJSONBody("text", "[1,2]", []string{"a", "b"}), status: 400, msg: "[N] or [N, 1]"},
			{name: "shape [2,1,1]", body: txJSONBody("text", "[2,1,1]", []string{"a", "b"}), status: 400, msg: "[N] or [N, 1]"},
			{name: "scalar shape", body: txJSONBody("text", "[]", []string{"a"}), status: 400, msg: "[N] or [N, 1]"},
			{name: "empty batch", body: txJSONBody("text", "[0]", []string{}), status: 400, msg: "empty batch"},
			{name: "JSON: data count", body: txJSONBody("text", "[3]", []string{"a", "b"}), status: 400, msg: "data has 2"},
			{name: "wrong input name", body: txJSONBody("words", "[1]", []string{"a"}), status: 400, msg: `no input "words"`},
			{name: "text name with INT64", body: []byte(`{"inputs":[{"name":"text","shape":[1,1],"datatype":"INT64","data":[1]}]}`), status: 400, msg: `no input "text"`},
			{name: "unknown output", body: []byte(`{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}],"outputs":[{"name":"nope"}]}`), status: 400, msg: `no output "nope"`},
			{name: "BYTES for a non-text model", model: "lin", body: []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"BYTES","data":["a","b","c","d"]}]}`), status: 400, msg: "BYTES"},
			{name: "text for a non-text model", model: "lin", body: txJSONBody("text", "[1]", []string{"a"}), status: 400, msg: `no input "text"`},
		}
		for _, c := range cases {
			u := url
			if c.model != "" {
				u = e.url + "/v2/models/" + c.model + "/infer"
			}
			code, _, resp := rtDo(t, "POST", u, c.body, c.hdr)
			if code != c.status {
				t.Errorf("%s: status %d (%s), want %d", c.name, code, resp, c.status)
				continue
			}
			rtContains(t, c.name, rtErrorBody(t, resp), c.msg)
			good()
		}
	})
}
