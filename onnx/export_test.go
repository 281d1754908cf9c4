package onnx_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx"
	"github.com/deepgo/deepgo/onnx/onnxpb"
	"github.com/deepgo/deepgo/tensor"
)

// exportCase is one model exported by the tests, with an input to run it on.
type exportCase struct {
	name  string
	model nn.Module
	opt   onnx.ExportOptions
	input *tensor.Tensor
}

// randomStats gives batch-norm layers non-trivial running statistics and
// affine parameters so that the export is really checked.
func randomStats(r *tensor.RNG, ts ...*tensor.Tensor) {
	for i, t := range ts {
		d := t.Data()
		for j := range d {
			if i == 1 { // variance: positive
				d[j] = float32(0.5 + r.Float64())
			} else {
				d[j] = float32(r.NormFloat64() * 0.5)
			}
		}
	}
}

func floats(seed uint64, shape ...int) *tensor.Tensor { return testutil.Rand(seed, -1, 1, shape...) }

func ids(r *tensor.RNG, n int, shape ...int) *tensor.Tensor {
	total := 1
	for _, s := range shape {
		total *= s
	}
	d := make([]int64, total)
	for i := range d {
		d[i] = int64(r.IntN(n))
	}
	return tensor.FromInt64(d, shape...)
}

func mlp(r *tensor.RNG) nn.Module {
	return nn.NewSequential(nn.NewLinear(r, 8, 16, true), &nn.ReLU{}, nn.NewLinear(r, 16, 16, true), &nn.Tanh{},
		nn.NewLinear(r, 16, 12, false), nn.NewLeakyReLU(), nn.NewLinear(r, 12, 5, true), &nn.LogSoftmax{Dim: 1})
}

func seedCNN(r *tensor.RNG) nn.Module {
	return nn.NewSequential(nn.NewConv2D(r, 1, 32, 3, tensor.Conv2DOptions{}, true), &nn.ReLU{}, nn.NewMaxPool2D(2),
		nn.NewFlatten(), nn.NewLinear(r, 5408, 64, true), &nn.ReLU{}, nn.NewLinear(r, 64, 10, true))
}

