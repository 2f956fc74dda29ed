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
	} {
		if got := fileCommand.MatchString(s); got != want {
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
			if m := fileCommand.FindStringSubmatch(s); m != nil {
				t.Errorf("%s: shell runs %q on a path; use tasks/hostfs (hf_* functions) instead: %.120q",
					fset.Position(lit.Pos()), m[1], s)
			}
			return true
		})
	}
	if checked < 100 {
		t.Fatalf("checked only %d string literals: is the test running in tasks/?", checked)
	}
}
