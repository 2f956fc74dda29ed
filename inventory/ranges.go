package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// maxRangeHosts bounds what one host range may expand to, so a typo such as
// web[1:99999999] is an error instead of exhausting memory.
const maxRangeHosts = 100000

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// rangeError is a bad host range; col is the 0-based offset of its '['.
type rangeError struct {
	msg string
	col int
}

func (e *rangeError) Error() string { return e.msg }

// splitHostPort separates "host:port" as Ansible's parse_address does,
// leaving ranges ([01:09]) and IPv6 addresses alone. port is "" when absent.
func splitHostPort(p string) (host, port string) {
	if strings.HasPrefix(p, "[") {
		// [ipv6]:port or [ipv6]
		if end := strings.IndexByte(p, ']'); end > 0 {
			inner := p[1:end]
			if strings.Count(inner, ":") >= 2 && isHexColon(inner) {
				rest := p[end+1:]
				if rest == "" {
					return inner, ""
				}
				if strings.HasPrefix(rest, ":") && isDigits(rest[1:]) {
					return inner, rest[1:]
				}
			}
		}
	}
	// Colons outside brackets.
	depth, colons, last := 0, 0, -1
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				colons++
				last = i
			}
		}
	}
	if colons == 1 && isDigits(p[last+1:]) {
		return p[:last], p[last+1:]
	}
	return p, ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHexColon(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == ':' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// expandHostPattern turns an inventory host entry into host names and an
// optional port, expanding Ansible ranges: web[01:20], db-[a:c], [1:9:2].
func expandHostPattern(p string) ([]string, int, error) {
	host, portStr := splitHostPort(p)
	port := 0
	if portStr != "" {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 {
			return nil, 0, &rangeError{fmt.Sprintf("port %s is out of range 1-65535", portStr), len(host) + 1}
		}
		port = n
	}
	if host == "" {
		return nil, 0, &rangeError{"empty host name", 0}
	}
	if !strings.ContainsRune(host, '[') && !strings.ContainsRune(host, ']') {
		return []string{host}, port, nil
	}
	if strings.Count(host, ":") >= 2 && isHexColon(strings.Trim(host, "[]")) {
		return []string{host}, port, nil // a bare IPv6 address
	}
	var out []string
	if err := expandRange(host, 0, &out); err != nil {
		return nil, 0, err
	}
	return out, port, nil
}

func expandRange(s string, offset int, out *[]string) error {
	open := strings.IndexByte(s, '[')
	closeAt := strings.IndexByte(s, ']')
	if open < 0 && closeAt < 0 {
		if len(*out) >= maxRangeHosts {
			return &rangeError{fmt.Sprintf("host range expands to more than %d hosts", maxRangeHosts), offset}
		}
		*out = append(*out, s)
		return nil
	}
	if open < 0 || closeAt < open {
		return &rangeError{"unmatched ] in host range", offset + max(closeAt, 0)}
	}
	closeRel := strings.IndexByte(s[open:], ']')
	if closeRel < 0 {
		return &rangeError{"unterminated host range: missing ]", offset + open}
	}
	closeAt = open + closeRel
	head, spec, tail := s[:open], s[open+1:closeAt], s[closeAt+1:]
	bad := func(format string, a ...any) error {
		return &rangeError{fmt.Sprintf(format, a...) + " (ranges look like [01:20], [a:f] or [0:20:5])", offset + open}
	}
	bounds := strings.Split(spec, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return bad("host range [%s] must be begin:end or begin:end:step", spec)
	}
	beg, end := bounds[0], bounds[1]
	step := 1
	if len(bounds) == 3 {
		n, err := strconv.Atoi(bounds[2])
		if err != nil || n < 1 {
			return bad("host range step %q must be a positive number", bounds[2])
		}
		step = n
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return bad("host range [%s] has no end", spec)
	}
	var seq []string
	if len(beg) == 1 && len(end) == 1 && strings.Contains(letters, beg) && strings.Contains(letters, end) {
		ib, ie := strings.Index(letters, beg), strings.Index(letters, end)
		if ib > ie {
			return bad("host range [%s] must have begin <= end", spec)
		}
		for i := ib; i <= ie; i += step {
			seq = append(seq, letters[i:i+1])
		}
	} else {
		if !isDigits(beg) || !isDigits(end) {
			return bad("host range [%s] needs numbers or single letters", spec)
		}
		width := 0
		if beg[0] == '0' && len(beg) > 1 {
			if len(beg) != len(end) {
				return bad("host range [%s] must have begin and end of equal width", spec)
			}
			width = len(beg)
		}
		b, err1 := strconv.Atoi(beg)
		e, err2 := strconv.Atoi(end)
		if err1 != nil || err2 != nil {
			return bad("host range [%s] is too large", spec)
		}
		if b > e {
			return bad("host range [%s] must have begin <= end", spec)
		}
		if (e-b)/step+1 > maxRangeHosts {
			return &rangeError{fmt.Sprintf("host range [%s] expands to more than %d hosts", spec, maxRangeHosts), offset + open}
		}
		for i := b; i <= e; i += step {
			n := strconv.Itoa(i)
			if len(n) < width {
				n = strings.Repeat("0", width-len(n)) + n
			}
			seq = append(seq, n)
		}
	}
	for _, x := range seq {
		if err := expandRange(head+x+tail, offset, out); err != nil {
			return err
		}
	}
	return nil
}
