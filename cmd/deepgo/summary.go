package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/nn"
)

func (a *app) summaryCmd() *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:   "summary --model DIR",
		Short: "Print a model package's layers, shapes and parameter counts",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, err := loadPackage(dir)
			if err != nil {
				return err
			}
			w := a.stdout
			fmt.Fprintf(w, "Model %q (%s)\n", pkg.Name, dir)
			for _, in := range pkg.Signature.Inputs {
				fmt.Fprintf(w, "input  %s %s %v\n", in.Name, in.DType, in.Shape)
			}
			for _, out := range pkg.Signature.Outputs {
				fmt.Fprintf(w, "output %s %s %v\n", out.Name, out.DType, out.Shape)
			}
			if len(pkg.Labels) > 0 {
				fmt.Fprintf(w, "labels %s\n", strings.Join(pkg.Labels, " "))
			}
			for i, op := range pkg.Preprocess {
				b, _ := json.Marshal(op)
				fmt.Fprintf(w, "preprocessing[%d] %s\n", i, b)
			}
			if len(pkg.Metadata) > 0 {
				keys := make([]string, 0, len(pkg.Metadata))
				for k := range pkg.Metadata {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "metadata %s: %v\n", k, pkg.Metadata[k])
				}
			}
			fmt.Fprintln(w)
			table := summarize(pkg.Module, pkg.Signature.Inputs[0].Shape, pkg.Signature.Inputs[0].DType)
			if !strings.HasSuffix(table, "\n") {
				table += "\n"
			}
			fmt.Fprint(w, table)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "model", "", "model package directory (required)")
	return c
}

// summarize returns nn.Summary of m, with output shapes when the input shape
// is fixed but for the batch dimension and the input is float32.
func summarize(m nn.Module, in []int, dtype string) (s string) {
	shape := append([]int(nil), in...)
	ok := dtype == "float32" && len(shape) > 0
	for i, d := range shape {
		if d == -1 {
			if i > 0 {
				ok = false
			}
			shape[i] = 1
		}
	}
	if !ok {
		return nn.Summary(m)
	}
	defer func() {
		if r := recover(); r != nil {
			s = nn.Summary(m)
		}
	}()
	return nn.Summary(m, shape...)
}
