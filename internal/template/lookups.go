// Lookups (`lookup('env', ...)`, file, template, pipe, fileglob, first_found, password), run on the controller. env reads the env_vars the runner gives the template, never the process's environment.

package template

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/ferrydeploy/ferry/diag"
)

// lookups are the lookup plugins ferry has (short names; ansible.builtin.X too).
var lookups = []string{"env", "file", "pipe", "fileglob", "first_found", "password", "template"}

// checkLookup rejects lookup('NAME', ...) of a lookup ferry does not have
// when the playbook loads, not when the task runs.
func checkLookup(fn string, args []ast.Node) error {
	if fn != "$j_lookup" && fn != "$j_query" {
		return nil
	}
	if len(args) > 0 {
		if id, ok := args[0].(*ast.IdentifierNode); ok && id.Value == "$env" {
			args = args[1:] // envArg has given the lookup its variables
		}
	}
	if len(args) == 0 {
		return nil
	}
	s, ok := args[0].(*ast.StringNode)

	if !ok {
		return nil
	}
	name := strings.TrimPrefix(s.Value, "ansible.builtin.")
	for _, l := range lookups {
		if l == name {
			return nil
		}
	}
	return fmt.Errorf("lookup(%q) is not supported: ferry has the %s lookups (and env_vars.NAME)", s.Value, strings.Join(lookups, ", "))
}

