package model_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

func TestMNISTExampleManifest(t *testing.T) {
	data, err := os.ReadFile("testdata/mnist_cnn.json")
	if err != nil {
		t.Fatal(err)
	}
	man, err := model.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Build(man.Architecture, model.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The spec rebuilds exactly the Go-built CNN: same spec, same keys.
	want, _ := model.Spec(mnistCNN(1))
	got, _ := model.Spec(m)
	if jsonOf(t, got) != jsonOf(t, want) {
		t.Errorf("example architecture %s\nwant %s", jsonOf(t, got), jsonOf(t, want))
	}
	if err := nn.LoadStateDict(m, nn.StateDict(mnistCNN(1)), true); err != nil {
		t.Errorf("PyTorch-named weights do not load strictly: %v", err)
	}
	if len(man.Labels) != 10 || man.Metadata["seed"] != 42.0 || man.Preprocessing[2].Mean[0] != 0.1307 {
		t.Errorf("manifest fields: %+v", man)
	}

	// docs/model-format.md shows the same example.
	doc, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "docs", "model-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```json\n(\\{\n  \"format_version\".*?)```").FindSubmatch(doc)
	if block == nil {
		t.Fatal("docs/model-format.md has no model.json example")
	}
	var a, b any
	if err := json.Unmarshal(block[1], &a); err != nil {
		t.Fatalf("docs example: %v", err)
	}
	json.Unmarshal(data, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("docs/model-format.md example differs from testdata/mnist_cnn.json")
	}
}

func TestManifestValidation(t *testing.T) {
	base := `{"format_version": 1, "architecture": {"type": "ReLU"}, "signature": {"inputs": [%s], "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 3]}]}%s}`
	in := `{"name": "x", "dtype": "float32", "shape": [-1, 3]}`
	cases := []struct{ inputs, extra, want string }{
		{``, ``, "at least one input"},
		{`{"name": "", "dtype": "float32", "shape": [-1]}`, ``, "missing name"},
		{`{"name": "x", "dtype": "float16", "shape": [-1]}`, ``, `"float16"`},
		{`{"name": "x", "dtype": "float32", "shape": []}`, ``, "missing shape"},
		{`{"name": "x", "dtype": "float32", "shape": [-2, 3]}`, ``, "[-2 3]"},
		{in + "," + in, ``, "used twice"},
		{in, `, "labels": ["a", "b"]`, "2 labels"},
		{in, `, "preprocessing": [{"op": "blur"}]`, `preprocessing[0]: unknown preprocessing op "blur"`},
		{in, `, "preprocessing": [{"op": "scale"}]`, "factor"},
		{in, `, "preprocessing": [{"op": "scale", "factor": 2, "mean": [1]}]`, `does not take "mean"`},
		{in, `, "preprocessing": [{"op": "normalize", "mean": [1, 2], "std": [1]}]`, "one value per channel"},
		{in, `, "preprocessing": [{"op": "normalize", "mean": [1], "std": [0]}]`, "std > 0"},
		{in, `, "preprocessing": [{"op": "image", "height": 28, "width": 28, "channels": 2}]`, "channels"},
		{in, `, "preprocessing": [{"op": "image", "height": 28, "width": 28, "channels": 1, "center": "left"}]`, "left"},
		{in, `, "preprocessing": [{"op": "standardize", "columns": ["a", "a"], "mean": [0, 0], "std": [1, 1]}]`, "twice"},
		{in, `, "preprocessing": [{"op": "one_hot", "column": "c"}]`, "categories"},
		{in, `, "preprocessing": [{"op": "scale", "factor": 2, "unknown": 1}]`, "unknown"},
		{in, `, "monitor": {"ok": true}} trailing`, "after the JSON object"},
	}
	for _, c := range cases {
		src := []byte(fmt.Sprintf(base, c.inputs, c.extra))
		_, err := model.ParseManifest(src)
		if err == nil {
			t.Errorf("%s: no error", src)
			continue
		}
		oneLine(t, err, c.want)
	}
	ok := fmt.Sprintf(base, in, `, "labels": ["a", "b", "c"], "monitor": {"ref": [1]}`)
	man, err := model.ParseManifest([]byte(ok))
	if err != nil || string(man.Monitor) != `{"ref": [1]}` {
		t.Errorf("valid manifest: %+v, %v", man, err)
	}
	if _, err := model.ReadManifest(t.TempDir()); err == nil {
		t.Error("ReadManifest of an empty directory succeeded")
	}
}