// cases builds every exported model; each is in eval mode.
func cases(t testing.TB) []exportCase {
	r := tensor.NewRNG(7)
	var out []exportCase
	add := func(name string, m nn.Module, opt onnx.ExportOptions, in *tensor.Tensor) {
		nn.Eval(m)
		out = append(out, exportCase{name, m, opt, in})
	}
	add("mlp", mlp(r), onnx.ExportOptions{InputShape: []int{-1, 8}}, floats(1, 3, 8))
	add("cnn", seedCNN(r), onnx.ExportOptions{InputName: "image", OutputName: "logits", InputShape: []int{-1, 1, 28, 28}},
		floats(2, 2, 1, 28, 28))

	bn2 := nn.NewBatchNorm2D(8, nn.DefaultBatchNorm)
	randomStats(r, bn2.RunningMean, bn2.RunningVar, bn2.Weight, bn2.Bias)
	cnn2 := nn.NewSequential(
		nn.NewConv2D(r, 4, 8, 3, tensor.Conv2DOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, Groups: 2}, true), bn2,
		&nn.Sigmoid{}, nn.NewAvgPool2D(2),
		nn.NewConv2D(r, 8, 4, 3, tensor.Conv2DOptions{Padding: [2]int{2, 2}, Dilation: [2]int{2, 2}}, false),
		&nn.GELU{}, nn.NewFlatten(), nn.NewLinear(r, 4*3*3, 5, true), &nn.Softmax{Dim: -1})
	add("cnn_bn", cnn2, onnx.ExportOptions{InputShape: []int{-1, 4, 12, 12}}, floats(3, 2, 4, 12, 12))

	normModel := func() nn.Module {
		bn1 := nn.NewBatchNorm1D(10, nn.DefaultBatchNorm)
		randomStats(r, bn1.RunningMean, bn1.RunningVar, bn1.Weight, bn1.Bias)
		ln := nn.NewLayerNorm([]int{10}, true)
		randomStats(r, ln.Weight, ln.Bias)
		return nn.NewSequential(nn.NewLinear(r, 6, 10, true), bn1, &nn.GELU{Approximate: true}, ln,
			nn.NewDropout(r, 0.3), nn.NewLinear(r, 10, 3, true), &nn.Softmax{Dim: 1})
	}
	add("norm13", normModel(), onnx.ExportOptions{InputShape: []int{-1, 6}}, floats(4, 3, 6))
	add("norm17", normModel(), onnx.ExportOptions{InputShape: []int{-1, 6}, Opset: 17}, floats(5, 3, 6))

	add("embedding", nn.NewSequential(nn.NewEmbedding(r, 20, 6, 0), nn.NewFlatten(), nn.NewLinear(r, 30, 3, true)),
		onnx.ExportOptions{InputName: "ids", InputShape: []int{-1, 5}}, ids(r, 20, 3, 5))

	lstm := nn.NewSequential(nn.NewEmbedding(r, 20, 8, -1),
		nn.NewLSTM(r, 8, 6, nn.RNNOptions{NumLayers: 2, Bias: true, BatchFirst: true, Bidirectional: true, Dropout: 0.2}),
		nn.NewFlatten(), nn.NewLinear(r, 5*12, 3, true))
	add("lstm", lstm, onnx.ExportOptions{InputShape: []int{-1, 5}}, ids(r, 20, 3, 5))

	gru := nn.NewSequential(nn.NewGRU(r, 4, 6, nn.RNNOptions{NumLayers: 2, Bias: true}), nn.NewLinear(r, 6, 3, true))
	add("gru", gru, onnx.ExportOptions{InputShape: []int{5, -1, 4}}, floats(6, 5, 3, 4))
	gru2 := nn.NewSequential(nn.NewGRU(r, 4, 5, nn.RNNOptions{NumLayers: 1, BatchFirst: true, Bidirectional: true}),
		nn.NewFlatten(), nn.NewLinear(r, 4*10, 2, true))
	add("gru_bidir_nobias", gru2, onnx.ExportOptions{InputShape: []int{-1, 4, 4}}, floats(7, 3, 4, 4))

	transformer := func() nn.Module {
		cfg := nn.TransformerEncoderLayerConfig{DModel: 16, NHead: 4, DimFeedforward: 32, Activation: "relu",
			LayerNormEps: 1e-5, BatchFirst: true, Dropout: 0.1}
		return nn.NewSequential(nn.NewEmbedding(r, 30, 16, -1),
			nn.NewSinusoidalPositionalEncoding(r, 16, 10, 0.1, true),
			nn.NewTransformerEncoder(r, cfg, 2, true), nn.NewFlatten(), nn.NewLinear(r, 6*16, 4, true))
	}
	add("transformer13", transformer(), onnx.ExportOptions{InputShape: []int{-1, 6}}, ids(r, 30, 3, 6))
	add("transformer17", transformer(), onnx.ExportOptions{InputShape: []int{-1, 6}, Opset: 17}, ids(r, 30, 3, 6))
	preNorm := nn.NewSequential(nn.NewLearnedPositionalEmbedding(r, 8, 16, false),
		nn.NewTransformerEncoderLayer(r, nn.TransformerEncoderLayerConfig{DModel: 16, NHead: 2, DimFeedforward: 24,
			Activation: "gelu", LayerNormEps: 1e-6, NormFirst: true}))
	add("prenorm_gelu", preNorm, onnx.ExportOptions{InputShape: []int{6, -1, 16}}, floats(8, 6, 3, 16))
	return out
}

// exported writes every case's ONNX file under dir and returns the paths.
func exported(t *testing.T, dir string, cs []exportCase) []string {
	t.Helper()
	paths := make([]string, len(cs))
	for i, c := range cs {
		paths[i] = filepath.Join(dir, c.name+".onnx")
		if err := onnx.ExportFile(paths[i], c.model, c.opt); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	return paths
}

func decode(t *testing.T, c exportCase) *onnxpb.ModelProto {
	t.Helper()
	b, err := onnx.Export(c.model, c.opt)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(b, &mp); err != nil {
		t.Fatalf("%s: decoding the export: %v", c.name, err)
	}
	return &mp
}

func dims(vi *onnxpb.ValueInfoProto) []string {
	var out []string
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		if p := d.GetDimParam(); p != "" {
			out = append(out, p)
		} else {
			out = append(out, strconv.FormatInt(d.GetDimValue(), 10))
		}
	}
	return out
}

func ops(g *onnxpb.GraphProto) []string {
	var out []string
	for _, n := range g.GetNode() {
		out = append(out, n.GetOpType())
	}
	return out
}

func initializers(g *onnxpb.GraphProto) map[string]*onnxpb.TensorProto {
	out := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		out[t.GetName()] = t
	}
	return out
}

