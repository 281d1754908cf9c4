package onnx_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx"
	"github.com/deepgo/deepgo/onnx/onnxpb"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

// importFixtures are the PyTorch exports made by tools/fixtures/onnx_export.py.
var importFixtures = []string{"mlp", "mlp_softmax", "cnn", "cnn_bn", "lstm", "lstm2bi", "gru", "transformer", "transformer17"}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "onnx", "testdata", "torch_"+name+".onnx"))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 tools/fixtures/onnx_export.py)", err)
	}
	return b
}

func importFixture(t testing.TB, name string) (*onnx.Imported, *tensor.Tensor, *tensor.Tensor) {
	t.Helper()
	imp, err := onnx.Import(readFixture(t, name), onnx.ImportOptions{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	fx := testutil.LoadFixtures(t, "onnx/testdata/torch_"+name+"_io.safetensors")
	return imp, fx.Get(t, "x"), fx.Get(t, "y")
}

func TestImportMatchesPyTorch(t *testing.T) {
	for _, name := range importFixtures {
		t.Run(name, func(t *testing.T) {
			imp, x, want := importFixture(t, name)
			var got *tensor.Tensor
			tensor.NoGrad(func() { got = imp.Module.Forward(x) })
			testutil.AssertClose(t, name, got, want, 1e-5, 1e-5)
			if len(nn.Parameters(imp.Module)) == 0 {
				t.Fatalf("%s: no trainable parameters", name)
			}
			for _, p := range nn.Parameters(imp.Module) {
				if !p.RequiresGrad() {
					t.Fatalf("%s: parameter without RequiresGrad", name)
				}
			}
		})
	}
}

func TestImportNamesByPosition(t *testing.T) {
	imp, _, _ := importFixture(t, "cnn")
	sd := nn.StateDict(imp.Module)
	for _, k := range []string{"node.0.weight", "node.0.bias", "node.4.weight", "node.4.bias", "node.6.weight"} {
		if _, ok := sd[k]; !ok {
			t.Errorf("missing %s in %v", k, keys(sd))
		}
	}
	if got := sd["node.0.weight"].Shape(); !tensor.SameShape(got, []int{32, 1, 3, 3}) {
		t.Errorf("conv weight shape %v", got)
	}
	imp, _, _ = importFixture(t, "cnn_bn")
	if len(nn.NamedBuffers(imp.Module)) != 4 {
		t.Errorf("BatchNorm buffers: %v", nn.NamedBuffers(imp.Module))
	}
	imp, _, _ = importFixture(t, "lstm")
	sd = nn.StateDict(imp.Module)
	for _, k := range []string{"node.1.weight", "node.12.w", "node.12.r", "node.12.b"} {
		if _, ok := sd[k]; !ok {
			t.Errorf("missing %s in %v", k, keys(sd))
		}
	}
	if imp.Inputs[0].DType != "int64" || imp.Inputs[0].Shape[0] != -1 || imp.Opset != 13 {
		t.Errorf("inputs %+v opset %d", imp.Inputs, imp.Opset)
	}
}

func keys(m map[string]*tensor.Tensor) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestImportFineTune takes one Adam step on two imported models in training
// mode and checks that the loss goes down and every parameter moved.
func TestImportFineTune(t *testing.T) {
	for _, name := range []string{"cnn_bn", "transformer"} {
		t.Run(name, func(t *testing.T) {
			imp, x, _ := importFixture(t, name)
			m := imp.Module
			nn.Train(m)
			n := x.Size(0)
			target := make([]int64, n)
			for i := range target {
				target[i] = int64(i % 3)
			}
			y := tensor.FromInt64(target, n)
			before := make([][]float32, 0)
			for _, p := range nn.Parameters(m) {
				before = append(before, append([]float32(nil), p.Data()...))
			}
			opt := optim.NewAdam(nn.Parameters(m), optim.AdamConfig{LR: 1e-2})
			// Dropout in training mode makes the loss noisy; measure it in
			// eval mode before and after the step.
			evalLoss := func() float32 {
				nn.Eval(m)
				defer nn.Train(m)
				var l float32
				tensor.NoGrad(func() { l = nn.CrossEntropy(m.Forward(x), y).Item() })
				return l
			}
			l0 := evalLoss()
			opt.ZeroGrad()
			loss := nn.CrossEntropy(m.Forward(x), y)
			loss.Backward()
			opt.Step()
			l1 := evalLoss()
			if !(l1 < l0) {
				t.Fatalf("loss did not go down: %v → %v", l0, l1)
			}
			for i, p := range nn.Parameters(m) {
				if p.Grad() == nil {
					t.Fatalf("parameter %d got no gradient", i)
				}
				moved := false
				for j, v := range p.Data() {
					moved = moved || v != before[i][j]
				}
				if !moved {
					t.Fatalf("parameter %d did not change", i)
				}
			}
		})
	}
}

func TestImportErfGradient(t *testing.T) {
	// Erf (from the transformer's GELU) has a gradient: GELU'(x) at the
	// fixture's inputs is checked by the fine-tune test; here a finite
	// difference check of the whole imported transformer on one weight.
	imp, x, _ := importFixture(t, "transformer")
	m := imp.Module
	var w *tensor.Tensor
	for _, np := range nn.NamedParameters(m) {
		if strings.HasSuffix(np.Name, ".weight") && np.Tensor.Dim() == 2 && np.Tensor.Size(0) == 16 && np.Tensor.Size(1) == 32 {
			w = np.Tensor // the first feed-forward matrix, before GELU
			break
		}
	}
	if w == nil {
		t.Fatal("no feed-forward weight found")
	}
	loss := func() *tensor.Tensor { return tensor.Sum(tensor.Mul(m.Forward(x), m.Forward(x))) }
	l := loss()
	nn.ZeroGrad(m)
	l.Backward()
	g := w.Grad().Data()[5]
	d := w.Data()
	old := d[5]
	const eps = 1e-2
	var lp, lm float32
	tensor.NoGrad(func() {
		d[5] = old + eps
		lp = loss().Item()
		d[5] = old - eps
		lm = loss().Item()
	})
	d[5] = old
	num := (lp - lm) / (2 * eps)
	if diff := num - g; diff > 1e-2+1e-2*abs(num) || -diff > 1e-2+1e-2*abs(num) {
		t.Fatalf("gradient %v, finite difference %v", g, num)
	}
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func TestImportUnsupportedOp(t *testing.T) {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(readFixture(t, "mlp"), &mp); err != nil {
		t.Fatal(err)
	}
	n := mp.Graph.Node[1]
	n.OpType = proto.String("Celu")
	n.Name = proto.String("my_celu")
	b, _ := proto.Marshal(&mp)
	_, err := onnx.Import(b, onnx.ImportOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, part := range []string{`"Celu"`, `"my_celu"`, "opset 13", "unsupported"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %s", err, part)
		}
	}
}

func TestImportHostile(t *testing.T) {
	good := readFixture(t, "mlp")
	mutate := func(f func(mp *onnxpb.ModelProto)) []byte {
		var mp onnxpb.ModelProto
		if err := proto.Unmarshal(good, &mp); err != nil {
			t.Fatal(err)
		}
		f(&mp)
		b, err := proto.Marshal(&mp)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"truncated": {good[:len(good)/2], "not an ONNX model"},
		"empty":     {nil, "no graph"},
		"huge dims": {mutate(func(mp *onnxpb.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{1 << 20, 1 << 20}
		}), "dims"},
		"negative dims": {mutate(func(mp *onnxpb.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{-4, 8}
		}), "dims"},
		"size mismatch": {mutate(func(mp *onnxpb.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{17, 8}
		}), "values of data"},
		"cycle": {mutate(func(mp *onnxpb.ModelProto) {
			n := mp.Graph.Node
			n[0].Input[0] = n[len(n)-1].Output[0]
			mp.Graph.Output[0].Name = proto.String(n[len(n)-2].Output[0])
		}), "cycle"},
		"undefined input": {mutate(func(mp *onnxpb.ModelProto) {
			mp.Graph.Node[1].Input[0] = "nowhere"
		}), "never defined"},
		"opset": {mutate(func(mp *onnxpb.ModelProto) {
			mp.OpsetImport[0].Version = proto.Int64(99)
		}), "opset 99"},
		"external data": {mutate(func(mp *onnxpb.ModelProto) {
			mp.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		}), "external"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := onnx.Import(c.data, onnx.ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
	// A size limit below the model's weights is refused.
	if _, err := onnx.Import(good, onnx.ImportOptions{MaxValues: 100}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("MaxValues: %v", err)
	}
}

func TestImportRunErrors(t *testing.T) {
	imp, _, _ := importFixture(t, "mlp")
	if _, err := imp.Module.Run(tensor.Zeros(2, 7)); err == nil || !strings.Contains(err.Error(), "node") {
		t.Fatalf("bad input width: %v", err)
	}
	if _, err := imp.Module.Run(); err == nil {
		t.Fatal("no inputs: no error")
	}
	testutil.MustPanic(t, "Forward", func() { imp.Module.Forward(tensor.Zeros(2, 7)) }, "Gemm", "node")
	testutil.MustPanic(t, "NodeParams", func() { (&onnx.NodeParams{}).Forward(nil) }, "NodeParams")
}

// TestImportModelPackage saves an imported model as a model package, loads
// it back and checks the predictions and the re-exported ONNX bytes.
func TestImportModelPackage(t *testing.T) {
	for _, name := range []string{"lstm", "cnn_bn"} {
		imp, x, want := importFixture(t, name)
		dir := filepath.Join(t.TempDir(), "pkg")
		sig := model.Signature{
			Inputs:  []model.TensorSpec{{Name: "x", DType: imp.Inputs[0].DType, Shape: imp.Inputs[0].Shape}},
			Outputs: []model.TensorSpec{{Name: "y", DType: "float32", Shape: imp.Outputs[0].Shape}},
		}
		if err := model.Save(dir, &model.Package{Name: name, Module: imp.Module, Signature: sig}); err != nil {
			t.Fatalf("%s: save: %v", name, err)
		}
		pkg, err := model.Load(dir)
		if err != nil {
			t.Fatalf("%s: load: %v", name, err)
		}
		got, err := pkg.Predict(x)
		if err != nil {
			t.Fatalf("%s: predict: %v", name, err)
		}
		testutil.AssertClose(t, name+" via package", got, want, 1e-5, 1e-5)

		b, err := pkg.Module.(*onnx.GraphModule).ONNX()
		if err != nil {
			t.Fatal(err)
		}
		again, err := onnx.Import(b, onnx.ImportOptions{})
		if err != nil {
			t.Fatalf("%s: reimport: %v", name, err)
		}
		tensor.NoGrad(func() { got = again.Module.Forward(x) })
		testutil.AssertClose(t, name+" re-exported", got, want, 1e-5, 1e-5)
	}
}

// tinyModel builds a one-input graph of the given nodes by hand.
func tinyModel(nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto, out string) []byte {
	f := int32(onnxpb.TensorProto_FLOAT)
	vi := func(name string) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: &f}}}}
	}
	mp := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("g"), Node: nodes, Initializer: inits,
			Input: []*onnxpb.ValueInfoProto{vi("x")}, Output: []*onnxpb.ValueInfoProto{vi(out)}},
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		panic(err)
	}
	return b
}

