package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx/onnxpb"
	"github.com/deepgo/deepgo/tensor"
)

func TestExportCommand(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "mlp")
	r := tensor.NewRNG(1)
	pkg := &model.Package{Name: "mlp", Module: nn.NewSequential(nn.NewLinear(r, 4, 8, true), &nn.ReLU{}, nn.NewLinear(r, 8, 3, true)),
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "x", DType: model.DTypeFloat32, Shape: []int{-1, 4}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 3}}},
		}}
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "mlp.onnx")
	res := mustRun(t, "export", "--model", dir, "--format", "onnx", "--opset", "17", out)
	if !strings.Contains(res.stdout, "wrote "+out) {
		t.Errorf("stdout %q does not report the file", res.stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(b, &mp); err != nil {
		t.Fatal(err)
	}
	g := mp.GetGraph()
	if mp.GetOpsetImport()[0].GetVersion() != 17 || g.GetInput()[0].GetName() != "x" || g.GetOutput()[0].GetName() != "logits" ||
		g.GetInput()[0].GetType().GetTensorType().GetShape().GetDim()[0].GetDimParam() != "batch" {
		t.Errorf("exported graph: opset %v, input %v, output %v", mp.GetOpsetImport(), g.GetInput(), g.GetOutput())
	}

	for _, args := range [][]string{
		{"export", "--model", dir, "--format", "tflite", out},
		{"export", "--model", dir, "--opset", "11", out},
		{"export", "--model", dir},
		{"export", out},
	} {
		if r := deepgo(t, context.Background(), nil, args...); r.code == 0 {
			t.Errorf("deepgo %s: exit 0, want an error", strings.Join(args, " "))
		}
	}
	if r := deepgo(t, context.Background(), nil, "export", "--model", filepath.Join(tmp, "none"), out); r.code == 0 || r.stderr == "" {
		t.Errorf("export of a missing package: exit %d, stderr %q", r.code, r.stderr)
	}
}
