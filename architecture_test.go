// Package ferry_test holds the tests of the tree as a whole: which package
// may import which (ARCHITECTURE.md explains the directions), and that
// ARCHITECTURE.md and the README's layout table name every package.
package ferry_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// allowedImports is, for every package of the module, the module's packages
// it may import (test files aside). Imports point down: foundations import
// nothing of ferry; the concepts over them (template, ssh, inventory, ...)
// import foundations; the runner imports concepts; the CLI imports the
// runner; cmd/ imports the CLI. A new import or a new package is a decision:
// add it here and to ARCHITECTURE.md's map.
var allowedImports = map[string][]string{
	// Foundations: one idea each, no ferry imports.
	"diag":                           nil,
	"events":                         nil,
	"internal/exitcode":              nil,
	"internal/parallel":              nil,
	"internal/shell":                 nil,
	"internal/value":                 nil,
	"internal/yamlnode":              nil,
	"internal/yamlnode/yamlnodetest": nil,

	// Concepts over the foundations.
	"internal/template": {"diag", "internal/shell", "internal/value"},
	"awsapi":            {"internal/parallel"},
	"ssh":               {"internal/parallel", "internal/shell"},
	"inventory":         {"diag", "internal/value", "internal/yamlnode"},
	"inventory/ec2":     {"awsapi", "diag", "internal/parallel", "internal/template", "internal/value", "internal/yamlnode", "inventory"},
	"environments":      {"diag", "internal/shell", "internal/template", "internal/value", "internal/yamlnode", "internal/parallel", "output"},
	"output":            {"events"},
	"tui":               {"events"},
	"tasks":             {"awsapi", "internal/parallel", "internal/shell", "internal/value", "ssh", "tasks/hostfs"},
	"tasks/hostfs":      {"internal/shell"},
	"internal/worker":   {"awsapi"},
	"internal/promtext": nil,
	"report":            {"events", "output", "tasks"},

	// The runner.
	"playbooks": {"awsapi", "diag", "events", "internal/exitcode", "internal/parallel", "internal/promtext", "internal/shell", "internal/template",
		"internal/value", "internal/yamlnode", "inventory", "output", "ssh", "tasks"},
	"playbooks/examples/app": nil,

	// The commands, and the binary.
	"internal/cli": {"awsapi", "diag", "environments", "events", "internal/exitcode", "internal/parallel", "internal/shell",
		"internal/template", "internal/value", "internal/worker", "inventory", "inventory/ec2", "output", "playbooks", "report", "ssh", "tasks", "tui"},
	"cmd/ferry": {"internal/cli"},

	// Test rigs: the lab, the emulators, the TUI demo. No product package
	// imports them (only tests do).
	"internal/testrig/lab":                     {"internal/testrig/lab/systemctl", "internal/parallel", "internal/shell"},
	"internal/testrig/lab/systemctl":           nil,
	"internal/testrig/lab/awslab":              {"internal/testrig/awsemu", "internal/testrig/lab"},
	"internal/testrig/lab/cmd/ferry-lab":       {"internal/testrig/lab", "internal/testrig/lab/awslab", "internal/testrig/lab/load"},
	"internal/testrig/lab/load":                nil,
	"internal/testrig/awsemu":                  nil,
	"internal/testrig/awsemu/cmd/awsemu-serve": {"internal/testrig/awsemu"},
	"internal/testrig/sqsemu":                  nil,
	"internal/testrig/browsertest":             nil,
	"report/reporttest":                        {"internal/testrig/browsertest"},
	"tui/internal/demo":                        {"events", "internal/parallel"},
	"tui/cmd/tuidemo":                          {"events", "tui", "tui/internal/demo"},

	// Test-only packages (no imports outside their tests).
	"":     nil, // this package: the tree's tests
	"docs": nil,
}

// neverImports are the rules the table above must keep, checked over every
// dependency (not only direct imports): the expression engine, inventory
// plugins and environments are read by the runner, never the other way, so
// they must not drag in the runner, the modules or the SSH client.
var neverImports = map[string][]string{
	"internal/template": {"playbooks", "tasks", "ssh"},
	"inventory/...":     {"playbooks", "tasks", "ssh"},
	"environments":      {"playbooks", "tasks", "ssh"},
}

// knownViolations are breaches of neverImports still in the tree, each with
// why and what removes it. The test fails when one is no longer needed.
var knownViolations = map[[2]string]string{}

// templateThirdParty are the only modules outside the standard library the
// expression engine may use: expr-lang itself, and YAML for to_yaml/from_yaml.
// go-jmespath (a leaf itself, standard library only) is json_query's
// engine: JMESPath is what Ansible's filter speaks.
var templateThirdParty = []string{"github.com/expr-lang/expr", "gopkg.in/yaml.v3", "github.com/jmespath/go-jmespath"}

