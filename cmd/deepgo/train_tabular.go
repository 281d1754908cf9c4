package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
)

// tabularRun holds the settings of a tabular training run; it is recorded
// in the checkpoint directory so that --resume restores them.
type tabularRun struct {
	Task      string  `json:"task"`
	Data      string  `json:"data" flag:"data"`
	Label     string  `json:"label_col" flag:"label-col"`
	Val       string  `json:"val,omitempty" flag:"val"`
	ValSplit  float64 `json:"val_split" flag:"val-split"`
	Epochs    int     `json:"epochs" flag:"epochs"`
	BatchSize int     `json:"batch_size" flag:"batch-size"`
	Hidden    int     `json:"hidden" flag:"hidden"`
	LR        float64 `json:"lr" flag:"lr"`
	Seed      uint64  `json:"seed" flag:"seed"`
	Out       string  `json:"out" flag:"out"`
}

func (a *app) trainTabularCmd() *cobra.Command {
	var run tabularRun
	var resume, ckptDir string
	var asJSON bool
	var trk trackFlags
	c := &cobra.Command{
		Use:   "tabular --data FILE.csv --label-col NAME",
		Short: "Train an MLP classifier on a CSV file and save it",
		Long: `Train a one-hidden-layer MLP classifier on a CSV file with a header line.
Numeric columns are standardised; a column with any non-numeric value is
categorical and one-hot encoded. Both are recorded in the model package, so
predict and eval apply them to raw CSV rows. Validation data comes from --val,
or else --val-split of the rows (0 for none).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := resumeRun(cmd, resume, "tabular", &run, func(r tabularRun) string { return r.Task }, &ckptDir); err != nil {
				return err
			}
			if run.Val != "" && cmd.Flags().Changed("val-split") && run.ValSplit != 0 {
				return usageError{errors.New("give either --val or --val-split, not both")}
			}
			if run.Val != "" {
				run.ValSplit = 0
			}
			return a.trainTabular(cmd, run, resume, checkpointDir(ckptDir, run.Out), asJSON, trk)
		},
	}
	f := c.Flags()
	f.StringVar(&run.Data, "data", "", "training CSV file with a header line (required)")
	f.StringVar(&run.Label, "label-col", "", "name of the label column (required)")
	f.StringVar(&run.Val, "val", "", "validation CSV file (instead of --val-split)")
	f.Float64Var(&run.ValSplit, "val-split", 0.2, "fraction of the rows held out for validation")
	f.IntVar(&run.Epochs, "epochs", 20, "number of epochs (in all, counting those of a resumed run)")
	f.IntVar(&run.BatchSize, "batch-size", 32, "examples per batch")
	f.IntVar(&run.Hidden, "hidden", 64, "size of the hidden layer")
	f.Float64Var(&run.LR, "lr", 1e-3, "Adam learning rate")
	f.Uint64Var(&run.Seed, "seed", 1, "seed for initialisation, shuffling and the validation split")
	f.StringVar(&run.Out, "out", "tabular-model", "directory to save the model package to")
	resumeFlags(f, &resume, &ckptDir)
	f.BoolVar(&asJSON, "json", false, "print the results as one JSON object on the last line of stdout")
	trk.add(f)
	return c
}

func (a *app) trainTabular(cmd *cobra.Command, run tabularRun, resume, ckptDir string, asJSON bool, trk trackFlags) error {
	run.Task = "tabular"
	switch {
	case run.Data == "":
		return usageError{errors.New("--data FILE.csv is required")}
	case run.Label == "":
		return usageError{errors.New("--label-col NAME is required")}
	case run.Epochs <= 0:
		return usageError{fmt.Errorf("--epochs %d: want at least 1", run.Epochs)}
	case run.BatchSize <= 0:
		return usageError{fmt.Errorf("--batch-size %d: want at least 1", run.BatchSize)}
	case run.Hidden <= 0:
		return usageError{fmt.Errorf("--hidden %d: want at least 1", run.Hidden)}
	case !(run.LR > 0) || math.IsInf(run.LR, 0):
		return usageError{fmt.Errorf("--lr %v: want a positive number", run.LR)}
	case !(run.ValSplit >= 0 && run.ValSplit < 1):
		return usageError{fmt.Errorf("--val-split %v: want a fraction in [0, 1)", run.ValSplit)}
	}
	all, err := readCSV(run.Data)
	if err != nil {
		return err
	}
	trainT, valT := all, (*csvTable)(nil)
	if run.Val != "" {
		if valT, err = readCSV(run.Val); err != nil {
			return err
		}
	} else if run.ValSplit > 0 {
		trainT, valT = splitRows(all, run.ValSplit, run.Seed)
		if len(trainT.Rows) == 0 {
			return fmt.Errorf("%s: %d rows leave none for training with --val-split %v", run.Data, len(all.Rows), run.ValSplit)
		}
	}
	ops, classes, err := fitTabular(trainT, run.Label)
	if err != nil {
		return err
	}
	x, err := encodeRows(ops, trainT)
	if err != nil {
		return err
	}
	y, err := encodeLabels(trainT, run.Label, classes)
	if err != nil {
		return err
	}
	var val data.Dataset
	if valT != nil && len(valT.Rows) > 0 {
		vx, err := encodeRows(ops, valT)
		if err != nil {
			return err
		}
		vy, err := encodeLabels(valT, run.Label, classes)
		if err != nil {
			return err
		}
		val = data.NewTensorDataset(vx, tensor.FromInt64(vy, len(vy)))
	}
	features := x.Size(1)
	net := mlpNet(features, run.Hidden, len(classes), run.Seed)
	if err := saveRunConfig(ckptDir, run); err != nil {
		return fmt.Errorf("checkpoint directory: %w", err)
	}
	tr, err := a.startTracking(trk, "tabular", map[string]string{
		"epochs": fmt.Sprint(run.Epochs), "lr": fmt.Sprint(run.LR), "batch_size": fmt.Sprint(run.BatchSize),
		"seed": fmt.Sprint(run.Seed), "model": fmt.Sprintf("mlp-%d", run.Hidden), "label_col": run.Label, "train_examples": fmt.Sprint(len(y)),
	})
	if err != nil {
		return err
	}
	defer tr.close()
	res, err := a.fit(cmd.Context(), fitJob{
		Net: net, Train: data.NewTensorDataset(x, tensor.FromInt64(y, len(y))), Val: val,
		Epochs: run.Epochs, BatchSize: run.BatchSize, LR: run.LR, Seed: run.Seed,
		CkptDir: ckptDir, Resume: resume, Task: "tabular",
	})
	if err != nil {
		return err
	}
	epochs := len(res.History.Epochs)
	last := lastLogs(res.History)
	meta := map[string]any{
		"task": "tabular", labelColumnKey: run.Label, "hidden": run.Hidden, "epochs": epochs,
		"batch_size": run.BatchSize, "lr": run.LR, "seed": run.Seed, "optimizer": "adam",
		"loss": "cross_entropy", "train_examples": len(y), "train_seconds": round3(res.Seconds),
		"deepgo_version": version, "created": time.Now().UTC().Format(time.RFC3339),
	}
	result := map[string]any{
		"task": "tabular", "out": run.Out, "epochs": epochs, "seconds": round3(res.Seconds),
		"train_examples": len(y), "features": features, "classes": len(classes),
	}
	for k, v := range last {
		meta[k] = jsonSafe(v)
		result[k] = jsonSafe(v)
	}
	pkg := &model.Package{
		Name:   "tabular-mlp",
		Module: net,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "features", DType: model.DTypeFloat32, Shape: []int{-1, features}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, len(classes)}}},
		},
		Preprocess: ops,
		Labels:     classes,
		Metadata:   meta,
	}
	if err := model.Save(run.Out, pkg); err != nil {
		return err
	}
	tr.finish(nil, epochs, run.Out)
	if asJSON {
		return a.writeJSON(result)
	}
	fmt.Fprintf(a.stdout, "train accuracy %.2f%%, loss %.4f", 100*last["train_accuracy"], last["train_loss"])
	if v, ok := last["val_accuracy"]; ok {
		fmt.Fprintf(a.stdout, "; validation accuracy %.2f%%, loss %.4f", 100*v, last["val_loss"])
	}
	fmt.Fprintf(a.stdout, " (%s in %.1fs)\nsaved model package to %s\n", plural(epochs, "epoch"), res.Seconds, run.Out)
	return nil
}

// splitRows splits a table's rows into a training and a validation table,
// the latter with round(frac·n) rows (at least one when frac > 0), chosen
// by a permutation seeded with seed. Each keeps the file order.
func splitRows(t *csvTable, frac float64, seed uint64) (tr, va *csvTable) {
	n := len(t.Rows)
	nv := max(1, int(math.Round(frac*float64(n))))
	perm := rand.New(rand.NewPCG(seed, 0)).Perm(n)
	vi, ti := perm[:nv], perm[nv:]
	sort.Ints(vi)
	sort.Ints(ti)
	pick := func(idx []int) *csvTable {
		s := &csvTable{Path: t.Path, Header: t.Header}
		for _, i := range idx {
			s.Rows = append(s.Rows, t.Rows[i])
			s.Lines = append(s.Lines, t.Lines[i])
		}
		return s
	}
	return pick(ti), pick(vi)
}
