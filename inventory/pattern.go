package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
)

// NoMatchError is a host pattern (or one term of it) that matches no host.
// It is invalid input: diag.IsInvalidInput reports true (exit code 4).
type NoMatchError struct {
	Pattern string   // the whole pattern
	Term    string   // the term that matched nothing ("" when only the combination is empty)
	Closest []string // known group (or host) names closest to Term
	Groups  []string // known groups, sorted
}

func (e *NoMatchError) Error() string {
	var b strings.Builder
	if e.Term != "" && e.Term != e.Pattern {
		fmt.Fprintf(&b, "host pattern %q: %q matches no group or host", e.Pattern, e.Term)
	} else if e.Term != "" {
		fmt.Fprintf(&b, "host pattern %q matches no group or host", e.Pattern)
	} else {
		fmt.Fprintf(&b, "host pattern %q selects no host", e.Pattern)
	}
	if len(e.Closest) > 0 {
		q := make([]string, len(e.Closest))
		for i, c := range e.Closest {
			q[i] = strconv.Quote(c)
		}
		fmt.Fprintf(&b, "; did you mean %s?", strings.Join(q, " or "))
	}
	if len(e.Groups) > 0 {
		list := e.Groups
		more := ""
		if len(list) > 15 {
			list, more = list[:15], fmt.Sprintf(", and %d more", len(e.Groups)-15)
		}
		fmt.Fprintf(&b, " (groups: %s%s)", strings.Join(list, ", "), more)
	}
	return b.String()
}

// Unwrap marks the error as invalid input.
func (e *NoMatchError) Unwrap() error { return &diag.Invalid{Err: errors.New(e.Error())} }

var subscriptRE = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)