type pkg struct {
	path     string // relative to the module ("" for the root)
	imports  []string
	standard bool
}

func goList(t *testing.T, args ...string) []pkg {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list packages: %v", err)
	}
	cmd := exec.Command(gobin, append([]string{"list", "-f", "{{.ImportPath}}\t{{.Standard}}\t{{join .Imports \" \"}}"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 3)
		if len(f) != 3 {
			continue
		}
		p := pkg{path: f[0], standard: f[1] == "true"}
		if f[2] != "" {
			p.imports = strings.Fields(f[2])
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

const module = "github.com/ferrydeploy/ferry"

// rel is path relative to the module, and whether it is in the module.
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func matches(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func TestImportDirections(t *testing.T) {
	pkgs := goList(t, "./...")
	seen := map[string]bool{}
	for _, p := range pkgs {
		r, _ := rel(p.path)
		seen[r] = true
		allowed, ok := allowedImports[r]
		if !ok {
			t.Errorf("package %q is not in allowedImports: decide what it may import, add it there and to ARCHITECTURE.md", r)
			continue
		}
		for _, imp := range p.imports {
			ri, ours := rel(imp)
			if ours && !slices.Contains(allowed, ri) {
				t.Errorf("%s imports %s: not an allowed direction (allowedImports; ARCHITECTURE.md says why)", r, ri)
			}
		}
	}
	for r := range allowedImports {
		if !seen[r] {
			t.Errorf("allowedImports names %q, which is not a package any more: remove it", r)
		}
	}

	// The never rules, over every dependency.
	used := map[[2]string]bool{}
	for pattern, banned := range neverImports {
		for _, root := range goList(t, "./"+pattern) {
			r, _ := rel(root.path)
			for _, d := range goList(t, "-deps", "./"+r) {
				dr, ok := rel(d.path)
				if !ok || !slices.Contains(banned, dr) {
					continue
				}
				if _, known := knownViolations[[2]string{r, dr}]; known {
					used[[2]string{r, dr}] = true
					continue
				}
				t.Errorf("%s depends on %s: %s must not import %v (the runner reads it, not the other way)", r, dr, pattern, banned)
			}
		}
	}
	for key, why := range knownViolations {
		if !used[key] {
			t.Errorf("known violation %s -> %s (%s) is gone: remove it from knownViolations", key[0], key[1], why)
		}
	}
}

// The expression engine is a leaf: the standard library, expr-lang, YAML, JMESPath,
// and three foundations; nothing else, and no read of the process
// environment (lookup('env') reads the variables it is given).
func TestTemplateIsALeaf(t *testing.T) {
	for _, d := range goList(t, "-deps", "./internal/template") {
		if d.standard {
			continue
		}
		if r, ok := rel(d.path); ok {
			if r != "internal/template" && !slices.Contains(allowedImports["internal/template"], r) {
				t.Errorf("internal/template depends on %s", r)
			}
			continue
		}
		if !slices.ContainsFunc(templateThirdParty, func(m string) bool { return matches(m+"/...", d.path) }) {
			t.Errorf("internal/template depends on %s: only %v outside the standard library", d.path, templateThirdParty)
		}
	}
	envRead := regexp.MustCompile(`\bos\.(Getenv|LookupEnv|Environ|ExpandEnv)\b`)
	files, err := os.ReadDir("internal/template")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile("internal/template/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if loc := envRead.FindIndex(b); loc != nil {
			t.Errorf("internal/template/%s:%d reads the process environment (%s): take it from the variables",
				f.Name(), bytes.Count(b[:loc[0]], []byte("\n"))+1, b[loc[0]:loc[1]])
		}
	}
}

// ARCHITECTURE.md names every package (in backquotes); README's layout
// table names every top-level package (a top-level directory, or
// internal/NAME).
func TestArchitectureNamesEveryPackage(t *testing.T) {
	arch, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "## Layout")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	for _, p := range goList(t, "./...") {
		r, _ := rel(p.path)
		if r == "" {
			if !bytes.Contains(arch, []byte("`architecture_test.go`")) {
				t.Error("ARCHITECTURE.md does not name the root package (`architecture_test.go`)")
			}
			continue
		}
		if !bytes.Contains(arch, []byte("`"+r+"`")) {
			t.Errorf("ARCHITECTURE.md does not name package `%s`", r)
		}
		top, rest, _ := strings.Cut(r, "/")
		if top == "internal" {
			sub, _, _ := strings.Cut(rest, "/")
			top += "/" + sub
		}
		if !strings.Contains(layout, "`"+top) {
			t.Errorf("README.md's layout table does not name `%s`", top)
		}
	}
}