func ints(name string, v ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: []int64{int64(len(v))},
		DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: v}
}

func node(op string, in []string, out string) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(op + "_0"), Input: in, Output: []string{out}}
}

// TestImportRuntimeLimits checks that sizes computed at run time from the
// data are capped: a file asking for a huge tensor is an error, not an
// allocation of gigabytes.
func TestImportRuntimeLimits(t *testing.T) {
	for name, c := range map[string]struct {
		nodes []*onnxpb.NodeProto
		inits []*onnxpb.TensorProto
	}{
		"ConstantOfShape": {[]*onnxpb.NodeProto{node("ConstantOfShape", []string{"s"}, "y")}, []*onnxpb.TensorProto{ints("s", 1<<12, 1<<12)}},
		"Expand":          {[]*onnxpb.NodeProto{node("Expand", []string{"x", "s"}, "y")}, []*onnxpb.TensorProto{ints("s", 1<<16, 4096)}},
		"broadcast Add": {[]*onnxpb.NodeProto{
			node("Reshape", []string{"x", "a"}, "col"), node("Reshape", []string{"x", "b"}, "row"),
			node("Add", []string{"col", "row"}, "y")}, []*onnxpb.TensorProto{ints("a", -1, 1), ints("b", 1, -1)}},
	} {
		t.Run(name, func(t *testing.T) {
			imp, err := onnx.Import(tinyModel(c.nodes, c.inits, "y"), onnx.ImportOptions{MaxRuntimeValues: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			_, err = imp.Module.Run(tensor.Zeros(4096))
			if err == nil || !strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), name[len(name)-3:]) {
				t.Fatalf("error %v", err)
			}
		})
	}
	// The same graphs run when the sizes are small.
	imp, err := onnx.Import(tinyModel([]*onnxpb.NodeProto{node("Expand", []string{"x", "s"}, "y")},
		[]*onnxpb.TensorProto{ints("s", 3, 1)}, "y"), onnx.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	y, err := imp.Module.Run(tensor.FromSlice([]float32{1, 2}, 2))
	if err != nil || !tensor.SameShape(y[0].Shape(), []int{3, 2}) || y[0].At(2, 1) != 2 {
		t.Fatalf("Expand: %v %v", y, err)
	}
}

// TestImportSharedInitializer: exporters share equal initializers through
// Identity nodes; the consumer names the parameter and both uses are tied.
func TestImportSharedInitializer(t *testing.T) {
	w := &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{2, 2},
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: []float32{1, 2, 3, 4}}
	b := tinyModel([]*onnxpb.NodeProto{
		node("Identity", []string{"w"}, "w1"),
		node("Identity", []string{"w1"}, "w2"),
		node("MatMul", []string{"x", "w1"}, "h"),
		node("MatMul", []string{"h", "w2"}, "y"),
	}, []*onnxpb.TensorProto{w}, "y")
	imp, err := onnx.Import(b, onnx.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	named := nn.NamedParameters(imp.Module)
	if len(named) != 1 || named[0].Name != "node.2.weight" {
		t.Fatalf("parameters %v", named)
	}
	y := imp.Module.Forward(tensor.FromSlice([]float32{1, 1}, 1, 2))
	// [1 1]·W = [4 6]; [4 6]·W = [22 32].
	testutil.AssertClose(t, "tied", y, tensor.FromSlice([]float32{22, 32}, 1, 2), 0, 0)
	tensor.Sum(y).Backward()
	if named[0].Tensor.Grad() == nil {
		t.Fatal("no gradient")
	}
}

// TestImportGRULinearBeforeReset checks both GRU variants on one step of a
// hidden-size-1 cell against the ONNX formulas written out by hand.
func TestImportGRULinearBeforeReset(t *testing.T) {
	f := func(name string, dims []int64, v ...float32) *onnxpb.TensorProto {
		return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims,
			DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: v}
	}
	// Gates z, r, h. W [1,3,1], R [1,3,1], B [1,6] = [Wb; Rb], h0 [1,1,1].
	inits := []*onnxpb.TensorProto{f("W", []int64{1, 3, 1}, 0.5, -0.3, 0.8), f("R", []int64{1, 3, 1}, 0.2, 0.7, -0.6),
		f("B", []int64{1, 6}, 0.1, 0.2, 0.3, -0.1, 0.05, 0.4), f("h0", []int64{1, 1, 1}, 0.9)}
	const x, h0 = 1.5, 0.9
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	z := sig(0.5*x + 0.1 + 0.2*h0 - 0.1)
	r := sig(-0.3*x + 0.2 + 0.7*h0 + 0.05)
	for lbr, n := range map[int64]float64{
		1: math.Tanh(0.8*x + 0.3 + r*(-0.6*h0+0.4)),
		0: math.Tanh(0.8*x + 0.3 + -0.6*(r*h0) + 0.4),
	} {
		nd := node("GRU", []string{"x", "W", "R", "B", "", "h0"}, "y")
		nd.Attribute = []*onnxpb.AttributeProto{
			{Name: proto.String("hidden_size"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)},
			{Name: proto.String("linear_before_reset"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(lbr)},
		}
		imp, err := onnx.Import(tinyModel([]*onnxpb.NodeProto{nd}, inits, "y"), onnx.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		y := imp.Module.Forward(tensor.FromSlice([]float32{x}, 1, 1, 1))
		want := (1-z)*n + z*h0
		testutil.AssertClose(t, fmt.Sprintf("GRU linear_before_reset=%d", lbr), y, tensor.FromSlice([]float32{float32(want)}, 1, 1, 1, 1), 1e-6, 1e-6)
	}
}
