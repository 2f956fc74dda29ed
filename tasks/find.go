package tasks

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(findModule{}) }

// findModule lists files under directories on the host, as Ansible's find:
// the result's `files` holds one stat-like entry per match (path, mtime,
// size, isdir, ...), for a loop that prunes old releases or backups. One
// remote command (GNU find's -printf); the patterns, hidden files and age
// are matched here, on the names and times the host reported.
type findModule struct{}

func (findModule) Spec() Spec {
	return Spec{
		Name: "find",
		Doc:  "List files under directories on the host that match name patterns, a type and an age, for register and a loop",
		Params: map[string]Param{
			"paths":     {Type: List, Required: true, Doc: "directories to search (Ansible's path/name are accepted too)"},
			"patterns":  {Type: List, Doc: "shell patterns (or regexes with use_regex) the base name must match, one of them (default all)"},
			"excludes":  {Type: List, Doc: "patterns whose matches are left out"},
			"use_regex": {Type: Bool, Default: "false", Doc: "patterns and excludes are Python-style regexes matched at the start of the name (RE2 syntax)"},
			"file_type": {Type: String, Default: "file", Choices: []string{"file", "directory", "link", "any"}, Doc: "kind of entry to return"},
			"recurse":   {Type: Bool, Default: "false", Doc: "descend into subdirectories"},
			"depth":     {Type: Int, Doc: "with recurse, how many levels down to look"},
			"hidden":    {Type: Bool, Default: "false", Doc: "include names starting with a dot"},
			"follow":    {Type: Bool, Default: "false", Doc: "follow symlinks in the tree (not with become: root would follow links another user placed)"},
			"age":       {Type: String, Doc: "at least this old (e.g. 2d, 3h, 30m, 1w, 90s); negative: at most this old"},
			"age_stamp": {Type: String, Default: "mtime", Choices: []string{"mtime", "atime", "ctime"}, Doc: "which time age compares"},
		},
		Returns: map[string]string{
			"files":         "the matches, each with path, mode, isreg, isdir, islnk, uid, gid, pw_name, gr_name, size, mtime, atime, ctime, inode, nlink, dev",
			"matched":       "number of matches",
			"examined":      "number of entries looked at",
			"skipped_paths": "paths that are not directories on the host, with why",
		},
		HostFiles: findAttack,
	}
}

// findFormat is one entry as find prints it, its path relative to the
// directory listed (%P last: it may hold '|'); a P record names that
// directory first.
const findFormat = `F%y|%m|%U|%G|%u|%g|%s|%T@|%A@|%C@|%i|%n|%D|%P\0`

// findQuery is the filter a find call applies to what the host lists.
type findQuery struct {
	patterns, excludes []*regexp.Regexp
	fileType           string
	hidden             bool
	age                float64 // seconds; 0: any age
	ageStamp           string
	now                float64
}

func (findModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("find", args)
	paths := a.StringList("paths")
	useRegex := a.Bool("use_regex", false)
	pats := splitPatterns(a.StringList("patterns"))
	excl := splitPatterns(a.StringList("excludes"))
	q := findQuery{fileType: a.String("file_type", "file"), hidden: a.Bool("hidden", false), ageStamp: a.String("age_stamp", "mtime")}
	recurse := a.Bool("recurse", false)
	depth := a.Int("depth", 0)
	follow := a.Bool("follow", false)
	age := a.String("age", "")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	var err error
	if q.age, err = parseAge(age); err != nil {
		return Outcome{}, fmt.Errorf("find: age: %w", err)
	}
	if q.patterns, err = compilePatterns(pats, useRegex); err != nil {
		return Outcome{}, fmt.Errorf("find: patterns: %w", err)
	}
	if q.excludes, err = compilePatterns(excl, useRegex); err != nil {
		return Outcome{}, fmt.Errorf("find: excludes: %w", err)
	}
	if len(paths) == 0 {
		return Outcome{}, fmt.Errorf("find: paths: want at least one directory")
	}
	if follow && h.Become.Become {
		// find -L would follow, as root, links that the owner of any
		// directory in the tree placed (to a root-only directory)
		return Outcome{}, fmt.Errorf("find: follow: true is not taken with become: root would follow symlinks another user could have placed; use follow: false, or list as the connecting user (become: false)")
	}
	// Each path is entered physically through hostfs (a symlink on the way
	// or at the path is followed only when root placed it where only root
	// can write), then listed relative to the held directory: a parent
	// swapped for a link to a root-only directory is refused, never listed.
	var b strings.Builder
	b.WriteString(`hf_quiet=1; printf 'T%s\0' "$(date +%s)"; for p in`)
	for _, p := range paths {
		b.WriteString(" " + shell.Quote(strings.TrimRight(p, "/")+"/"))
	}
	b.WriteString(`; do p=${p%/}; ( if [ -z "$p" ]; then hf_in / 0; else hf_at_file "$p" 2 follow || { printf 'S%s\0' "$p"; exit 0; }; hf_type "$hf_b"; ` +
		`[ $hf_ty = d ] || { printf 'S%s\0' "$p"; exit 0; }; hf_walk "$hf_b" 0; fi; printf 'P%s\0' "${p:-/}"; find `)
	if follow {
		b.WriteString("-L ")
	}
	b.WriteString(`. -mindepth 1 `)
	switch {
	case !recurse:
		b.WriteString("-maxdepth 1 ")
	case depth > 0:
		fmt.Fprintf(&b, "-maxdepth %d ", depth)
	}
	fmt.Fprintf(&b, "-printf %s ) || exit 1; done", shell.Quote(findFormat))
	res, err := runOn(ctx, h, hostfs.Script(b.String()), false)
	if err != nil {
		return Outcome{}, fmt.Errorf("find: %w", err)
	}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("find", res)}, nil
	}
	files, examined, skipped, err := q.parse(string(res.Stdout))
	if err != nil {
		return Outcome{}, fmt.Errorf("find: %w", err)
	}
	list := make([]any, len(files))
	for i, f := range files {
		list[i] = f
	}
	return Outcome{
		Msg:    fmt.Sprintf("%d of %d entries match", len(files), examined),
		Result: map[string]any{"files": list, "matched": len(files), "examined": examined, "skipped_paths": skipped},
	}, nil
}

