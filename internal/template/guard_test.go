package template

import (
	"sort"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// A variable read only where a condition proves it defined is not a strict
// reference (no "undefined variable" from ferry check): `x if x is defined
// else y`, `x is defined and x`, `x is not defined or not x`; where the
// condition proves nothing, it stays strict.
func TestDefinedGuardRefs(t *testing.T) {
	for src, want := range map[string]string{
		"{{ a if a is defined else 1 }}":                                "",
		"{{ a.b if a is defined else 1 }}":                              "",
		"{{ a if a is not defined else 1 }}":                            "a",
		"{{ 1 if a is not defined else a }}":                            "",
		"{{ (d | select('in', e.split(','))) if e is defined else d }}": "d",
		"{{ b is not defined or not b }}":                               "",
		"{{ b is defined or b }}":                                       "b",
		"{{ c is defined and c }}":                                      "",
		"{{ c is not defined and c }}":                                  "c",
		"{{ x is defined and y is defined and x + y }}":                 "",
		"{{ not (x is defined) or x }}":                                 "",
		"{{ z if y is defined else w }}":                                "w,z",
	} {
		tm, err := CompileTemplate(src, diag.Pos{File: "t.yml", Line: 1, Col: 1})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		var strict []string
		seen := map[string]bool{}
		for _, r := range tm.Refs() {
			if r.Strict && !seen[r.Name] {
				seen[r.Name] = true
				strict = append(strict, r.Name)
			}
		}
		sort.Strings(strict)
		if got := strings.Join(strict, ","); got != want {
			t.Errorf("%s: strict refs %q, want %q", src, got, want)
		}
	}
}
