package worker

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pb", "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "pb", "sub", "deploy.yml"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "out.yml"), nil, 0o600)
	os.Symlink(filepath.Join(dir, "out.yml"), filepath.Join(dir, "pb", "out.yml"))
	p := &Policy{PlaybookDir: filepath.Join(dir, "pb"), Envs: []string{"staging", "dev-*", "prod"}}
	if got, err := p.Playbook("sub/deploy.yml"); err != nil || !strings.HasSuffix(got, "/pb/sub/deploy.yml") {
		t.Errorf("sub/deploy.yml: %q %v", got, err)
	}
	for _, bad := range []string{"", "/etc/passwd", "../out.yml", "sub/../../out.yml", "out.yml", "-x", "missing.yml", "a\x00b"} {
		if _, err := p.Playbook(bad); err == nil {
			t.Errorf("playbook %q allowed", bad)
		}
	}
	for env, protected := range map[string]bool{"staging": false, "dev-ben": false, "prod": true} {
		if err := p.Env(env, protected); err != nil {
			t.Errorf("env %s: %v", env, err)
		}
	}
	for env, protected := range map[string]bool{"qa": false, "dev-prod": true, "dev-x": true} {
		if err := p.Env(env, protected); err == nil {
			t.Errorf("env %s (protected %v) allowed", env, protected)
		}
	}
	if err := (&Policy{}).Env("prod", true); err == nil {
		t.Error("a protected environment allowed by an empty --allow-env")
	}
	if err := (&Policy{}).Env("qa", false); err != nil {
		t.Errorf("an empty --allow-env refuses an unprotected environment: %v", err)
	}

	name, re, err := ParseAllowVar("canary=true|false")
	if err != nil || name != "canary" {
		t.Fatal(name, err)
	}
	for _, bad := range []string{"canary", "=x", "x=("} {
		if _, _, err := ParseAllowVar(bad); err == nil {
			t.Errorf("--allow-var %q accepted", bad)
		}
	}
	p.Vars = map[string]*regexp.Regexp{"canary": re, "version": DefaultVars["version"]}
	if err := p.ExtraVars(map[string]any{"canary": true, "version": "v1.2.3"}); err != nil {
		t.Errorf("allowed values refused: %v", err)
	}
	for _, bad := range []map[string]any{
		{"canary": "truex"}, // the pattern matches whole
		{"canary": "maybe"},
		{"version": "v1 && id"},
		{"target": "localhost"},
		{"version": []any{"v1"}},
	} {
		if err := p.ExtraVars(bad); err == nil {
			t.Errorf("-e %v allowed", bad)
		}
	}
	if err := (&Policy{}).ExtraVars(map[string]any{"dist": "/x"}); err == nil {
		t.Error("the default allow-list lets -e dist through")
	}
}

// --allow-var never panics, and what it accepts matches values whole.
func FuzzParseAllowVar(f *testing.F) {
	for _, s := range []string{"version=v[0-9]+", "x=", "=", "a=(", "a=b|c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, re, err := ParseAllowVar(s)
		if err != nil {
			return
		}
		if name == "" || !strings.HasPrefix(re.String(), "^(?:") || !strings.HasSuffix(re.String(), ")$") {
			t.Fatalf("%q: name %q, pattern %s", s, name, re)
		}
	})
}
