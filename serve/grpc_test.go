package serve_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/serve"
	"github.com/deepgo/deepgo/serve/pb"
	"github.com/deepgo/deepgo/tensor"
)

// savePackage saves pkg into a fresh directory and loads it back, so the
// test expectations come from the same weights the server loads.
func savePackage(t *testing.T, pkg *model.Package) (string, *model.Package) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), pkg.Name)
	if err := model.Save(dir, pkg); err != nil {
		t.Fatalf("model.Save: %v", err)
	}
	loaded, err := model.Load(dir)
	if err != nil {
		t.Fatalf("model.Load: %v", err)
	}
	return dir, loaded
}

// mlpPackage is a tiny float model: features FP32 [-1, 8] → logits FP32 [-1, 3].
func mlpPackage(t *testing.T) (string, *model.Package) {
	r := tensor.NewRNG(7)
	return savePackage(t, &model.Package{
		Name:   "mlp",
		Module: nn.NewSequential(nn.NewLinear(r, 8, 16, true), &nn.ReLU{}, nn.NewLinear(r, 16, 3, true)),
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "features", DType: model.DTypeFloat32, Shape: []int{-1, 8}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 3}}},
		},
		Labels: []string{"a", "b", "c"},
	})
}

// embPackage is a tiny model with an integer input: ids INT64 [-1, 4] →
// scores FP32 [-1, 2].
func embPackage(t *testing.T) (string, *model.Package) {
	r := tensor.NewRNG(11)
	return savePackage(t, &model.Package{
		Name:   "emb",
		Module: nn.NewSequential(nn.NewEmbedding(r, 10, 3, -1), nn.NewFlatten(), nn.NewLinear(r, 12, 2, true)),
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "ids", DType: model.DTypeInt64, Shape: []int{-1, 4}}},
			Outputs: []model.TensorSpec{{Name: "scores", DType: model.DTypeFloat32, Shape: []int{-1, 2}}},
		},
	})
}

// fixture is a running server with the mlp and emb models behind gRPC.
type fixture struct {
	s        *serve.Server
	addr     string
	client   pb.GRPCInferenceServiceClient
	mlp, emb *model.Package
}

// startGRPC serves s with serve.GRPCServe on 127.0.0.1:0 and connects a
// client; cleanup stops the server gracefully and checks it returned nil.
func startGRPC(t *testing.T, s *serve.Server) (string, pb.GRPCInferenceServiceClient) {
	t.Helper()
	if serve.GRPCServe == nil {
		t.Fatal("serve.GRPCServe is nil: grpc.go's init did not set it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve.GRPCServe(ctx, s, ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("GRPCServe returned %v after cancel, want nil", err)
		}
	})
	return ln.Addr().String(), pb.NewGRPCInferenceServiceClient(conn)
}

