package track

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on names and values (MLflow's).
const (
	// MaxKeyLen is the longest metric, param or tag key, and the longest
	// experiment, run, model or alias name, in bytes.
	MaxKeyLen = 250
	// MaxParamValueLen is the longest param value in bytes.
	MaxParamValueLen = 6000
	// MaxTagValueLen is the longest tag value in bytes.
	MaxTagValueLen = 8000
)

// checkName validates a key or name: non-empty, valid UTF-8, at most
// MaxKeyLen bytes, no control characters, no leading or trailing space.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("track: %s is empty: %w", what, ErrInvalid)
	case !utf8.ValidString(s):
		return fmt.Errorf("track: %s %q is not valid UTF-8: %w", what, s, ErrInvalid)
	case len(s) > MaxKeyLen:
		return fmt.Errorf("track: %s %q… is %d bytes long, the limit is %d: %w", what, s[:40], len(s), MaxKeyLen, ErrInvalid)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("track: %s %q has leading or trailing white space: %w", what, s, ErrInvalid)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("track: %s %q has a control character (%U) at byte %d: %w", what, s, r, i, ErrInvalid)
		}
	}
	return nil
}

// checkValue validates a param or tag value: valid UTF-8, no NUL byte,
// at most limit bytes.
func checkValue(what, key, v string, limit int) error {
	switch {
	case !utf8.ValidString(v):
		return fmt.Errorf("track: %s %q: value is not valid UTF-8: %w", what, key, ErrInvalid)
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("track: %s %q: value contains a NUL byte: %w", what, key, ErrInvalid)
	case len(v) > limit:
		return fmt.Errorf("track: %s %q: value is %d bytes long, the limit is %d: %w", what, key, len(v), limit, ErrInvalid)
	}
	return nil
}

// checkAlias validates a model alias: a name of letters, digits, '_' and
// '-' starting with a letter or '_', not "latest" and not "v<digits>" (those
// mean versions in models:/ URIs).
func checkAlias(a string) error {
	if err := checkName("alias", a); err != nil {
		return err
	}
	for i, r := range a {
		ok := r == '_' || (r < utf8.RuneSelf && unicode.IsLetter(r)) || (i > 0 && (r == '-' || (r >= '0' && r <= '9')))
		if !ok {
			return fmt.Errorf("track: alias %q: use letters, digits, '_' and '-', starting with a letter or '_': %w", a, ErrInvalid)
		}
	}
	if a == "latest" || (len(a) > 1 && (a[0] == 'v' || a[0] == 'V') && strings.Trim(a[1:], "0123456789") == "") {
		return fmt.Errorf("track: alias %q is reserved (it reads as a version): %w", a, ErrInvalid)
	}
	return nil
}
