package onnx_test

import (
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/onnx"
	"github.com/deepgo/deepgo/tensor"
)

// FuzzImport feeds mutated ONNX files to Import (seeded with the PyTorch
// fixtures): it must return a module or an error, never panic, and a module
// it returns must run the fixture's input to a result or an error.
func FuzzImport(f *testing.F) {
	inputs := map[int][]*tensor.Tensor{}
	for _, name := range importFixtures {
		if name == "cnn" {
			continue // 1.4 MB: too slow a seed to mutate
		}
		f.Add(readFixture(f, name))
		fx := testutil.LoadFixtures(f, "onnx/testdata/torch_"+name+"_io.safetensors")
		x := fx.Get(f, "x")
		inputs[x.Dim()] = append(inputs[x.Dim()], x)
	}
	opt := onnx.ImportOptions{MaxValues: 1 << 20, MaxNodes: 4096, MaxRuntimeValues: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		imp, err := onnx.Import(data, opt)
		if err != nil {
			if imp != nil {
				t.Fatal("module and error")
			}
			return
		}
		if len(imp.Inputs) != 1 {
			return
		}
		rank := len(imp.Inputs[0].Shape)
		for _, x := range inputs[rank] {
			_, _ = imp.Module.Run(x)
		}
	})
}
