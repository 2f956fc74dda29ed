package tasks

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fileCommand finds, in shell text, a command that changes, moves, reads or
// removes a file by path: at the start of a command (after ; & | ( { ! or
// a newline, then, do, else) or after a wrapper that runs its arguments
// (exec, act, xargs, find's -exec, sudo, command, env, nice).
var fileCommand = regexp.MustCompile(`(?:^|[;&|(){}!\n]|\b(?:then|do|else|exec|act|xargs|sudo|command|env|nice)\s|-exec\s)\s*(chmod|chown|chgrp|mv|rm|mkdir|ln|cat)\s+\S`)

// systemRead is a read of a fixed file in a directory only root can write
// (/proc, /sys, /etc, /usr: the facts gatherer's sources): no other user can
// redirect it, so it needs no hostfs.
var systemRead = regexp.MustCompile(`^cat\s+(?:/proc|/sys|/etc|/usr)/[A-Za-z0-9_./-]+(?:\s|$)`)

// flagged returns the file commands of s that are not system reads.
func flagged(s string) []string {
	var out []string
	for _, m := range fileCommand.FindAllStringSubmatchIndex(s, -1) {
		if r := systemRead.FindString(s[m[2]:]); r != "" && !strings.Contains(r, "..") {
			continue
		}
		out = append(out, s[m[2]:m[3]])
	}
	return out
}

func TestFileCommandPattern(t *testing.T) {
	for s, want := range map[string]bool{
		"rm -rf -- /tmp/x":                  true,
		`x=1; chmod 600 "$t/f"`:             true,
		"if a; then mkdir -p -- d; fi":      true,
		"printf E; exec cat -- \"$p\"":      true,
		`act chown -R -- "$v" "$p"`:         true,
		"find d -exec rm -rf -- {} +":       true,
		"a && mv -f -- a b":                 true,
		"ln -sfn -- a b":                    true,
		`$rt rm -f "$n" >/dev/null`:         false, // a container, not a file
		"chmod: %w":                         false,
		"hf_rmtree x; hf_place ./f name":    false,
		"set owner %s (needs become)":       false,
		"the temp directory is not private": false,
		"echo @@os; cat /etc/os-release":    false, // a system file: only root writes /etc
		"x; cat /proc/meminfo; cat \"$p\"":  true,
		"x; cat /etc/../srv/app/f":          true, // .. leaves the root-only directories
	} {
		if got := len(flagged(s)) > 0; got != want {
			t.Errorf("%q: matched %v, want %v", s, got, want)
		}
	}
}

// No module's shell, outside tasks/hostfs, changes, moves, reads or removes
// a host file by path: a new module that did would reopen the symlink holes
// hostfs closes (issue 16). Every string literal of the package's non-test
// sources is checked.
func TestModulesTouchHostFilesOnlyThroughHostfs(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			checked++
			for _, cmd := range flagged(s) {
				t.Errorf("%s: shell runs %q on a path; use tasks/hostfs (hf_* functions) instead: %.120q",
					fset.Position(lit.Pos()), cmd, s)
			}
			return true
		})
	}
	if checked < 100 {
		t.Fatalf("checked only %d string literals: is the test running in tasks/?", checked)
	}
}