func newFixture(t *testing.T, opts serve.Options) *fixture {
	t.Helper()
	mlpDir, mlp := mlpPackage(t)
	embDir, emb := embPackage(t)
	s := serve.New(opts)
	t.Cleanup(s.Close)
	if err := s.Repository().Load("mlp", mlpDir); err != nil {
		t.Fatalf("Load mlp: %v", err)
	}
	if err := s.Repository().Load("emb", embDir); err != nil {
		t.Fatalf("Load emb: %v", err)
	}
	addr, client := startGRPC(t, s)
	return &fixture{s: s, addr: addr, client: client, mlp: mlp, emb: emb}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func f32Bytes(xs []float32) []byte {
	b := make([]byte, 4*len(xs))
	for i, v := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func bytesF32(t *testing.T, b []byte) []float32 {
	t.Helper()
	if len(b)%4 != 0 {
		t.Fatalf("raw FP32 output has %d bytes, not a multiple of 4", len(b))
	}
	xs := make([]float32, len(b)/4)
	for i := range xs {
		xs[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return xs
}

func i64Bytes(xs []int64) []byte {
	b := make([]byte, 8*len(xs))
	for i, v := range xs {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return b
}

// predict runs pkg in process: the expected outputs.
func predict(t *testing.T, pkg *model.Package, in *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	out, err := pkg.Predict(in)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	return out
}

// checkOutput checks that a response has exactly the named outputs, all
// FP32 in raw_output_contents, against want (same order).
func checkOutput(t *testing.T, what string, resp *pb.ModelInferResponse, names []string, want ...*tensor.Tensor) {
	t.Helper()
	if len(resp.Outputs) != len(names) || len(resp.RawOutputContents) != len(names) {
		t.Fatalf("%s: %d outputs and %d raw contents, want %d (%v)", what, len(resp.Outputs), len(resp.RawOutputContents), len(names), names)
	}
	for i, name := range names {
		o := resp.Outputs[i]
		wantShape := []int64{}
		for _, d := range want[i].Shape() {
			wantShape = append(wantShape, int64(d))
		}
		if o.Name != name || o.Datatype != "FP32" || !reflect.DeepEqual(o.Shape, wantShape) {
			t.Fatalf("%s: output %d is %q %s %v, want %q FP32 %v", what, i, o.Name, o.Datatype, o.Shape, name, wantShape)
		}
		if o.Contents != nil {
			t.Errorf("%s: output %q has typed contents as well as raw_output_contents", what, name)
		}
		got := tensor.FromSlice(bytesF32(t, resp.RawOutputContents[i]), want[i].Shape()...)
		testutil.AssertClose(t, what+" "+name, got, want[i], 1e-5, 1e-6)
	}
}

// softmax over the last dimension of a 2-D tensor, in float64.
func softmax(x *tensor.Tensor) *tensor.Tensor {
	shape := x.Shape()
	d := x.Data()
	out := make([]float32, len(d))
	cols := shape[1]
	for r := 0; r < shape[0]; r++ {
		row := d[r*cols : (r+1)*cols]
		m := float64(slices.Max(row))
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(float64(v) - m)
		}
		for j, v := range row {
			out[r*cols+j] = float32(math.Exp(float64(v)-m) / sum)
		}
	}
	return tensor.FromSlice(out, shape...)
}

func TestGRPCHealthAndMetadata(t *testing.T) {
	f := newFixture(t, serve.Options{})
	ctx := ctxT(t)
	live, err := f.client.ServerLive(ctx, &pb.ServerLiveRequest{})
	if err != nil || !live.Live {
		t.Fatalf("ServerLive = %v, %v; want live", live, err)
	}
	ready, err := f.client.ServerReady(ctx, &pb.ServerReadyRequest{})
	if err != nil || !ready.Ready {
		t.Fatalf("ServerReady = %v, %v; want ready", ready, err)
	}
	smd, err := f.client.ServerMetadata(ctx, &pb.ServerMetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := f.s.ServerMetadata()
	if smd.Name != "deepgo" || smd.Version != want.Version || !slices.Equal(smd.Extensions, want.Extensions) {
		t.Errorf("ServerMetadata = %v, want %+v", smd, want)
	}
	mr, err := f.client.ModelReady(ctx, &pb.ModelReadyRequest{Name: "mlp"})
	if err != nil || !mr.Ready {
		t.Fatalf("ModelReady(mlp) = %v, %v; want ready", mr, err)
	}
	md, err := f.client.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "mlp"})
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "mlp" || md.Platform != serve.Platform || len(md.Versions) == 0 {
		t.Errorf("ModelMetadata name/platform/versions = %q %q %v", md.Name, md.Platform, md.Versions)
	}
	if len(md.Inputs) != 1 || md.Inputs[0].Name != "features" || md.Inputs[0].Datatype != "FP32" || !slices.Equal(md.Inputs[0].Shape, []int64{-1, 8}) {
		t.Errorf("ModelMetadata inputs = %v, want features FP32 [-1 8]", md.Inputs)
	}
	// A "logits" output comes with the derived "probabilities".
	if len(md.Outputs) != 2 || md.Outputs[0].Name != "logits" || md.Outputs[1].Name != serve.ProbabilitiesOutput ||
		md.Outputs[0].Datatype != "FP32" || !slices.Equal(md.Outputs[0].Shape, []int64{-1, 3}) {
		t.Errorf("ModelMetadata outputs = %v, want logits and probabilities, FP32 [-1 3]", md.Outputs)
	}
	// The version the metadata names is addressable.
	if _, err := f.client.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "mlp", Version: md.Versions[0]}); err != nil {
		t.Errorf("ModelMetadata(mlp, %s): %v", md.Versions[0], err)
	}
	emd, err := f.client.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "emb"})
	if err != nil || len(emd.Inputs) != 1 || emd.Inputs[0].Datatype != "INT64" {
		t.Errorf("ModelMetadata(emb) = %v, %v; want one INT64 input", emd, err)
	}

	for _, tc := range []struct {
		what string
		call func() error
	}{
		{"ModelReady unknown", func() error {
			_, err := f.client.ModelReady(ctx, &pb.ModelReadyRequest{Name: "nope"})
			return err
		}},
		{"ModelReady unknown version", func() error {
			_, err := f.client.ModelReady(ctx, &pb.ModelReadyRequest{Name: "mlp", Version: "999"})
			return err
		}},
		{"ModelMetadata unknown", func() error {
			_, err := f.client.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "nope"})
			return err
		}},
		{"ModelMetadata unknown version", func() error {
			_, err := f.client.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "mlp", Version: "999"})
			return err
		}},
	} {
		if code := status.Code(tc.call()); code != codes.NotFound {
			t.Errorf("%s: code %v, want NotFound", tc.what, code)
		}
	}
}