func rawFloats(t *onnxpb.TensorProto) []float32 {
	raw := t.GetRawData()
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
	}
	return out
}

// TestExportStructure decodes exports and checks the graph without peers.
func TestExportStructure(t *testing.T) {
	cs := cases(t)
	byName := map[string]exportCase{}
	for _, c := range cs {
		byName[c.name] = c
	}

	mlpModel := decode(t, byName["mlp"])
	if mlpModel.GetIrVersion() != 7 || len(mlpModel.GetOpsetImport()) != 1 || mlpModel.GetOpsetImport()[0].GetVersion() != 13 {
		t.Errorf("mlp: IR %d opsets %v, want IR 7 opset 13", mlpModel.GetIrVersion(), mlpModel.GetOpsetImport())
	}
	g := mlpModel.GetGraph()
	if len(g.GetInput()) != 1 || g.GetInput()[0].GetName() != "input" ||
		strings.Join(dims(g.GetInput()[0]), ",") != "batch,8" ||
		g.GetInput()[0].GetType().GetTensorType().GetElemType() != int32(onnxpb.TensorProto_FLOAT) {
		t.Errorf("mlp: graph inputs %v", g.GetInput())
	}
	if len(g.GetOutput()) != 1 || g.GetOutput()[0].GetName() != "output" || strings.Join(dims(g.GetOutput()[0]), ",") != "batch,5" {
		t.Errorf("mlp: graph outputs %v", g.GetOutput())
	}
	if got := strings.Join(ops(g), ","); got != "Gemm,Relu,Gemm,Tanh,Gemm,LeakyRelu,Gemm,LogSoftmax" {
		t.Errorf("mlp ops %s", got)
	}
	inits := initializers(g)
	lin := byName["mlp"].model.(*nn.Sequential).Layers[0].(*nn.Linear)
	w := inits["0.weight"]
	if w == nil || w.GetDataType() != int32(onnxpb.TensorProto_FLOAT) || len(w.GetDims()) != 2 || w.GetDims()[0] != 16 || w.GetDims()[1] != 8 {
		t.Fatalf("mlp: initializer 0.weight = %v", w)
	}
	if got := rawFloats(w); len(got) != 128 || got[9] != lin.Weight.Data()[9] {
		t.Errorf("mlp: 0.weight raw data does not hold the weight")
	}
	if _, ok := inits["4.bias"]; ok {
		t.Errorf("mlp: bias-free Linear got a bias initializer")
	}

	cnn := decode(t, byName["cnn"]).GetGraph()
	if got := strings.Join(ops(cnn), ","); got != "Conv,Relu,MaxPool,Flatten,Gemm,Relu,Gemm" {
		t.Errorf("cnn ops %s", got)
	}
	if cnn.GetInput()[0].GetName() != "image" || cnn.GetOutput()[0].GetName() != "logits" ||
		strings.Join(dims(cnn.GetInput()[0]), ",") != "batch,1,28,28" || strings.Join(dims(cnn.GetOutput()[0]), ",") != "batch,10" {
		t.Errorf("cnn: input %v output %v", cnn.GetInput(), cnn.GetOutput())
	}
	if d := initializers(cnn)["4.weight"].GetDims(); len(d) != 2 || d[0] != 64 || d[1] != 5408 {
		t.Errorf("cnn: 4.weight dims %v", d)
	}

	n17 := decode(t, byName["norm17"])
	if n17.GetIrVersion() != 8 || n17.GetOpsetImport()[0].GetVersion() != 17 || !contains(ops(n17.GetGraph()), "LayerNormalization") {
		t.Errorf("norm17: IR %d, opset %v, ops %v", n17.GetIrVersion(), n17.GetOpsetImport(), ops(n17.GetGraph()))
	}
	if o := ops(decode(t, byName["norm13"]).GetGraph()); contains(o, "LayerNormalization") || !contains(o, "ReduceMean") || !contains(o, "BatchNormalization") {
		t.Errorf("norm13 ops %v", o)
	}

	emb := decode(t, byName["embedding"]).GetGraph()
	if emb.GetInput()[0].GetType().GetTensorType().GetElemType() != int32(onnxpb.TensorProto_INT64) || emb.GetInput()[0].GetName() != "ids" {
		t.Errorf("embedding: input %v, want int64 \"ids\"", emb.GetInput()[0])
	}

	// LSTM: gate blocks reordered from torch i,f,g,o to ONNX i,o,f,c.
	lg := decode(t, byName["lstm"]).GetGraph()
	var lstmNodes []*onnxpb.NodeProto
	for _, n := range lg.GetNode() {
		if n.GetOpType() == "LSTM" {
			lstmNodes = append(lstmNodes, n)
		}
	}
	if len(lstmNodes) != 2 {
		t.Fatalf("lstm: %d LSTM nodes, want 2 (one per layer)", len(lstmNodes))
	}
	for _, a := range lstmNodes[0].GetAttribute() {
		if a.GetName() == "direction" && string(a.GetS()) != "bidirectional" || a.GetName() == "hidden_size" && a.GetI() != 6 {
			t.Errorf("lstm: attribute %v", a)
		}
	}
	W := initializers(lg)[lstmNodes[0].GetInput()[1]]
	if d := W.GetDims(); len(d) != 3 || d[0] != 2 || d[1] != 24 || d[2] != 8 {
		t.Fatalf("lstm: W dims %v, want [2 24 8]", d)
	}
	wih, _, _, _ := byName["lstm"].model.(*nn.Sequential).Layers[1].(*nn.LSTM).Layer(0, false)
	wf := rawFloats(W)
	block := 6 * 8
	for j, g := range []int{0, 3, 1, 2} {
		if wf[j*block] != wih.Data()[g*block] || wf[j*block+block-1] != wih.Data()[g*block+block-1] {
			t.Errorf("lstm: ONNX gate block %d is not torch block %d", j, g)
		}
	}
	gg := decode(t, byName["gru"]).GetGraph()
	if got := strings.Join(dims(gg.GetOutput()[0]), ","); got != "5,batch,3" {
		t.Errorf("gru: output dims %s", got)
	}
	for _, n := range gg.GetNode() {
		if n.GetOpType() == "GRU" && !hasAttr(n, "linear_before_reset", 1) {
			t.Errorf("gru: node without linear_before_reset=1")
		}
	}
	tr := ops(decode(t, byName["transformer13"]).GetGraph())
	for _, want := range []string{"Gather", "MatMul", "Softmax", "Reshape", "Transpose", "ReduceMean", "Sqrt"} {
		if !contains(tr, want) {
			t.Errorf("transformer13 has no %s node: %v", want, tr)
		}
	}
	if pg := ops(decode(t, byName["prenorm_gelu"]).GetGraph()); !contains(pg, "Erf") {
		t.Errorf("prenorm_gelu: GELU without Erf: %v", pg)
	}
}

