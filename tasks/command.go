package tasks

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() {
	Register(shellModule{})
	Register(commandModule{})
	Register(scriptModule{})
}

var guardParams = map[string]Param{
	"chdir":   {Type: String, Doc: "directory to run in"},
	"creates": {Type: String, Doc: "skip when this path exists"},
	"removes": {Type: String, Doc: "skip unless this path exists"},
}

func withParams(base map[string]Param, extra map[string]Param) map[string]Param {
	out := make(map[string]Param, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// runGuard holds what shell, command and script share: chdir, creates, removes.
type runGuard struct {
	chdir, creates, removes string
}

func readGuard(a *Args) runGuard {
	return runGuard{chdir: a.String("chdir", ""), creates: a.String("creates", ""), removes: a.String("removes", "")}
}

// prefix is the `cd` that starts the remote command line.
func (g runGuard) prefix() string {
	if g.chdir == "" {
		return ""
	}
	return "cd -- " + shell.Quote(g.chdir) + " && "
}

// skip checks creates/removes with one read-only command (relative paths are
// relative to chdir, as in Ansible) and returns why the task is skipped, if it is.
func (g runGuard) skip(ctx context.Context, h *Host) (string, error) {
	if g.creates == "" && g.removes == "" {
		return "", nil
	}
	var b strings.Builder
	if g.chdir != "" {
		b.WriteString("cd -- " + shell.Quote(g.chdir) + " 2>/dev/null; ")
	}
	if g.creates != "" {
		fmt.Fprintf(&b, "if [ -e %s ]; then echo creates; exit 0; fi; ", shell.Quote(g.creates))
	}
	if g.removes != "" {
		fmt.Fprintf(&b, "if [ ! -e %s ]; then echo removes; exit 0; fi; ", shell.Quote(g.removes))
	}
	b.WriteString("echo run")
	res, err := runOn(ctx, h, b.String(), false)
	if err != nil {
		return "", fmt.Errorf("check creates/removes: %w", err)
	}
	switch strings.TrimSpace(string(res.Stdout)) {
	case "creates":
		return g.creates + " exists", nil
	case "removes":
		return g.removes + " does not exist", nil
	case "run":
		return "", nil
	}
	return "", fmt.Errorf("check creates/removes: %s", failMsg("test", res))
}

// execute runs a prepared command line: check mode and creates/removes first,
// then the command with live output; rc != 0 fails the task.
func execute(ctx context.Context, h *Host, g runGuard, line, shown string, extra map[string]any) (Outcome, error) {
	if early, err := beforeRun(ctx, h, g, shown, "run: %s"); early != nil || err != nil {
		return derefOutcome(early), err
	}
	res, err := runOn(ctx, h, line, true)
	if err != nil {
		return Outcome{}, fmt.Errorf("run %s: %w", shown, err)
	}
	out := commandOutcome(shown, res)
	for k, v := range extra {
		out.Result[k] = v
	}
	return out, nil
}

// beforeRun applies creates/removes and --check ahead of running shown: a
// non-nil Outcome (skipped, or what would run) is the task's answer.
func beforeRun(ctx context.Context, h *Host, g runGuard, shown, checkFormat string) (*Outcome, error) {
	reason, err := g.skip(ctx, h)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		return &Outcome{Skipped: true, Msg: "skipped: " + reason, Result: map[string]any{"cmd": shown, "rc": 0, "skipped": true}}, nil
	}
	if h.Check {
		return &Outcome{Changed: true, Msg: checkMsg(checkFormat, shown), Result: map[string]any{"cmd": shown}}, nil
	}
	return nil, nil
}

func derefOutcome(o *Outcome) Outcome {
	if o == nil {
		return Outcome{}
	}
	return *o
}

// commandOutcome is a finished command as a task result: rc != 0 fails it.
func commandOutcome(shown string, res Result) Outcome {
	out := Outcome{Changed: true, Result: cmdResult(shown, res), Msg: "rc=0"}
	if res.ExitCode != 0 {
		out.Failed = true
		out.Msg = failMsg(shown, res)
	}
	return out
}

// shell: a bash script with `set -euo pipefail`.
type shellModule struct{}

func (shellModule) Spec() Spec {
	return Spec{
		Name:     "shell",
		Doc:      "Run a script with bash on the host (set -euo pipefail)",
		FreeForm: "cmd",
		Params: withParams(guardParams, map[string]Param{
			"cmd":        {Type: String, Required: true, Doc: "script text, run by bash with set -euo pipefail"},
			"executable": {Type: String, Doc: "shell to run it with (default bash)"},
		}),
	}
}

func (shellModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("shell", args)
	cmd := a.String("cmd", "")
	exe := a.String("executable", "bash")
	g := readGuard(a)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	prelude := "set -euo pipefail\n"
	if b := path.Base(exe); b != "bash" && b != "zsh" && b != "ksh" {
		prelude = "set -eu\n" // pipefail is not POSIX
	}
	line := g.prefix() + "exec " + shell.Quote(exe) + " -c " + shell.Quote(prelude+cmd)
	return execute(ctx, h, g, line, cmd, nil)
}

// command: one program with its arguments, no shell in between.
type commandModule struct{}

func (commandModule) Spec() Spec {
	return Spec{
		Name:     "command",
		Doc:      "Run a program with its arguments on the host, with no shell in between",
		FreeForm: "cmd",
		Params: withParams(guardParams, map[string]Param{
			"cmd":  {Type: Any, Doc: "command line, split like a shell splits words (no expansion), or a list"},
			"argv": {Type: List, Doc: "the program and its arguments, one item each"},
		}),
		OneOf: [][]string{{"cmd", "argv"}},
	}
}

func (commandModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("command", args)
	var argv []string
	switch {
	case a.Has("argv"):
		argv = a.StringList("argv")
	case a.Has("cmd"):
		if s, ok := a.Raw("cmd").(string); ok {
			var err error
			if argv, err = shell.Split(s); err != nil {
				return Outcome{}, fmt.Errorf("command: %w", err)
			}
		} else {
			argv = a.StringList("cmd")
		}
	}
	g := readGuard(a)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if len(argv) == 0 {
		return Outcome{}, fmt.Errorf("command: give the program to run in cmd or argv")
	}
	for _, s := range argv {
		if strings.ContainsRune(s, 0) {
			return Outcome{}, fmt.Errorf("command: an argument holds a NUL byte, which no program can receive")
		}
	}
	shown := shell.Join(argv...)
	line := g.prefix() + "exec " + shown
	list := make([]any, len(argv))
	for i, s := range argv {
		list[i] = s
	}
	return execute(ctx, h, g, line, shown, map[string]any{"argv": list})
}

// script: uploads a local script, runs it, removes it.
type scriptModule struct{}

func (scriptModule) Spec() Spec {
	return Spec{
		Name:     "script",
		Doc:      "Upload a local script to the host, run it, and remove it",
		FreeForm: "cmd",
		Params: withParams(guardParams, map[string]Param{
			"cmd":        {Type: String, Doc: "local script path followed by its arguments"},
			"src":        {Type: String, Doc: "local script path (relative to the playbook)"},
			"args":       {Type: Any, Doc: "arguments: a string split like a shell, or a list"},
			"executable": {Type: String, Doc: "interpreter to run the script with (else its #! line)"},
		}),
		OneOf: [][]string{{"cmd", "src"}},
	}
}

func (scriptModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("script", args)
	var src string
	var argv []string
	if a.Has("cmd") {
		words, err := shell.Split(a.String("cmd", ""))
		if err != nil {
			return Outcome{}, fmt.Errorf("script: %w", err)
		}
		if len(words) > 0 {
			src, argv = words[0], words[1:]
		}
	} else {
		src = a.String("src", "")
	}
	if a.Has("args") {
		if s, ok := a.Raw("args").(string); ok {
			more, err := shell.Split(s)
			if err != nil {
				return Outcome{}, fmt.Errorf("script: args: %w", err)
			}
			argv = append(argv, more...)
		} else {
			argv = append(argv, a.StringList("args")...)
		}
	}
	exe := a.String("executable", "")
	g := readGuard(a)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if src == "" {
		return Outcome{}, fmt.Errorf("script: give the local script in src (or as the first word)")
	}
	local := localPath(h, src)
	st, err := os.Stat(local)
	if err != nil {
		return Outcome{}, fmt.Errorf("script: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Outcome{}, fmt.Errorf("script: %s is not a regular file", local)
	}
	shown := shell.Join(append([]string{src}, argv...)...)
	if early, err := beforeRun(ctx, h, g, shown, "upload and run %s"); early != nil || err != nil {
		return derefOutcome(early), err
	}

	client, err := h.Conn.SFTP(ctx, sftpUser(h))
	if err != nil {
		return Outcome{}, fmt.Errorf("script: open sftp: %w", err)
	}
	// A private directory (0700) holds the script: nobody else can open it
	// while it is written, nor swap it before it runs.
	dir := "/tmp/.ferry-script-" + randomSuffix()
	remote := dir + "/" + sanitizeName(filepath.Base(local))
	f, err := os.Open(local)
	if err != nil {
		return Outcome{}, fmt.Errorf("script: %w", err)
	}
	defer f.Close()
	if err := makePrivateDir(client, dir); err != nil {
		return Outcome{}, fmt.Errorf("script: %w", err)
	}
	if err := putFile(ctx, client, f, st.Size(), remote, 0o700, nil); err != nil {
		removeRemoteDirs(h, dir)
		return Outcome{}, fmt.Errorf("script: upload %s: %w", src, err)
	}
	run := []string{remote}
	if exe != "" {
		run = append([]string{exe}, remote)
	}
	// The script removes itself even when it fails; removeRemote covers
	// a cancelled run, when the remote shell is gone before it can.
	line := hostfs.Script("{ " + g.prefix() + shell.Join(append(run, argv...)...) + "; }; rc=$?; hf_rmtrees " + shell.Quote(dir) + "; exit $rc")
	res, err := runOn(ctx, h, line, true)
	if err != nil {
		removeRemoteDirs(h, dir)
		return Outcome{}, fmt.Errorf("script: run %s: %w", shown, err)
	}
	out := commandOutcome(shown, res)
	return out, nil
}

// sanitizeName keeps a file name readable in a temp path and free of
// anything a shell or a listing would trip on.
func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
