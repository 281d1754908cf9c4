package text_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/text"
)

func TestNormalizer(t *testing.T) {
	cases := []struct {
		n        text.Normalizer
		in, want string
	}{
		{text.Normalizer{}, "ＡＢＣ１２３", "ABC123"},                 // NFKC full width
		{text.Normalizer{}, "ﬁne ①", "fine 1"},                  // ligature, circled digit
		{text.Normalizer{}, "  a \t\n b\r\n ", "a b"},           // whitespace collapse
		{text.Normalizer{}, "a\x00b\u200bc\ufeffd\x7f", "abcd"}, // control/format removed
		{text.Normalizer{}, "a\xffb\xfe\xfd", "a\uFFFDb\uFFFD"}, // invalid UTF-8 runs
		{text.Normalizer{}, "Café", "Café"},
		{text.Normalizer{Lowercase: true}, "Café ÜBER", "café über"},
		{text.Normalizer{Lowercase: true, StripAccents: true}, "Café ÜBER naïve", "cafe uber naive"},
		{text.Normalizer{StripAccents: true}, "中文 Ünïcode", "中文 Unicode"},
		{text.Normalizer{}, "", ""},
		{text.Normalizer{}, " \t ", ""},
	}
	for _, c := range cases {
		if got := c.n.Normalize(c.in); got != c.want {
			t.Errorf("%+v.Normalize(%q) = %q, want %q", c.n, c.in, got, c.want)
		}
	}
}

func texts(toks []text.Token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.Text
	}
	return out
}