func hasAttr(n *onnxpb.NodeProto, name string, v int64) bool {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name && a.GetI() == v {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type custom struct{}

func (custom) Forward(x *tensor.Tensor) *tensor.Tensor { return x }

func TestExportErrors(t *testing.T) {
	r := tensor.NewRNG(1)
	opt := onnx.ExportOptions{InputShape: []int{-1, 4}}
	check := func(what string, m nn.Module, opt onnx.ExportOptions, parts ...string) {
		t.Helper()
		_, err := onnx.Export(m, opt)
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %q does not mention %q", what, err, p)
			}
		}
	}
	check("unsupported layer", nn.NewSequential(nn.NewLinear(r, 4, 4, true), nn.NewSequential(&nn.ReLU{}, custom{})), opt,
		"1.1", "onnx_test.custom")
	check("LoRA", nn.NewSequential(nn.NewLoRALinear(r, nn.NewLinear(r, 4, 4, true), 2, 4, 0)), opt, "0", "LoRALinear")
	check("opset", nn.NewLinear(r, 4, 2, true), onnx.ExportOptions{InputShape: []int{-1, 4}, Opset: 11}, "opset 11")
	check("no shape", nn.NewLinear(r, 4, 2, true), onnx.ExportOptions{}, "InputShape")
	check("bad dim", nn.NewLinear(r, 4, 2, true), onnx.ExportOptions{InputShape: []int{-1, 0}}, "[-1 0]")
	check("features", nn.NewSequential(nn.NewLinear(r, 4, 3, true), nn.NewLinear(r, 4, 2, true)), opt, "layer 1", "[batch 3]", "4 features")
	bn := nn.NewBatchNorm1D(4, nn.BatchNormOptions{Eps: 1e-5, Affine: true})
	check("batch norm without stats", bn, opt, "running statistics")
	check("embedding float input", nn.NewEmbedding(r, 5, 2, -1), onnx.ExportOptions{InputShape: []int{-1, 4}, InputDType: "float32"}, "int64")
	check("dtype", nn.NewLinear(r, 4, 2, true), onnx.ExportOptions{InputShape: []int{-1, 4}, InputDType: "float16"}, "float16")
	if err := onnx.ExportFile(filepath.Join(t.TempDir(), "missing", "x.onnx"), nn.NewLinear(r, 4, 2, true), opt); err == nil {
		t.Errorf("ExportFile into a missing directory: no error")
	}
}

