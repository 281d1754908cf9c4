package textmodel_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/textmodel"
)

// BenchmarkFineTuneExperiment is the pretraining ablation on
// twitter_financial_news_sentiment (train → valid). It runs only when
// DEEPGO_FT_EXPERIMENT is set to "full", "lora" or "scratch":
//
//	go run ./cmd/deepgo pretrain text --corpus financial --out /tmp/mlm --seed 1
//	DEEPGO_FT_EXPERIMENT=full DEEPGO_PRETRAINED=/tmp/mlm go test ./textmodel/ -run "^$" -bench FineTuneExperiment -benchtime 1x -v -timeout 0
//
// "scratch" trains the same architecture from random weights with the same
// tokenizer. DEEPGO_DATASETS (default ../../shared/datasets), DEEPGO_FT_EPOCHS
// (3) and DEEPGO_FT_LR override the defaults.
func BenchmarkFineTuneExperiment(t *testing.B) {
	mode := os.Getenv("DEEPGO_FT_EXPERIMENT")
	if mode == "" {
		t.Skip("set DEEPGO_FT_EXPERIMENT=full|lora|scratch and DEEPGO_PRETRAINED=DIR (a deepgo pretrain text package) to run the fine-tuning experiment")
	}
	root := os.Getenv("DEEPGO_DATASETS")
	if root == "" {
		root = filepath.Join("..", "..", "shared", "datasets")
	}
	p, err := textmodel.LoadPretrained(os.Getenv("DEEPGO_PRETRAINED"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "twitter_financial_news_sentiment")
	read := func(name string) ([]string, []int) {
		d, err := textdata.ReadFile(filepath.Join(dir, name), textdata.Options{TextCol: "text", LabelCol: "label"})
		if err != nil {
			t.Fatal(err)
		}
		texts := d.Texts()
		labels := make([]int, len(d.Examples))
		for i, e := range d.Examples {
			if labels[i], err = strconv.Atoi(e.Label); err != nil {
				t.Fatal(err)
			}
		}
		return texts, labels
	}
	tr, trl := read("sent_train.csv")
	va, val := read("sent_valid.csv")

	cfg := textmodel.DefaultFineTuneConfig()
	cfg.Epochs = 3
	var m *textmodel.Transformer
	switch mode {
	case "full":
		cfg.LR = 3e-4
		m, err = textmodel.NewFromPretrained(p, 3, textmodel.FineTuneOptions{Seed: 1})
	case "lora":
		cfg.LR = 2e-3
		m, err = textmodel.NewFromPretrained(p, 3, textmodel.FineTuneOptions{Seed: 1, LoRARank: 8})
	case "scratch":
		cfg.LR = 5e-4
		c := p.Encoder.Cfg
		c.NumClasses = 3
		m = textmodel.NewTransformer(tensor.NewRNG(1), c)
	default:
		t.Fatalf("DEEPGO_FT_EXPERIMENT=%q: want full, lora or scratch", mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	if s := os.Getenv("DEEPGO_FT_EPOCHS"); s != "" {
		cfg.Epochs, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("DEEPGO_FT_LR"); s != "" {
		cfg.LR, _ = strconv.ParseFloat(s, 64)
	}
	cfg.Seed = 1
	cfg.Log = func(r textmodel.EpochResult) {
		t.Logf("%s epoch %d: train loss %.4f, valid accuracy %.4f, macro-F1 %.4f (%.0fs)", mode, r.Epoch, r.TrainLoss, r.ValAccuracy, r.ValMacroF1, r.Seconds)
	}
	t.Logf("%s: %d train, %d valid; %d of %d parameters trainable; lr %g, %d epochs", mode, len(tr), len(va),
		nn.NumTrainableParams(m), nn.NumParams(m), cfg.LR, cfg.Epochs)
	start := time.Now()
	res, err := textmodel.FineTune(context.Background(), m, p.Tokenizer, tr, trl, va, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: done in %s, final valid accuracy %.4f", mode, time.Since(start).Round(time.Second), res[len(res)-1].ValAccuracy)
}
