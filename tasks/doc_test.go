package tasks

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/modules.md from the module Specs")

// TestModulesDocUpToDate: docs/modules.md is what the Specs say (`make docs`
// rewrites it).
func TestModulesDocUpToDate(t *testing.T) {
	const path = "../docs/modules.md"
	want := ModulesMarkdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: run `make docs`", path)
	}
}

// TestEveryModuleDocumented: ferry doc has something to say for every
// module and parameter.
func TestEveryModuleDocumented(t *testing.T) {
	for _, s := range Specs() {
		if s.Doc == "" {
			t.Errorf("module %s has no Doc", s.Name)
		}
		for k, p := range s.Params {
			if p.Doc == "" {
				t.Errorf("%s: parameter %s has no Doc", s.Name, k)
			}
		}
		if md := s.Markdown(); !strings.HasPrefix(md, "## "+s.Name+"\n") {
			t.Errorf("%s: markdown starts %q", s.Name, md[:20])
		}
	}
}