func TestTabular(t *testing.T) {
	ops := []model.PreprocessOp{
		{Op: "standardize", Columns: []string{"age", "income"}, Mean: []float64{40, 1000}, Std: []float64{10, 500}},
		{Op: "one_hot", Column: "city", Categories: []string{"paris", "rome", "oslo"}},
	}
	got, err := model.Tabular(ops, map[string]string{"age": "50", "income": " 750 ", "city": "rome", "extra": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, -0.5, 0, 1, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("Tabular = %v, want %v", got, want)
	}
	got, _ = model.Tabular(ops, map[string]string{"age": "40", "income": "1000", "city": "berlin"})
	if want := []float32{0, 0, 0, 0, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("unknown category: %v, want all zeros %v", got, want)
	}
	_, err = model.Tabular(ops, map[string]string{"age": "40", "city": "rome"})
	oneLine(t, err, "preprocessing[0]", `"income"`)
	_, err = model.Tabular(ops, map[string]string{"age": "forty", "income": "1", "city": "rome"})
	oneLine(t, err, `"age"`, `"forty"`)
	_, err = model.Tabular(ops, map[string]string{"age": "NaN", "income": "1", "city": "rome"})
	oneLine(t, err, `"age"`, "finite")
	_, err = model.Tabular(ops, map[string]string{"age": "1", "income": "1"})
	oneLine(t, err, "preprocessing[1]", `"city"`)
	_, err = model.Tabular([]model.PreprocessOp{{Op: "scale", Factor: 2}}, nil)
	oneLine(t, err, "not a tabular op")
	_, err = model.Tabular([]model.PreprocessOp{{Op: "standardize", Columns: []string{"a"}}}, nil)
	oneLine(t, err, "mean")

	n, err := model.TabularWidth(ops)
	if err != nil || n != 5 {
		t.Errorf("TabularWidth = %d, %v", n, err)
	}
	x, err := model.TabularBatch(ops, []map[string]string{
		{"age": "30", "income": "2000", "city": "oslo"},
		{"age": "60", "income": "0", "city": "paris"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := tensor.FromSlice([]float32{-1, 2, 0, 0, 1, 2, -2, 1, 0, 0}, 2, 5)
	testutil.AssertClose(t, "TabularBatch", x, want, 0, 0)
	_, err = model.TabularBatch(ops, []map[string]string{{"age": "1", "income": "1", "city": "x"}, {}})
	oneLine(t, err, "record 1")
}

func FuzzParseManifest(f *testing.F) {
	seed, err := os.ReadFile("testdata/mnist_cnn.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"format_version": 1, "architecture": {"type": "Embedding", "config": {"num_embeddings": 5, "embedding_dim": 2, "padding_idx": -1}}, "signature": {"inputs": [{"name": "ids", "dtype": "int64", "shape": [-1, 4]}], "outputs": [{"name": "e", "dtype": "float32", "shape": [-1, 4, 2]}]}}`))
	f.Add([]byte(`{"format_version": 1, "architecture": {"type": "LayerNorm", "config": {"normalized_shape": [2, 3], "eps": 1e-3}}, "signature": {"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 2, 3]}], "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 2, 3]}]}, "preprocessing": [{"op": "standardize", "columns": ["a"], "mean": [0], "std": [1]}, {"op": "one_hot", "column": "b", "categories": ["x"]}]}`))
	f.Add([]byte(`{"format_version": 1,`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		man, err := model.ParseManifest(data)
		if err != nil {
			if man != nil {
				t.Fatal("manifest and error both returned")
			}
			return
		}
		// A parsed manifest builds or fails cleanly, within a small budget.
		m, err := model.Build(man.Architecture, model.BuildOptions{MaxValues: 1 << 16})
		if err == nil && m == nil {
			t.Fatal("Build returned neither module nor error")
		}
		// Parse ∘ marshal is stable.
		out, err := json.Marshal(man)
		if err != nil {
			t.Fatalf("re-encoding a parsed manifest: %v", err)
		}
		if _, err := model.ParseManifest(out); err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v\n%s", err, out)
		}
	})
}
