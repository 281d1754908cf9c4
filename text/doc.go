// Package text turns text into token ids for sequence models: Unicode
// normalisation, pre-tokenisation, a word-level vocabulary and trainable
// subword tokenizers (WordPiece and byte-level BPE), with padding,
// truncation and attention masks.
//
// # Pipeline
//
// Every tokenizer runs the same three steps:
//
//  1. Normalizer: invalid UTF-8 becomes U+FFFD, NFKC, optional accent
//     stripping and lower-casing, control characters removed, whitespace
//     collapsed.
//  2. PreTokenizer: split on whitespace and punctuation; numbers, cashtags
//     ($AAPL), mentions (@user) stay whole; URLs optionally become the
//     single token [URL]; every CJK ideograph is its own token, so Chinese
//     text is split into characters.
//  3. The model: WordLevel (one id per word), WordPiece (BERT-style "##"
//     continuation pieces) or BPE (GPT-2 style byte-level merges).
//
// # Ids and batches
//
// Every vocabulary starts with the special tokens [PAD]=0, [UNK]=1,
// [CLS]=2, [SEP]=3, [MASK]=4 (then [URL]=5 when URLs are replaced).
// Tokenizer.Encode gives the ids of one text; EncodeBatch frames
// ([CLS] ... [SEP]), truncates and pads many texts into a Batch with an
// int64 [N, T] id tensor, a float32 [N, T] attention mask (1 = token) and
// the lengths.
//
// # Determinism, speed and bad input
//
// Training is a pure function of the texts and the config: ties between
// equally good merges are broken by the lexicographic order of the symbol
// pair, and word order never matters. Pair counts are updated
// incrementally, so training an 8k WordPiece vocabulary on tens of
// thousands of short texts takes seconds. Encoding is linear in the text
// length: WordPiece looks at most the longest vocabulary piece ahead, and
// words longer than MaxInputCharsPerWord runes are [UNK] (WordPiece) or
// cut into pieces (BPE); with truncation, encoding stops after MaxLen
// tokens. Empty text gives no ids, invalid UTF-8 is replaced by U+FFFD;
// nothing panics on user text or on a malformed tokenizer file.
//
// # Files
//
// Save writes a JSON file (format "deepgo-tokenizer", version 1: type,
// normalizer and pre-tokenizer options, the vocabulary in id order, and
// for BPE the merges in rank order) atomically; Load and Parse read it.
//
// PretrainCorpus collects the unlabeled texts of CSV, TSV and JSONL files
// for self-supervised pretraining.
package text
