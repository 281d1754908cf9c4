package text

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileFormat is the value of the "format" field of a tokenizer file.
const FileFormat = "deepgo-tokenizer"

// fileVersion is the current tokenizer file version.
const fileVersion = 1

// tokenizerFile is the JSON layout of a saved tokenizer:
//
//	{"format": "deepgo-tokenizer", "version": 1, "type": "wordpiece",
//	 "normalizer": {"lowercase": true, "strip_accents": true},
//	 "pretokenizer": {"url_token": true},
//	 "max_input_chars_per_word": 100,
//	 "vocab": ["[PAD]", "[UNK]", ...],      // tokens in id order
//	 "merges": ["Ġ t", "Ġt he", ...]}       // bpe only, rank order
type tokenizerFile struct {
	Format       string       `json:"format"`
	Version      int          `json:"version"`
	Type         string       `json:"type"`
	Normalizer   Normalizer   `json:"normalizer"`
	PreTokenizer PreTokenizer `json:"pretokenizer"`
	MaxChars     int          `json:"max_input_chars_per_word,omitempty"`
	Vocab        []string     `json:"vocab"`
	Merges       []string     `json:"merges,omitempty"`
}

// Tokenizer type names in files.
const (
	typeWordLevel = "wordlevel"
	typeWordPiece = "wordpiece"
	typeBPE       = "bpe"
)

func (p *pipeline) file(typ string, maxChars int) tokenizerFile {
	return tokenizerFile{Format: FileFormat, Version: fileVersion, Type: typ, Normalizer: p.norm, PreTokenizer: p.pre, MaxChars: maxChars, Vocab: p.vocab.Tokens()}
}

// Save writes the tokenizer to path as JSON (see Load).
func (w *WordLevel) Save(path string) error {
	return saveFile(path, w.file(typeWordLevel, 0))
}

// Save writes the tokenizer to path as JSON (see Load).
func (wp *WordPiece) Save(path string) error {
	return saveFile(path, wp.file(typeWordPiece, wp.maxChars))
}

// Save writes the tokenizer to path as JSON (see Load). Merges are stored
// as "a b" strings; byte-level symbols never contain a space.
func (bp *BPE) Save(path string) error {
	f := bp.file(typeBPE, bp.maxChars)
	f.Merges = make([]string, len(bp.mergeSeq))
	for i, m := range bp.mergeSeq {
		f.Merges[i] = m[0] + " " + m[1]
	}
	return saveFile(path, f)
}

// saveFile writes f atomically: to a temporary file in the same directory,
// synced, then renamed over path.
func saveFile(path string, f tokenizerFile) (err error) {
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return fmt.Errorf("text: save %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("text: save %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("text: save %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("text: save %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("text: save %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("text: save %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("text: save %s: %w", path, err)
	}
	return nil
}

// Load reads a tokenizer saved by Save; the result is a *WordLevel,
// *WordPiece or *BPE. Errors name the file and the problem.
func Load(path string) (Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("text.Load: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("text.Load %s: %w", path, err)
	}
	return t, nil
}

// Parse decodes the JSON of a tokenizer file (see Load). It validates
// everything and returns an error, never panics, on malformed input.
func Parse(data []byte) (Tokenizer, error) {
	var f tokenizerFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("tokenizer file: %w", err)
	}
	if f.Format != FileFormat {
		return nil, fmt.Errorf("tokenizer file: format %q, want %q", f.Format, FileFormat)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("tokenizer file: version %d, want %d", f.Version, fileVersion)
	}
	if f.MaxChars < 0 {
		return nil, fmt.Errorf("tokenizer file: max_input_chars_per_word %d is negative", f.MaxChars)
	}
	switch f.Type {
	case typeWordLevel:
		if len(f.Merges) > 0 {
			return nil, errors.New("tokenizer file: a wordlevel tokenizer has no merges")
		}
		return asTokenizer(NewWordLevel(f.Vocab, f.Normalizer, f.PreTokenizer))
	case typeWordPiece:
		if len(f.Merges) > 0 {
			return nil, errors.New("tokenizer file: a wordpiece tokenizer has no merges")
		}
		return asTokenizer(NewWordPiece(f.Vocab, f.Normalizer, f.PreTokenizer, f.MaxChars))
	case typeBPE:
		merges := make([][2]string, len(f.Merges))
		for i, m := range f.Merges {
			a, b, ok := strings.Cut(m, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("tokenizer file: merge %d %q is not two symbols separated by one space", i, m)
			}
			merges[i] = [2]string{a, b}
		}
		return asTokenizer(NewBPE(f.Vocab, merges, f.Normalizer, f.PreTokenizer, f.MaxChars))
	}
	return nil, fmt.Errorf("tokenizer file: unknown type %q (want %s, %s or %s)", f.Type, typeWordLevel, typeWordPiece, typeBPE)
}

// asTokenizer converts a constructor's result, keeping a failed one a nil
// interface rather than a typed nil pointer.
func asTokenizer[T Tokenizer](t T, err error) (Tokenizer, error) {
	if err != nil {
		return nil, fmt.Errorf("tokenizer file: %w", err)
	}
	return t, nil
}
