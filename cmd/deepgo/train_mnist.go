package main

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/data/mnist"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/monitor"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/train"
)

// mnistRun holds the settings of an MNIST training run; it is recorded in
// the checkpoint directory so that --resume restores them.
type mnistRun struct {
	Task      string  `json:"task"`
	Arch      string  `json:"model" flag:"model"`
	Epochs    int     `json:"epochs" flag:"epochs"`
	BatchSize int     `json:"batch_size" flag:"batch-size"`
	LR        float64 `json:"lr" flag:"lr"`
	Seed      uint64  `json:"seed" flag:"seed"`
	Data      string  `json:"data,omitempty" flag:"data"`
	ValSplit  float64 `json:"val_split,omitempty" flag:"val-split"`
	Limit     int     `json:"limit,omitempty" flag:"limit"`
	Out       string  `json:"out" flag:"out"`
	// Augment is the training augmentation: "auto" (random ±2 px shifts for
	// the CNN, none for the MLP), "shift" or "none".
	Augment string `json:"augment,omitempty" flag:"augment"`
	// NoProfile skips the drift-monitor reference profile.
	NoProfile bool `json:"no_profile,omitempty" flag:"no-profile"`
	// Schedule is the learning-rate schedule: "cosine" or "none".
	Schedule string `json:"schedule,omitempty" flag:"schedule"`
	// TensorBoard is the --tensorboard log root ("" for none).
	TensorBoard string `json:"tensorboard,omitempty" flag:"tensorboard"`
}