// splitPattern splits a host pattern into terms as Ansible does: on commas
// if there are any, else on colons outside [...] (so ranges survive).
func splitPattern(p string) []string {
	var terms []string
	if strings.Contains(p, ",") {
		terms = strings.Split(p, ",")
	} else if h, _ := splitHostPort(p); h != p || (strings.Count(p, ":") >= 2 && isHexColon(p)) {
		terms = []string{p} // host:port or an IPv6 address
	} else {
		var cur strings.Builder
		depth := 0
		flush := func() {
			terms = append(terms, cur.String())
			cur.Reset()
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			switch {
			case c == '[':
				depth++
			case c == ']' && depth > 0:
				depth--
			case depth == 0 && (c == ':' || c == ' ' || c == '\t' || c == '\n'):
				flush()
				continue
			}
			cur.WriteByte(c)
		}
		flush()
	}
	out := terms[:0]
	for _, t := range terms {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Match returns the hosts a pattern selects, in inventory order without
// duplicates. Terms are group or host names, globs (* ? [...]), ~regex, with
// optional subscripts (web[0], web[1:3]); they combine as union (a:b, a,b),
// intersection (a:&b) and exclusion (a:!b), unions first as Ansible does.
// A term that matches nothing, or an empty result, is a *NoMatchError.
func (inv *Inventory) Match(pattern string) ([]*Host, error) {
	inv.ensure()
	terms := splitPattern(pattern)
	if len(terms) == 0 {
		return nil, diag.Invalidf("empty host pattern: name a group or host, or use all")
	}
	var regular, inter, excl []string
	for _, t := range terms {
		switch t[0] {
		case '!':
			excl = append(excl, t)
		case '&':
			inter = append(inter, t)
		default:
			regular = append(regular, t)
		}
	}
	if len(regular) == 0 {
		regular = []string{"all"}
	}
	var sel []int // host indexes, order of union
	inSel := map[int]bool{}
	for _, t := range append(append(regular, inter...), excl...) {
		op := byte(0)
		body := t
		if t[0] == '!' || t[0] == '&' {
			op, body = t[0], t[1:]
		}
		if body == "" {
			return nil, diag.Invalidf("host pattern %q: %q names nothing after %c", pattern, t, op)
		}
		idx, known, err := inv.matchTerm(body)
		if err != nil {
			return nil, &diag.Invalid{Err: fmt.Errorf("host pattern %q: %w", pattern, err)}
		}
		if !known {
			return nil, inv.noMatch(pattern, body)
		}
		set := map[int]bool{}
		for _, i := range idx {
			set[i] = true
		}
		switch op {
		case '!':
			sel = filter(sel, func(i int) bool { return !set[i] })
		case '&':
			sel = filter(sel, func(i int) bool { return set[i] })
		default:
			for _, i := range idx {
				if !inSel[i] {
					inSel[i] = true
					sel = append(sel, i)
				}
			}
			continue
		}
		inSel = map[int]bool{}
		for _, i := range sel {
			inSel[i] = true
		}
	}
	if len(sel) == 0 {
		return nil, &NoMatchError{Pattern: pattern, Groups: inv.userGroups()}
	}
	sort.Ints(sel)
	out := make([]*Host, len(sel))
	for i, x := range sel {
		out[i] = inv.hostAt(x)
	}
	return out, nil
}

func filter(s []int, keep func(int) bool) []int {
	out := s[:0]
	for _, x := range s {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

// matchTerm returns the indexes of the hosts a single term selects. known is
// false when the term names no group and matches no host.
func (inv *Inventory) matchTerm(term string) (idx []int, known bool, err error) {
	var sub []int // nil, [i], or [start, end]
	if term[0] != '~' {
		if m := subscriptRE.FindStringSubmatch(term); m != nil {
			term = m[1]
			if m[2] != "" {
				n, err := strconv.Atoi(m[2])
				if err != nil {
					return nil, false, fmt.Errorf("bad subscript [%s]", m[2])
				}
				sub = []int{n}
			} else {
				s, err1 := strconv.Atoi(m[3])
				e := -1
				var err2 error
				if m[5] != "" {
					e, err2 = strconv.Atoi(m[5])
				}
				if err1 != nil || err2 != nil {
					return nil, false, fmt.Errorf("bad subscript in %q", term)
				}
				sub = []int{s, e}
			}
		}
	}
	if term == "all" || term == "*" {
		idx = make([]int, len(inv.Hosts))
		for i := range idx {
			idx[i] = i
		}
		return applySubscript(idx, sub, term)
	}
	var re *regexp.Regexp
	if term[0] == '~' {
		re, err = regexp.Compile(`^(?:` + term[1:] + `)`)
		if err != nil {
			return nil, false, fmt.Errorf("bad regular expression %q: %v", term[1:], err)
		}
	} else if strings.ContainsAny(term, "*?[") {
		re, err = globRegexp(term)
		if err != nil {
			return nil, false, err
		}
	}
	matchName := func(n string) bool {
		if re != nil {
			return re.MatchString(n)
		}
		return n == term
	}
	seen := map[int]bool{}
	add := func(i int) {
		if !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	groupMatched := false
	for _, g := range inv.groupOrder {
		if !matchName(g) {
			continue
		}
		groupMatched = true
		for _, hn := range inv.groupHosts(g) {
			add(inv.hostIdx[hn])
		}
	}
	if !groupMatched || re != nil || strings.Contains(term, ".") {
		for i, h := range inv.Hosts {
			if matchName(h.Name) {
				add(i)
			}
		}
	}
	sort.Ints(idx)
	if !groupMatched && len(idx) == 0 {
		if re == nil && IsLocalhostName(term) {
			inv.implicitLocalhost(term)
			return applySubscript([]int{implicitIdx}, sub, term)
		}
		return nil, false, nil
	}
	return applySubscript(idx, sub, term)
}

func applySubscript(idx []int, sub []int, term string) ([]int, bool, error) {
	switch len(sub) {
	case 1:
		i := sub[0]
		if i < 0 {
			i += len(idx)
		}
		if i < 0 || i >= len(idx) {
			return nil, true, fmt.Errorf("%s[%d] is out of range: it has %d hosts", term, sub[0], len(idx))
		}
		return idx[i : i+1], true, nil
	case 2:
		s, e := sub[0], sub[1]
		if e == -1 || e >= len(idx) {
			e = len(idx) - 1
		}
		if s >= len(idx) || s > e {
			return nil, true, nil
		}
		return idx[s : e+1], true, nil
	}
	return idx, true, nil
}

// groupHosts returns the hosts of a group and of its descendants.
func (inv *Inventory) groupHosts(name string) []string {
	var out []string
	seenG := map[string]bool{}
	seenH := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		if seenG[n] {
			return
		}
		seenG[n] = true
		g := inv.Groups[n]
		for _, h := range g.Hosts {
			if !seenH[h] {
				seenH[h] = true
				out = append(out, h)
			}
		}
		for _, c := range g.Children {
			walk(c)
		}
	}
	walk(name)
	return out
}

// globRegexp translates an fnmatch glob (*, ?, [seq], [!seq]) to a regexp.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(glob) && glob[j] == '!' {
				j++
			}
			if j < len(glob) && glob[j] == ']' {
				j++
			}
			for j < len(glob) && glob[j] != ']' {
				j++
			}
			if j >= len(glob) {
				b.WriteString(`\[`)
				continue
			}
			set := glob[i+1 : j]
			i = j
			neg := strings.HasPrefix(set, "!")
			if neg {
				set = set[1:]
			}
			var cls strings.Builder
			for k := 0; k < len(set); k++ {
				ch := set[k]
				switch {
				case ch == '-' && k > 0 && k < len(set)-1:
					cls.WriteByte('-')
				case ch < 0x80 && !isIdent(ch):
					cls.WriteByte('\\')
					cls.WriteByte(ch)
				default:
					cls.WriteByte(ch)
				}
			}
			if neg {
				b.WriteString(`[^` + cls.String() + `]`)
			} else {
				b.WriteString(`[` + cls.String() + `]`)
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("bad glob %q: %v", glob, err)
	}
	return re, nil
}

func (inv *Inventory) userGroups() []string {
	var out []string
	for _, n := range inv.GroupNames() {
		if n != "all" && n != "ungrouped" {
			out = append(out, n)
		}
	}
	return out
}

func (inv *Inventory) noMatch(pattern, term string) error {
	groups := inv.userGroups()
	e := &NoMatchError{Pattern: pattern, Term: term, Groups: groups}
	bare := strings.TrimLeft(term, "~")
	if s := closest(bare, groups); s != "" {
		e.Closest = []string{s}
	} else {
		hosts := make([]string, len(inv.Hosts))
		for i, h := range inv.Hosts {
			hosts[i] = h.Name
		}
		if s := closest(bare, hosts); s != "" {
			e.Closest = []string{s}
		}
	}
	return e
}

// closest returns the candidate diag.Suggest picks, unquoted.
func closest(word string, candidates []string) string {
	s := suggest(word, candidates)
	if s == "" {
		return ""
	}
	if i, j := strings.IndexByte(s, '"'), strings.LastIndexByte(s, '"'); i >= 0 && j > i {
		if u, err := strconv.Unquote(s[i : j+1]); err == nil {
			return u
		}
	}
	return ""
}
