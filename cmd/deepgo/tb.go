package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/track/tensorboard"
	"github.com/deepgo/deepgo/train"
)

// maxMisclassified is the number of wrongly classified test images tiled
// into the TensorBoard image "test/misclassified".
const maxMisclassified = 36

// addTensorBoard adds to the app's training callbacks one that writes
// TensorBoard event files into root/<name>-<time> (a new run directory):
// batch loss, epoch metrics, weight and gradient histograms, and at the end
// of a successful run the test accuracy, the confusion matrix heat map and
// a grid of misclassified images of test (its first limit examples when
// limit > 0). The returned func restores the app's callbacks.
func (a *app) addTensorBoard(root, name string, test data.Dataset, limit int) (restore func(), err error) {
	dir, err := newRunDir(root, name)
	if err != nil {
		return nil, fmt.Errorf("--tensorboard: %w", err)
	}
	w, err := tensorboard.NewWriter(dir)
	if err != nil {
		return nil, fmt.Errorf("--tensorboard: %w", err)
	}
	if limit > 0 && test != nil && limit < test.Len() {
		test = data.NewSubset(test, firstN(limit))
	}
	cb := tensorboard.NewCallback(w)
	cb.OnEnd = func(w *tensorboard.Writer, s *train.State, step int64) error {
		if s.Err != nil || s.Interrupted || test == nil || test.Len() == 0 {
			return nil
		}
		return logClassification(w, s.Model, test, step)
	}
	saved := a.callbacks
	a.callbacks = append(slices.Clip(a.callbacks), &closingCallback{Callback: cb})
	fmt.Fprintf(a.stderr, "TensorBoard: writing %s (view with: tensorboard --logdir %s)\n", dir, root)
	return func() {
		a.callbacks = saved
		w.Close() // a no-op after a run; closes the file if the run never began
	}, nil
}

// closingCallback closes the Writer when the run ends.
type closingCallback struct{ *tensorboard.Callback }

// OnTrainEnd logs the final summaries and closes the Writer.
func (c *closingCallback) OnTrainEnd(s *train.State) error {
	return errors.Join(c.Callback.OnTrainEnd(s), c.W.Close())
}

// newRunDir returns root/name-YYYYmmdd-HHMMSS, adding -2, -3, ... when that
// directory exists.
func newRunDir(root, name string) (string, error) {
	base := name + "-" + time.Now().Format("20060102-150405")
	for i := 1; ; i++ {
		n := base
		if i > 1 {
			n = fmt.Sprintf("%s-%d", base, i)
		}
		dir, err := tensorboard.RunDir(root, n)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return dir, nil
		}
	}
}

// logClassification evaluates model on ds and logs "test/accuracy", the
// confusion matrix "test/confusion_matrix" and "test/misclassified".
func logClassification(w *tensorboard.Writer, model nn.Module, ds data.Dataset, step int64) error {
	nn.Eval(model)
	defer nn.Train(model)
	loader := data.NewLoader(ds, data.LoaderConfig{BatchSize: 500})
	var cm *metrics.ConfusionMatrix
	var wrong []tensorboard.Misclassified
	it := loader.Epoch(0)
	defer it.Close()
	offset := 0
	for it.Next() {
		b := it.Batch()
		var out *tensor.Tensor
		tensor.NoGrad(func() { out = model.Forward(b.Input) })
		shape := out.Shape()
		if len(shape) != 2 {
			return fmt.Errorf("tensorboard images: model output has shape %v, want [batch classes]", shape)
		}
		pred, target := metrics.ArgMax(out), b.Target.Int64s()
		if cm == nil {
			cm = metrics.NewConfusionMatrix(nil, nil, shape[1])
		}
		cm.Add(pred, target)
		for i, p := range pred {
			if p == target[i] || len(wrong) >= maxMisclassified {
				continue
			}
			ex, err := ds.Get(offset + i)
			if err != nil {
				return err
			}
			wrong = append(wrong, tensorboard.Misclassified{
				Image: tensorboard.TensorImage(ex.Input), True: fmt.Sprint(target[i]), Pred: fmt.Sprint(p),
			})
		}
		offset += b.Size()
	}
	if err := it.Err(); err != nil {
		return err
	}
	if cm == nil {
		return nil
	}
	if err := w.Scalar("test/accuracy", cm.Accuracy(), step); err != nil {
		return err
	}
	if err := w.Image("test/confusion_matrix", tensorboard.ConfusionMatrixImage(cm), step); err != nil {
		return err
	}
	if len(wrong) > 0 {
		return w.Image("test/misclassified", tensorboard.MisclassifiedGrid(wrong, 0), step)
	}
	return nil
}
