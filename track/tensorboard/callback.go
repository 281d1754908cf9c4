package tensorboard

import (
	"errors"
	"slices"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/train"
)

// Callback is a train.Callback that logs a training run to a Writer:
//
//   - "batch/loss": the loss of every BatchEvery-th batch, at the global step;
//   - "epoch/<key>": every epoch log ("epoch/loss", "epoch/accuracy",
//     "epoch/val_loss", ...) and "epoch/lr", at the 0-based epoch;
//   - "weights/<param>" and "grads/<param>": histograms of every parameter
//     (nn.NamedParameters names, e.g. "weights/conv1.weight") and of its
//     gradient from the epoch's last batch, at the epoch, unless
//     NoHistograms is set;
//   - whatever OnEnd writes when the run ends (images such as
//     ConfusionMatrixImage and MisclassifiedGrid).
//
// The events are flushed at the end of every epoch and of the run. The
// Writer belongs to the caller, who closes it after train.Fit. A write error
// is returned from the callback method and so ends the run.
type Callback struct {
	// W receives the events.
	W *Writer
	// BatchEvery logs the batch loss every this many steps; 0 means 1, a
	// negative value disables batch logging.
	BatchEvery int
	// NoHistograms disables the weight and gradient histograms.
	NoHistograms bool
	// OnEnd, if set, is called from OnTrainEnd (also when the run failed or
	// was interrupted; see s.Err and s.Interrupted) to log final summaries;
	// step is the last finished epoch (0 if none).
	OnEnd func(w *Writer, s *train.State, step int64) error
}

// NewCallback returns a Callback logging to w with the default settings.
func NewCallback(w *Writer) *Callback { return &Callback{W: w} }

var _ train.Callback = (*Callback)(nil)

// OnTrainBegin checks that the callback has a Writer.
func (c *Callback) OnTrainBegin(*train.State) error {
	if c.W == nil {
		return errors.New("tensorboard.Callback: no Writer")
	}
	return nil
}

// OnEpochBegin does nothing.
func (c *Callback) OnEpochBegin(*train.State) error { return nil }

// OnBatchEnd logs the batch loss.
func (c *Callback) OnBatchEnd(s *train.State) error {
	every := c.BatchEvery
	if every == 0 {
		every = 1
	}
	if every < 0 || s.GlobalStep%every != 0 {
		return nil
	}
	return c.W.Scalar("batch/loss", s.BatchLoss, int64(s.GlobalStep))
}

// OnEpochEnd logs the epoch's metrics, learning rate and histograms, then
// flushes.
func (c *Callback) OnEpochEnd(s *train.State) error {
	step := int64(s.Epoch)
	names := s.Names()
	seen := make(map[string]bool, len(names))
	for _, k := range names {
		if v, ok := s.Logs[k]; ok {
			seen[k] = true
			if err := c.W.Scalar("epoch/"+k, v, step); err != nil {
				return err
			}
		}
	}
	// Logs a callback added that are not in the History's names.
	for _, k := range sortedKeys(s.Logs) {
		if !seen[k] {
			if err := c.W.Scalar("epoch/"+k, s.Logs[k], step); err != nil {
				return err
			}
		}
	}
	if s.Optimizer != nil {
		if err := c.W.Scalar("epoch/lr", s.Optimizer.LR(), step); err != nil {
			return err
		}
	}
	if !c.NoHistograms && s.Model != nil {
		for _, p := range nn.NamedParameters(s.Model) {
			if err := c.W.Histogram("weights/"+p.Name, p.Tensor.Data(), step); err != nil {
				return err
			}
			if g := p.Tensor.Grad(); g != nil {
				if err := c.W.Histogram("grads/"+p.Name, g.Data(), step); err != nil {
					return err
				}
			}
		}
	}
	return c.W.Flush()
}

// OnTrainEnd calls OnEnd and flushes.
func (c *Callback) OnTrainEnd(s *train.State) error {
	if c.W == nil {
		return nil
	}
	var err error
	if c.OnEnd != nil {
		step := int64(max(s.Epoch, 0))
		if s.History != nil && len(s.History.Epochs) > 0 {
			step = int64(s.History.Epochs[len(s.History.Epochs)-1].Epoch)
		}
		err = c.OnEnd(c.W, s, step)
	}
	return errors.Join(err, c.W.Flush())
}

func sortedKeys(l train.Logs) []string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
