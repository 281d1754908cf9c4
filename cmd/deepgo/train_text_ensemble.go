package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
)

// trainWordLevel trains the word-level tokenizer of deepgo train text
// (lower-cased, accents stripped, URLs as one token) on the training texts.
func trainWordLevel(d *textdata.Data, vocabSize int) (text.Tokenizer, error) {
	norm := text.Normalizer{Lowercase: true, StripAccents: true}
	pre := text.PreTokenizer{URLToken: true}
	return text.TrainWordLevel(d.Texts(), text.WordLevelConfig{Normalizer: norm, PreTokenizer: pre, MaxSize: vocabSize})
}

// memberRun returns the settings of the ensemble member described by spec
// (KEY=VALUE pairs separated by commas, see the --member flag): base's
// settings with the given keys replaced and the member's defaults (epochs,
// learning rate) filled in. The seed defaults to base's.
func memberRun(base textRun, spec string) (textRun, error) {
	m := base
	m.Members = nil
	m.Arch = ""
	bad := func(format string, args ...any) error {
		return usageError{fmt.Errorf("--member %q: %s", spec, fmt.Sprintf(format, args...))}
	}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" || v == "" {
			return m, bad("want KEY=VALUE pairs separated by commas, got %q", kv)
		}
		var err error
		switch k {
		case "arch":
			m.Arch = v
		case "epochs":
			m.Epochs, err = strconv.Atoi(v)
		case "lr":
			m.LR, err = strconv.ParseFloat(v, 64)
		case "dim":
			m.Dim, err = strconv.Atoi(v)
		case "hidden":
			m.Hidden, err = strconv.Atoi(v)
		case "layers":
			m.Layers, err = strconv.Atoi(v)
		case "dropout":
			m.Dropout, err = strconv.ParseFloat(v, 64)
		case "embed-dropout":
			m.EmbedDropout, err = strconv.ParseFloat(v, 64)
		case "buckets":
			m.Buckets, err = strconv.Atoi(v)
		case "pool":
			m.Pool = v
		case "char-ngrams":
			m.CharNGrams = v
		case "seed":
			m.Seed, err = strconv.ParseUint(v, 10, 64)
		case "pretrained":
			m.Pretrained = v
			if v == "none" {
				m.Pretrained = ""
			}
		default:
			return m, bad("unknown key %q (want arch, epochs, lr, dim, hidden, layers, dropout, embed-dropout, buckets, char-ngrams, pool, seed or pretrained)", k)
		}
		if err != nil {
			return m, bad("%s: %v", k, err)
		}
	}
	if m.Arch != textmodel.ArchBOW && m.Arch != textmodel.ArchLSTM {
		return m, bad("arch %q: a member is bow or lstm", m.Arch)
	}
	if m.Dim < 0 || m.Hidden < 0 || m.Layers < 0 || m.Epochs < 0 || m.LR < 0 {
		return m, bad("sizes, epochs and lr must not be negative")
	}
	// Word vectors take the bow and lstm learning rates, not the 1e-4 of an
	// MLM encoder.
	pre := m.Pretrained
	m.Pretrained = ""
	m.defaults()
	m.Pretrained = pre
	return m, nil
}

