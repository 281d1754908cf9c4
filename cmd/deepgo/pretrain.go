package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
)

func (a *app) pretrainCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "pretrain",
		Short: "Self-supervised pretraining on unlabeled data",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("pretrain needs a task: text")}
		},
	}
	c.AddCommand(a.pretrainTextCmd())
	return c
}

// pretrainTextRun holds the flags of deepgo pretrain text.
type pretrainTextRun struct {
	Data       []string
	Corpus     string
	Datasets   string
	Out        string
	Epochs     int
	MaxMinutes float64
	MaxSteps   int
	Seed       uint64
	VocabSize  int
	Dim        int
	Layers     int
	Heads      int
	Hidden     int
	MaxLen     int
	BatchSize  int
	LR         float64
	Limit      int
	Warmup     int
	Objective  string
	Window     int
	Negative   int
	MinCount   int
	Sample     float64
}

func (a *app) pretrainTextCmd() *cobra.Command {
	run := pretrainTextRun{}
	def := textmodel.DefaultPretrainConfig()
	c := &cobra.Command{
		Use:   "text",
		Short: "Pretrain a Transformer encoder (masked language modelling) or word vectors (word2vec) and save them as a model package",
		Long: `--objective mlm (the default) trains a WordPiece tokenizer and a small
Transformer encoder with BERT-style masked language modelling (15% of tokens;
80% [MASK], 10% random, 10% kept) on unlabeled text, with AdamW, linear warm-up
and linear decay. The package in --out holds the encoder, its tokenizer and
config; fine-tune it with deepgo train text --pretrained DIR [--lora-rank N].

--objective word2vec trains a word-level tokenizer (lower-cased, accents
stripped, URLs as one token, words seen --min-count times, at most --vocab-size
50000) and skip-gram word vectors with negative sampling (window --window, 
--negative samples from the unigram^0.75 distribution, subsampling --sample,
linear learning-rate decay from --lr 0.025, 5 epochs by default), single-
threaded and deterministic for a --seed. The package initialises the
embeddings of deepgo train text --arch lstm|bow --pretrained DIR.

Text comes from --data files (.csv/.tsv with a text column, .jsonl with a
text/body field), or with --corpus financial from the standard pretraining
files under --datasets: the training splits of the twitter financial news
sets, financial_phrasebank and the Reuters-21578 news bodies.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return a.pretrainText(cmd, &run) },
	}
	f := c.Flags()
	f.StringSliceVar(&run.Data, "data", nil, "unlabeled text files (.csv, .tsv, .jsonl); repeat or separate with commas")
	f.StringVar(&run.Corpus, "corpus", "", `a standard corpus instead of --data: "financial"`)
	f.StringVar(&run.Datasets, "datasets", filepath.Join("..", "shared", "datasets"), "datasets root for --corpus")
	f.StringVar(&run.Out, "out", "", "output model package directory (required)")
	f.IntVar(&run.Epochs, "epochs", def.Epochs, "passes over the corpus")
	f.Float64Var(&run.MaxMinutes, "max-minutes", 25, "stop cleanly after this many minutes and save (0: no limit)")
	f.IntVar(&run.MaxSteps, "max-steps", 0, "stop after this many optimizer steps (0: no limit)")
	f.Uint64Var(&run.Seed, "seed", 0, "random seed (initialisation, shuffling, masking, dropout)")
	f.IntVar(&run.VocabSize, "vocab-size", def.VocabSize, "WordPiece vocabulary size")
	f.IntVar(&run.Dim, "dim", def.Encoder.Dim, "model width")
	f.IntVar(&run.Layers, "layers", def.Encoder.Layers, "encoder layers")
	f.IntVar(&run.Heads, "heads", def.Encoder.Heads, "attention heads")
	f.IntVar(&run.Hidden, "hidden", def.Encoder.Hidden, "feed-forward size")
	f.IntVar(&run.MaxLen, "max-len", def.Encoder.MaxLen, "longest sequence in tokens, [CLS] and [SEP] included")
	f.IntVar(&run.BatchSize, "batch-size", def.BatchSize, "sequences per step")
	f.Float64Var(&run.LR, "lr", def.LR, "peak AdamW learning rate")
	f.IntVar(&run.Warmup, "warmup", def.WarmupSteps, "linear warm-up steps before the linear decay")
	f.IntVar(&run.Limit, "limit", 0, "use only the first N texts of the corpus (0: all)")
	w2v := textmodel.DefaultWord2VecConfig()
	f.StringVar(&run.Objective, "objective", "mlm", "mlm (Transformer encoder) or word2vec (word vectors for lstm and bow)")
	f.IntVar(&run.Window, "window", w2v.Window, "word2vec: largest context distance")
	f.IntVar(&run.Negative, "negative", w2v.Negative, "word2vec: negative samples per context word")
	f.IntVar(&run.MinCount, "min-count", w2v.MinCount, "word2vec: drop words seen fewer times")
	f.Float64Var(&run.Sample, "sample", w2v.Sample, "word2vec: subsampling threshold of frequent words (0: none)")
	return c
}

func (a *app) pretrainText(cmd *cobra.Command, run *pretrainTextRun) error {
	switch {
	case run.Out == "":
		return usageError{errors.New("--out is required")}
	case (len(run.Data) == 0) == (run.Corpus == ""):
		return usageError{errors.New("give either --data FILE... or --corpus financial")}
	case run.Corpus != "" && run.Corpus != "financial":
		return usageError{fmt.Errorf("--corpus %q: want financial", run.Corpus)}
	case run.Epochs <= 0 || run.BatchSize <= 0 || !(run.LR > 0) || run.MaxMinutes < 0 || run.MaxSteps < 0 || run.Limit < 0 || run.Warmup < 0:
		return usageError{errors.New("--epochs, --batch-size and --lr must be positive; --max-minutes, --max-steps, --warmup and --limit not negative")}
	}
	if run.Objective != "mlm" && run.Objective != "word2vec" {
		return usageError{fmt.Errorf("--objective %q: want mlm or word2vec", run.Objective)}
	}
	files := run.Data
	if run.Corpus != "" {
		files = text.PretrainFiles(run.Datasets)
		if len(files) == 0 {
			return fmt.Errorf("--corpus financial: no pretraining files under %s (set --datasets)", run.Datasets)
		}
	}
	corpus, err := text.PretrainCorpus(files...)
	if err != nil {
		return err
	}
	if run.Limit > 0 && len(corpus) > run.Limit {
		corpus = corpus[:run.Limit]
	}
	if run.Objective == "word2vec" {
		return a.pretrainWord2Vec(cmd, run, files, corpus)
	}
	cfg := textmodel.DefaultPretrainConfig()
	cfg.VocabSize, cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.Seed, cfg.MaxSteps = run.VocabSize, run.Epochs, run.BatchSize, run.LR, run.Seed, run.MaxSteps
	cfg.Encoder.Dim, cfg.Encoder.Layers, cfg.Encoder.Heads, cfg.Encoder.Hidden, cfg.Encoder.MaxLen = run.Dim, run.Layers, run.Heads, run.Hidden, run.MaxLen
	cfg.WarmupSteps = run.Warmup
	cfg.MaxDuration = time.Duration(run.MaxMinutes * float64(time.Minute))
	start := time.Now()
	cfg.Log = func(step, total int, loss float64) {
		fmt.Fprintf(a.stderr, "step %d/%d  mlm loss %.4f  %s\n", step, total, loss, time.Since(start).Round(time.Second))
	}
	fmt.Fprintf(a.stderr, "pretraining on %d texts from %d files\n", len(corpus), len(files))
	p, err := textmodel.Pretrain(cmd.Context(), corpus, cfg)
	if err != nil {
		return err
	}
	p.Metadata["files"] = files
	p.Metadata["texts"] = len(corpus)
	p.Metadata["deepgo_version"] = version
	p.Metadata["created"] = time.Now().UTC().Format(time.RFC3339)
	if err := p.Save(run.Out); err != nil {
		return err
	}
	why, final := stopSummary(p.Stopped, p.Losses)
	fmt.Fprintf(a.stdout, "pretrained %d steps in %s%s, final mlm loss %.4f\nsaved model package to %s\n",
		p.Steps, time.Since(start).Round(time.Second), why, final, run.Out)
	return nil
}

// pretrainWord2Vec runs deepgo pretrain text --objective word2vec; flags
// left at their MLM defaults (--epochs, --lr, --vocab-size) take the
// word2vec ones.
func (a *app) pretrainWord2Vec(cmd *cobra.Command, run *pretrainTextRun, files, corpus []string) error {
	cfg := textmodel.DefaultWord2VecConfig()
	fl := cmd.Flags()
	if fl.Changed("epochs") {
		cfg.Epochs = run.Epochs
	}
	if fl.Changed("lr") {
		cfg.LR = run.LR
	}
	if fl.Changed("vocab-size") {
		cfg.MaxVocab = run.VocabSize
	}
	cfg.Dim, cfg.Window, cfg.Negative, cfg.MinCount, cfg.Sample, cfg.Seed = run.Dim, run.Window, run.Negative, run.MinCount, run.Sample, run.Seed
	cfg.MaxDuration = time.Duration(run.MaxMinutes * float64(time.Minute))
	start := time.Now()
	cfg.Log = func(epoch int, words int64, loss float64) {
		fmt.Fprintf(a.stderr, "epoch %d/%d  %d words  sgns loss %.4f  %s\n", epoch, cfg.Epochs, words, loss, time.Since(start).Round(time.Second))
	}
	fmt.Fprintf(a.stderr, "word2vec on %d texts from %d files\n", len(corpus), len(files))
	w, err := textmodel.TrainWord2Vec(cmd.Context(), corpus, cfg)
	if err != nil {
		return err
	}
	w.Metadata["files"] = files
	w.Metadata["deepgo_version"] = version
	w.Metadata["created"] = time.Now().UTC().Format(time.RFC3339)
	if err := w.Save(run.Out); err != nil {
		return err
	}
	why, final := stopSummary(w.Stopped, w.Losses)
	fmt.Fprintf(a.stdout, "trained %d-dimensional vectors for %d words (%d words trained on) in %s%s, final sgns loss %.4f\nsaved model package to %s\n",
		w.Dim(), w.Tokenizer.Vocab().Len(), w.Steps, time.Since(start).Round(time.Second), why, final, run.Out)
	return nil
}

// stopSummary returns the " (stopped early: …)" remark for a run that
// stopped for the reason stopped ("" when it ran its course) and the last
// of its losses (0 when there are none).
func stopSummary(stopped string, losses []float64) (why string, final float64) {
	if stopped != "" {
		why = " (stopped early: " + stopped + ")"
	}
	if n := len(losses); n > 0 {
		final = losses[n-1]
	}
	return why, final
}
