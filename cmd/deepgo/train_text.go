package main

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
	"github.com/deepgo/deepgo/train"
)

// textRun holds the settings of a text training run.
type textRun struct {
	Data       string
	TextCol    string
	LabelCol   string
	Where      string
	Val        string
	ValSplit   float64
	Arch       string
	Pretrained string
	LoRARank   int
	Epochs     int
	BatchSize  int
	LR         float64
	Seed       uint64
	MaxLen     int
	VocabSize  int
	Tokenizer  string
	Dim        int
	Hidden     int
	Layers     int
	Dropout    float64
	Buckets    int
	Weights    bool
	LabelNames string
	Out        string
	// Limit keeps about this many training rows, a stratified sample (0: all).
	Limit int
	// FreezeEmbeddings keeps word-vector-initialised embeddings fixed.
	FreezeEmbeddings bool
	// DevSplit, when positive, holds out this fraction of the training
	// rows (stratified, seeded) and validates on them instead of on the
	// validation data, for choosing settings without looking at it.
	DevSplit float64
	// Pool is the lstm pooling ("": the default).
	Pool string
	// EmbedDropout is the lstm's dropout on the embeddings (-1: default).
	EmbedDropout float64
	// Members are the --member specs of an ensemble.
	Members []string
	// CharNGrams is bow's character n-gram range "MIN-MAX" ("": none).
	CharNGrams string
	// Unlabeled are the --unlabeled files of self-training (none: off).
	Unlabeled []string
	// UnlabeledTextCol names their text column ("": TextCol).
	UnlabeledTextCol string
	// PseudoThreshold is the least top class probability of a
	// pseudo-labelled text.
	PseudoThreshold float64
	// PseudoBalance caps each class's pseudo-labels (balancePseudo).
	PseudoBalance bool
	// ExtraData are the --extra-data files: labelled rows that only train.
	ExtraData []string
	// ExtraWhere filters their rows as Where does the --data rows.
	ExtraWhere string
	// extraRows and extraOverlap count the extra rows added to the
	// training rows and those dropped as validation or dev texts.
	extraRows, extraOverlap int
}

