package diag

import (
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var yamlErrLine = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: (.*)`)

// YAML turns a yaml.v3 parse error of file (content src) into a positioned
// Error. yaml.v3 gives the line of most errors but not the column (and no
// line at all for a few): the column is the line's first non-blank, and a
// missing line is found by parsing ever longer prefixes of the file.
func YAML(file string, src []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	line, col := 0, 0
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			col, _ = strconv.Atoi(m[2])
		}
		msg = m[3]
	}
	// yaml.v3 often names the line where the enclosing block started; the
	// shortest failing prefix points at the line that broke it.
	if n := firstFailingLine(src, msg); n > 0 {
		line, col = n, 0
	}
	if col == 0 && line > 0 {
		l := Line(src, line)
		col = len(l) - len(strings.TrimLeft(l, " \t")) + 1
	}
	if line == 0 {
		line = 1
	}
	return New(src, Pos{File: file, Line: line, Col: col}, "", "YAML: %s", msg)
}

// firstFailingLine returns the smallest n such that the first n lines of
// src fail to parse with msg, or 0.
func firstFailingLine(src []byte, msg string) int {
	lines := strings.SplitAfter(string(src), "\n")
	if len(lines) > 5000 {
		return 0
	}
	fails := func(n int) bool {
		var doc yaml.Node
		err := yaml.Unmarshal([]byte(strings.Join(lines[:n], "")), &doc)
		return err != nil && strings.Contains(err.Error(), msg)
	}
	lo, hi := 1, len(lines)
	if !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
