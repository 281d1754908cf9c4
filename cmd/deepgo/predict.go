package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
)

// prediction is one predicted input, as printed by predict --json.
type prediction struct {
	File          string    `json:"file"`
	Line          int       `json:"line,omitempty"`
	Class         string    `json:"class"`
	Index         int       `json:"index"`
	Probability   float64   `json:"probability"`
	Probabilities []float64 `json:"probabilities"`
}

func (a *app) predictCmd() *cobra.Command {
	var dir string
	var asJSON bool
	var texts []string
	var textFile string
	c := &cobra.Command{
		Use:   "predict --model DIR FILE... | --text TEXT | --text-file FILE",
		Short: "Classify image files (image models), CSV rows (tabular models) or texts (text models)",
		Long: `Run a model package on raw inputs, applying its preprocessing: image files
(PNG, JPEG, GIF) for image models, CSV files with a header line for tabular
models (one prediction per row; a label column, if present, is ignored).
Text models take --text (repeatable) or --text-file (one text per line).
Prints the predicted class and the probability of every class.`,
		Args: usageArgs(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			isText := len(texts) > 0 || textFile != ""
			if !isText && len(args) == 0 {
				return usageError{errors.New("give input files, or --text / --text-file for a text model")}
			}
			if isText && len(args) > 0 {
				return usageError{errors.New("give either input files or --text / --text-file, not both")}
			}
			pkg, err := loadPackage(dir)
			if err != nil {
				return err
			}
			var preds []prediction
			switch {
			case isText:
				preds, err = predictTexts(pkg, texts, textFile)
			case isImageModel(pkg.Preprocess):
				preds, err = predictImages(pkg, args)
			case isTabular(pkg.Preprocess):
				preds, err = predictCSV(pkg, args)
			default:
				err = fmt.Errorf("%s: predict needs an image model (preprocessing starting with an image op) or a tabular one (standardize/one_hot ops)", dir)
			}
			if err != nil {
				return err
			}
			for _, p := range preds {
				if asJSON {
					if err := a.writeJSON(p); err != nil {
						return err
					}
					continue
				}
				a.printPrediction(pkg, p)
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "model", "", "model package directory (required)")
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per prediction")
	c.Flags().StringArrayVar(&texts, "text", nil, "a text to classify (text models; repeatable)")
	c.Flags().StringVar(&textFile, "text-file", "", "a file of texts to classify, one per line (text models)")
	return c
}

// loadPackage loads a model package; the --model flag must be set.
func loadPackage(dir string) (*model.Package, error) {
	if dir == "" {
		return nil, usageError{errors.New("--model DIR is required")}
	}
	return model.Load(dir)
}

func (a *app) printPrediction(pkg *model.Package, p prediction) {
	where := p.File
	if p.Line > 0 {
		where = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	var b strings.Builder
	for i, q := range p.Probabilities {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%.3f", className(pkg, i), q)
	}
	fmt.Fprintf(a.stdout, "%s: %s (%.3f)  [%s]\n", where, p.Class, p.Probability, b.String())
}

// className returns label i of the package, or i itself without labels.
func className(pkg *model.Package, i int) string {
	if i < len(pkg.Labels) {
		return pkg.Labels[i]
	}
	return fmt.Sprint(i)
}

// classify runs the package on a batch and turns each row of output
// probabilities (softmax of the logits) into a prediction.
func classify(pkg *model.Package, x *tensor.Tensor) ([]prediction, error) {
	out, err := pkg.Predict(x)
	if err != nil {
		return nil, err
	}
	return classifyLogits(pkg, out)
}

// classifyLogits turns each row of class scores [N, C] into a prediction.
func classifyLogits(pkg *model.Package, out *tensor.Tensor) ([]prediction, error) {
	if out.Dim() != 2 {
		return nil, fmt.Errorf("model output has shape %v; predict needs class scores [N, C]", out.Shape())
	}
	n, c := out.Size(0), out.Size(1)
	var probs []float32
	tensor.NoGrad(func() { probs = tensor.Softmax(out, 1).Data() })
	preds := make([]prediction, n)
	for i := range preds {
		row := probs[i*c : (i+1)*c]
		best := 0
		p := make([]float64, c)
		for j, v := range row {
			p[j] = float64(v)
			if v > row[best] {
				best = j
			}
		}
		preds[i] = prediction{Class: className(pkg, best), Index: best, Probability: p[best], Probabilities: p}
	}
	return preds, nil
}

func predictImages(pkg *model.Package, paths []string) ([]prediction, error) {
	x, err := imageInputs(pkg.Preprocess, paths)
	if err != nil {
		return nil, err
	}
	preds, err := classify(pkg, x)
	if err != nil {
		return nil, err
	}
	for i := range preds {
		preds[i].File = paths[i]
	}
	return preds, nil
}

func predictCSV(pkg *model.Package, paths []string) ([]prediction, error) {
	var all []prediction
	for _, path := range paths {
		t, err := readCSV(path)
		if err != nil {
			return nil, err
		}
		x, err := encodeRows(pkg.Preprocess, t)
		if err != nil {
			return nil, err
		}
		preds, err := classify(pkg, x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for i := range preds {
			preds[i].File, preds[i].Line = path, t.Lines[i]
		}
		all = append(all, preds...)
	}
	return all, nil
}