// parse reads find's records and keeps those the query matches.
func (q *findQuery) parse(out string) (files []map[string]any, examined int, skipped map[string]any, err error) {
	skipped = map[string]any{}
	cur := "" // the directory being listed (P record): entries are relative to it
	num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	secs := func(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }
	for _, rec := range strings.Split(out, "\x00") {
		if rec == "" {
			continue
		}
		switch rec[0] {
		case 'T':
			q.now = secs(rec[1:])
		case 'S':
			skipped[rec[1:]] = "not a directory on the host"
		case 'P':
			cur = rec[1:]
		case 'F':
			f := strings.SplitN(rec[1:], "|", 14)
			if len(f) != 14 {
				return nil, 0, nil, fmt.Errorf("unexpected find output %q", rec)
			}
			examined++
			mode, perr := strconv.ParseUint(f[1], 8, 32)
			if perr != nil {
				return nil, 0, nil, fmt.Errorf("unexpected mode %q", f[1])
			}
			p := f[13]
			if cur != "" {
				p = strings.TrimSuffix(cur, "/") + "/" + p
			}
			e := map[string]any{
				"path": p, "mode": fmt.Sprintf("%04o", mode),
				"isreg": f[0] == "f", "isdir": f[0] == "d", "islnk": f[0] == "l",
				"uid": num(f[2]), "gid": num(f[3]), "pw_name": f[4], "gr_name": f[5], "size": num(f[6]),
				"mtime": secs(f[7]), "atime": secs(f[8]), "ctime": secs(f[9]),
				"inode": num(f[10]), "nlink": num(f[11]), "dev": num(f[12]),
			}
			if q.match(e) {
				files = append(files, e)
			}
		default:
			return nil, 0, nil, fmt.Errorf("unexpected find output %q", rec)
		}
	}
	return files, examined, skipped, nil
}

// match applies file_type, hidden, patterns, excludes and age, as Ansible.
func (q *findQuery) match(e map[string]any) bool {
	switch q.fileType {
	case "file":
		if e["isreg"] != true {
			return false
		}
	case "directory":
		if e["isdir"] != true {
			return false
		}
	case "link":
		if e["islnk"] != true {
			return false
		}
	}
	name := path.Base(e["path"].(string)) // a host path: always /
	if !q.hidden && strings.HasPrefix(name, ".") {
		return false
	}
	if len(q.patterns) > 0 && !anyMatch(q.patterns, name) {
		return false
	}
	if anyMatch(q.excludes, name) {
		return false
	}
	if q.age != 0 {
		old := q.now - e[q.ageStamp].(float64)
		if (q.age > 0 && old < q.age) || (q.age < 0 && old > -q.age) {
			return false
		}
	}
	return true
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// splitPatterns splits comma-separated patterns, as Ansible's list type
// does with a string.
func splitPatterns(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// compilePatterns turns shell patterns (fnmatch: * ? [seq] [!seq], the
// whole name) or regexes (matched at the start, as Python's re.match) into
// RE2.
func compilePatterns(pats []string, useRegex bool) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range pats {
		src := "^(?:" + p + ")"
		if !useRegex {
			src = fnmatchRegexp(p)
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// fnmatchRegexp translates a shell pattern as Python's fnmatch.translate.
func fnmatchRegexp(p string) string {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(p) && p[j] == '!' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				b.WriteString(`\[`)
				continue
			}
			set := p[i+1 : j]
			set = strings.ReplaceAll(set, `\`, `\\`)
			if strings.HasPrefix(set, "!") {
				set = "^" + set[1:]
			} else if strings.HasPrefix(set, "^") {
				set = `\` + set
			}
			b.WriteString("[" + set + "]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	return b.String()
}

// parseAge reads Ansible's age: a number with an optional unit s, m, h, d
// or w (seconds when none); negative means "at most".
func parseAge(s string) (float64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return 0, nil
	}
	mult := 1.0
	switch s[len(s)-1] {
	case 's':
		s = s[:len(s)-1]
	case 'm':
		mult, s = 60, s[:len(s)-1]
	case 'h':
		mult, s = 3600, s[:len(s)-1]
	case 'd':
		mult, s = 86400, s[:len(s)-1]
	case 'w':
		mult, s = 604800, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a number with an optional unit s, m, h, d or w, e.g. 2d or -1h")
	}
	return float64(n) * mult, nil
}

// findAttack: sample calls for the adversarial lab test (Spec.HostFiles):
// find lists, as root, directories the attacker owns; it must never list a
// root-only directory a link or a swapped parent points to.
func findAttack(at FileAttack) []FileCall {
	return []FileCall{
		{Args: map[string]any{"paths": at.Dir + "/releases", "file_type": "any", "recurse": true}, Target: at.Dir + "/releases/r1/sub/f",
			Layout: []string{"releases/r1/sub/", "releases/r2/", "releases/r1/sub/f"}},
		{Args: map[string]any{"paths": []any{at.Dir + "/releases/r1/", at.Dir + "/shared"}, "file_type": "any", "hidden": true}, Target: at.Dir + "/releases/r1/x"},
	}
}