func TestGRPCInfer(t *testing.T) {
	f := newFixture(t, serve.Options{})
	ctx := ctxT(t)
	x := testutil.Rand(3, -1, 1, 2, 8)
	want := predict(t, f.mlp, x)
	input := &pb.ModelInferRequest_InferInputTensor{Name: "features", Datatype: "FP32", Shape: []int64{2, 8}}

	raw, err := f.client.ModelInfer(ctx, &pb.ModelInferRequest{
		ModelName: "mlp", Id: "req-1",
		Parameters: map[string]*pb.InferParameter{
			"priority": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 1}},
			"ratio":    {ParameterChoice: &pb.InferParameter_DoubleParam{DoubleParam: 0.5}},
			"big":      {ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: 7}},
			"flag":     {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true}},
			"note":     {ParameterChoice: &pb.InferParameter_StringParam{StringParam: "x"}},
		},
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{input},
		RawInputContents: [][]byte{f32Bytes(x.Data())},
	})
	if err != nil {
		t.Fatalf("ModelInfer raw: %v", err)
	}
	if raw.ModelName != "mlp" || raw.Id != "req-1" || raw.ModelVersion == "" {
		t.Errorf("response model %q version %q id %q, want mlp, a version, req-1", raw.ModelName, raw.ModelVersion, raw.Id)
	}
	checkOutput(t, "raw input", raw, []string{"logits", serve.ProbabilitiesOutput}, want, softmax(want))

	typedIn := &pb.ModelInferRequest_InferInputTensor{Name: "features", Datatype: "FP32", Shape: []int64{2, 8},
		Contents: &pb.InferTensorContents{Fp32Contents: x.Data()}}
	typed, err := f.client.ModelInfer(ctx, &pb.ModelInferRequest{
		ModelName: "mlp", ModelVersion: raw.ModelVersion,
		Inputs:  []*pb.ModelInferRequest_InferInputTensor{typedIn},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}},
	})
	if err != nil {
		t.Fatalf("ModelInfer typed: %v", err)
	}
	checkOutput(t, "fp32_contents input", typed, []string{"logits"}, want)

	ids := []int64{1, 2, 3, 4, 9, 0, 5, 5}
	wantEmb := predict(t, f.emb, tensor.FromInt64(ids, 2, 4))
	idsIn := &pb.ModelInferRequest_InferInputTensor{Name: "ids", Datatype: "INT64", Shape: []int64{2, 4}}
	r1, err := f.client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "emb",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{idsIn}, RawInputContents: [][]byte{i64Bytes(ids)}})
	if err != nil {
		t.Fatalf("ModelInfer INT64 raw: %v", err)
	}
	checkOutput(t, "INT64 raw input", r1, []string{"scores"}, wantEmb)
	idsTyped := &pb.ModelInferRequest_InferInputTensor{Name: "ids", Datatype: "INT64", Shape: []int64{2, 4},
		Contents: &pb.InferTensorContents{Int64Contents: ids}}
	r2, err := f.client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "emb", Inputs: []*pb.ModelInferRequest_InferInputTensor{idsTyped}})
	if err != nil {
		t.Fatalf("ModelInfer int64_contents: %v", err)
	}
	checkOutput(t, "int64_contents input", r2, []string{"scores"}, wantEmb)

	// Classification: the top-2 classes per row as BYTES, raw-encoded with
	// a uint32 length before each element.
	cls, err := f.client.ModelInfer(ctx, &pb.ModelInferRequest{
		ModelName: "mlp", Inputs: []*pb.ModelInferRequest_InferInputTensor{input}, RawInputContents: [][]byte{f32Bytes(x.Data())},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits", Parameters: map[string]*pb.InferParameter{
			"classification": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 2}}}}},
	})
	if err != nil {
		t.Fatalf("ModelInfer classification: %v", err)
	}
	if len(cls.Outputs) != 1 || cls.Outputs[0].Datatype != "BYTES" || !slices.Equal(cls.Outputs[0].Shape, []int64{2, 2}) {
		t.Fatalf("classification output = %v, want BYTES [2 2]", cls.Outputs)
	}
	elems := splitBytes(t, cls.RawOutputContents[0])
	if len(elems) != 4 {
		t.Fatalf("classification output has %d elements, want 4", len(elems))
	}
	for row := range 2 {
		best := 0
		for j, v := range want.Data()[3*row : 3*row+3] {
			if v > want.Data()[3*row+best] {
				best = j
			}
		}
		fields := strings.Split(elems[2*row], ":")
		if len(fields) < 2 || fields[1] != string(rune('0'+best)) {
			t.Errorf("row %d: top class %q, want index %d", row, elems[2*row], best)
		}
	}
}

