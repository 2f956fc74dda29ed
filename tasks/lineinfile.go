package tasks

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(lineinfileModule{}) }

// lineinfileModule makes sure one line is in a file (or is not), as
// Ansible's lineinfile does. The file is read in one command, edited on the
// controller, and written back through copy's machinery: a private temp
// file renamed over it, with the SHA-256 skip and backup that copy has.
type lineinfileModule struct{}

func (lineinfileModule) Spec() Spec {
	return Spec{
		Name: "lineinfile",
		Doc:  "Make sure a line is in a file (replacing the last line a regexp matches) or is not, and write the file back atomically",
		Params: map[string]Param{
			"path":         {Type: String, Doc: "file on the host (also: dest, name)"},
			"dest":         {Type: String, Doc: "alias of path"},
			"name":         {Type: String, Doc: "alias of path"},
			"line":         {Type: String, Doc: "the line to put in (state: present), or to remove when no regexp is given (also: value)"},
			"value":        {Type: String, Doc: "alias of line"},
			"regexp":       {Type: String, Doc: "regular expression (RE2) for the line to replace (the last one matching) or, with state: absent, the lines to remove (also: regex)"},
			"regex":        {Type: String, Doc: "alias of regexp"},
			"state":        {Type: String, Choices: []string{"present", "absent"}, Default: "present", Doc: "whether the line should be there"},
			"insertafter":  {Type: String, Doc: "when regexp matches nothing, add the line after the last line matching this regexp, or EOF (the default) or BOF"},
			"insertbefore": {Type: String, Doc: "when regexp matches nothing, add the line before the last line matching this regexp, or BOF"},
			"firstmatch":   {Type: Bool, Default: "false", Doc: "insertafter/insertbefore use the first matching line instead of the last"},
			"backrefs":     {Type: Bool, Default: "false", Doc: `line may use \1 or \g<name> for the regexp's groups; when regexp matches nothing the file is left alone`},
			"create":       {Type: Bool, Default: "false", Doc: "create the file (and its directory) when it does not exist, instead of failing"},
			"backup":       {Type: Bool, Default: "false", Doc: "keep the replaced file as path.<timestamp>~"},
			"validate":     validateParam,
			"mode":         {Type: String, Doc: `octal mode, quoted ("0644")`},
			"owner":        {Type: String, Doc: "owner name or uid"},
			"group":        {Type: String, Doc: "group name or gid"},
		},
		OneOf:     [][]string{{"path", "dest", "name"}},
		HostFiles: lineinfileAttack,
		Returns: map[string]string{
			"found":       "state: absent: how many lines were removed",
			"backup_file": "where the replaced file was kept (backup: true)",
		},
	}
}

// lineEdit is one lineinfile call, resolved.
type lineEdit struct {
	line                     string
	hasLine                  bool
	re, after, before        *regexp.Regexp
	afterEOF, bof            bool
	absent, backrefs, firstM bool
}

func (lineinfileModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("lineinfile", args)
	p := a.String("path", a.String("dest", a.String("name", "")))
	e := lineEdit{hasLine: a.Has("line") || a.Has("value")}
	e.line = a.String("line", a.String("value", ""))
	reText := a.String("regexp", a.String("regex", ""))
	state := a.String("state", "present")
	after, before := a.String("insertafter", ""), a.String("insertbefore", "")
	e.firstM, e.backrefs = a.Bool("firstmatch", false), a.Bool("backrefs", false)
	create := a.Bool("create", false)
	o := readCopyOpts(a)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if p == "" {
		return Outcome{}, fmt.Errorf("lineinfile: path is required")
	}
	e.absent = state == "absent"
	if !e.absent && !e.hasLine {
		return Outcome{}, fmt.Errorf("lineinfile %s: state: present needs line", p)
	}
	if e.absent && reText == "" && !e.hasLine {
		return Outcome{}, fmt.Errorf("lineinfile %s: state: absent needs regexp or line", p)
	}
	if after != "" && before != "" {
		return Outcome{}, fmt.Errorf("lineinfile %s: give insertafter or insertbefore, not both", p)
	}
	if e.backrefs && reText == "" {
		return Outcome{}, fmt.Errorf("lineinfile %s: backrefs needs regexp", p)
	}
	if strings.ContainsAny(e.line, "\n") {
		return Outcome{}, fmt.Errorf("lineinfile %s: line must be one line (use template: or copy: for a block)", p)
	}
	var err error
	compile := func(what, s string) *regexp.Regexp {
		if s == "" || err != nil {
			return nil
		}
		r, cerr := regexp.Compile(s)
		if cerr != nil {
			err = fmt.Errorf("lineinfile %s: %s: %w", p, what, cerr)
		}
		return r
	}
	e.re = compile("regexp", reText)
	switch after {
	case "EOF", "":
	case "BOF":
		e.bof = true
	default:
		e.after = compile("insertafter", after)
	}
	e.afterEOF = after == "EOF"
	switch before {
	case "BOF":
		e.bof = true
	case "":
	default:
		e.before = compile("insertbefore", before)
	}
	if err != nil {
		return Outcome{}, err
	}

	// One round trip reads the file: a marker says whether it exists.
	// hostfs reads it: parents entered physically, a symlink another user
	// could have placed refused, never followed as root.
	script := hostfs.Script(fmt.Sprintf(`p=%s; hf_at_file "$p" 2 follow || { printf N; exit 0; }; hf_read "$hf_b"`, shell.Quote(p)))
	res, err := runOn(ctx, h, script, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("lineinfile: read %s: %w", p, err)
	}
	result := map[string]any{"path": p}
	if res.ExitCode != 0 || len(res.Stdout) == 0 {
		return Outcome{Failed: true, Msg: failMsg("read "+p, res), Result: result}, nil
	}
	exists := res.Stdout[0] == 'E'
	old := res.Stdout[1:]
	if !exists {
		if e.absent {
			result["found"] = 0
			return Outcome{Msg: p + " does not exist", Result: result}, nil
		}
		if !create {
			return Outcome{Failed: true, Msg: p + " does not exist: set create: true to create it", Result: result}, nil
		}
	}
	text, msg, diff, found := e.apply(old)
	if e.absent {
		result["found"] = found
	}
	changed := !exists || !bytes.Equal(text, old)
	if !changed && o.mode == "" && o.owner == "" && o.group == "" {
		return Outcome{Msg: "unchanged: " + p, Result: result}, nil
	}
	if o.mode == "preserve" {
		return Outcome{}, fmt.Errorf(`lineinfile %s: mode "preserve" needs a source file; give an octal mode`, p)
	}
	if !changed {
		o.backup = false
	}
	plan, err := contentPlan(text, p, o)
	if err != nil {
		return Outcome{}, fmt.Errorf("lineinfile: %w", err)
	}
	out, err := plan.run(ctx, h)
	if err != nil || out.Failed {
		return out, err
	}
	for k, v := range result {
		if out.Result == nil {
			out.Result = map[string]any{}
		}
		out.Result[k] = v
	}
	if changed {
		if !exists {
			msg = "created " + p + ", " + msg
		}
		out.Diff = diff + out.Diff
		if h.Check {
			out.Msg = "would change " + p + ": " + msg
		} else {
			out.Msg = p + ": " + msg
		}
	}
	return out, nil
}

