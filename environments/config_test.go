package environments

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

const sample = `environments:
  staging: {inventory: inventory/staging.aws_ec2.yml}
  prod:    {inventory: inventory/prod.aws_ec2.yml, protected: true}
  lab:     {inventory: [inventory/lab.ini, /abs/extra.yml], limit: "app:!canary", vars: {replicas: 2}}
personal:
  branch_pattern: '^(?:remote-run|dev)/(?P<user>[a-z0-9-]+)/'
  env: 'dev-{{ user }}'
  inventory: inventory/personal.aws_ec2.yml
  limit: 'dev_{{ user }}'
`

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse("/repo/ferry.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestParse(t *testing.T) {
	cfg := mustParse(t, sample)
	if got := strings.Join(cfg.Names(), ","); got != "lab,prod,staging" {
		t.Fatalf("names %s", got)
	}
	lab := cfg.Environments["lab"]
	if lab.Inventory[0] != "/repo/inventory/lab.ini" || lab.Inventory[1] != "/abs/extra.yml" || lab.Limit != "app:!canary" || lab.Vars["replicas"] != 2 {
		t.Fatalf("lab: %+v", lab)
	}
	if !cfg.Environments["prod"].Protected || cfg.Environments["staging"].Protected {
		t.Fatal("protected")
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{"environments:\n  prod: {inventroy: x}\n", `ferry.yml:2:10: unknown key "inventroy"`},
		{"environments:\n  prod: {inventroy: x}\n", `did you mean "inventory"?`},
		{"enviroments: {}\n", `did you mean "environments"?`},
		{"environments:\n  prod: {inventory: x, protected: yes please}\n", "ferry.yml:2:35: protected must be true or false"},
		{"environments:\n  'bad name': {inventory: x}\n", "ferry.yml:2:3: environment name"},
		{"environments:\n  prod: {limit: web}\n", "has no inventory"},
		{"personal:\n  branch_pattern: '(?P<user>'\n  env: 'dev-{{ user }}'\n  inventory: x\n", "ferry.yml:2:19: branch_pattern: error parsing regexp"},
		{"personal:\n  branch_pattern: '^dev/(?P<user>[a-z]+)/'\n  env: 'dev-{{ usr }}'\n  inventory: x\n", `ferry.yml:3:8: env uses "usr"`},
		{"personal:\n  branch_pattern: '^dev/(?P<user>[a-z]+)/'\n  env: 'dev-{{ user '\n  inventory: x\n", "ferry.yml:3"},
		{"personal:\n  env: 'dev-{{ user }}'\n", "personal has no branch_pattern"},
		{"environments: [a, b]\n", "environments must be a mapping"},
		{"environments:\n  prod: {inventory: x}\n  prod: {inventory: y}\n", `"prod" is given twice`},
		{"environments:\n  lab: {inventory: x, vars: {env: 1}}\n", `"env" is reserved`},
		{"environments:\n  prod: {inventory: x\n", "ferry.yml:2:3: YAML"},
		{"environments:\n  prod: {inventory: x}\npersonal:\n  branch_pattern: '^dev/'\n  env: prod\n  inventory: y\n", `personal env "prod" is the name of an environment`},
	}
	for _, c := range cases {
		_, err := Parse("ferry.yml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) || !diag.IsInvalidInput(err) {
			t.Errorf("%q:\n got %v\nwant %q", c.src, err, c.want)
		}
	}
}

func TestAliasBomb(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nenvironments:\n  e: {inventory: x, vars: {v: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]}}\n"
	if _, err := Parse("f.yml", []byte(src)); err == nil {
		t.Fatal("no error")
	}
}

func resolve(t *testing.T, cfg *Config, req Request) (*Target, error) {
	t.Helper()
	if req.Git == nil {
		req.Git = func(context.Context) (string, error) { return "", errors.New("no git") }
	}
	return Resolve(context.Background(), cfg, req)
}