// fitTextEnsemble trains the members one after the other on one
// word-level tokenizer (trained on trainD) and returns their ensemble
// (textmodel.Ensemble), evaluated on valD, as fitTextModel does.
func (a *app) fitTextEnsemble(cmd *cobra.Command, run textRun, members []textRun, trainD, valD *textdata.Data,
	classes, names []string, trk trackFlags, extra map[string]string) (fit *textFit, err error) {
	switch {
	case run.Tokenizer != "wordlevel":
		return nil, usageError{errors.New("--arch ensemble uses --tokenizer wordlevel")}
	case run.LoRARank > 0 || run.FreezeEmbeddings:
		return nil, usageError{errors.New("--arch ensemble: --lora-rank and --freeze-embeddings do not apply")}
	}
	members = slices.Clone(members)
	vectors := map[string]*textmodel.WordVectors{}
	for i, m := range members {
		if m.Pretrained == "" || vectors[m.Pretrained] != nil {
			continue
		}
		p, w, err := textmodel.OpenPretrained(m.Pretrained)
		if err != nil {
			return nil, err
		}
		if p != nil {
			return nil, usageError{fmt.Errorf("member %d: %s is an MLM encoder; ensemble members take word vectors", i, m.Pretrained)}
		}
		vectors[m.Pretrained] = w
	}
	for i := range members {
		if w := vectors[members[i].Pretrained]; w != nil {
			if members[i].Dim > 0 && members[i].Dim != w.Dim() {
				return nil, usageError{fmt.Errorf("member %d: dim %d, but the word vectors in %s have %d dimensions", i, members[i].Dim, members[i].Pretrained, w.Dim())}
			}
			members[i].Dim = w.Dim()
		}
	}
	tok, err := trainWordLevel(trainD, run.VocabSize)
	if err != nil {
		return nil, fmt.Errorf("%s: training the tokenizer: %w", run.Data, err)
	}
	dopt := textdata.DatasetOptions{MaxLen: run.MaxLen, FixedLen: true}
	trainDS, valDS, err := textDatasets(trainD, valD, tok, classes, dopt)
	if err != nil {
		return nil, err
	}
	tr, err := a.startTracking(trk, "text", withParams(map[string]string{
		"batch_size": fmt.Sprint(run.BatchSize), "seed": fmt.Sprint(run.Seed), "model": run.Arch, "data": run.Data,
		"label_col": run.LabelCol, "train_examples": fmt.Sprint(trainDS.Len()), "members": strings.Join(run.Members, " | "),
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
	var clfs []textmodel.Classifier
	var memberResults, memberMeta []map[string]any
	epochs, steps, trainable := 0, 0, 0
	for i, m := range members {
		clf, err := newTextModel(tensor.NewRNG(m.Seed), m.modelConfig(tok, len(classes), m.MaxLen), tok)
		if err != nil {
			return nil, usageError{fmt.Errorf("member %d: %w", i, err)}
		}
		if w := vectors[m.Pretrained]; w != nil {
			n, err := initFromVectors(clf, tok, w, false)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(a.stderr, "member %d: initialised the embeddings of %d of %d words from %s\n", i, n, tok.Vocab().Len(), m.Pretrained)
		}
		fmt.Fprintf(a.stderr, "member %d/%d: %s, %s, lr %g, seed %d\n", i+1, len(members), m.Arch, plural(m.Epochs, "epoch"), m.LR, m.Seed)
		t0 := time.Now()
		hist, n, err := a.fitText(cmd, clf, m, trainDS, valDS)
		if err != nil {
			return nil, err
		}
		ep := len(hist.Epochs)
		epochs += ep
		steps += ep * ((trainDS.Len() + m.BatchSize - 1) / m.BatchSize)
		trainable += n
		res := map[string]any{"arch": m.Arch, "epochs": ep, "lr": m.LR, "seed": m.Seed, "seconds": round3(time.Since(t0).Seconds()),
			"trainable_params": n, "config": clf.Config()}
		if m.Pretrained != "" {
			res["pretrained"] = m.Pretrained
		}
		for k, v := range lastLogs(hist) {
			res[k] = jsonSafe(v)
		}
		evalText(clf, valDS, names, res, 0)
		delete(res, "per_class_f1")
		delete(res, "val_examples")
		memberResults = append(memberResults, res)
		memberMeta = append(memberMeta, map[string]any{"arch": m.Arch, "epochs": ep, "lr": m.LR, "seed": m.Seed, "pretrained": m.Pretrained})
		clfs = append(clfs, clf)
	}
	ens, err := textmodel.NewEnsemble(clfs...)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	result := textResult(run, epochs, steps, trainable, trainDS.Len(), len(classes), tok, secs)
	result["members"] = memberResults
	final := evalText(ens, valDS, names, result, run.DevSplit)
	op, err := textmodel.TokenizeOp(tok, run.MaxLen, false)
	if err != nil {
		return nil, err
	}
	meta := textMeta(run, epochs, trainDS.Len(), secs, final)
	meta["members"] = memberMeta
	return &textFit{run: run, clf: ens, tok: tok, names: names, dopt: dopt, op: op, result: result, meta: meta,
		final: final, epochs: epochs, secs: secs, hasVal: valDS != nil, tr: tr}, nil
}
