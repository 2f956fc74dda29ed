package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(fileModule{}) }

// fileModule manages a path's existence, type and attributes in one
// command: a POSIX script that checks each property, prints one line per
// change and, unless in check mode, makes it.
type fileModule struct{}

func (fileModule) Spec() Spec {
	return Spec{
		Name: "file",
		Doc:  "Make a path on the host a file, a directory or a symlink, touch it or remove it, and set its mode and owner",
		Params: map[string]Param{
			"path":    {Type: String, Doc: "path on the host (also: dest, name)"},
			"dest":    {Type: String, Doc: "alias of path"},
			"name":    {Type: String, Doc: "alias of path"},
			"state":   {Type: String, Choices: []string{"file", "directory", "link", "absent", "touch"}, Doc: "what path should be (default file: it must exist)"},
			"src":     {Type: String, Doc: "link target, for state: link"},
			"mode":    {Type: String, Doc: `octal mode, quoted ("0755")`},
			"owner":   {Type: String, Doc: "owner name or uid"},
			"group":   {Type: String, Doc: "group name or gid"},
			"recurse": {Type: Bool, Doc: "apply mode/owner/group to everything under a directory"},
			"force":   {Type: Bool, Doc: "state: link replaces a regular file in the way"},
		},
		OneOf:     [][]string{{"path", "dest", "name"}},
		HostFiles: fileAttack,
	}
}

func (fileModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("file", args)
	p := a.String("path", a.String("dest", a.String("name", "")))
	state := a.String("state", "file")
	src := a.String("src", "")
	mode := a.Mode("mode")
	owner, group := a.String("owner", ""), a.String("group", "")
	recurse, force := a.Bool("recurse", false), a.Bool("force", false)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if p == "" {
		return Outcome{}, fmt.Errorf("file: path is required")
	}
	if state == "link" && src == "" {
		return Outcome{}, fmt.Errorf("file: state: link needs src (the link's target)")
	}
	if recurse && state != "directory" {
		return Outcome{}, fmt.Errorf("file: recurse works with state: directory")
	}
	target := p
	if t := strings.TrimRight(p, "/"); t != "" {
		target = t // "dir/" names dir
	}
	script := fileScript(target, state, src, mode, owner, group, recurse, force, h.Check)
	res, err := runOn(ctx, h, script, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("file %s: %w", p, err)
	}
	result := map[string]any{"path": p, "state": state}
	if src != "" {
		result["src"] = src
	}
	var changes []string
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			changes = append(changes, l)
		}
	}
	list := make([]any, len(changes))
	for i, c := range changes {
		list[i] = c
	}
	result["changes"] = list
	if res.ExitCode != 0 {
		msg := lastLine(res.Stderr)
		if msg == "" {
			msg = failMsg("file", res)
		}
		return Outcome{Failed: true, Msg: msg, Result: result}, nil
	}
	if len(changes) == 0 {
		return Outcome{Msg: p + " is " + state, Result: result}, nil
	}
	msg := p + ": " + strings.Join(changes, ", ")
	if h.Check {
		msg = "would change " + msg
	}
	return Outcome{Changed: true, Msg: msg, Diff: strings.Join(changes, "\n") + "\n", Result: result}, nil
}