func (a *app) trainMNISTCmd() *cobra.Command {
	var run mnistRun
	var resume, ckptDir string
	var asJSON bool
	var testLimit int
	var trk trackFlags
	c := &cobra.Command{
		Use:   "mnist",
		Short: "Train the MNIST digit classifier (CNN or MLP) and save it",
		Long: `Train a digit classifier on MNIST with Adam and cross-entropy, evaluate it on the
10000 test images and save a model package (labels "0".."9", image preprocessing)
to --out. The reference CNN is Conv2D(1→32, 3×3) → ReLU → MaxPool(2) → Flatten →
Linear(5408, 64) → ReLU → Linear(64, 10); --model mlp is 784-128-10.
By default the CNN trains on randomly shifted images (±2 px) and the learning
rate decays along a cosine to 0 over the epochs; --augment none --schedule none
runs the plain recipe (constant Adam lr 1e-3, no augmentation).

Ctrl-C stops after the current step and saves a checkpoint (in --checkpoint-dir,
default OUT.ckpt); --resume DIR continues it with the recorded settings.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := resumeRun(cmd, resume, "mnist", &run, func(r mnistRun) string { return r.Task }, &ckptDir); err != nil {
				return err
			}
			return a.trainMNIST(cmd, run, resume, checkpointDir(ckptDir, run.Out), asJSON, testLimit, trk)
		},
	}
	f := c.Flags()
	f.IntVar(&run.Epochs, "epochs", 3, "number of epochs (in all, counting those of a resumed run)")
	f.IntVar(&run.BatchSize, "batch-size", 32, "examples per batch")
	f.Float64Var(&run.LR, "lr", 1e-3, "Adam learning rate")
	f.Uint64Var(&run.Seed, "seed", 1, "seed for initialisation and shuffling")
	f.StringVar(&run.Out, "out", "mnist-model", "directory to save the model package to")
	f.StringVar(&run.Arch, "model", "cnn", "architecture: cnn or mlp")
	f.StringVar(&run.Augment, "augment", "auto", "training augmentation: auto (random ±2 px shifts for cnn, none for mlp), shift or none")
	f.BoolVar(&run.NoProfile, "no-profile", false, "do not store the drift-monitor reference profile of the training data in the package")
	f.StringVar(&run.Schedule, "schedule", "cosine", "learning-rate schedule: cosine (anneal --lr to 0 over the epochs) or none")
	f.StringVar(&run.Data, "data", "", "directory holding the four MNIST .gz files (default: found in the Go module cache)")
	f.Float64Var(&run.ValSplit, "val-split", 0, "fraction of the training images held out for validation")
	resumeFlags(f, &resume, &ckptDir)
	f.BoolVar(&asJSON, "json", false, "print the results as one JSON object on the last line of stdout")
	f.IntVar(&run.Limit, "limit", 0, "train on the first N training images only (0: all)")
	f.IntVar(&testLimit, "test-limit", 0, "evaluate on the first N test images only (0: all)")
	f.StringVar(&run.TensorBoard, "tensorboard", "", "write TensorBoard event files into DIR/mnist-MODEL-TIME (view with: tensorboard --logdir DIR)")
	trk.add(f)
	_ = f.MarkHidden("limit")
	_ = f.MarkHidden("test-limit")
	return c
}

func (a *app) trainMNIST(cmd *cobra.Command, run mnistRun, resume, ckptDir string, asJSON bool, testLimit int, trk trackFlags) error {
	run.Task = "mnist"
	if err := checkFitFlags(run.Epochs, run.BatchSize, run.LR, run.ValSplit); err != nil {
		return err
	}
	if run.Limit < 0 || testLimit < 0 {
		return usageError{errors.New("--limit and --test-limit must not be negative")}
	}
	net, err := mnistNet(run.Arch, run.Seed)
	if err != nil {
		return err
	}
	var transform data.Transform
	switch run.Augment {
	case "none":
	case "shift":
		transform = data.RandomShift(2)
	case "auto", "":
		if run.Arch == "cnn" {
			transform = data.RandomShift(2)
		}
	default:
		return usageError{fmt.Errorf("--augment %q: want auto, shift or none", run.Augment)}
	}
	trainSet, testSet, err := mnist.Load(run.Data)
	if err != nil {
		return err
	}
	var ds data.Dataset = trainSet
	if run.Limit > 0 && run.Limit < ds.Len() {
		ds = data.NewSubset(ds, firstN(run.Limit))
	}
	var val data.Dataset
	if run.ValSplit > 0 {
		tr, va, err := data.TrainValSplit(ds, run.ValSplit, run.Seed)
		if err != nil {
			return usageError{fmt.Errorf("--val-split: %w", err)}
		}
		ds, val = tr, va
	}
	if err := saveRunConfig(ckptDir, run); err != nil {
		return fmt.Errorf("checkpoint directory: %w", err)
	}
	if run.TensorBoard != "" {
		restore, err := a.addTensorBoard(run.TensorBoard, "mnist-"+run.Arch, testSet, testLimit)
		if err != nil {
			return err
		}
		defer restore()
	}
	tr, err := a.startTracking(trk, "mnist", map[string]string{
		"epochs": fmt.Sprint(run.Epochs), "lr": fmt.Sprint(run.LR), "batch_size": fmt.Sprint(run.BatchSize),
		"seed": fmt.Sprint(run.Seed), "model": run.Arch, "val_split": fmt.Sprint(run.ValSplit), "train_examples": fmt.Sprint(ds.Len()),
	})
	if err != nil {
		return err
	}
	defer tr.close()
	res, err := a.fit(cmd.Context(), fitJob{
		Net: net, Train: ds, Val: val, Epochs: run.Epochs, BatchSize: run.BatchSize,
		LR: run.LR, Seed: run.Seed, CkptDir: ckptDir, Resume: resume, Task: "mnist",
		Transform: transform, Schedule: run.Schedule,
	})
	if err != nil {
		return err
	}

	var test data.Dataset = testSet
	if testLimit > 0 && testLimit < test.Len() {
		test = data.NewSubset(test, firstN(testLimit))
	}
	logs, err := train.Evaluate(cmd.Context(), net, data.NewLoader(test, data.LoaderConfig{BatchSize: 500}),
		func(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) },
		[]train.Metric{train.Accuracy()})
	if err != nil {
		return fmt.Errorf("evaluating on the test set: %w", err)
	}
	testAcc, testLoss := logs["accuracy"], logs["loss"]

	epochs := len(res.History.Epochs)
	result := map[string]any{
		"task": "mnist", "model": run.Arch, "out": run.Out,
		"test_accuracy": jsonSafe(testAcc), "test_loss": jsonSafe(testLoss),
		"test_examples": test.Len(), "train_examples": ds.Len(),
		"epochs": epochs, "seconds": round3(res.Seconds),
	}
	for k, v := range lastLogs(res.History) {
		result[k] = jsonSafe(v)
	}
	meta := map[string]any{
		"task": "mnist", "model": run.Arch, "epochs": epochs, "batch_size": run.BatchSize,
		"lr": run.LR, "seed": run.Seed, "optimizer": "adam", "loss": "cross_entropy",
		"train_examples": ds.Len(), "test_examples": test.Len(),
		"test_accuracy": jsonSafe(testAcc), "test_loss": jsonSafe(testLoss),
		"train_seconds": round3(res.Seconds), "deepgo_version": version,
		"created": time.Now().UTC().Format(time.RFC3339),
	}
	pkg := &model.Package{
		Name:   "mnist-" + run.Arch,
		Module: net,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "image", DType: model.DTypeFloat32, Shape: []int{-1, 1, mnist.Rows, mnist.Cols}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, mnist.Classes}}},
		},
		Preprocess: mnistPreprocessing(),
		Labels:     []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		Metadata:   meta,
	}
	if !run.NoProfile {
		// The drift monitor's reference profile of the training inputs and
		// predictions travels in the package (deepgo serve compares live
		// traffic against it).
		prof, err := monitor.ProfileFromDataset(ds, pkg.Predict, monitor.PackageOptions(pkg))
		if err != nil {
			return fmt.Errorf("monitor profile: %w", err)
		}
		if err := prof.Attach(pkg); err != nil {
			return fmt.Errorf("monitor profile: %w", err)
		}
	}
	if err := model.Save(run.Out, pkg); err != nil {
		return err
	}
	tr.finish(map[string]float64{"test_accuracy": testAcc, "test_loss": testLoss}, epochs, run.Out)
	tr.logClassReport(cmd.Context(), net, test, pkg.Labels, int64(epochs))
	if asJSON {
		return a.writeJSON(result)
	}
	fmt.Fprintf(a.stdout, "test accuracy %.2f%%, loss %.4f (%d test images); %s in %.1fs\n",
		100*testAcc, testLoss, test.Len(), plural(epochs, "epoch"), res.Seconds)
	fmt.Fprintf(a.stdout, "saved model package to %s\n", run.Out)
	return nil
}

// firstN returns 0, 1, …, n-1.
func firstN(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// jsonSafe maps NaN and ±Inf (which JSON cannot hold) to nil.
func jsonSafe(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// plural returns "1 epoch", "3 epochs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
