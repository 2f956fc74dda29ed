// Package diag reports invalid input the way ferry promises: each problem
// with file:line:column, the offending line, a caret under the column and,
// where it helps, a "did you mean". Inventories, playbooks and flags all use
// it, so every parser's errors look the same and map to exit code 4.
package diag

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a source file. Line and Col are 1-based; 0 means unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line > 0 && p.Col > 0:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	case p.Line > 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return p.File
	}
}

// Error is one problem in the input.
type Error struct {
	Pos     Pos
	Msg     string // lowercase, no trailing period
	Snippet string // the source line, without newline ("" when unknown)
	Hint    string // e.g. `did you mean "serial"?` or what to do next
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Snippet != "" {
		line := strings.ReplaceAll(e.Snippet, "\t", " ")
		fmt.Fprintf(&b, "\n    %s", line)
		if e.Pos.Col > 0 && e.Pos.Col <= len(line)+1 {
			fmt.Fprintf(&b, "\n    %s^", strings.Repeat(" ", e.Pos.Col-1))
		}
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "\n    %s", e.Hint)
	}
	return b.String()
}

// New builds an Error at pos, taking the snippet from src (the whole file).
func New(src []byte, pos Pos, hint string, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Snippet: Line(src, pos.Line), Hint: hint}
}

// Line returns line n (1-based) of src, or "".
func Line(src []byte, n int) string {
	if n <= 0 {
		return ""
	}
	for i := 1; ; i++ {
		j := strings.IndexByte(string(src), '\n')
		if i == n {
			if j < 0 {
				return strings.TrimRight(string(src), "\r")
			}
			return strings.TrimRight(string(src[:j]), "\r")
		}
		if j < 0 {
			return ""
		}
		src = src[j+1:]
	}
}

// List is several problems found in one pass; it is itself an error.
type List []*Error

func (l List) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	s := strings.Join(parts, "\n")
	if len(l) > 1 {
		s += fmt.Sprintf("\n%d problems", len(l))
	}
	return s
}

// Collect appends err to l when it is positioned input errors (an *Error or
// a List) and returns nil; any other error is returned as is, for the
// caller to stop on. Loaders use it to report every problem in one pass.
func (l *List) Collect(err error) error {
	var e *Error
	var list List
	switch {
	case errors.As(err, &list):
		*l = append(*l, list...)
	case errors.As(err, &e):
		*l = append(*l, e)
	default:
		return err
	}
	return nil
}

// Err returns nil for an empty list, else the list sorted by position.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return l
}

// Invalid marks an error as invalid user input (exit code 4) without a position,
// e.g. a flag value or a host pattern.
type Invalid struct{ Err error }

func (e *Invalid) Error() string { return e.Err.Error() }
func (e *Invalid) Unwrap() error { return e.Err }

// Invalidf returns an *Invalid with a formatted message.
func Invalidf(format string, args ...any) error {
	return &Invalid{Err: fmt.Errorf(format, args...)}
}

// IsInvalidInput reports whether err is (or wraps) an Error, a List or an Invalid.
func IsInvalidInput(err error) bool {
	var e *Error
	var l List
	var inv *Invalid
	return errors.As(err, &e) || errors.As(err, &l) || errors.As(err, &inv)
}

// Suggest returns `did you mean "x"?` for the candidate closest to word, or ""
// when none is close enough to be a plausible typo.
func Suggest(word string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := distance(strings.ToLower(word), strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	limit := len(word)/3 + 1
	if limit > 3 {
		limit = 3
	}
	if best == "" || bestD > limit {
		return ""
	}
	return fmt.Sprintf("did you mean %q?", best)
}

// distance is the Levenshtein distance with adjacent transpositions counted as one edit.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