// splitBytes decodes a raw BYTES tensor (uint32 LE length + bytes each).
func splitBytes(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("raw BYTES tensor: %d trailing bytes", len(b))
		}
		n := binary.LittleEndian.Uint32(b)
		if uint32(len(b)-4) < n {
			t.Fatalf("raw BYTES tensor: element of %d bytes, %d left", n, len(b)-4)
		}
		out = append(out, string(b[4:4+n]))
		b = b[4+n:]
	}
	return out
}

func TestGRPCInferErrors(t *testing.T) {
	f := newFixture(t, serve.Options{MaxBodyBytes: 1 << 20})
	ctx := ctxT(t)
	x := testutil.Rand(5, -1, 1, 1, 8)
	good := f32Bytes(x.Data())
	in := func(name, dtype string, shape ...int64) *pb.ModelInferRequest_InferInputTensor {
		return &pb.ModelInferRequest_InferInputTensor{Name: name, Datatype: dtype, Shape: shape}
	}
	inputs := func(ts ...*pb.ModelInferRequest_InferInputTensor) []*pb.ModelInferRequest_InferInputTensor { return ts }
	for _, tc := range []struct {
		name string
		req  *pb.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"unknown model", &pb.ModelInferRequest{ModelName: "nope", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{good}}, codes.NotFound, "nope"},
		{"unknown version", &pb.ModelInferRequest{ModelName: "mlp", ModelVersion: "999", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{good}}, codes.NotFound, "999"},
		{"float data for an integer model", &pb.ModelInferRequest{ModelName: "emb", Inputs: inputs(in("ids", "FP32", 2, 4)), RawInputContents: [][]byte{good}}, codes.InvalidArgument, "FP32"},
		{"raw size does not match shape", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 2, 8)), RawInputContents: [][]byte{good}}, codes.InvalidArgument, "features"},
		{"typed count does not match shape", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(&pb.ModelInferRequest_InferInputTensor{Name: "features", Datatype: "FP32", Shape: []int64{1, 8}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1, 2}}})}, codes.InvalidArgument, "features"},
		{"wrong feature count", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 2, 4)), RawInputContents: [][]byte{good}}, codes.InvalidArgument, "features"},
		{"negative dimension", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", -1, 8)), RawInputContents: [][]byte{good}}, codes.InvalidArgument, "negative"},
		{"huge dimensions", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", math.MaxInt64/2, 8)), RawInputContents: [][]byte{good}}, codes.InvalidArgument, "features"},
		{"raw count mismatch", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{good, good}}, codes.InvalidArgument, "raw_input_contents"},
		{"raw and typed", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(&pb.ModelInferRequest_InferInputTensor{Name: "features", Datatype: "FP32", Shape: []int64{1, 8}, Contents: &pb.InferTensorContents{Fp32Contents: x.Data()}}), RawInputContents: [][]byte{good}}, codes.InvalidArgument, "both"},
		{"wrong contents field", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(&pb.ModelInferRequest_InferInputTensor{Name: "features", Datatype: "FP32", Shape: []int64{1, 8}, Contents: &pb.InferTensorContents{Fp32Contents: x.Data(), Int64Contents: []int64{1}}})}, codes.InvalidArgument, "int64_contents"},
		{"FP16 typed", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(&pb.ModelInferRequest_InferInputTensor{Name: "features", Datatype: "FP16", Shape: []int64{1, 8}, Contents: &pb.InferTensorContents{Fp32Contents: x.Data()}})}, codes.InvalidArgument, "raw_input_contents"},
		{"unknown datatype", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(&pb.ModelInferRequest_InferInputTensor{Name: "features", Datatype: "FLOAT", Shape: []int64{1, 8}})}, codes.InvalidArgument, "FLOAT"},
		{"unknown input", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("pixels", "FP32", 1, 8)), RawInputContents: [][]byte{good}}, codes.InvalidArgument, "pixels"},
		{"no inputs", &pb.ModelInferRequest{ModelName: "mlp"}, codes.InvalidArgument, ""},
		{"unknown output", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{good}, Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "probs"}}}, codes.InvalidArgument, "probs"},
		{"uint64 parameter out of range", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{good},
			Parameters: map[string]*pb.InferParameter{"p": {ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: math.MaxUint64}}}}, codes.InvalidArgument, "uint64"},
		{"empty parameter", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{good},
			Parameters: map[string]*pb.InferParameter{"p": {}}}, codes.InvalidArgument, "no value"},
		{"bad classification", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{good},
			Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits", Parameters: map[string]*pb.InferParameter{"classification": {ParameterChoice: &pb.InferParameter_StringParam{StringParam: "x"}}}}}}, codes.InvalidArgument, "classification"},
		{"message over the limit", &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{make([]byte, 2<<20)}}, codes.ResourceExhausted, ""},
	} {
		_, err := f.client.ModelInfer(ctx, tc.req)
		st := status.Convert(err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s: got %v %q, want %v mentioning %q", tc.name, st.Code(), st.Message(), tc.code, tc.msg)
		}
		// The server stays up and correct for the next request.
		resp, err := f.client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "mlp", Inputs: inputs(in("features", "FP32", 1, 8)), RawInputContents: [][]byte{good},
			Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}})
		if err != nil {
			t.Fatalf("after %s: good request failed: %v", tc.name, err)
		}
		checkOutput(t, "after "+tc.name, resp, []string{"logits"}, predict(t, f.mlp, x))
	}
}

