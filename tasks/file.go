package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
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
		OneOf: [][]string{{"path", "dest", "name"}},
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
	script := fileScript(p, state, src, mode, owner, group, recurse, force, h.Check)
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

// fileScript builds the check-and-act script. ch prints a change; act runs a
// command unless checking. Exit status 2 with a message on stderr means the
// path cannot be brought to the state without destroying something.
func fileScript(p, state, src, mode, owner, group string, recurse, force, check bool) string {
	var b strings.Builder
	c := "0"
	if check {
		c = "1"
	}
	fmt.Fprintf(&b, "c=%s; p=%s; ", c, shell.Quote(p))
	b.WriteString(`ch() { echo "$*"; }; act() { [ "$c" = 1 ] || "$@" || exit 1; }; die() { echo "$*" >&2; exit 2; }; `)
	switch state {
	case "absent":
		b.WriteString(`if [ -e "$p" ] || [ -L "$p" ]; then ch "removed"; act rm -rf -- "$p"; fi; exit 0`)
		return b.String()
	case "directory":
		b.WriteString(`if [ -e "$p" ] && [ ! -d "$p" ]; then die "$p exists and is not a directory: remove it or choose another path"; fi; `)
		b.WriteString(`if [ ! -d "$p" ]; then ch "created directory"; act mkdir -p -- "$p"; fi; `)
	case "touch":
		b.WriteString(`if [ -e "$p" ]; then ch "touched"; else ch "created file"; fi; act touch -- "$p"; `)
	case "file":
		b.WriteString(`[ -e "$p" ] || die "$p does not exist: state: file does not create files (use state: touch, or copy)"; `)
		b.WriteString(`[ -d "$p" ] && [ ! -L "$p" ] && die "$p is a directory, not a file"; `)
	case "link":
		fmt.Fprintf(&b, "s=%s; t=$(dirname -- \"$p\")/.$(basename -- \"$p\").ferry-tmp-%s; ", shell.Quote(src), randomSuffix())
		b.WriteString(`cur=$(readlink -- "$p" 2>/dev/null) || cur=""; `)
		b.WriteString(`if [ ! -L "$p" ] || [ "$cur" != "$s" ]; then `)
		b.WriteString(`if [ -d "$p" ] && [ ! -L "$p" ]; then die "$p is a directory: remove it before linking"; fi; `)
		if !force {
			b.WriteString(`if [ -e "$p" ] && [ ! -L "$p" ]; then die "$p is a file, not a link: set force: true to replace it"; fi; `)
		}
		// Atomic swap: a new link under a temp name, renamed over the old one.
		b.WriteString(`if [ -L "$p" ]; then ch "link -> $s (was -> $cur)"; else ch "link -> $s"; fi; `)
		b.WriteString(`act ln -sfn -- "$s" "$t"; act mv -Tf -- "$t" "$p"; fi; `)
	}
	chOpt := ""
	if state == "link" {
		chOpt = "-h " // the link itself, not its target
	}
	if mode != "" && state != "link" {
		if recurse {
			fmt.Fprintf(&b, `if [ ! -e "$p" ] || [ -n "$(find "$p" ! -perm %s -print -quit)" ]; then ch "mode %s (recursive)"; act chmod -R -- %s "$p"; fi; `, mode, mode, mode)
		} else {
			fmt.Fprintf(&b, `m=$(stat -L -c %%a -- "$p" 2>/dev/null) || m=none; if [ "$m" != %s ]; then ch "mode $m -> %s"; act chmod -- %s "$p"; fi; `, mode, mode, mode)
		}
	}
	statOpt := "-L " // what the path points to, as chown and chmod act on
	if state == "link" {
		statOpt = ""
	}
	for _, x := range []struct{ val, fmt, find, cmd, what string }{
		{owner, "%U %u", "-user", "chown", "owner"},
		{group, "%G %g", "-group", "chgrp", "group"},
	} {
		if x.val == "" {
			continue
		}
		fmt.Fprintf(&b, "v=%s; ", shell.Quote(x.val))
		if recurse {
			fmt.Fprintf(&b, `if [ ! -e "$p" ] || [ -n "$(find "$p" ! %s "$v" -print -quit)" ]; then ch "%s $v (recursive)"; act %s -R -- "$v" "$p"; fi; `, x.find, x.what, x.cmd)
			continue
		}
		fmt.Fprintf(&b, `o=$(stat %s-c '%s' -- "$p" 2>/dev/null) || o=none; case " $o " in *" $v "*) ;; *) ch "%s ${o%%%% *} -> $v"; act %s %s-- "$v" "$p";; esac; `,
			statOpt, x.fmt, x.what, x.cmd, chOpt)
	}
	b.WriteString("exit 0")
	return b.String()
}