// jLookup supports the lookups a deploy playbook uses on the controller: env,
// file. Its first argument is the variables (envArg puts them there): env
// reads their env_vars, the environment the runner chose to show playbooks,
// never the process's own (which holds credentials a play did not name).
func jLookup(a []any, kw kwargs) (any, error) {
	env, _ := arg(a, 0).(map[string]any) // envArg puts the variables first
	environ, _ := env["env_vars"].(map[string]any)
	a = a[min(1, len(a)):]
	kind := Text(arg(a, 0))
	var out []any
	for _, x := range a[min(1, len(a)):] {
		switch kind {
		case "env", "ansible.builtin.env":
			// The same rule as env_vars: the controller's credentials are
			// not for playbooks to read unless a play names them (and so
			// masks them); ferry's own never are.
			if name := Text(x); CredentialEnv(name) {
				return nil, fmt.Errorf("lookup('env', %q): it holds a credential; name it in the play's secrets: as env_vars.%s and use {{ env_vars.%s }} (masked in output); ferry's own SSH key, passphrase and become password are never exposed", name, name, name)
			}
			v, ok := environ[Text(x)]
			if !ok {
				v = kw["default"]
			}
			out = append(out, Text(v))
		case "file", "ansible.builtin.file":
			b, err := os.ReadFile(Text(x))
			if err != nil {
				return nil, fmt.Errorf("lookup('file'): %w", err)
			}
			out = append(out, strings.TrimRight(string(b), "\n"))
		default:
			v, err := moreLookup(kind, x, kw, env)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	if len(out) == 1 {
		return out[0], nil
	}
	return out, nil
}

// moreLookup runs the lookups beyond env and file, on the controller.
func moreLookup(kind string, x any, kw kwargs, env map[string]any) (any, error) {
	switch strings.TrimPrefix(kind, "ansible.builtin.") {
	case "template":
		// relative to the role's templates/, then the playbook's templates/ and directory
		name := Text(x)
		cands := []string{name}
		if !filepath.IsAbs(name) {
			cands = nil
			for _, base := range []string{Text(env["role_path"]), Text(env["playbook_dir"])} {
				if base != "" && base != "<nil>" {
					cands = append(cands, filepath.Join(base, "templates", name), filepath.Join(base, name))
				}
			}
			cands = append(cands, name)
		}
		for _, c := range cands {
			b, err := os.ReadFile(c)
			if err != nil {
				continue
			}
			return RenderTemplateFile(string(b), diag.Pos{File: c, Line: 1, Col: 1}, env)
		}
		return nil, fmt.Errorf("lookup('template', %q): not found in %s", name, strings.Join(cands, ", "))
	case "pipe":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", Text(x))
		cmd.Env = pipeEnv(env)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("lookup('pipe', %q): %w", Text(x), err)
		}
		return strings.TrimRight(string(out), "\n"), nil
	case "fileglob":
		m, err := filepath.Glob(Text(x))
		if err != nil {
			return nil, fmt.Errorf("lookup('fileglob'): %w", err)
		}
		return strings.Join(m, ","), nil
	case "first_found":
		var files, paths []string
		switch v := x.(type) {
		case []any:
			for _, f := range v {
				files = append(files, Text(f))
			}
		case map[string]any:
			for _, key := range []string{"files", "paths"} {
				var l []string
				switch w := v[key].(type) {
				case []any:
					for _, f := range w {
						l = append(l, Text(f))
					}
				case string:
					l = strings.Split(w, ",")
				}
				if key == "files" {
					files = l
				} else {
					paths = l
				}
			}
		default:
			files = []string{Text(v)}
		}
		if len(paths) == 0 {
			paths = []string{""}
		}
		for _, f := range files {
			for _, p := range paths {
				cand := filepath.Join(p, f)
				if st, err := os.Stat(cand); err == nil && !st.IsDir() {
					abs, _ := filepath.Abs(cand)
					return abs, nil
				}
			}
		}
		if toBool(kw["skip"]) {
			return []any{}, nil
		}
		return nil, fmt.Errorf("lookup('first_found'): none of %s exists", strings.Join(files, ", "))
	case "password":
		return passwordLookup(Text(x))
	}
	return nil, fmt.Errorf("lookup(%q) is not supported: ferry has the %s lookups (and env_vars.NAME)", kind, strings.Join(lookups, ", "))
}

// passwordLookup is Ansible's password lookup: "PATH length=N chars=..."
// reads the password stored at PATH, or makes one and stores it there
// (0600); /dev/null stores nothing.
func passwordLookup(spec string) (any, error) {
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return nil, errors.New("lookup('password'): want a path")
	}
	path, length, chars := fields[0], 20, ""
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "length":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1024 {
				return nil, fmt.Errorf("lookup('password'): length=%s: want 1 to 1024", v)
			}
			length = n
		case "chars":
			for _, c := range strings.Split(v, ",") {
				switch c {
				case "ascii_letters":
					chars += "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				case "ascii_lowercase":
					chars += "abcdefghijklmnopqrstuvwxyz"
				case "ascii_uppercase":
					chars += "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				case "digits":
					chars += "0123456789"
				case "punctuation":
					chars += ".,:-_"
				default:
					chars += c
				}
			}
		}
	}
	if chars == "" {
		chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:-_"
	}
	if path != "/dev/null" {
		if b, err := os.ReadFile(path); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			pw, _, _ := strings.Cut(first, " salt=")
			return pw, nil
		}
	}
	rs := []rune(chars)
	out := make([]rune, length)
	for i := range out {
		n, err := crand.Int(crand.Reader, big.NewInt(int64(len(rs))))
		if err != nil {
			return nil, fmt.Errorf("lookup('password'): %w", err)
		}
		out[i] = rs[n.Int64()]
	}
	pw := string(out)
	if path != "/dev/null" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("lookup('password'): %w", err)
		}
		if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("lookup('password'): %w", err)
		}
	}
	return pw, nil
}

// pipeEnv is the environment of a pipe lookup's command: the env_vars the
// template was given (the controller's, without credentials a play did not
// name), never the process's own, which holds ferry's SSH key passphrase
// and become password. Never nil: a nil Env would inherit the process's.
func pipeEnv(vars map[string]any) []string {
	ev, _ := vars["env_vars"].(map[string]any)
	out := make([]string, 0, len(ev))
	for _, k := range slices.Sorted(maps.Keys(ev)) {
		out = append(out, k+"="+Text(ev[k]))
	}
	return out
}