func TestGRPCUnavailableAfterClose(t *testing.T) {
	f := newFixture(t, serve.Options{})
	ctx := ctxT(t)
	f.s.Close()
	x := testutil.Rand(5, -1, 1, 1, 8)
	_, err := f.client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "mlp",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "features", Datatype: "FP32", Shape: []int64{1, 8}}},
		RawInputContents: [][]byte{f32Bytes(x.Data())}})
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("ModelInfer after Close: %v, want Unavailable", err)
	}
	live, err := f.client.ServerLive(ctx, &pb.ServerLiveRequest{})
	if err != nil || live.Live {
		t.Errorf("ServerLive after Close = %v, %v; want not live", live, err)
	}
	ready, err := f.client.ServerReady(ctx, &pb.ServerReadyRequest{})
	if err != nil || ready.Ready {
		t.Errorf("ServerReady after Close = %v, %v; want not ready", ready, err)
	}
}

func TestGRPCRecoversPanics(t *testing.T) {
	_, mlp := mlpPackage(t)
	s := serve.New(serve.Options{})
	t.Cleanup(s.Close)
	if err := s.Repository().LoadPackage("mlp", 3, mlp); err != nil {
		t.Fatal(err)
	}
	// A panic below the server's own interceptor (here in an extra one, as
	// in any handler) becomes INTERNAL and the server keeps serving.
	boom := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if strings.HasSuffix(info.FullMethod, "/ServerMetadata") {
			panic("boom")
		}
		return h(ctx, req)
	}
	gs := serve.NewGRPCServer(s, grpc.ChainUnaryInterceptor(boom))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	ctx := ctxT(t)
	for range 2 {
		_, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{})
		if st := status.Convert(err); st.Code() != codes.Internal || !strings.Contains(st.Message(), "boom") {
			t.Errorf("panicking ServerMetadata: %v, want Internal mentioning boom", err)
		}
		md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "mlp"})
		if err != nil || !slices.Equal(md.Versions, []string{"3"}) {
			t.Errorf("ModelMetadata after a panic = %v, %v; want versions [3]", md, err)
		}
	}
}