// fileScript builds the check-and-act script on hostfs: the path's
// directory is entered physically, a symlink another user could have
// placed is refused, and mode and owner are set on the opened file, never
// by a path. ch prints a change; act runs a command unless checking. Exit
// status 2 with a message on stderr means the path cannot be brought to
// the state without destroying something.
func fileScript(p, state, src, mode, owner, group string, recurse, force, check bool) string {
	var b strings.Builder
	c := "0"
	if check {
		c = "1"
	}
	q := shell.Quote
	fmt.Fprintf(&b, "c=%s; hf_check=$c; p=%s; m=%s; o=%s; g=%s; ", c, q(p), q(mode), q(owner), q(group))
	b.WriteString(`ch() { echo "$*"; }; act() { [ "$c" = 1 ] || "$@" || exit 1; }; die() { echo "$*" >&2; exit 2; }; `)
	b.WriteString(`none() { [ -z "$m" ] || ch "mode none -> $m"; [ -z "$o" ] || ch "owner none -> $o"; [ -z "$g" ] || ch "group none -> $g"; exit 0; }; `)
	switch state {
	case "absent":
		b.WriteString(`hf_at_file "$p" 2 || exit 0; hf_type "$hf_b"; if [ $hf_ty != n ]; then ch "removed"; act hf_rmtree "$hf_b"; fi; exit 0`)
		return hf(b.String())
	case "directory":
		b.WriteString(`hf_at_file "$p" $(( 1 + c )) follow || { ch "created directory"; none; }; hf_type "$hf_b"; `)
		b.WriteString(`case $hf_ty in d) ;; n) ch "created directory"; [ "$c" = 1 ] && none; hf_walk "$hf_b" 1; cd .. || exit 1;; *) die "$p exists and is not a directory: remove it or choose another path";; esac; `)
	case "touch":
		b.WriteString(`hf_at_file "$p" 0 follow; hf_type "$hf_b"; `)
		b.WriteString(`if [ $hf_ty = n ]; then ch "created file"; [ "$c" = 1 ] && none; n=$hf_b; ( hf_private "$n"; : > ./f; hf_place ./f "$n" ) || exit 1; else ch "touched"; act touch -h -c -- "./$hf_b"; fi; `)
	case "file":
		b.WriteString(`hf_at_file "$p" 2 follow || die "$p does not exist: state: file does not create files (use state: touch, or copy)"; hf_type "$hf_b"; `)
		b.WriteString(`[ $hf_ty = n ] && die "$p does not exist: state: file does not create files (use state: touch, or copy)"; [ $hf_ty = d ] && die "$p is a directory, not a file"; `)
	case "link":
		fmt.Fprintf(&b, "s=%s; ", q(src))
		b.WriteString(`hf_at_file "$p" 0; hf_type "$hf_b"; cur=$(readlink -- "$hf_b" 2>/dev/null) || cur=""; `)
		b.WriteString(`if [ $hf_ty != l ] || [ "$cur" != "$s" ]; then `)
		b.WriteString(`[ $hf_ty = d ] && die "$p is a directory: remove it before linking"; `)
		if !force {
			b.WriteString(`[ $hf_ty = n ] || [ $hf_ty = l ] || die "$p is a file, not a link: set force: true to replace it"; `)
		}
		// Atomic swap: a new link in a private directory, renamed over the old one.
		b.WriteString(`if [ $hf_ty = l ] ; then ch "link -> $s (was -> $cur)"; else ch "link -> $s"; fi; n=$hf_b; `)
		b.WriteString(`[ "$c" = 1 ] || ( hf_private "$n"; hf_link "$s" "$n" ) || exit 1; fi; `)
		// Owner and group of the link itself (chown -h never follows it).
		b.WriteString(`[ "$c" = 1 ] && [ $hf_ty != l ] && { [ -z "$o" ] || ch "owner none -> $o"; [ -z "$g" ] || ch "group none -> $g"; exit 0; }; `)
		b.WriteString(`hf_lattr "$hf_b" "$o" "$g"; exit 0`)
		return hf(b.String())
	}
	if mode == "" && owner == "" && group == "" {
		b.WriteString("exit 0")
		return hf(b.String())
	}
	b.WriteString(`hf_open "$hf_b" || die "$p is not a regular file or a directory"; `)
	if recurse {
		b.WriteString(`cd -P /proc/self/fd/3 || exit 1; hf_attr_tree "$m" "$o" "$g"; exit 0`)
		return hf(b.String())
	}
	b.WriteString(`hf_attr /proc/self/fd/3 "$m" "$o" "$g"; exit 0`)
	return hf(b.String())
}

// hf puts hostfs's functions in front of a file script.
func hf(body string) string { return hostfs.Script(body) }

// fileAttack: sample calls for the adversarial lab test (Spec.HostFiles).
func fileAttack(at FileAttack) []FileCall {
	t := at.Dir + "/conf/app.conf"
	return []FileCall{
		{Args: map[string]any{"path": at.Dir + "/conf/app.conf", "state": "touch", "mode": "0644", "owner": "root"}, Target: t},
		{Args: map[string]any{"path": at.Dir + "/conf/app.conf", "state": "file", "mode": "0666"}, Target: t},
		{Args: map[string]any{"path": at.Dir + "/conf/app.conf", "state": "directory", "mode": "0777", "recurse": true}, Target: t},
		{Args: map[string]any{"path": at.Dir + "/conf/app.conf", "state": "link", "src": "/etc/hostname", "owner": "nobody"}, Target: t},
		{Args: map[string]any{"path": at.Dir + "/conf/app.conf", "state": "absent"}, Target: t},
	}
}
