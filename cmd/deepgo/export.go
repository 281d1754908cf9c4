package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx"
)

// exportCmd is `deepgo export --model DIR --format onnx OUT.onnx`.
func (a *app) exportCmd() *cobra.Command {
	var dir, format string
	var opset int
	c := &cobra.Command{
		Use:   "export --model DIR [--format onnx] [--opset 13|17] OUT.onnx",
		Short: "Export a model package to ONNX",
		Long: `Export a model package to an ONNX file. The graph's input and output take
their names, dtype and shape from the package signature (a -1 dimension
becomes the symbolic dimension "batch"); the graph computes the model in
inference mode. Preprocessing steps are not part of the graph.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "onnx" {
				return usageError{fmt.Errorf("--format %q: only onnx is supported", format)}
			}
			if opset != 13 && opset != 17 {
				return usageError{fmt.Errorf("--opset %d: want 13 or 17", opset)}
			}
			pkg, err := loadPackage(dir)
			if err != nil {
				return err
			}
			sig := pkg.Signature
			if len(sig.Inputs) != 1 || len(sig.Outputs) != 1 {
				return fmt.Errorf("%s: ONNX export needs one input and one output, the signature has %d and %d",
					dir, len(sig.Inputs), len(sig.Outputs))
			}
			in, out := sig.Inputs[0], sig.Outputs[0]
			nn.Eval(pkg.Module)
			opt := onnx.ExportOptions{InputName: in.Name, OutputName: out.Name, InputShape: in.Shape,
				InputDType: in.DType, Opset: opset, ProducerName: "deepgo"}
			path := args[0]
			if err := onnx.ExportFile(path, pkg.Module, opt); err != nil {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return errors.New("export: " + err.Error())
			}
			fmt.Fprintf(a.stdout, "wrote %s (%d bytes, ONNX opset %d): input %s %s %v, output %s\n",
				path, st.Size(), opset, in.Name, in.DType, in.Shape, out.Name)
			if len(pkg.Preprocess) > 0 {
				fmt.Fprintf(a.stderr, "note: the model's %d preprocessing step(s) are not in the ONNX graph; apply them to inputs first\n",
					len(pkg.Preprocess))
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "model", "", "model package directory (required)")
	c.Flags().StringVar(&format, "format", "onnx", "output format (onnx)")
	c.Flags().IntVar(&opset, "opset", 13, "ONNX opset: 13, or 17 for LayerNormalization")
	return c
}