// nodeResult is one call's outcome as client.js prints it.
type nodeResult struct {
	Response json.RawMessage `json:"response"`
	Error    *struct {
		Code    codes.Code `json:"code"`
		Details string     `json:"details"`
	} `json:"error"`
}

// nodeInfer is a ModelInferResponse as proto-loader renders it (64-bit
// integers as strings, bytes as base64).
type nodeInfer struct {
	ModelName string `json:"model_name"`
	ID        string `json:"id"`
	Outputs   []struct {
		Name     string   `json:"name"`
		Datatype string   `json:"datatype"`
		Shape    []string `json:"shape"`
	} `json:"outputs"`
	RawOutputContents [][]byte `json:"raw_output_contents"`
}

// TestGRPCNodeClient is the peer test: @grpc/grpc-js with
// @grpc/proto-loader loads serve/pb/oip.proto and calls every RPC.
func TestGRPCNodeClient(t *testing.T) {
	nodeDir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "@grpc", "grpc-js")); err != nil {
		t.Skip("gRPC peer test needs the npm client: run npm ci in serve/testdata/node (npm ci --prefix serve/testdata/node)")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("gRPC peer test needs node (>= 18) on PATH: apt-get install nodejs npm, then npm ci in serve/testdata/node")
	}
	f := newFixture(t, serve.Options{})
	x := testutil.Rand(9, -1, 1, 3, 8)
	ids := []int64{0, 1, 2, 3, 4, 5, 6, 7}
	caseFile := filepath.Join(t.TempDir(), "case.json")
	tc := map[string]any{
		"model": "mlp", "input": "features", "output": "logits", "rows": 3, "cols": 8, "data": x.Data(),
		"int_model": "emb", "int_input": "ids", "int_rows": 2, "int_cols": 4, "ids": ids,
	}
	b, _ := json.Marshal(tc)
	if err := os.WriteFile(caseFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	proto, err := filepath.Abs(filepath.Join("pb", "oip.proto"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "client.js", f.addr, proto, caseFile)
	cmd.Dir = nodeDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.js: %v\n%s", err, stderr.String())
	}
	var res map[string]nodeResult
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("client.js output is not JSON: %v\n%s", err, stdout)
	}
	ok := func(name string, v any) {
		t.Helper()
		r, found := res[name]
		if !found || r.Error != nil || r.Response == nil {
			t.Fatalf("%s: %+v, want a response", name, r.Error)
		}
		if err := json.Unmarshal(r.Response, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	fails := func(name string, code codes.Code) {
		t.Helper()
		r := res[name]
		if r.Error == nil || r.Error.Code != code || r.Error.Details == "" {
			t.Errorf("%s: %+v, want error code %d (%v) with a message", name, r.Error, code, code)
		}
	}

	var live struct{ Live bool }
	ok("serverLive", &live)
	var ready struct{ Ready bool }
	ok("serverReady", &ready)
	if !live.Live || !ready.Ready {
		t.Errorf("node: live %v ready %v, want both true", live.Live, ready.Ready)
	}
	var smd struct {
		Name       string
		Extensions []string
	}
	ok("serverMetadata", &smd)
	if smd.Name != "deepgo" || !slices.Contains(smd.Extensions, "binary_tensor_data") {
		t.Errorf("node: server metadata %+v", smd)
	}
	var mmd struct {
		Name     string
		Platform string
		Inputs   []struct {
			Name, Datatype string
			Shape          []string
		}
	}
	ok("modelMetadata", &mmd)
	if mmd.Name != "mlp" || mmd.Platform != serve.Platform || len(mmd.Inputs) != 1 || mmd.Inputs[0].Datatype != "FP32" ||
		!slices.Equal(mmd.Inputs[0].Shape, []string{"-1", "8"}) {
		t.Errorf("node: model metadata %+v", mmd)
	}
	var mr struct{ Ready bool }
	ok("modelReady", &mr)
	if !mr.Ready {
		t.Error("node: model not ready")
	}

	want := predict(t, f.mlp, x)
	// inferRaw names no outputs (all come back), inferTyped asks for logits.
	for name, outs := range map[string][]*tensor.Tensor{"inferRaw": {want, softmax(want)}, "inferTyped": {want}} {
		var inf nodeInfer
		ok(name, &inf)
		if inf.ModelName != "mlp" || len(inf.Outputs) != len(outs) || len(inf.RawOutputContents) != len(outs) {
			t.Fatalf("node %s: %+v, want %d outputs", name, inf, len(outs))
		}
		if wantID := map[string]string{"inferRaw": "node-raw", "inferTyped": "node-typed"}[name]; inf.ID != wantID {
			t.Errorf("node %s: id %q, want %q", name, inf.ID, wantID)
		}
		for i, w := range outs {
			o := inf.Outputs[i]
			if o.Name != []string{"logits", serve.ProbabilitiesOutput}[i] || o.Datatype != "FP32" || !slices.Equal(o.Shape, []string{"3", "3"}) {
				t.Errorf("node %s: output %d = %+v", name, i, o)
			}
			testutil.AssertClose(t, "node "+name+" "+o.Name, tensor.FromSlice(bytesF32(t, inf.RawOutputContents[i]), 3, 3), w, 1e-5, 1e-6)
		}
	}
	wantEmb := predict(t, f.emb, tensor.FromInt64(ids, 2, 4))
	for _, name := range []string{"inferInt64", "inferInt64Raw"} {
		var inf nodeInfer
		ok(name, &inf)
		if len(inf.RawOutputContents) != 1 {
			t.Fatalf("node %s: %+v", name, inf)
		}
		testutil.AssertClose(t, "node "+name, tensor.FromSlice(bytesF32(t, inf.RawOutputContents[0]), 2, 2), wantEmb, 1e-5, 1e-6)
	}
	fails("inferUnknownModel", codes.NotFound)
	fails("modelReadyUnknown", codes.NotFound)
	fails("modelMetadataUnknown", codes.NotFound)
	fails("inferBadShape", codes.InvalidArgument)
}

// TestGRPCServeStopsOnCancel checks the GRPCServe hook: it returns nil
// once its context ends and stops listening.
func TestGRPCServeStopsOnCancel(t *testing.T) {
	_, mlp := mlpPackage(t)
	s := serve.New(serve.Options{})
	t.Cleanup(s.Close)
	if err := s.Repository().LoadPackage("mlp", 1, mlp); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve.GRPCServe(ctx, s, ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	if _, err := c.ServerLive(ctxT(t), &pb.ServerLiveRequest{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("GRPCServe after cancel: %v, want nil", err)
	}
	// The listener is closed: a new call fails.
	short, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	_, err = c.ServerLive(short, &pb.ServerLiveRequest{})
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Errorf("call after stop: %v, want Unavailable", err)
	}
}
