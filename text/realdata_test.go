package text_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/text"
)

// datasets returns the shared datasets folder (../shared/datasets from the
// repository root) or skips the test.
func datasets(t testing.TB) string {
	t.Helper()
	root := filepath.Join(testutil.RepoRoot(), "..", "shared", "datasets")
	if _, err := os.Stat(filepath.Join(root, "twitter_financial_news_sentiment")); err != nil {
		t.Skipf("real datasets not found at %s (they live in the shared folder next to the repository): %v", root, err)
	}
	return root
}

func readTexts(t testing.TB, paths ...string) []string {
	t.Helper()
	out, err := text.PretrainCorpus(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRealWordPieceTwitter(t *testing.T) {
	root := datasets(t)
	dir := filepath.Join(root, "twitter_financial_news_sentiment")
	train := readTexts(t, filepath.Join(dir, "sent_train.csv"))
	valid := readTexts(t, filepath.Join(dir, "sent_valid.csv"))
	if len(train) < 9000 || len(valid) < 2000 {
		t.Fatalf("read %d train and %d valid texts", len(train), len(valid))
	}
	cfg := text.DefaultWordPieceConfig(8000)
	wp, err := text.TrainWordPiece(train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := wp.Vocab().Len(); n != 8000 {
		t.Errorf("vocab size %d, want 8000", n)
	}
	unkRate := func(texts []string) (float64, int) {
		unk, total := 0, 0
		for _, s := range texts {
			for _, id := range wp.Encode(s) {
				total++
				if id == text.UnkID {
					unk++
				}
			}
		}
		return float64(unk) / float64(total), total
	}
	// Every training word fits in 100 runes and every training character is
	// in the alphabet, so no training text has an [UNK].
	if r, n := unkRate(train); r > 0.0005 || n < 100000 {
		t.Errorf("train [UNK] rate %.5f over %d tokens, want ~0", r, n)
	}
	if r, _ := unkRate(valid); r > 0.005 {
		t.Errorf("valid [UNK] rate %.5f, want < 0.5%%", r)
	}
	// Round trip: decoding gives the normalized, pre-tokenized text back.
	bad := 0
	for _, s := range train {
		ids := wp.Encode(s)
		words := texts(cfg.PreTokenizer.Split(cfg.Normalizer.Normalize(s)))
		if wp.Decode(ids) != strings.Join(words, " ") {
			bad++
			if bad < 3 {
				t.Errorf("round trip of %q: %q", s, wp.Decode(ids))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d training texts do not round-trip", bad, len(train))
	}
	// Cashtags and common finance words are short.
	if ids := wp.Encode("earnings"); len(ids) != 1 {
		t.Errorf("earnings -> %d pieces", len(ids))
	}
	if ids := wp.Encode("$AAPL"); len(ids) > 3 {
		t.Errorf("$AAPL -> %d pieces", len(ids))
	}
	b, err := wp.EncodeBatch(valid[:32], text.EncodeOptions{MaxLen: 64, Truncation: true, AddSpecial: true})
	if err != nil || b.IDs.Size(0) != 32 || b.IDs.Size(1) > 64 {
		t.Errorf("batch of validation texts: %v %v", b.IDs.Shape(), err)
	}
}

func TestRealChinese(t *testing.T) {
	root := datasets(t)
	dir := filepath.Join(root, "chnsenticorp")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("chnsenticorp not present: %v", err)
	}
	dev := readTexts(t, filepath.Join(dir, "dev.tsv"))
	test := readTexts(t, filepath.Join(dir, "test.tsv"))
	if len(dev) < 1150 || len(test) < 1150 {
		t.Fatalf("read %d dev and %d test texts", len(dev), len(test))
	}
	wp, err := text.TrainWordPiece(dev, text.DefaultWordPieceConfig(6000))
	if err != nil {
		t.Fatal(err)
	}
	han, single, unk := 0, 0, 0
	for _, s := range test[:300] {
		for _, tk := range (text.PreTokenizer{}).Split(s) {
			r := []rune(tk.Text)
			if !text.IsCJK(r[0]) {
				continue
			}
			han++
			if len(r) != 1 {
				t.Fatalf("pre-token %q holds %d characters", tk.Text, len(r))
			}
			ids := wp.Encode(tk.Text)
			if len(ids) != 1 {
				t.Fatalf("character %q -> %v", tk.Text, ids)
			}
			if ids[0] == text.UnkID {
				unk++
			} else if wp.Decode(ids) == tk.Text {
				single++
			}
		}
	}
	if han < 10000 || single+unk != han || float64(unk)/float64(han) > 0.02 {
		t.Errorf("%d Han characters: %d single-character tokens, %d [UNK]", han, single, unk)
	}
	// In running text each Han character is one token too.
	s := "这个酒店很好"
	if ids := wp.Encode(s); len(ids) != 6 || wp.Decode(ids) != "这 个 酒 店 很 好" {
		t.Errorf("Encode(%q) = %v, decoded %q", s, ids, wp.Decode(ids))
	}
	for _, r := range s {
		if !unicode.Is(unicode.Han, r) || !text.IsCJK(r) {
			t.Errorf("%q is not CJK", r)
		}
	}
}

func TestRealPretrainCorpus(t *testing.T) {
	root := datasets(t)
	files := text.PretrainFiles(root)
	if len(files) != 5 {
		t.Fatalf("PretrainFiles = %v, want 5 files", files)
	}
	all := readTexts(t, files...)
	parts := 0
	for _, f := range files {
		n := len(readTexts(t, f))
		if n == 0 {
			t.Errorf("%s: no texts", f)
		}
		parts += n
	}
	// Reuters ModApte: 9,603 + 3,299 documents, minus those with an empty
	// body; the union also removes texts repeated across files.
	if len(all) > parts || len(all) < 9543+16990/2+4800+10000 {
		t.Errorf("corpus has %d texts (files sum to %d)", len(all), parts)
	}
	seen := map[string]bool{}
	for _, s := range all {
		if seen[s] || s == "" || strings.TrimSpace(s) != s {
			t.Fatalf("repeated, empty or untrimmed text %q", s)
		}
		seen[s] = true
	}
}

// BenchmarkTrainWordPiece trains an 8k WordPiece on the short texts of the
// pretraining corpus (about 30k tweets and sentences; run with
// -bench TrainWordPiece -benchtime 1x).
func BenchmarkTrainWordPiece(b *testing.B) {
	root := datasets(b)
	var short []string
	for _, s := range readTexts(b, text.PretrainFiles(root)...) {
		if len(s) < 400 {
			short = append(short, s)
		}
	}
	b.Logf("%d short texts", len(short))
	for b.Loop() {
		if _, err := text.TrainWordPiece(short, text.DefaultWordPieceConfig(8000)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeWordPiece measures encoding throughput on tweets.
func BenchmarkEncodeWordPiece(b *testing.B) {
	root := datasets(b)
	train := readTexts(b, filepath.Join(root, "twitter_financial_news_sentiment", "sent_train.csv"))
	wp, err := text.TrainWordPiece(train, text.DefaultWordPieceConfig(8000))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		wp.Encode(train[i%len(train)])
	}
}
