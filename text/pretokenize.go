package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// URLToken is the token that replaces a URL when PreTokenizer.URLToken is
// set. Tokenizers built with that option reserve an id for it.
const URLToken = "[URL]"

// Token is one pre-token: a word, a number, a punctuation or symbol
// character, a CJK ideograph, a cashtag, a mention or a URL.
type Token struct {
	// Text is the token's text (URLToken for a replaced URL).
	Text string
	// SpaceBefore reports whether whitespace preceded the token in the
	// normalized text. Byte-level BPE uses it to restore spacing on Decode.
	SpaceBefore bool
	// Special marks a token that must map to a reserved id as a whole
	// (only URLToken at present).
	Special bool
}

// PreTokenizer splits normalized text into pre-tokens, the units that
// subword tokenizers segment further. The rules, in order of precedence:
//
//   - whitespace separates tokens and is dropped;
//   - a URL (a whitespace-delimited chunk starting with "http://",
//     "https://" or "www.", without trailing ".,;:!?)]}'\"") is one token,
//     or URLToken when URLToken is set; otherwise it is split like other
//     text;
//   - a cashtag "$" + ASCII letters (optionally "." or "-" and more letters,
//     as in $BRK.B) is one token, e.g. "$AAPL";
//   - a mention "@" + ASCII letters, digits or "_" is one token;
//   - every CJK (Han) ideograph is a token of its own, so Chinese text
//     becomes a sequence of single characters;
//   - a number (digits, with "." or "," allowed between digits, as in
//     "100,000" and "5.93") is kept whole, together with letters directly
//     after it ("10x", "4Q");
//   - a run of letters, marks and digits is a word;
//   - every other character (punctuation, symbols, U+FFFD) is a token of
//     its own.
//
// The zero value applies these rules with URLs kept as text.
type PreTokenizer struct {
	// URLToken replaces every URL by the single token URLToken.
	URLToken bool `json:"url_token"`
}

// Split returns the pre-tokens of s, which should already be normalized.
func (p PreTokenizer) Split(s string) []Token {
	var out []Token
	p.Each(s, func(t Token) bool {
		out = append(out, t)
		return true
	})
	return out
}

// Each calls fn for each pre-token of s in order until fn returns false.
// It does not allocate per token beyond what fn does; the token texts are
// substrings of s.
func (p PreTokenizer) Each(s string, fn func(Token) bool) {
	first := true
	for len(s) > 0 {
		// Skip whitespace.
		sp := false
		for len(s) > 0 {
			r, n := utf8.DecodeRuneInString(s)
			if !unicode.IsSpace(r) {
				break
			}
			s = s[n:]
			sp = true
		}
		if len(s) == 0 {
			return
		}
		end := strings.IndexFunc(s, unicode.IsSpace)
		if end < 0 {
			end = len(s)
		}
		chunk := s[:end]
		s = s[end:]
		if !p.chunk(chunk, sp && !first, fn) {
			return
		}
		first = false
	}
}

// chunk splits one whitespace-free chunk; it returns false when fn stopped.
func (p PreTokenizer) chunk(c string, space bool, fn func(Token) bool) bool {
	if isURLStart(c) {
		u := strings.TrimRight(c, ".,;:!?)]}'\"")
		if p.URLToken && u != "" {
			if !fn(Token{Text: URLToken, SpaceBefore: space, Special: true}) {
				return false
			}
			c = c[len(u):]
			space = false
		}
	}
	for len(c) > 0 {
		n := scanToken(c)
		if !fn(Token{Text: c[:n], SpaceBefore: space}) {
			return false
		}
		space = false
		c = c[n:]
	}
	return true
}

func isURLStart(c string) bool {
	if len(c) < 5 {
		return false
	}
	l := strings.ToLower(c[:min(len(c), 8)])
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "www.")
}

// IsCJK reports whether r is a Han ideograph, which pre-tokenisation keeps
// as a token of its own.
func IsCJK(r rune) bool { return r >= 0x2E80 && unicode.Is(unicode.Han, r) }

func isASCIILetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }
func isASCIIDigit(b byte) bool  { return b >= '0' && b <= '9' }

func isWordRune(r rune) bool {
	return (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r)) && !IsCJK(r)
}

// scanToken returns the byte length (> 0) of the token at the start of c.
func scanToken(c string) int {
	b := c[0]
	switch {
	case b == '$' && len(c) > 1 && isASCIILetter(c[1]):
		i := 1
		for i < len(c) && isASCIILetter(c[i]) {
			i++
		}
		if i+1 < len(c) && (c[i] == '.' || c[i] == '-') && isASCIILetter(c[i+1]) {
			i++
			for i < len(c) && isASCIILetter(c[i]) {
				i++
			}
		}
		return i
	case b == '@' && len(c) > 1 && (isASCIILetter(c[1]) || isASCIIDigit(c[1]) || c[1] == '_'):
		i := 1
		for i < len(c) && (isASCIILetter(c[i]) || isASCIIDigit(c[i]) || c[i] == '_') {
			i++
		}
		return i
	case isASCIIDigit(b):
		i := 1
		for i < len(c) {
			if isASCIIDigit(c[i]) {
				i++
				continue
			}
			if (c[i] == '.' || c[i] == ',') && i+1 < len(c) && isASCIIDigit(c[i+1]) {
				i += 2
				continue
			}
			break
		}
		return i + wordLen(c[i:])
	}
	r, n := utf8.DecodeRuneInString(c)
	if isWordRune(r) {
		return n + wordLen(c[n:])
	}
	return n
}

// wordLen returns the byte length of the run of word runes at the start of c.
func wordLen(c string) int {
	i := 0
	for i < len(c) {
		if isASCIILetter(c[i]) || isASCIIDigit(c[i]) {
			i++
			continue
		}
		if c[i] < utf8.RuneSelf {
			break
		}
		r, n := utf8.DecodeRuneInString(c[i:])
		if !isWordRune(r) {
			break
		}
		i += n
	}
	return i
}
