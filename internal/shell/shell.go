// Package shell quotes and splits POSIX shell words: the one way ferry
// builds remote command lines (ssh, modules, the `quote` template function)
// and reads `command:` strings.
package shell

import (
	"errors"
	"strings"
)

// Quote quotes s for a POSIX shell, so that it arrives as one word with no
// expansion. Words made only of letters, digits and -_./:,+@% stay as they
// are; anything else is single-quoted, and each quote inside closes the
// quoting, adds an escaped quote (\') and reopens it. Inside single quotes
// nothing ($, `, \, newlines) is special. `=` is quoted too: an unquoted
// `a=b` as a command's first word is an assignment, not a word.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return r > 0x7f || !plain(byte(r)) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// plain reports whether c stands for itself anywhere in a word, unquoted.
func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_./:,+@%", c) >= 0
}

// Literal reports whether s is words that a POSIX shell takes as they are,
// expanding nothing: plain characters (and =), single-quoted strings,
// backslash-escaped characters, separated by spaces. Join's output always
// is. (An = in a first word still makes an assignment: a caller that runs
// s checks its command name.)
func Literal(s string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '\\' && i+1 < len(s) && s[i+1] != '\n':
			i++ // an escaped character is itself (Quote's '\'' for a quote)
		case c == ' ', c == '=', plain(c):
		default:
			return false
		}
	}
	return !quoted
}

// Join quotes every element of argv and joins them with spaces.
func Join(argv ...string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// ErrUnterminated is Split's error for an open quote.
var ErrUnterminated = errors.New("unterminated quote in command: close it or use the argv list form")

// Split splits a command line the way a POSIX shell splits words, without
// expanding anything: 'single' and "double" quotes, backslash escapes. It
// is what `command: "echo 'a b'"` means. It works on bytes, so any text
// (valid UTF-8 or not) comes back unchanged.
func Split(s string) ([]string, error) {
	var (
		args   []string
		cur    []byte
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, string(cur))
				cur, inWord = cur[:0], false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' { // backslash-newline continues the line
					cur = append(cur, s[i])
				}
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, ErrUnterminated
			}
			cur = append(cur, s[i+1:i+1+j]...)
			i += j + 1
		case c == '"':
			inWord = true
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && strings.IndexByte("\"\\$`\n", s[j+1]) >= 0 {
					j++
					if s[j] != '\n' {
						cur = append(cur, s[j])
					}
					continue
				}
				cur = append(cur, s[j])
			}
			if j >= len(s) {
				return nil, ErrUnterminated
			}
			i = j
		default:
			inWord = true
			cur = append(cur, c)
		}
	}
	if inWord {
		args = append(args, string(cur))
	}
	return args, nil
}