func (a *app) trainTextCmd() *cobra.Command {
	var run textRun
	var asJSON bool
	var trk trackFlags
	c := &cobra.Command{
		Use:   "text --data FILE.csv|.jsonl --text-col NAME --label-col NAME",
		Short: "Train a text classifier (bag of n-grams, BiLSTM or Transformer) and save it",
		Long: `Train a text classifier on a CSV, TSV or JSON Lines file and save it as a
model package that embeds its tokenizer, so that 'deepgo predict --model DIR
--text "..."' classifies raw text.

Rows without a label are skipped (the count is printed); a ragged CSV row is
an error naming its line; texts longer than --max-len tokens are truncated.
Validation data comes from --val, or else a stratified, seeded --val-split.
--where COL=V1,V2 keeps only the rows whose column COL is one of the values
(e.g. --where agreement_subset=100 for financial_phrasebank's AllAgree).
--json prints accuracy, macro_f1 and the per-class F1 on the validation data.

--dev-split F holds out a stratified fraction F of the training rows and
reports on them instead (the validation data is left untouched): choose
settings on it, then train once with them and report the validation score.

--arch ensemble trains each --member (bow or lstm, e.g. --member
arch=bow,char-ngrams=3-5 --member arch=lstm,pretrained=w2v,epochs=8) one
after the other on one word-level tokenizer and saves them as one package
whose output is the log of the mean of their class probabilities; --json
also lists each member's own score.

--extra-data FILE (repeatable) adds labelled rows that only train: they join
the training rows after the validation (and dev) split, so the validation
data stays what --val or --val-split made it; rows whose text is also a
validation or dev text are dropped (counted). --extra-where filters them
(e.g. the lower-agreement phrasebank sentences, --extra-where
agreement_subset=50,66,75, to train an AllAgree model).

--unlabeled FILE (repeatable) self-trains: the model trained as above (the
teacher) labels the texts of FILE in memory, those it gives a class with
probability >= --pseudo-threshold join the training rows, and the same
configuration trains again from scratch (tokenizer included) on them; this
student is evaluated and saved. Empty and repeated texts, and texts equal to
a training, validation or dev text, are dropped first. --json adds the
teacher's score and these counts.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if run.Val != "" && cmd.Flags().Changed("val-split") && run.ValSplit != 0 {
				return usageError{errors.New("give either --val or --val-split, not both")}
			}
			if run.Val != "" {
				run.ValSplit = 0
			}
			return a.trainText(cmd, run, asJSON, trk)
		},
	}
	f := c.Flags()
	f.StringVar(&run.Data, "data", "", "training file: .csv, .tsv or .jsonl (required)")
	f.StringVar(&run.TextCol, "text-col", "text", "name of the text column or field")
	f.StringVar(&run.LabelCol, "label-col", "label", "name of the label column or field")
	f.StringVar(&run.Where, "where", "", "keep only rows with COL=V1[,V2...] (an extra column of the file)")
	f.StringVar(&run.Val, "val", "", "validation file (instead of --val-split)")
	f.Float64Var(&run.ValSplit, "val-split", 0.2, "fraction of each class held out for validation")
	f.StringVar(&run.Arch, "arch", textmodel.ArchBOW, "architecture: bow, lstm, transformer, or ensemble (of the --member models)")
	f.StringArrayVar(&run.Members, "member", nil, "with --arch ensemble: one member, trained one after the other on the same tokenizer, as KEY=VALUE[,KEY=VALUE...] with keys arch (bow or lstm, required), epochs, lr, dim, hidden, layers, dropout, embed-dropout, buckets, char-ngrams, pool, seed, pretrained (word vectors, or none); keys not given take the command's flags; repeat for each member")
	f.StringVar(&run.CharNGrams, "char-ngrams", "", "bow: add the character n-grams of MIN-MAX runes of every word (fastText subwords, e.g. 3-5), hashed into the --buckets rows")
	f.StringVar(&run.Pool, "pool", "", "lstm pooling over the steps: max, mean or maxmean (both, concatenated) (default max)")
	f.Float64Var(&run.EmbedDropout, "embed-dropout", -1, "lstm: dropout probability on the word embeddings (-1 or 0: none)")
	f.StringVar(&run.Pretrained, "pretrained", "", "a deepgo pretrain text package: an MLM encoder to fine-tune (transformer), or word vectors (--objective word2vec) to initialise the bow or lstm embeddings")
	f.IntVar(&run.Limit, "limit", 0, "use only about N training rows, a stratified seeded sample (after --where, before --val-split; 0: all), for quick trials")
	f.Float64Var(&run.DevSplit, "dev-split", 0, "hold out this fraction of the training rows (stratified, seeded; after --val/--val-split) and report on it instead of the validation data, to choose settings without looking at the validation data (0: off)")
	f.BoolVar(&run.FreezeEmbeddings, "freeze-embeddings", false, "with --pretrained word vectors: keep the embedding table fixed (bow needs --buckets 0)")
	f.IntVar(&run.LoRARank, "lora-rank", 0, "with --pretrained: train only rank-N LoRA adapters and the head")
	f.IntVar(&run.Epochs, "epochs", 0, "number of epochs (default: bow 6, lstm 5, transformer 8)")
	f.IntVar(&run.BatchSize, "batch-size", 32, "examples per batch")
	f.Float64Var(&run.LR, "lr", 0, "Adam learning rate (default: bow 5e-3, others 1e-3; with an MLM --pretrained encoder 1e-4)")
	f.Uint64Var(&run.Seed, "seed", 1, "seed for initialisation, shuffling and the validation split")
	f.IntVar(&run.MaxLen, "max-len", 64, "longest token sequence; longer texts are truncated")
	f.IntVar(&run.VocabSize, "vocab-size", 20000, "largest vocabulary (special tokens included)")
	f.StringVar(&run.Tokenizer, "tokenizer", "wordlevel", "tokenizer to train: wordlevel or wordpiece")
	f.IntVar(&run.Dim, "dim", 0, "embedding size (default per architecture)")
	f.IntVar(&run.Hidden, "hidden", 0, "lstm hidden size per direction, or transformer feed-forward size (default per architecture)")
	f.IntVar(&run.Layers, "layers", 0, "lstm or transformer layers (default per architecture)")
	f.Float64Var(&run.Dropout, "dropout", -1, "dropout before the output layer (default: bow 0.5, lstm 0.3, transformer 0.1)")
	f.IntVar(&run.Buckets, "buckets", -1, "bow: hash buckets for word bigrams (0: unigrams only; default 131072)")
	f.BoolVar(&run.Weights, "class-weights", false, "weight the loss by inverse class frequency (balanced)")
	f.StringVar(&run.LabelNames, "label-names", "", "TSV file mapping labels to names (header, then LABEL<TAB>NAME lines), e.g. labels.tsv")
	f.StringVar(&run.Out, "out", "text-model", "directory to save the model package to")
	f.StringArrayVar(&run.ExtraData, "extra-data", nil, "a file of labelled rows (same columns; repeat for more) added to the training rows only, after the validation and dev split; rows whose text is a validation or dev text are dropped")
	f.StringVar(&run.ExtraWhere, "extra-where", "", "keep only the --extra-data rows with COL=V1[,V2...] (--where does not apply to them)")
	f.StringArrayVar(&run.Unlabeled, "unlabeled", nil, "self-training: a file of unlabeled texts (.csv, .tsv or .jsonl; repeat for more) that the trained model labels; the confident ones join the training rows and the model is trained again from scratch and saved")
	f.StringVar(&run.UnlabeledTextCol, "unlabeled-text-col", "", "name of the text column or field of the --unlabeled files (default: the --text-col value)")
	f.Float64Var(&run.PseudoThreshold, "pseudo-threshold", 0.9, "with --unlabeled: the least class probability of a pseudo-label, in (0, 1]")
	f.BoolVar(&run.PseudoBalance, "pseudo-balance", false, "with --unlabeled: keep the pseudo-labels' class mix close to the labelled rows': each class keeps at most r times its labelled rows (its most confident pseudo-labels), r being the median over classes of confident pseudo-labels per labelled row")
	f.BoolVar(&asJSON, "json", false, "print the results as one JSON object on the last line of stdout")
	trk.add(f)
	return c
}

// readTextData reads a labelled file, keeping the --where column, and
// prints how many unlabelled rows were skipped.
func (a *app) readTextData(path string, run textRun) (*textdata.Data, error) {
	opt := textdata.Options{TextCol: run.TextCol, LabelCol: run.LabelCol}
	var col string
	var keep []string
	if run.Where != "" {
		c, vals, ok := strings.Cut(run.Where, "=")
		if !ok || c == "" || vals == "" {
			return nil, usageError{fmt.Errorf("--where %q: want COL=VALUE[,VALUE...]", run.Where)}
		}
		col, keep = c, strings.Split(vals, ",")
		opt.Keep = []string{col}
	}
	d, err := textdata.ReadFile(path, opt)
	if err != nil {
		return nil, err
	}
	if d.Skipped > 0 {
		lines := d.SkippedLines
		more := ""
		if len(lines) > 5 {
			lines, more = lines[:5], ", ..."
		}
		fmt.Fprintf(a.stderr, "%s: skipped %d rows without a label (lines %s%s)\n", path, d.Skipped,
			strings.Trim(fmt.Sprint(lines), "[]"), more)
	}
	if col != "" {
		d = d.Filter(func(e textdata.Example) bool {
			for _, v := range keep {
				if strings.TrimSpace(e.Extra[0]) == v {
					return true
				}
			}
			return false
		})
	}
	if len(d.Examples) == 0 {
		return nil, fmt.Errorf("%s: no labelled rows to use", path)
	}
	return d, nil
}

func (a *app) trainText(cmd *cobra.Command, run textRun, asJSON bool, trk trackFlags) error {
	switch run.Arch {
	case textmodel.ArchBOW, textmodel.ArchLSTM, textmodel.ArchTransformer:
		if len(run.Members) > 0 {
			return usageError{errors.New("--member needs --arch ensemble")}
		}
	case textmodel.ArchEnsemble:
		if len(run.Members) < 2 {
			return usageError{errors.New("--arch ensemble needs two or more --member specs")}
		}
	default:
		return usageError{fmt.Errorf("--arch %q: want bow, lstm, transformer or ensemble", run.Arch)}
	}
	var members []textRun
	for _, spec := range run.Members {
		m, err := memberRun(run, spec)
		if err != nil {
			return err
		}
		members = append(members, m)
	}
	if run.Arch != textmodel.ArchEnsemble {
		run.defaults()
	}
	if run.Data == "" {
		return usageError{errors.New("--data FILE is required")}
	}
	for _, r := range append([]textRun{run}, members...) {
		if r.Arch == textmodel.ArchEnsemble {
			continue
		}
		if err := checkFitFlags(r.Epochs, r.BatchSize, r.LR, r.ValSplit); err != nil {
			return err
		}
		if r.Pool != "" && r.Arch != textmodel.ArchLSTM {
			return usageError{fmt.Errorf("pool %q applies to --arch lstm", r.Pool)}
		}
		if r.EmbedDropout >= 0 && r.Arch != textmodel.ArchLSTM {
			return usageError{errors.New("embed-dropout applies to --arch lstm")}
		}
		if r.CharNGrams != "" {
			if r.Arch != textmodel.ArchBOW {
				return usageError{fmt.Errorf("char-ngrams %q applies to --arch bow", r.CharNGrams)}
			}
			if _, _, err := parseNGramRange(r.CharNGrams); err != nil {
				return err
			}
		}
	}
	switch {
	case run.MaxLen < 2 || run.MaxLen > 4096:
		return usageError{fmt.Errorf("--max-len %d: want 2 to 4096", run.MaxLen)}
	case run.VocabSize < 16:
		return usageError{fmt.Errorf("--vocab-size %d: want at least 16", run.VocabSize)}
	case run.LoRARank < 0:
		return usageError{fmt.Errorf("--lora-rank %d: want 0 or more", run.LoRARank)}
	case run.LoRARank > 0 && run.Pretrained == "":
		return usageError{errors.New("--lora-rank needs --pretrained")}
	case run.Limit < 0:
		return usageError{fmt.Errorf("--limit %d: want 0 or more", run.Limit)}
	case !(run.DevSplit >= 0 && run.DevSplit < 1):
		return usageError{fmt.Errorf("--dev-split %v: want a fraction in [0, 1)", run.DevSplit)}
	case run.FreezeEmbeddings && run.Pretrained == "":
		return usageError{errors.New("--freeze-embeddings needs --pretrained word vectors")}
	case !(run.PseudoThreshold > 0 && run.PseudoThreshold <= 1):
		return usageError{fmt.Errorf("--pseudo-threshold %v: want a probability in (0, 1]", run.PseudoThreshold)}
	case len(run.ExtraData) == 0 && run.ExtraWhere != "":
		return usageError{errors.New("--extra-where needs --extra-data")}
	case len(run.Unlabeled) == 0 && (cmd.Flags().Changed("pseudo-threshold") || cmd.Flags().Changed("unlabeled-text-col") || run.PseudoBalance):
		return usageError{errors.New("--pseudo-threshold, --pseudo-balance and --unlabeled-text-col need --unlabeled")}
	}
	trainD, err := a.readTextData(run.Data, run)
	if err != nil {
		return err
	}
	if n := len(trainD.Examples); run.Limit > 0 && n > run.Limit {
		// A stratified sample: every class with two or more rows keeps one.
		_, trainD = textmodel.StratifiedSplit(trainD, float64(run.Limit)/float64(n), run.Seed^0x11)
	}
	var valD *textdata.Data
	if run.Val != "" {
		if valD, err = a.readTextData(run.Val, run); err != nil {
			return err
		}
	} else if run.ValSplit > 0 {
		trainD, valD = textmodel.StratifiedSplit(trainD, run.ValSplit, run.Seed)
		if len(trainD.Examples) == 0 {
			return fmt.Errorf("%s: no rows left for training with --val-split %v", run.Data, run.ValSplit)
		}
	}
	var setAside *textdata.Data
	if run.DevSplit > 0 {
		setAside = valD
		// The validation data is set aside unused; the dev rows come from
		// the training rows only (a seed distinct from --val-split's).
		trainD, valD = textmodel.StratifiedSplit(trainD, run.DevSplit, run.Seed^0xde5)
		if len(trainD.Examples) == 0 || len(valD.Examples) == 0 {
			return fmt.Errorf("%s: --dev-split %v leaves no training or no dev rows", run.Data, run.DevSplit)
		}
	}
	classes := textdata.Classes(trainD)
	if len(classes) < 2 {
		return fmt.Errorf("%s: need at least 2 classes, found %d", run.Data, len(classes))
	}
	known := map[string]bool{}
	for _, c := range classes {
		known[c] = true
	}
	if len(run.ExtraData) > 0 {
		if trainD, err = a.addExtraData(&run, trainD, known, valD, setAside); err != nil {
			return err
		}
	}
	if valD != nil {
		if err := checkLabels(valD, known, run.Val); err != nil {
			return err
		}
	}

	names := classes
	if run.LabelNames != "" {
		if names, err = readLabelNames(run.LabelNames, classes); err != nil {
			return err
		}
	}
	if len(run.Unlabeled) > 0 {
		unl, err := readUnlabeled(run)
		if err != nil {
			return err
		}
		return a.selfTrainText(cmd, run, members, trainD, valD, setAside, classes, names, unl, asJSON, trk)
	}
	fit, err := a.fitTextModel(cmd, run, members, trainD, valD, classes, names, trk, nil)
	if err != nil {
		return err
	}
	defer fit.tr.close()
	return a.saveTextFit(fit, asJSON)
}

// checkLabels reports the first example of d whose label is not a training
// class (known); src names d's file in the error.
func checkLabels(d *textdata.Data, known map[string]bool, src string) error {
	for _, e := range d.Examples {
		if !known[e.Label] {
			return fmt.Errorf("%s: line %d: label %q does not occur in the training data", src, e.Line, e.Label)
		}
	}
	return nil
}

// addExtraData reads the --extra-data files (filtered by --extra-where)
// and returns trainD with their rows appended, minus the rows whose
// normalised text is that of a validation or dev row (evaluation texts
// never train). Every extra label must be a training class (known).
func (a *app) addExtraData(run *textRun, trainD *textdata.Data, known map[string]bool, held ...*textdata.Data) (*textdata.Data, error) {
	heldText := normTexts(held...)
	out := &textdata.Data{Examples: slices.Clone(trainD.Examples)}
	xr := *run
	xr.Where = run.ExtraWhere
	for _, path := range run.ExtraData {
		d, err := a.readTextData(path, xr)
		if err != nil {
			return nil, fmt.Errorf("--extra-data: %w", err)
		}
		if err := checkLabels(d, known, "--extra-data "+path); err != nil {
			return nil, err
		}
		for _, e := range d.Examples {
			if heldText[normText(e.Text)] {
				run.extraOverlap++
				continue
			}
			out.Examples = append(out.Examples, e)
			run.extraRows++
		}
	}
	fmt.Fprintf(a.stderr, "extra training rows: %d from %s (dropped %d whose text is a validation or dev text)\n",
		run.extraRows, strings.Join(run.ExtraData, ", "), run.extraOverlap)
	return out, nil
}

// textFit is a trained and evaluated text model (single or ensemble): what
// saving it as a package and printing its result need.
type textFit struct {
	// run holds the settings that took effect (an MLM --pretrained
	// package makes the arch a transformer).
	run   textRun
	clf   textmodel.Classifier
	tok   text.Tokenizer
	names []string
	// dopt is how texts were encoded for clf.
	dopt textdata.DatasetOptions
	op   model.PreprocessOp
	// result is the --json object, meta the package metadata.
	result, meta map[string]any
	// final holds val_accuracy and val_macro_f1 (empty without validation
	// data), the metrics recorded in the tracking store.
	final  map[string]float64
	epochs int
	// secs is the training time.
	secs   float64
	hasVal bool
	// note, when set, is printed after the summary line (not with --json).
	note string
	// tr is the run's tracking (nil without); the caller closes it.
	tr *tracking
}

// fitTextModel trains the classifier configured by run (and members, for
// an ensemble) on trainD, with a tokenizer trained on trainD's texts (or the
// --pretrained encoder's), and evaluates it on valD (nil: none). The run is
// recorded in the tracking store per trk, with extra added to its params;
// on success the caller closes the returned fit's tracking.
func (a *app) fitTextModel(cmd *cobra.Command, run textRun, members []textRun, trainD, valD *textdata.Data,
	classes, names []string, trk trackFlags, extra map[string]string) (fit *textFit, err error) {
	if run.Arch == textmodel.ArchEnsemble {
		return a.fitTextEnsemble(cmd, run, members, trainD, valD, classes, names, trk, extra)
	}
	rng := tensor.NewRNG(run.Seed)
	var tok text.Tokenizer
	var clf textmodel.Classifier
	addSpecial := run.Arch == textmodel.ArchTransformer
	maxLen := run.MaxLen
	initRows := -1
	var vectors *textmodel.WordVectors
	if run.Pretrained != "" {
		p, w, err := textmodel.OpenPretrained(run.Pretrained)
		if err != nil {
			return nil, err
		}
		if p != nil {
			if cmd.Flags().Changed("arch") && run.Arch != textmodel.ArchTransformer {
				return nil, usageError{fmt.Errorf("--pretrained %s is an MLM encoder: it fine-tunes --arch transformer, not %s", run.Pretrained, run.Arch)}
			}
			if run.FreezeEmbeddings {
				return nil, usageError{errors.New("--freeze-embeddings applies to word vectors, not to an MLM encoder")}
			}
			t, err := textmodel.NewFromPretrained(p, len(classes), textmodel.FineTuneOptions{LoRARank: run.LoRARank, Seed: run.Seed})
			if err != nil {
				return nil, err
			}
			tok, clf, addSpecial = p.Tokenizer, t, true
			maxLen = min(maxLen, p.Encoder.Cfg.MaxLen)
			run.Arch = textmodel.ArchTransformer
		} else {
			switch {
			case run.Arch == textmodel.ArchTransformer:
				return nil, usageError{fmt.Errorf("--pretrained %s holds word vectors: they initialise --arch bow or lstm (a transformer takes an MLM package)", run.Pretrained)}
			case run.LoRARank > 0:
				return nil, usageError{errors.New("--lora-rank needs an MLM encoder, not word vectors")}
			case run.Dim > 0 && run.Dim != w.Dim():
				return nil, usageError{fmt.Errorf("--dim %d: the word vectors in %s have %d dimensions", run.Dim, run.Pretrained, w.Dim())}
			case run.FreezeEmbeddings && run.Arch == textmodel.ArchBOW && run.Buckets != 0:
				return nil, usageError{errors.New("--freeze-embeddings with --arch bow needs --buckets 0 (the bigram rows share the embedding table)")}
			}
			vectors = w
			run.Dim = w.Dim()
			if !cmd.Flags().Changed("lr") { // the 1e-4 default is for fine-tuning an MLM encoder
				run.LR = 1e-3
				if run.Arch == textmodel.ArchBOW {
					run.LR = 5e-3
				}
			}
		}
	}
	if clf == nil {
		switch run.Tokenizer {
		case "wordlevel":
			tok, err = trainWordLevel(trainD, run.VocabSize)
		case "wordpiece":
			if vectors != nil {
				return nil, usageError{errors.New("--pretrained word vectors need --tokenizer wordlevel")}
			}
			wc := text.DefaultWordPieceConfig(run.VocabSize)
			tok, err = text.TrainWordPiece(trainD.Texts(), wc)
		default:
			return nil, usageError{fmt.Errorf("--tokenizer %q: want wordlevel or wordpiece", run.Tokenizer)}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: training the tokenizer: %w", run.Data, err)
		}
		if clf, err = newTextModel(rng, run.modelConfig(tok, len(classes), maxLen), tok); err != nil {
			return nil, usageError{err}
		}
		if vectors != nil {
			n, err := initFromVectors(clf, tok, vectors, run.FreezeEmbeddings)
			if err != nil {
				return nil, err
			}
			initRows = n
			fmt.Fprintf(a.stderr, "initialised the embeddings of %d of %d words from %s\n", n, tok.Vocab().Len(), run.Pretrained)
		}
	}
	dopt := textdata.DatasetOptions{MaxLen: maxLen, AddSpecial: addSpecial, FixedLen: true}
	trainDS, valDS, err := textDatasets(trainD, valD, tok, classes, dopt)
	if err != nil {
		return nil, err
	}

	tr, err := a.startTracking(trk, "text", withParams(map[string]string{
		"epochs": fmt.Sprint(run.Epochs), "lr": fmt.Sprint(run.LR), "batch_size": fmt.Sprint(run.BatchSize),
		"seed": fmt.Sprint(run.Seed), "model": run.Arch, "data": run.Data, "label_col": run.LabelCol,
		"train_examples": fmt.Sprint(trainDS.Len()), "pretrained": run.Pretrained, "lora_rank": fmt.Sprint(run.LoRARank),
	}, extra))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tr.close()
		}
	}()
	start := time.Now()
	hist, trainable, err := a.fitText(cmd, clf, run, trainDS, valDS)
	secs := time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}
	epochs := len(hist.Epochs)
	result := textResult(run, epochs, epochs*((trainDS.Len()+run.BatchSize-1)/run.BatchSize), trainable, trainDS.Len(), len(classes), tok, secs)
	if run.Pretrained != "" {
		result["pretrained"] = run.Pretrained
	}
	if initRows >= 0 {
		result["pretrained_rows"] = initRows
		result["frozen_embeddings"] = run.FreezeEmbeddings
	}
	final := evalText(clf, valDS, names, result, run.DevSplit)
	for k, v := range lastLogs(hist) {
		result[k] = jsonSafe(v)
	}
	op, err := textmodel.TokenizeOp(tok, maxLen, addSpecial)
	if err != nil {
		return nil, err
	}
	meta := textMeta(run, epochs, trainDS.Len(), secs, final)
	meta["lr"] = run.LR
	if run.Pretrained != "" {
		meta["pretrained"], meta["lora_rank"] = run.Pretrained, run.LoRARank
	}
	if initRows >= 0 {
		meta["pretrained_rows"], meta["frozen_embeddings"] = initRows, run.FreezeEmbeddings
	}
	return &textFit{run: run, clf: clf, tok: tok, names: names, dopt: dopt, op: op, result: result, meta: meta,
		final: final, epochs: epochs, secs: secs, hasVal: valDS != nil, tr: tr}, nil
}

// textResult returns the --json fields every text run reports.
func textResult(run textRun, epochs, steps, trainable, trainN, classes int, tok text.Tokenizer, secs float64) map[string]any {
	return map[string]any{
		"task": "text", "arch": run.Arch, "out": run.Out, "epochs": epochs, "seconds": round3(secs),
		"train_examples": trainN, "classes": classes, "vocab_size": tok.Vocab().Len(),
		"steps": steps, "trainable_params": trainable,
	}
}

// textMeta returns the package metadata every text run records, with the
// final metrics rounded to 4 digits.
func textMeta(run textRun, epochs, trainN int, secs float64, final map[string]float64) map[string]any {
	meta := map[string]any{
		"task": "text", "arch": run.Arch, "epochs": epochs, "batch_size": run.BatchSize, "seed": run.Seed,
		"optimizer": "adam", "loss": "cross_entropy", "class_weights": run.Weights,
		"train_examples": trainN, "train_seconds": round3(secs), "text_col": run.TextCol,
		"label_col": run.LabelCol, "deepgo_version": version, "created": time.Now().UTC().Format(time.RFC3339),
	}
	for k, v := range final {
		meta[k] = round4(v)
	}
	return meta
}

// withParams returns params with extra's entries added.
func withParams(params, extra map[string]string) map[string]string {
	maps.Copy(params, extra)
	return params
}

// saveTextFit saves fit as a model package in fit.run.Out (an LoRA
// transformer's adapters folded into its weights first), records the end of
// its tracked run, and prints its result.
func (a *app) saveTextFit(fit *textFit, asJSON bool) error {
	run := fit.run
	if len(run.ExtraData) > 0 {
		fit.result["extra_rows"], fit.result["extra_overlap"] = run.extraRows, run.extraOverlap
		fit.meta["extra_data"], fit.meta["extra_rows"] = run.ExtraData, run.extraRows
		if run.ExtraWhere != "" {
			fit.meta["extra_where"] = run.ExtraWhere
		}
	}
	if t, ok := fit.clf.(*textmodel.Transformer); ok && run.LoRARank > 0 {
		// Fold the adapters into the base weights: the package serves as a
		// plain Transformer, with the same outputs.
		textmodel.MergeLoRA(t)
	}
	if err := saveTextPackage(run.Out, run.Arch, fit.clf, fit.op, fit.names, fit.meta); err != nil {
		return err
	}
	fit.tr.finish(fit.final, fit.epochs, run.Out)
	if err := a.printTextResult(asJSON, fit.result, fit.final, fit.hasVal, run, fit.epochs, fit.secs); err != nil {
		return err
	}
	if fit.note != "" && !asJSON {
		fmt.Fprintln(a.stdout, fit.note)
	}
	return nil
}

// defaults fills in the per-architecture epochs and learning rate.
func (run *textRun) defaults() {
	if run.Epochs == 0 {
		run.Epochs = map[string]int{textmodel.ArchBOW: 6, textmodel.ArchLSTM: 5, textmodel.ArchTransformer: 8}[run.Arch]
	}
	if run.LR == 0 {
		run.LR = 1e-3
		if run.Arch == textmodel.ArchBOW {
			run.LR = 5e-3
		}
		if run.Pretrained != "" {
			run.LR = 1e-4
		}
	}
}

// maxSubwords is the most character n-grams a bow keeps per word.
const maxSubwords = 64

// parseNGramRange parses --char-ngrams MIN-MAX.
func parseNGramRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		lo, err = strconv.Atoi(a)
		if err == nil {
			hi, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || lo < 1 || hi < lo || hi > 16 {
		return 0, 0, usageError{fmt.Errorf("char-ngrams %q: want MIN-MAX with 1 <= MIN <= MAX <= 16, e.g. 3-5", s)}
	}
	return lo, hi, nil
}

// newTextModel makes the classifier of cfg and fills a bow's character
// n-gram table from tok's vocabulary.
func newTextModel(rng *tensor.RNG, cfg textmodel.Config, tok text.Tokenizer) (textmodel.Classifier, error) {
	clf, err := textmodel.New(rng, cfg)
	if err != nil {
		return nil, err
	}
	if b, ok := clf.(*textmodel.BOW); ok && cfg.MaxN > 0 {
		b.SetSubwords(tok.Vocab().Tokens())
	}
	return clf, nil
}

// modelConfig returns the classifier configuration of run for tok's
// vocabulary: the defaults of its architecture with the size flags that
// were given.
func (run textRun) modelConfig(tok text.Tokenizer, classes, maxLen int) textmodel.Config {
	cfg := textmodel.DefaultConfig(run.Arch, tok.Vocab().Len(), classes)
	if run.Dim > 0 {
		cfg.Dim = run.Dim
	}
	if run.Hidden > 0 {
		cfg.Hidden = run.Hidden
	}
	if run.Layers > 0 {
		cfg.Layers = run.Layers
	}
	if run.Dropout >= 0 {
		cfg.Dropout = float32(run.Dropout)
	}
	if run.Buckets >= 0 && run.Arch == textmodel.ArchBOW {
		cfg.Buckets = run.Buckets
	}
	if run.CharNGrams != "" && run.Arch == textmodel.ArchBOW {
		// Checked by trainText.
		cfg.MinN, cfg.MaxN, _ = parseNGramRange(run.CharNGrams)
		cfg.Subwords = textmodel.MaxSubwords(tok.Vocab().Tokens(), cfg.MinN, cfg.MaxN, maxSubwords)
	}
	if run.Arch == textmodel.ArchLSTM {
		if run.Pool != "" {
			cfg.Pool = run.Pool
		}
		if run.EmbedDropout >= 0 {
			cfg.EmbedDropout = float32(run.EmbedDropout)
		}
	}
	if run.Arch == textmodel.ArchTransformer {
		cfg.MaxLen = maxLen
	}
	return cfg
}

// fitText trains clf with Adam (run.LR, cosine schedule over run.Epochs),
// cross-entropy (class-weighted with run.Weights) and batches of
// run.BatchSize shuffled with run.Seed, validating on valDS when given. It
// returns the history, the number of trainable values, and leaves clf in
// evaluation mode.
func (a *app) fitText(cmd *cobra.Command, clf textmodel.Classifier, run textRun, trainDS, valDS *textdata.Dataset) (*train.History, int, error) {
	var lossOpts []nn.LossOption
	if run.Weights {
		lossOpts = append(lossOpts, nn.WithWeight(tensor.FromSlice(textmodel.BalancedWeights(trainDS.ClassCounts()), clf.Config().NumClasses)))
	}
	var params []*tensor.Tensor
	for _, p := range nn.Parameters(clf) {
		if p.RequiresGrad() {
			params = append(params, p)
		}
	}
	trainable := 0
	for _, p := range params {
		trainable += p.Numel()
	}
	opt := optim.NewAdam(params, optim.AdamConfig{LR: run.LR})
	cfg := train.Config{
		Epochs:    run.Epochs,
		Optimizer: opt,
		Loss:      func(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y, lossOpts...) },
		Train: data.NewLoader(trainDS, data.LoaderConfig{
			BatchSize: run.BatchSize, Shuffle: true, Seed: run.Seed, Workers: 1, Prefetch: 4,
		}),
		Metrics:   []train.Metric{train.Accuracy()},
		Progress:  a.stderr,
		Scheduler: optim.NewCosineAnnealingLR(opt, run.Epochs, 0),
		Callbacks: a.callbacks,
	}
	if valDS != nil {
		cfg.Val = data.NewLoader(valDS, data.LoaderConfig{BatchSize: 256})
	}
	hist, err := train.Fit(cmd.Context(), clf, cfg)
	nn.Eval(clf)
	return hist, trainable, err
}

// evalText adds accuracy, macro_f1, per_class_f1 and val_examples of clf
// on valDS (if not nil) to result, and dev_split when the data is the
// --dev-split part; it returns val_accuracy and val_macro_f1 for tracking.
func evalText(clf textmodel.Classifier, valDS *textdata.Dataset, names []string, result map[string]any, devSplit float64) map[string]float64 {
	final := map[string]float64{}
	if valDS == nil {
		return final
	}
	pred := textmodel.Predictions(clf, valDS, 256)
	cm := metrics.NewConfusionMatrix(pred, valDS.Targets(), len(names))
	rep := cm.Report()
	perClass := map[string]float64{}
	for i, s := range rep.PerClass {
		perClass[names[i]] = round4(s.F1)
	}
	result["accuracy"] = round4(rep.Accuracy)
	result["macro_f1"] = round4(rep.Macro.F1)
	result["per_class_f1"] = perClass
	result["val_examples"] = valDS.Len()
	if devSplit > 0 {
		result["dev_split"] = devSplit
	}
	final["val_accuracy"], final["val_macro_f1"] = rep.Accuracy, rep.Macro.F1
	return final
}

// saveTextPackage saves a text classifier with its tokenize op as a model
// package (input int64 ids [-1, -1], output logits [-1, classes]).
func saveTextPackage(dir, arch string, clf textmodel.Classifier, op model.PreprocessOp, names []string, meta map[string]any) error {
	pkg := &model.Package{
		Name:   "text-" + arch,
		Module: clf,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, len(names)}}},
		},
		Preprocess: []model.PreprocessOp{op},
		Labels:     names,
		Metadata:   meta,
	}
	return model.Save(dir, pkg)
}

// printTextResult prints the result as JSON, or a summary line.
func (a *app) printTextResult(asJSON bool, result map[string]any, final map[string]float64, hasVal bool, run textRun, epochs int, secs float64) error {
	if asJSON {
		return a.writeJSON(result)
	}
	what := "validation"
	if run.DevSplit > 0 {
		what = "dev"
	}
	if hasVal {
		fmt.Fprintf(a.stdout, "%s accuracy %.2f%%, macro-F1 %.4f", what, 100*final["val_accuracy"], final["val_macro_f1"])
	} else {
		fmt.Fprintf(a.stdout, "no validation data")
	}
	fmt.Fprintf(a.stdout, " (%s %s in %.1fs)\nsaved model package to %s\n", run.Arch, plural(epochs, "epoch"), secs, run.Out)
	return nil
}

func round4(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1e4) / 1e4
}

// readLabelNames reads a TSV file whose first line is a header and whose
// other lines are LABEL<TAB>NAME[<TAB>...], and returns the names of
// classes in order (a class the file does not name keeps its label).
func readLabelNames(path string, classes []string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for i, line := range strings.Split(strings.TrimRight(string(b), "\r\n"), "\n") {
		if i == 0 || strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if len(f) < 2 || strings.TrimSpace(f[1]) == "" {
			return nil, fmt.Errorf("%s: line %d: want LABEL<TAB>NAME", path, i+1)
		}
		m[strings.TrimSpace(f[0])] = strings.TrimSpace(f[1])
	}
	out := make([]string, len(classes))
	seen := map[string]bool{}
	for i, c := range classes {
		out[i] = c
		if n, ok := m[c]; ok {
			out[i] = n
		}
		if seen[out[i]] {
			return nil, fmt.Errorf("%s: name %q is given to two classes", path, out[i])
		}
		seen[out[i]] = true
	}
	return out, nil
}

// initFromVectors copies the word vectors into the embedding table of a
// bow or lstm classifier (textmodel.InitEmbedding: words of tok that are in
// the vectors' vocabulary; the other rows keep their random initialisation,
// and the bow's bigram rows are untouched), scaled so that their root mean
// square matches that of the table's random initialisation, and freezes the
// table when freeze is set. It returns the number of rows set.
func initFromVectors(clf textmodel.Classifier, tok text.Tokenizer, w *textmodel.WordVectors, freeze bool) (int, error) {
	var weight *tensor.Tensor
	switch m := clf.(type) {
	case *textmodel.BOW:
		weight = m.Embedding.Weight
	case *textmodel.LSTM:
		weight = m.Embedding.Weight
	default:
		return 0, fmt.Errorf("word vectors initialise bow or lstm classifiers, not %T", clf)
	}
	n, err := textmodel.InitEmbedding(weight, tok, w, textmodel.MatchRMS(weight, tok.Vocab().Len(), w))
	if err != nil {
		return 0, err
	}
	if freeze {
		weight.SetRequiresGrad(false)
	}
	return n, nil
}

// textDatasets tokenizes the training data and, when there is any, the
// validation data (valDS nil otherwise).
func textDatasets(trainD, valD *textdata.Data, tok text.Tokenizer, classes []string, dopt textdata.DatasetOptions) (trainDS, valDS *textdata.Dataset, err error) {
	if trainDS, err = textdata.NewDataset(trainD, tok, classes, dopt); err != nil {
		return nil, nil, err
	}
	if valD != nil && len(valD.Examples) > 0 {
		if valDS, err = textdata.NewDataset(valD, tok, classes, dopt); err != nil {
			return nil, nil, err
		}
	}
	return trainDS, valDS, nil
}