func TestExportFileAtomic(t *testing.T) {
	dir := t.TempDir()
	m := mlp(tensor.NewRNG(3))
	opt := onnx.ExportOptions{InputShape: []int{-1, 8}}
	path := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := onnx.ExportFile(path, m, opt); err != nil {
		t.Fatal(err)
	}
	want, err := onnx.Export(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("file differs from Export's bytes (err %v)", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after ExportFile, want 1", len(entries))
	}
}

// nodeCase is one entry of run.js's input.
type nodeCase struct {
	Model  string                    `json:"model"`
	Inputs map[string]nodeInputValue `json:"inputs"`
}

type nodeInputValue struct {
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
	Data  any    `json:"data"`
}

type nodeResult struct {
	Outputs map[string]struct {
		Dims []int     `json:"dims"`
		Data []float64 `json:"data"`
	} `json:"outputs"`
	Error string `json:"error"`
}

// TestExportCheckModel runs onnx.checker.check_model(full_check=True) on
// every exported file.
func TestExportCheckModel(t *testing.T) {
	const py = "/usr/bin/python3"
	script := filepath.Join("testdata", "check_onnx.py")
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3: apt-get install python3-onnx")
	}
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		t.Skip("python3 has no onnx module: apt-get install python3-onnx")
	}
	cs := cases(t)
	paths := exported(t, t.TempDir(), cs)
	out, err := exec.Command(py, append([]string{script}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("check_model rejected exports (%v):\n%s", err, out)
	}
	if n := strings.Count(string(out), "ok "); n != len(cs) {
		t.Errorf("check_model accepted %d of %d files:\n%s", n, len(cs), out)
	}
}

// TestExportOnnxruntime runs every exported model in onnxruntime-node (one
// node process) and compares with deepgo's outputs.
func TestExportOnnxruntime(t *testing.T) {
	nodeDir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "onnxruntime-node")); err != nil {
		t.Skip("onnxruntime-node missing: run npm ci --ignore-scripts in onnx/testdata/node")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: install Node.js, then run npm ci --ignore-scripts in onnx/testdata/node")
	}
	cs := cases(t)
	dir := t.TempDir()
	paths := exported(t, dir, cs)
	var req []nodeCase
	want := make([]*tensor.Tensor, len(cs))
	for i, c := range cs {
		tensor.NoGrad(func() { want[i] = c.model.Forward(c.input) })
		in := nodeInputValue{DType: "float32", Shape: c.input.Shape()}
		if c.input.DType() == tensor.Int64 {
			in.DType, in.Data = "int64", c.input.Int64s()
		} else {
			in.Data = c.input.Data()
		}
		name := c.opt.InputName
		if name == "" {
			name = "input"
		}
		req = append(req, nodeCase{Model: paths[i], Inputs: map[string]nodeInputValue{name: in}})
	}
	reqPath := filepath.Join(dir, "cases.json")
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nodeBin, "run.js", reqPath)
	cmd.Dir = nodeDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node run.js: %v\n%s", err, stderr.String())
	}
	var res []nodeResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(cs) {
		t.Fatalf("node run.js output (%d results, %v): %.500s", len(res), err, out)
	}
	for i, c := range cs {
		if res[i].Error != "" {
			t.Errorf("%s: onnxruntime: %s", c.name, res[i].Error)
			continue
		}
		name := c.opt.OutputName
		if name == "" {
			name = "output"
		}
		o, ok := res[i].Outputs[name]
		if !ok {
			t.Errorf("%s: onnxruntime returned no %q output", c.name, name)
			continue
		}
		data := make([]float32, len(o.Data))
		for j, v := range o.Data {
			data[j] = float32(v)
		}
		if len(data) != want[i].Numel() {
			t.Errorf("%s: onnxruntime output dims %v, deepgo %v", c.name, o.Dims, want[i].Shape())
			continue
		}
		got := tensor.FromSlice(data, o.Dims...)
		testutil.AssertClose(t, c.name, got, want[i], 1e-5, 1e-5)
	}
}
