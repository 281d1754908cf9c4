package text

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalizer cleans raw text before pre-tokenisation. Normalize always
//
//   - replaces each maximal run of invalid UTF-8 bytes with one U+FFFD
//     (the replacement character), as strings.ToValidUTF8 does;
//   - applies Unicode NFKC (compatibility composition: full-width letters
//     and digits become ASCII, ligatures are split, "①" becomes "1", ...);
//   - removes control and format characters (categories Cc and Cf, e.g.
//     U+0000, U+200B zero-width space, U+FEFF byte-order mark), except that
//     tab, newline and carriage return count as whitespace;
//   - collapses every run of whitespace to one ASCII space and trims both
//     ends.
//
// The options add lower-casing and accent stripping. The zero value is a
// case- and accent-preserving normalizer.
type Normalizer struct {
	// Lowercase maps letters to lower case (Unicode simple case mapping).
	Lowercase bool `json:"lowercase"`
	// StripAccents removes combining marks after canonical decomposition
	// (NFD), so "Café" becomes "Cafe"; the result is recomposed (NFC).
	StripAccents bool `json:"strip_accents"`
}

// Normalize returns the normalized form of s. It runs in time linear in
// len(s) and never panics.
func (n Normalizer) Normalize(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if !isASCII(s) {
		s = norm.NFKC.String(s)
		if n.StripAccents {
			s = stripAccents(s)
		}
	}
	if n.Lowercase {
		s = strings.ToLower(s)
	}
	return cleanSpace(s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// stripAccents removes nonspacing marks (Mn) from the NFD form of s.
func stripAccents(s string) string {
	d := norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	changed := false
	for _, r := range d {
		if unicode.Is(unicode.Mn, r) {
			changed = true
			continue
		}
		b.WriteRune(r)
	}
	if !changed {
		return s
	}
	return norm.NFC.String(b.String())
}

// cleanSpace drops control/format characters and collapses whitespace.
func cleanSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	pendingSpace := false
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r):
			pendingSpace = b.Len() > 0
			continue
		case r < 0x20 || r == 0x7f || unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r):
			continue
		}
		if pendingSpace {
			b.WriteByte(' ')
			pendingSpace = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