func TestPreTokenizer(t *testing.T) {
	cases := []struct {
		p    text.PreTokenizer
		in   string
		want []string
	}{
		{text.PreTokenizer{}, "$AAPL up 5.93% to 100,000 shares.", []string{"$AAPL", "up", "5.93", "%", "to", "100,000", "shares", "."}},
		{text.PreTokenizer{}, "$BRK.B and $5 @elon_musk: wow!!", []string{"$BRK.B", "and", "$", "5", "@elon_musk", ":", "wow", "!", "!"}},
		{text.PreTokenizer{}, "don't 4Q 10x", []string{"don", "'", "t", "4Q", "10x"}},
		{text.PreTokenizer{URLToken: true}, "see https://t.co/yGjpT2ReD3. now", []string{"[URL]", ".", "now"}[0:0]},
		{text.PreTokenizer{}, "我爱北京，天安门", []string{"我", "爱", "北", "京", "，", "天", "安", "门"}},
		{text.PreTokenizer{}, "iPhone用户", []string{"iPhone", "用", "户"}},
		{text.PreTokenizer{}, "naïve café", []string{"naïve", "café"}},
		{text.PreTokenizer{}, "a\uFFFDb", []string{"a", "\uFFFD", "b"}},
		{text.PreTokenizer{}, "", nil},
	}
	cases[3].want = []string{"see", "[URL]", ".", "now"}
	for _, c := range cases {
		if got := texts(c.p.Split(c.in)); !slices.Equal(got, c.want) {
			t.Errorf("Split(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	toks := text.PreTokenizer{}.Split("Hi, you https://x.io/a")
	var sp []bool
	for _, tk := range toks {
		sp = append(sp, tk.SpaceBefore)
	}
	if want := []bool{false, false, true, true, false, false, false, false, false, false, false, false}; !slices.Equal(sp, want) || len(toks) != len(want) {
		t.Errorf("SpaceBefore = %v (tokens %q), want %v", sp, texts(toks), want)
	}
	u := text.PreTokenizer{URLToken: true}.Split("x https://x.io/a")
	if len(u) != 2 || !u[1].Special || !u[1].SpaceBefore || u[1].Text != text.URLToken {
		t.Errorf("URL token: %+v", u)
	}
}

func TestVocab(t *testing.T) {
	counts := map[string]int{"b": 3, "a": 3, "c": 5, "d": 1, "[PAD]": 9}
	v, err := text.BuildVocab(counts, text.VocabConfig{MinFreq: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := append(text.SpecialTokens(), "c", "a", "b")
	if !slices.Equal(v.Tokens(), want) {
		t.Fatalf("tokens %q, want %q", v.Tokens(), want)
	}
	v, err = text.BuildVocab(counts, text.VocabConfig{MaxSize: 7, Reserved: []string{text.URLToken}})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(text.SpecialTokens(), text.URLToken, "c"); !slices.Equal(v.Tokens(), want) {
		t.Fatalf("tokens %q, want %q", v.Tokens(), want)
	}
	if id, ok := v.ID("c"); !ok || id != 6 {
		t.Errorf("ID(c) = %d %v", id, ok)
	}
	if tok, ok := v.Token(0); !ok || tok != text.PadToken {
		t.Errorf("Token(0) = %q", tok)
	}
	if _, ok := v.Token(99); ok {
		t.Error("Token(99) should be invalid")
	}
	if _, err := text.BuildVocab(counts, text.VocabConfig{MaxSize: 3}); err == nil {
		t.Error("MaxSize below the specials: want error")
	}
	if _, err := text.NewVocab([]string{"a"}); err == nil {
		t.Error("NewVocab without specials: want error")
	}
	if _, err := text.NewVocab(append(text.SpecialTokens(), "x", "x")); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("duplicate token: err %v", err)
	}
}

func TestWordLevel(t *testing.T) {
	wl, err := text.TrainWordLevel([]string{"the cat sat", "the dog", "The cat https://a.b/c"},
		text.WordLevelConfig{Normalizer: text.Normalizer{Lowercase: true}, PreTokenizer: text.PreTokenizer{URLToken: true}, MinFreq: 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(text.SpecialTokens(), text.URLToken, "the", "cat"); !slices.Equal(wl.Vocab().Tokens(), want) {
		t.Fatalf("vocab %q, want %q", wl.Vocab().Tokens(), want)
	}
	got := wl.Encode("The bird cat [PAD] http://x.y")
	if want := []int{6, text.UnkID, 7, text.UnkID, text.UnkID, text.UnkID, 5}; !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := wl.Decode([]int{2, 6, 7, 1, 99, 3, 0}); got != "the cat [UNK] [UNK]" {
		t.Errorf("Decode = %q", got)
	}
}

var corpus = []string{
	"The company reported strong earnings growth.",
	"Earnings beat expectations; shares jumped 5.2%",
	"$AAPL shares fell after the earnings report https://t.co/abc",
	"Analysts expect growth to slow.",
	"The reported growth was unexpected.",
	"Shares of the company jumped.",
	"unaffable unaffordable affordable",
	"中国平安股价上涨",
}

func trainWP(t testing.TB, texts []string, size int, scoring text.Scoring) *text.WordPiece {
	t.Helper()
	cfg := text.DefaultWordPieceConfig(size)
	cfg.Scoring = scoring
	wp, err := text.TrainWordPiece(texts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return wp
}

func TestWordPieceSegmentation(t *testing.T) {
	vocab := append(text.SpecialTokens(), "un", "##aff", "##able", "a", "##b", "##ff")
	wp, err := text.NewWordPiece(vocab, text.Normalizer{Lowercase: true}, text.PreTokenizer{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]int{
		"unaffable":       {5, 6, 7},
		"UNAFFABLE a":     {5, 6, 7, 8},
		"unaffablex":      {text.UnkID}, // unsegmentable
		"ab un":           {8, 9, 5},
		"unaffableunaffa": {text.UnkID}, // longer than 10 runes
		"":                nil,
	}
	for in, want := range cases {
		if got := wp.Encode(in); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", in, got, want)
		}
	}
	if got := wp.Decode([]int{2, 5, 6, 7, 8, 9, 3, 0, 0}); got != "unaffable ab" {
		t.Errorf("Decode = %q", got)
	}
	if wp.MaxInputCharsPerWord() != 10 {
		t.Errorf("MaxInputCharsPerWord = %d", wp.MaxInputCharsPerWord())
	}
}

func TestWordPieceTrain(t *testing.T) {
	for _, sc := range []text.Scoring{text.Frequency, text.Likelihood} {
		wp := trainWP(t, corpus, 120, sc)
		toks := wp.Vocab().Tokens()
		if len(toks) > 120 || len(toks) < 80 {
			t.Errorf("scoring %d: vocab size %d, want 80..120", sc, len(toks))
		}
		if !slices.Equal(toks[:6], append(text.SpecialTokens(), text.URLToken)) {
			t.Errorf("first tokens %q", toks[:6])
		}
		// Deterministic and independent of text order.
		shuffled := slices.Clone(corpus)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := trainWP(t, shuffled, 120, sc).Vocab().Tokens(); !slices.Equal(again, toks) {
			t.Errorf("scoring %d: training is not deterministic", sc)
		}
		// Round trip: every training word is segmented without [UNK].
		for _, s := range corpus {
			ids := wp.Encode(s)
			if slices.Contains(ids, text.UnkID) {
				t.Errorf("scoring %d: [UNK] in %q: %v", sc, s, ids)
			}
			norm := text.Normalizer{Lowercase: true, StripAccents: true}.Normalize(s)
			words := texts(text.PreTokenizer{URLToken: true}.Split(norm))
			if got, want := wp.Decode(ids), strings.Join(words, " "); got != want {
				t.Errorf("scoring %d: Decode(Encode(%q)) = %q, want %q", sc, s, got, want)
			}
		}
	}
	// The most frequent word is a single token with frequency scoring.
	wp := trainWP(t, corpus, 200, text.Frequency)
	if ids := wp.Encode("earnings"); len(ids) != 1 {
		t.Errorf("earnings -> %v, want one token", ids)
	}
	if _, err := text.TrainWordPiece(nil, text.DefaultWordPieceConfig(100)); err == nil {
		t.Error("empty corpus: want error")
	}
	if _, err := text.TrainWordPiece(corpus, text.WordPieceConfig{VocabSize: 3}); err == nil {
		t.Error("VocabSize 3: want error")
	}
}

func trainBPE(t testing.TB, texts []string, size int) *text.BPE {
	t.Helper()
	bp, err := text.TrainBPE(texts, text.BPEConfig{VocabSize: size})
	if err != nil {
		t.Fatal(err)
	}
	return bp
}

func TestBPE(t *testing.T) {
	bp := trainBPE(t, corpus, 320)
	toks := bp.Vocab().Tokens()
	if len(toks) != 320 {
		t.Errorf("vocab size %d, want 320", len(toks))
	}
	if toks[5+'!'] != "!" || toks[5] != "Ā" || toks[5+32] != "Ġ" || toks[5+'A'] != "A" {
		t.Errorf("byte symbols: %q %q %q %q", toks[5], toks[5+'!'], toks[5+32], toks[5+'A'])
	}
	if m := bp.Merges(); len(m) != 320-261 {
		t.Errorf("%d merges, want %d", len(m), 320-261)
	}
	shuffled := slices.Clone(corpus)
	slices.Reverse(shuffled)
	if again := trainBPE(t, shuffled, 320); !slices.Equal(again.Vocab().Tokens(), toks) || !reflect.DeepEqual(again.Merges(), bp.Merges()) {
		t.Error("training is not deterministic")
	}
	for _, s := range append(slices.Clone(corpus), "emoji 🙂 and ünïcödé", "a\xffb", "  spaced   out  ", "") {
		ids := bp.Encode(s)
		want := text.Normalizer{}.Normalize(s)
		if got := bp.Decode(ids); got != want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
		if slices.Contains(ids, text.UnkID) {
			t.Errorf("[UNK] in byte-level BPE ids of %q", s)
		}
	}
	// Frequent words are merged into a few tokens.
	if ids := bp.Encode("earnings"); len(ids) > 2 {
		t.Errorf("earnings -> %d tokens, want <= 2", len(ids))
	}
	if got := bp.Decode([]int{2, 1, 4, 9999, 3}); got != "[UNK] [MASK] [UNK]" {
		t.Errorf("Decode specials = %q", got)
	}
	// Handcrafted merges: rank order decides.
	vocab := append(text.SpecialTokens(), byteSyms()...)
	vocab = append(vocab, "ab", "bc", "abc")
	h, err := text.NewBPE(vocab, [][2]string{{"b", "c"}, {"a", "b"}, {"a", "bc"}}, text.Normalizer{}, text.PreTokenizer{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Encode("abc ab"); !slices.Equal(got, []int{263, 5 + ' ', 261}) {
		t.Errorf("Encode(abc ab) = %v", got)
	}
	if _, err := text.NewBPE(vocab, [][2]string{{"c", "a"}}, text.Normalizer{}, text.PreTokenizer{}, 0); err == nil {
		t.Error("merge with missing result: want error")
	}
	if _, err := text.TrainBPE(corpus, text.BPEConfig{VocabSize: 100}); err == nil {
		t.Error("VocabSize below 261: want error")
	}
}

func byteSyms() []string {
	bp, err := text.TrainBPE([]string{"x"}, text.BPEConfig{VocabSize: 261})
	if err != nil {
		panic(err)
	}
	return bp.Vocab().Tokens()[5:]
}

func allTokenizers(t testing.TB) map[string]text.Tokenizer {
	wl, err := text.TrainWordLevel(corpus, text.WordLevelConfig{Normalizer: text.Normalizer{Lowercase: true}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]text.Tokenizer{"wordlevel": wl, "wordpiece": trainWP(t, corpus, 150, text.Frequency), "bpe": trainBPE(t, corpus, 300)}
}

func TestEncodeBatch(t *testing.T) {
	for name, tok := range allTokenizers(t) {
		in := []string{"the company", "", "shares jumped after the earnings report"}
		plain := [][]int{tok.Encode(in[0]), tok.Encode(in[1]), tok.Encode(in[2])}
		b, err := tok.EncodeBatch(in, text.EncodeOptions{AddSpecial: true})
		if err != nil {
			t.Fatal(err)
		}
		T := len(plain[2]) + 2
		if !slices.Equal(b.IDs.Shape(), []int{3, T}) || !slices.Equal(b.AttentionMask.Shape(), []int{3, T}) {
			t.Fatalf("%s: shapes %v %v, want [3 %d]", name, b.IDs.Shape(), b.AttentionMask.Shape(), T)
		}
		if want := []int{len(plain[0]) + 2, 2, T}; !slices.Equal(b.Lengths, want) {
			t.Errorf("%s: lengths %v, want %v", name, b.Lengths, want)
		}
		ids, mask := b.IDs.Int64s(), b.AttentionMask.Data()
		for i := range 3 {
			row := ids[i*T : (i+1)*T]
			want := append(append([]int{text.ClsID}, plain[i]...), text.SepID)
			for j := range T {
				w, m := int64(text.PadID), float32(0)
				if j < len(want) {
					w, m = int64(want[j]), 1
				}
				if row[j] != w || mask[i*T+j] != m {
					t.Fatalf("%s: row %d col %d = %d/%v, want %d/%v", name, i, j, row[j], mask[i*T+j], w, m)
				}
			}
		}
		// Truncation and max_length padding.
		b, err = tok.EncodeBatch(in, text.EncodeOptions{MaxLen: 4, Truncation: true, Padding: text.PadMaxLength, AddSpecial: true})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.IDs.Shape(), []int{3, 4}) || b.Lengths[2] != 4 || b.Lengths[1] != 2 {
			t.Errorf("%s: truncated shape %v lengths %v", name, b.IDs.Shape(), b.Lengths)
		}
		if r := b.IDs.Int64s()[8:12]; r[0] != text.ClsID || r[1] != int64(plain[2][0]) || r[2] != int64(plain[2][1]) || r[3] != text.SepID {
			t.Errorf("%s: truncated row %v", name, r)
		}
		if _, err := tok.EncodeBatch(in, text.EncodeOptions{MaxLen: len(plain[0]) + 2, AddSpecial: true}); err == nil || !strings.Contains(err.Error(), "text 2") {
			t.Errorf("%s: too long without truncation: err %v", name, err)
		}
		b, err = tok.EncodeBatch(nil, text.EncodeOptions{})
		if err != nil || !slices.Equal(b.IDs.Shape(), []int{0, 0}) {
			t.Errorf("%s: empty batch: %v %v", name, b, err)
		}
	}
	tok := allTokenizers(t)["bpe"]
	testutil.MustPanic(t, "PadMaxLength without MaxLen", func() { tok.EncodeBatch(nil, text.EncodeOptions{Padding: text.PadMaxLength}) }, "text.EncodeBatch", "MaxLen")
	testutil.MustPanic(t, "negative MaxLen", func() { tok.EncodeBatch(nil, text.EncodeOptions{MaxLen: -1}) }, "text.EncodeBatch", "-1")
	testutil.MustPanic(t, "MaxLen 1 with specials", func() { text.EncodeSequence(tok, "x", text.EncodeOptions{MaxLen: 1, AddSpecial: true}) }, "text.EncodeSequence", "MaxLen 1")
}

func TestBadInput(t *testing.T) {
	big := strings.Repeat("Shares of ACME jumped 12.5% after earnings https://t.co/x ", 1<<14) // ~1 MB
	oneWord := strings.Repeat("a", 1<<20)
	for name, tok := range allTokenizers(t) {
		if ids := tok.Encode(""); len(ids) != 0 {
			t.Errorf("%s: Encode(\"\") = %v", name, ids)
		}
		ids, err := text.EncodeSequence(tok, big, text.EncodeOptions{MaxLen: 128, Truncation: true, AddSpecial: true})
		if err != nil || len(ids) != 128 || ids[0] != text.ClsID || ids[127] != text.SepID {
			t.Errorf("%s: 1 MB truncated: len %d err %v", name, len(ids), err)
		}
		full := tok.Encode(big)
		if !slices.Equal(full[:126], ids[1:127]) {
			t.Errorf("%s: truncated encoding is not a prefix of the full one", name)
		}
		if len(full) < 1<<16 {
			t.Errorf("%s: full 1 MB encoding has only %d ids", name, len(full))
		}
		w := tok.Encode(oneWord)
		if name != "bpe" && !slices.Equal(w, []int{text.UnkID}) {
			t.Errorf("%s: 1 MB word -> %d ids, want one [UNK]", name, len(w))
		}
		if name == "bpe" && tok.Decode(w) != oneWord {
			t.Errorf("bpe: 1 MB word does not round-trip")
		}
		for _, id := range tok.Encode("bad \xff\xfe utf8 \x00 ok") {
			if id < 0 || id >= tok.Vocab().Len() {
				t.Errorf("%s: id %d out of range", name, id)
			}
		}
		if s := tok.Decode([]int{-5, 1 << 30}); s != "[UNK] [UNK]" {
			t.Errorf("%s: Decode(bad ids) = %q", name, s)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	for name, tok := range allTokenizers(t) {
		path := filepath.Join(dir, name+".json")
		if err := tok.Save(path); err != nil {
			t.Fatal(err)
		}
		got, err := text.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if reflect.TypeOf(got) != reflect.TypeOf(tok) || !slices.Equal(got.Vocab().Tokens(), tok.Vocab().Tokens()) {
			t.Fatalf("%s: loaded %T with %d tokens", name, got, got.Vocab().Len())
		}
		for _, s := range append(slices.Clone(corpus), "unseen wörds 🙂 $TSLA") {
			if a, b := tok.Encode(s), got.Encode(s); !slices.Equal(a, b) {
				t.Errorf("%s: Encode(%q) differs after Load: %v vs %v", name, s, a, b)
			}
		}
		if err := tok.Save(path); err != nil { // overwrite
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("directory holds %d entries, want 3 (temporary files left?)", len(ents))
	}
	if err := allTokenizers(t)["bpe"].Save(filepath.Join(dir, "missing", "x.json")); err == nil {
		t.Error("Save into a missing directory: want error")
	}
	if _, err := text.Load(filepath.Join(dir, "nope.json")); err == nil {
		t.Error("Load missing file: want error")
	}
	bad := map[string]string{
		"json":     `{`,
		"format":   `{"format":"x","version":1,"type":"bpe","vocab":[]}`,
		"version":  `{"format":"deepgo-tokenizer","version":9,"type":"bpe","vocab":[]}`,
		"type":     `{"format":"deepgo-tokenizer","version":1,"type":"lstm","vocab":[]}`,
		"specials": `{"format":"deepgo-tokenizer","version":1,"type":"wordpiece","vocab":["[UNK]","[PAD]","[CLS]","[SEP]","[MASK]"]}`,
		"dup":      `{"format":"deepgo-tokenizer","version":1,"type":"wordpiece","vocab":["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]","a","a"]}`,
		"bytes":    `{"format":"deepgo-tokenizer","version":1,"type":"bpe","vocab":["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]","a"]}`,
		"merge":    `{"format":"deepgo-tokenizer","version":1,"type":"wordpiece","vocab":["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]"],"merges":["a b"]}`,
		"maxchar":  `{"format":"deepgo-tokenizer","version":1,"type":"wordpiece","max_input_chars_per_word":-1,"vocab":["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]"]}`,
	}
	for what, data := range bad {
		if tok, err := text.Parse([]byte(data)); err == nil || tok != nil {
			t.Errorf("%s: Parse accepted bad file (tok %v)", what, tok)
		}
	}
}

func TestPretrainCorpusFormats(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.csv", "label,sentence\n1,\"Hello, world\"\n0,second\n2,  \n")
	b := write("b.jsonl", `{"body":"second","topics":[]}`+"\n\n"+`{"body":"third"}`+"\n")
	c := write("c.tsv", "label\ttext_a\n1\t\"quoted\" text\n")
	got, err := text.PretrainCorpus(a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Hello, world", "second", "third", `"quoted" text`}; !slices.Equal(got, want) {
		t.Errorf("corpus %q, want %q", got, want)
	}
	badFiles := map[string]string{"x.csv": "a,b\n1,2\n", "y.jsonl": "{\"text\": 3}\n", "z.jsonl": "{bad\n", "w.txt": "x"}
	for name, data := range badFiles {
		if _, err := text.PretrainCorpus(write(name, data)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err %v, want one naming the file", name, err)
		}
	}
}

// Fuzz targets: no panics, ids in range, BPE round trip.

func fuzzSeeds(f *testing.F) {
	for _, s := range append(slices.Clone(corpus), "", "\xff\xfe", "a\x00b", "ﬁ①", "https://", "$", "@", "1,2.3,", "##a", "[UNK] [PAD]") {
		f.Add(s)
	}
}

func fuzzEncode(f *testing.F, name string) {
	fuzzSeeds(f)
	tok := allTokenizers(f)[name]
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= tok.Vocab().Len() {
				t.Fatalf("id %d out of range", id)
			}
		}
		dec := tok.Decode(ids)
		if !utf8.ValidString(dec) {
			t.Fatalf("Decode gave invalid UTF-8 %q", dec)
		}
		if name == "bpe" {
			if want := (text.Normalizer{}).Normalize(s); dec != want {
				t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, dec, want)
			}
		}
		if tr, err := text.EncodeSequence(tok, s, text.EncodeOptions{MaxLen: 5, Truncation: true, AddSpecial: true}); err != nil || len(tr) > 5 {
			t.Fatalf("truncated: %v %v", tr, err)
		}
	})
}

func FuzzWordPieceEncode(f *testing.F) { fuzzEncode(f, "wordpiece") }
func FuzzBPEEncode(f *testing.F)       { fuzzEncode(f, "bpe") }
func FuzzWordLevelEncode(f *testing.F) { fuzzEncode(f, "wordlevel") }

func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	for name, tok := range allTokenizers(f) {
		p := filepath.Join(dir, name)
		if err := tok.Save(p); err != nil {
			f.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Add([]byte(`{"format":"deepgo-tokenizer","version":1,"type":"bpe","vocab":["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]"],"merges":["a b"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := text.Parse(data)
		if err != nil {
			if tok != nil {
				t.Fatal("non-nil tokenizer with an error")
			}
			return
		}
		for _, id := range tok.Encode("The $AAPL price 中文 \xff https://x.y") {
			if id < 0 || id >= tok.Vocab().Len() {
				t.Fatalf("id %d out of range", id)
			}
		}
	})
}

func TestConcurrentEncode(t *testing.T) {
	for name, tok := range allTokenizers(t) {
		want := make([][]int, len(corpus))
		for i, s := range corpus {
			want[i] = tok.Encode(s)
		}
		done := make(chan bool)
		for g := range 4 {
			go func() {
				ok := true
				for k := range 50 {
					i := (g + k) % len(corpus)
					ok = ok && slices.Equal(tok.Encode(corpus[i]), want[i])
				}
				done <- ok
			}()
		}
		for range 4 {
			if !<-done {
				t.Errorf("%s: concurrent Encode differs", name)
			}
		}
	}
}
