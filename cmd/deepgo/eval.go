package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/data/mnist"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/train"
)

// labelColumnKey is the metadata key holding a tabular model's label column.
const labelColumnKey = "label_column"

func (a *app) evalCmd() *cobra.Command {
	var dir, dataPath string
	var asJSON bool
	var limit int
	c := &cobra.Command{
		Use:   "eval --model DIR [--data DIR|FILE.csv]",
		Short: "Evaluate a model package: accuracy and loss",
		Long: `Evaluate a model package. MNIST models are evaluated on the 10000 MNIST test
images (--data DIR holding the MNIST files, default: found in the Go module
cache); tabular models on a CSV file with the label column (--data FILE.csv).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, err := loadPackage(dir)
			if err != nil {
				return err
			}
			if limit < 0 {
				return usageError{fmt.Errorf("--limit %d: must not be negative", limit)}
			}
			var x *tensor.Tensor
			var y []int64
			var source string
			switch {
			case isMNISTModel(pkg):
				x, y, err = mnistTestInputs(pkg, dataPath, limit)
				source = "MNIST test set"
			case isTabular(pkg.Preprocess):
				label, _ := pkg.Metadata[labelColumnKey].(string)
				if dataPath == "" {
					return usageError{fmt.Errorf("--data FILE.csv is required to evaluate the tabular model %s", dir)}
				}
				x, y, err = csvInputs(pkg, dataPath, label)
				source = dataPath
			default:
				err = fmt.Errorf("%s: eval supports MNIST models (28×28 grey image input, 10 classes) and tabular models", dir)
			}
			if err != nil {
				return err
			}
			if limit > 0 && limit < len(y) {
				x, y = tensor.Slice(x, 0, 0, limit, 1), y[:limit]
			}
			loader := data.NewLoader(data.NewTensorDataset(x, tensor.FromInt64(y, len(y))), data.LoaderConfig{BatchSize: 500})
			logs, err := train.Evaluate(cmd.Context(), pkg.Module, loader,
				func(out, t *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, t) },
				[]train.Metric{train.Accuracy()})
			if err != nil {
				return err
			}
			if asJSON {
				return a.writeJSON(map[string]any{
					"model": dir, "data": source, "examples": len(y),
					"accuracy": jsonSafe(logs["accuracy"]), "loss": jsonSafe(logs["loss"]),
				})
			}
			fmt.Fprintf(a.stdout, "%s on %s (%d examples): accuracy %.2f%%, loss %.4f\n",
				dir, source, len(y), 100*logs["accuracy"], logs["loss"])
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "model", "", "model package directory (required)")
	f.StringVar(&dataPath, "data", "", "MNIST directory (MNIST models) or CSV file with labels (tabular models)")
	f.BoolVar(&asJSON, "json", false, "print the results as one JSON object")
	f.IntVar(&limit, "limit", 0, "evaluate the first N examples only (0: all)")
	_ = f.MarkHidden("limit")
	return c
}

// isMNISTModel reports whether a package takes MNIST-shaped grey images
// [N, 1, 28, 28] through an image op and has 10 classes.
func isMNISTModel(pkg *model.Package) bool {
	if !isImageModel(pkg.Preprocess) || len(pkg.Signature.Inputs) == 0 {
		return false
	}
	op := pkg.Preprocess[0]
	in := pkg.Signature.Inputs[0]
	return op.Height == mnist.Rows && op.Width == mnist.Cols && op.Channels == 1 &&
		in.Matches([]int{1, 1, mnist.Rows, mnist.Cols}) && len(pkg.Labels) == mnist.Classes
}

// mnistTestInputs returns the MNIST test images as 0–255 intensities
// [N, 1, 28, 28] passed through the package's ops after the image op, and
// the labels.
func mnistTestInputs(pkg *model.Package, dir string, limit int) (*tensor.Tensor, []int64, error) {
	_, test, err := mnist.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	n := test.Len()
	if limit > 0 && limit < n {
		n = limit
	}
	px := test.Pixels()[:n*mnist.Rows*mnist.Cols]
	v := make([]float32, len(px))
	for i, b := range px {
		v[i] = float32(b)
	}
	x, err := applyTensorOps(pkg.Preprocess[1:], tensor.FromSlice(v, n, 1, mnist.Rows, mnist.Cols))
	if err != nil {
		return nil, nil, err
	}
	return x, test.Labels()[:n], nil
}

// csvInputs encodes a labelled CSV file for a tabular package.
func csvInputs(pkg *model.Package, path, label string) (*tensor.Tensor, []int64, error) {
	if label == "" {
		return nil, nil, fmt.Errorf("the model's metadata has no %q: cannot tell which column of %s holds the labels", labelColumnKey, path)
	}
	t, err := readCSV(path)
	if err != nil {
		return nil, nil, err
	}
	x, err := encodeRows(pkg.Preprocess, t)
	if err != nil {
		return nil, nil, err
	}
	y, err := encodeLabels(t, label, pkg.Labels)
	if err != nil {
		return nil, nil, err
	}
	return x, y, nil
}
