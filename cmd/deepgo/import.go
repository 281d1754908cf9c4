package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx"
	"github.com/deepgo/deepgo/torchimport"
)

// importCmd is `deepgo import IN.onnx|IN.pt|IN.pth|IN.safetensors --out DIR`:
// an ONNX file becomes a model package holding the imported graph (layer
// type ONNXGraph); a PyTorch state dict is loaded into the architecture of
// --arch model.json or --like DIR with torchimport.
func (a *app) importCmd() *cobra.Command {
	var out, name, labels string
	var topt torchimport.ImportOptions
	c := &cobra.Command{
		Use:   "import IN.onnx|IN.pt|IN.pth|IN.safetensors --out DIR",
		Short: "Import an ONNX model or a PyTorch state dict as a model package",
		Long: "Import an ONNX model (any graph of the supported operators, weights trainable) or a PyTorch\n" +
			"state dict (.pt/.pth torch.save zip, or .safetensors; the architecture comes from --arch or --like)\n" +
			"and write a model package to --out.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := args[0]
			if out == "" {
				return usageError{errors.New("--out DIR is required")}
			}
			switch ext := strings.ToLower(filepath.Ext(in)); ext {
			case ".onnx":
				if topt.Arch != "" || topt.Like != "" || topt.StripPrefix != "" || topt.NonStrict {
					return usageError{errors.New("--arch, --like, --strip-prefix and --non-strict apply to PyTorch state dicts, not ONNX files")}
				}
				return a.importONNX(in, out, name, labels)
			case ".pt", ".pth", ".safetensors":
				if labels != "" {
					return usageError{errors.New("--labels applies to ONNX files; a state dict takes its labels from --arch or --like")}
				}
				if (topt.Arch == "") == (topt.Like == "") {
					return usageError{errors.New("a state dict holds no architecture: give exactly one of --arch model.json or --like DIR")}
				}
				topt.Name = name
				pkg, rep, err := torchimport.ImportToPackage(in, topt, out)
				if s := rep.String(); s != "" {
					fmt.Fprintln(a.stderr, strings.TrimRight(s, "\n"))
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "imported %s (%d tensors) to %s as model %q\n", in, len(rep.Loaded), out, pkg.Name)
				return nil
			default:
				return usageError{fmt.Errorf("cannot tell the format of %q from its extension %q (want .onnx, .pt, .pth or .safetensors)", in, ext)}
			}
		},
	}
	f := c.Flags()
	f.StringVar(&out, "out", "", "model package directory to write (required)")
	f.StringVar(&name, "name", "", "model name (default: the input file's base name for ONNX, the manifest's for state dicts)")
	f.StringVar(&labels, "labels", "", "ONNX only: comma-separated class labels of the output")
	f.StringVar(&topt.Arch, "arch", "", "state dicts: model.json whose architecture and signature receive the weights")
	f.StringVar(&topt.Like, "like", "", "state dicts: existing model package whose architecture receives the weights")
	f.StringVar(&topt.StripPrefix, "strip-prefix", "", "state dicts: prefix removed from every key (such as module.)")
	f.BoolVar(&topt.NonStrict, "non-strict", false, "state dicts: allow missing and unexpected keys")
	return c
}

// importONNX converts the ONNX file in to a model package at out.
func (a *app) importONNX(in, out, name, labels string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	imp, err := onnx.Import(data, onnx.ImportOptions{})
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	sig, err := imp.Signature()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
	}
	pkg := &model.Package{
		Name:      name,
		Module:    imp.Module,
		Signature: sig,
		Metadata:  map[string]any{"imported_from": filepath.Base(in), "onnx_opset": imp.Opset},
	}
	if imp.Producer != "" {
		pkg.Metadata["onnx_producer"] = imp.Producer
	}
	if labels != "" {
		pkg.Labels = strings.Split(labels, ",")
	}
	if err := model.Save(out, pkg); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "imported %s (opset %d, %d parameters) to %s as model %q\n",
		in, imp.Opset, nn.NumParams(imp.Module), out, name)
	return nil
}