// apply edits text as Ansible's lineinfile does; found counts the lines
// removed (state: absent).
func (e *lineEdit) apply(text []byte) (out []byte, msg, diff string, found int) {
	lines := fileLines(string(text))
	matches := func(l string) bool {
		l = strings.TrimRight(l, "\r\n")
		if e.re != nil {
			return e.re.MatchString(l)
		}
		return l == e.line
	}
	if e.absent {
		kept := lines[:0:0]
		for _, l := range lines {
			if matches(l) {
				found++
				diff += "- " + strings.TrimRight(l, "\r\n") + "\n"
				continue
			}
			kept = append(kept, l)
		}
		if found == 0 {
			return text, "", "", 0
		}
		return []byte(strings.Join(kept, "")), fmt.Sprintf("%d line(s) removed", found), diff, found
	}
	match, exact, ins := -1, -1, -1
	for i, l := range lines {
		bare := strings.TrimRight(l, "\r\n")
		if e.re != nil && e.re.MatchString(bare) {
			match = i
		}
		if bare == e.line {
			exact = i
		}
		if e.firstM && ins >= 0 {
			continue
		}
		switch {
		case e.after != nil && e.after.MatchString(bare):
			ins = i + 1
		case e.before != nil && e.before.MatchString(bare):
			ins = i
		}
	}
	if e.re == nil {
		match = exact
	}
	newLine := e.line
	if match >= 0 && e.backrefs {
		sub := e.re.FindStringSubmatchIndex(strings.TrimRight(lines[match], "\r\n"))
		newLine = string(e.re.ExpandString(nil, pythonBackrefs(e.line), strings.TrimRight(lines[match], "\r\n"), sub))
	}
	switch {
	case match >= 0:
		old := strings.TrimRight(lines[match], "\r\n")
		if old == newLine {
			return text, "", "", 0
		}
		lines[match] = newLine + lineEnd(lines[match])
		return []byte(strings.Join(lines, "")), "line replaced", "- " + old + "\n+ " + newLine + "\n", 0
	case e.backrefs:
		// Without a match there is nothing to fill the groups with.
		return text, "", "", 0
	case exact >= 0:
		// The regexp matches nothing but the line is already there: adding
		// it again on every run would not be idempotent.
		return text, "", "", 0
	}
	add := newLine + "\n"
	switch {
	case e.bof:
		lines = append([]string{add}, lines...)
	case e.afterEOF || ins < 0:
		if n := len(lines); n > 0 && !strings.HasSuffix(lines[n-1], "\n") {
			lines[n-1] += "\n"
		}
		lines = append(lines, add)
	default:
		lines = append(lines[:ins], append([]string{add}, lines[ins:]...)...)
	}
	return []byte(strings.Join(lines, "")), "line added", "+ " + newLine + "\n", 0
}

// fileLines splits text after each newline, keeping it.
func fileLines(s string) []string {
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

func lineEnd(l string) string {
	switch {
	case strings.HasSuffix(l, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(l, "\n"):
		return "\n"
	}
	return ""
}

var pyBackref = regexp.MustCompile(`\\(\d+)|\\g<(\w+)>`)

// pythonBackrefs turns Python's \1 and \g<name> (what Ansible users write)
// into Go's ${1} and ${name}; a literal $ is escaped as $$.
func pythonBackrefs(s string) string {
	s = strings.ReplaceAll(s, "$", "$$")
	return pyBackref.ReplaceAllStringFunc(s, func(m string) string {
		sub := pyBackref.FindStringSubmatch(m)
		if sub[1] != "" {
			return "${" + sub[1] + "}"
		}
		return "${" + sub[2] + "}"
	})
}

// lineinfileAttack: sample calls for the adversarial lab test (Spec.HostFiles).
func lineinfileAttack(at FileAttack) []FileCall {
	return []FileCall{{Args: map[string]any{"path": at.Dir + "/conf/.env", "line": "PORT=8080", "create": true}, Target: at.Dir + "/conf/.env"}}
}
