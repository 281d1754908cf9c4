package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
)

// TestImportONNX imports a PyTorch ONNX export into a model package and
// checks that the package predicts PyTorch's outputs.
func TestImportONNX(t *testing.T) {
	in := filepath.Join(testutil.RepoRoot(), "onnx", "testdata", "torch_lstm.onnx")
	dir := filepath.Join(t.TempDir(), "lstm")
	r := mustRun(t, "import", in, "--out", dir, "--labels", "a,b,c,d")
	if !strings.Contains(r.stdout, "opset 13") {
		t.Fatalf("stdout %q", r.stdout)
	}
	pkg, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Signature.Inputs[0].DType != "int64" || len(pkg.Labels) != 4 || pkg.Metadata["imported_from"] != "torch_lstm.onnx" {
		t.Fatalf("package %+v", pkg)
	}
	fx := testutil.LoadFixtures(t, "onnx/testdata/torch_lstm_io.safetensors")
	got, err := pkg.Predict(fx.Get(t, "x"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "imported lstm", got, fx.Get(t, "y"), 1e-5, 1e-5)
}

func TestImportUsageErrors(t *testing.T) {
	in := filepath.Join(testutil.RepoRoot(), "onnx", "testdata", "torch_mlp.onnx")
	out := filepath.Join(t.TempDir(), "x")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", in}, "--out"},
		{[]string{"import", "model.txt", "--out", out}, "extension"},
		{[]string{"import", in, "--out", out, "--arch", "m.json"}, "PyTorch"},
		{[]string{"import", "w.pt", "--out", out}, "--arch"},
	} {
		r := deepgo(t, context.Background(), nil, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want usage error mentioning %q", c.args, r.code, r.stderr, c.want)
		}
	}
	r := deepgo(t, context.Background(), nil, "import", filepath.Join(t.TempDir(), "missing.onnx"), "--out", out)
	if r.code != exitError {
		t.Errorf("missing file: exit %d", r.code)
	}
}
