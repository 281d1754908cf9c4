package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/deepgo/deepgo/track/tensorboard"
)

// TestTrainMNISTTensorBoard trains a small MLP with --tensorboard and checks
// that the run directory holds one event file whose records all pass their
// CRCs and that carry the training scalars, histograms and final images.
func TestTrainMNISTTensorBoard(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "runs")
	r := mustRun(t, "train", "mnist", "--model", "mlp", "--epochs", "2", "--limit", "600", "--test-limit", "200",
		"--out", filepath.Join(dir, "model"), "--tensorboard", root)
	runs, err := os.ReadDir(root)
	if err != nil || len(runs) != 1 {
		t.Fatalf("run directories %v, %v; stderr: %s", runs, err, r.stderr)
	}
	files, err := filepath.Glob(filepath.Join(root, runs[0].Name(), "events.out.tfevents.*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("event files %v, %v", files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := tensorboard.ReadRecords(f)
	if err != nil {
		t.Fatal(err)
	}
	// 1 file version + 2*19 batch losses + 2*(loss, accuracy, lr) + 2*8
	// histograms + test accuracy + 2 images.
	if want := 1 + 2*19 + 2*3 + 2*8 + 1 + 2; len(recs) != want {
		t.Errorf("%d records, want %d", len(recs), want)
	}
	for _, tag := range []string{"brain.Event:2", "batch/loss", "epoch/loss", "epoch/accuracy", "epoch/lr",
		"weights/1.weight", "grads/3.bias", "test/accuracy", "test/confusion_matrix", "test/misclassified", "\x89PNG"} {
		found := false
		for _, rec := range recs {
			found = found || bytes.Contains(rec, []byte(tag))
		}
		if !found {
			t.Errorf("no record holds %q", tag)
		}
	}
}