func TestGuardRails(t *testing.T) {
	cfg := mustParse(t, sample)
	tg, err := resolve(t, cfg, Request{Branch: "remote-run/ben/x"})
	if err != nil || tg.Name != "dev-ben" || tg.Limit != "dev_ben" || tg.Inventory[0] != filepath.Join("/repo", "inventory/personal.aws_ec2.yml") || !tg.Personal {
		t.Fatalf("%+v %v", tg, err)
	}
	refused := []struct {
		req  Request
		want string
	}{
		{Request{Branch: "main"}, "matches no personal pattern"},
		{Request{Branch: "dev/prod/x"}, `names environment "prod"`},
		{Request{Branch: "dev/staging/x"}, `names environment "staging"`},
		{Request{Env: "prod", Guard: true}, "pass --yes"},
		{Request{Env: "prd"}, `did you mean "prod"?`},
		{Request{Env: "prod", Branch: "dev/ben/x"}, "pass one"},
		{Request{Env: "../etc"}, "not a valid environment name"},
	}
	for _, c := range refused {
		_, err := resolve(t, cfg, c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) || !diag.IsInvalidInput(err) {
			t.Errorf("%+v: got %v, want %q", c.req, err, c.want)
		}
	}
	if _, err := resolve(t, cfg, Request{Branch: "main"}); !strings.Contains(err.Error(), cfg.Personal.Pattern.String()) {
		t.Errorf("the refusal does not list the pattern: %v", err)
	}
	// A protected environment: with --yes, or a terminal; read-only commands need neither.
	for _, req := range []Request{{Env: "prod", Guard: true, Yes: true}, {Env: "prod", Guard: true, Interactive: true}, {Env: "prod"}} {
		if tg, err := resolve(t, cfg, req); err != nil || !tg.Protected {
			t.Errorf("%+v: %v", req, err)
		}
	}
	// A personal pattern whose env renders to a named or protected environment.
	bad := mustParse(t, "environments:\n  prod: {inventory: p, protected: true}\n  qa: {inventory: q}\npersonal:\n  branch_pattern: '^dev/(?P<user>[a-z]+)/'\n  env: '{{ user }}'\n  inventory: x\n")
	for _, b := range []string{"dev/prod/x", "dev/qa/x"} {
		if _, err := resolve(t, bad, Request{Branch: b}); err == nil {
			t.Errorf("%s was not refused", b)
		}
	}
	// {{ env }} in a named environment's inventory path and limit.
	tpl := mustParse(t, "environments:\n  qa: {inventory: 'inv/{{ env }}.yml', limit: 'app:&env_{{ env }}'}\n")
	if tg, err := resolve(t, tpl, Request{Env: "qa"}); err != nil || tg.Inventory[0] != "/repo/inv/qa.yml" || tg.Limit != "app:&env_qa" {
		t.Errorf("templated named environment: %+v %v", tg, err)
	}
	// --env finds a personal environment by name.
	tg, err = resolve(t, cfg, Request{Env: "dev-ben"})
	if err != nil || tg.Limit != "dev_ben" || tg.Groups["user"] != "ben" {
		t.Fatalf("--env dev-ben: %+v %v", tg, err)
	}
}

func TestDetectBranch(t *testing.T) {
	cfg := mustParse(t, sample)
	env := map[string]string{"CI_COMMIT_REF_NAME": "dev/ann/y", "BRANCH_NAME": "dev/bob/z"}
	tg, err := resolve(t, cfg, Request{Detect: true, Getenv: func(k string) string { return env[k] }})
	if err != nil || tg.Name != "dev-ann" {
		t.Fatalf("%+v %v", tg, err)
	}
	tg, err = resolve(t, cfg, Request{Detect: true, Git: func(context.Context) (string, error) { return "dev/cy/z", nil }})
	if err != nil || tg.Name != "dev-cy" {
		t.Fatalf("git: %+v %v", tg, err)
	}
	// Without Detect (an -i was given), nothing is resolved.
	if tg, err := resolve(t, cfg, Request{Getenv: func(k string) string { return env[k] }}); tg != nil || err != nil {
		t.Fatalf("%+v %v", tg, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("environments:\n  a: {inventory: [x, y], vars: {k: &x [1, *x]}}\n")
	f.Add("personal: {branch_pattern: '(?P<u>.)', env: '{{ u }}', inventory: '{{ env }}', limit: '{{'}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse("f.yml", []byte(src))
		if err != nil {
			if !diag.IsInvalidInput(err) {
				t.Fatalf("not an input error: %v", err)
			}
			return
		}
		for _, b := range []string{"dev/x/y", "main", "remote-run/a/b"} {
			tg, err := Resolve(context.Background(), cfg, Request{Branch: b, Git: func(context.Context) (string, error) { return "", nil }})
			if err == nil && tg != nil && cfg.Environments[tg.Name] != nil {
				t.Fatalf("branch %s reached named environment %s", b, tg.Name)
			}
		}
	})
}
