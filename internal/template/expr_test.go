package template

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/diag"
)

var testVars = map[string]any{
	"version": "1.2.3",
	"n":       3,
	"ports":   []any{8080, 8081},
	"extra":   map[string]any{},
	"host":    map[string]any{"tags": map[string]any{"Name": "web1"}, "private_ip": "10.0.0.1"},
	"path":    "/opt/api/bin/api",
	"flag":    true,
	"result":  map[string]any{"rc": 0, "stdout": `{"ok": true}`},
}

func TestTemplateRender(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		{"plain text", "plain text"},
		{"{{ version }}", "1.2.3"},
		{"{{ n }}", 3},                     // one {{ }}: the type is kept
		{"{{ ports }}", []any{8080, 8081}}, // a list stays a list
		{"{{ flag }}", true},
		{"v{{ n }}", "v3"}, // text around it: rendered as text
		{"{{ n }}{{ n }}", "33"},
		{"ports={{ ports }}", "ports=[8080,8081]"},    // lists as JSON in text
		{"{{ extra.version ?? 'dev' }}", "dev"},       // missing key → default
		{"{{ missing ?? 'dflt' }}", "dflt"},           // undefined → default
		{"{{ missing.a.b ?? 7 }}", 7},                 // whole chain is nil-safe
		{"{{ missing ?? also_missing ?? 'x' }}", "x"}, // chained defaults
		{"{{ default(missing, 'd') }}", "d"},
		{"{{ host.tags.Name }}", "web1"},
		{"{{ n * 2 + 1 }}", 7},
		{"{{ 1.5 * 2 }}", 3.0},
		{"x{{ 1.5 * 2 }}", "x3"},
		{"{{ upper(version) }}", "1.2.3"},
		{"{{ 'a,b' | split(',') }}", []any{"a", "b"}}, // Jinja's split: a list of any
		{"{{ basename(path) }}-{{ dirname(path) }}", "api-/opt/api/bin"},
		{"{{ from_json(result.stdout).ok }}", true},
		{"{{ to_json({a: 1}) }}", `{"a":1}`},
		{"{{ quote(\"it's\") }}", `'it'\''s'`},
		{"{{ filter(ports, # > 8080) }}", []any{8081}},
		{"{{ map(ports, # + 1) }}", []any{8081, 8082}},
		{"{{ let x = n; x * x }}", 9},
		{"{{ {a: {b: 1}}.a.b }}", 1},
		{`{{ "}}" }}`, "}}"},
		{"{{ '{{' }} literal", "{{ literal"},
		{"{{ len(ports) > 1 ? 'many' : missing }}", "many"}, // the branch not taken may be undefined
		{"{{ \"name\" in $env }}", false},
		{"{{ nil ?? 1 }}", 1},
		{"line1\n{{ version }}\n", "line1\n1.2.3\n"},
	}
	for _, tc := range tests {
		tp, err := CompileTemplate(tc.src, diag.Pos{File: "f.yml", Line: 1, Col: 1})
		if err != nil {
			t.Errorf("%q: compile: %v", tc.src, err)
			continue
		}
		got, err := tp.Render(testVars)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %#v, want %#v", tc.src, got, tc.want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	pos := diag.Pos{File: "f.yml", Line: 4, Col: 9}
	tests := []struct {
		src, name, msg, hint string
	}{
		{"{{ verison }}", "verison", `undefined variable "verison"`, `did you mean "version"?`},
		{"echo {{ nope }}", "nope", `undefined variable "nope"`, "nope | default(...)"},
		{"{{ missing.a }}", "missing", `undefined variable "missing"`, ""},
		{"{{ len(missing) }}", "missing", `undefined variable "missing"`, ""},
		{"{{ n > 1 ? missing : 1 }}", "missing", `undefined variable "missing"`, ""},
		{"{{ extra.version }}", "", "value is nil", `extra.version | default('')`},
		{"x {{ host.tags.Owner }}", "", "value is nil", ""},
		{"{{ n.a }}", "", "cannot fetch a from int", ""},
	}
	for _, tc := range tests {
		tp, err := CompileTemplate(tc.src, pos)
		if err != nil {
			t.Errorf("%q: compile: %v", tc.src, err)
			continue
		}
		_, err = tp.Render(testVars)
		var ee *EvalError
		if !errors.As(err, &ee) {
			t.Errorf("%q: err = %v, want *EvalError", tc.src, err)
			continue
		}
		if ee.Name != tc.name || !strings.Contains(ee.Msg, tc.msg) || !strings.Contains(ee.Hint, tc.hint) || ee.Pos != pos {
			t.Errorf("%q: got name %q msg %q hint %q pos %v", tc.src, ee.Name, ee.Msg, ee.Hint, ee.Pos)
		}
		if tc.name != "" {
			var ue *UndefinedError
			if !errors.As(err, &ue) || ue.Name != tc.name {
				t.Errorf("%q: no UndefinedError in chain", tc.src)
			}
			if !strings.Contains(err.Error(), "f.yml:4:9") || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("%q: message %q lacks position or name", tc.src, err)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ src, msg string }{
		{"{{ }}", "empty {{ }}"},
		{"{{ a", "unclosed {{"},
		{"{{ a + }}", "unexpected token"},
		{"{{ 'abc }}", "unterminated string"},
		{"{{ a } }}", "unbalanced }"},
		{"{{ nosuchfn(1) }}", "unknown function nosuchfn()"},
		{"{{ a }} {{ b + }} {{ c ++ }}", "2 problems"},
	}
	for _, tc := range tests {
		_, err := CompileTemplate(tc.src, diag.Pos{File: "f.yml", Line: 2, Col: 3})
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "f.yml:2:3") {
			t.Errorf("%q: err = %v, want %q", tc.src, err, tc.msg)
		}
		if !diag.IsInvalidInput(err) {
			t.Errorf("%q: compile error is not invalid input", tc.src)
		}
	}
}

func TestExpr(t *testing.T) {
	e, err := CompileExpr("result.rc == 0 && len(ports) == 2", diag.Pos{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.Bool(testVars); err != nil || !ok {
		t.Errorf("Bool = %v, %v", ok, err)
	}
	e, _ = CompileExpr("ports", diag.Pos{})
	if v, err := e.Eval(testVars); err != nil || !reflect.DeepEqual(v, []any{8080, 8081}) {
		t.Errorf("Eval = %v, %v", v, err)
	}
	if _, err := e.Bool(testVars); err == nil || !strings.Contains(err.Error(), "want true or false") {
		t.Errorf("Bool of a list: %v", err)
	}
	e, _ = CompileExpr("flag || undefined_thing", diag.Pos{})
	if ok, err := e.Bool(testVars); err != nil || !ok {
		t.Errorf("short circuit: %v, %v", ok, err)
	}
	e, _ = CompileExpr("!flag && undefined_thing", diag.Pos{})
	if ok, err := e.Bool(testVars); err != nil || ok {
		t.Errorf("short circuit: %v, %v", ok, err)
	}
	e, _ = CompileExpr("undefined_thing == 1", diag.Pos{Line: 3})
	var ue *UndefinedError
	if _, err := e.Bool(testVars); !errors.As(err, &ue) || ue.Name != "undefined_thing" {
		t.Errorf("undefined: %v", err)
	}
	if _, err := CompileExpr("a ==", diag.Pos{File: "f", Line: 1, Col: 1}); err == nil {
		t.Error("syntax error not reported")
	}
}

func TestCache(t *testing.T) {
	// A source no other test (nor an earlier -count run) has compiled.
	src := fmt.Sprintf("{{ n + %d }}", time.Now().UnixNano())
	before := cacheLen()
	t1, err := CompileTemplate(src, diag.Pos{Line: 1})
	if err != nil {
		t.Fatal(err)
	}
	mid := cacheLen()
	t2, _ := CompileTemplate(src, diag.Pos{Line: 2})
	if mid != before+1 || cacheLen() != mid {
		t.Errorf("cache sizes %d %d %d: a source must compile once", before, mid, cacheLen())
	}
	if t1.parts[0].p != t2.parts[0].p {
		t.Error("the same source compiled twice")
	}
	if t1.Pos == t2.Pos {
		t.Error("positions must stay per template")
	}
	// RenderValue reuses the cache too
	if _, err := RenderValue(map[string]any{"a": []any{src}}, testVars); err != nil {
		t.Fatal(err)
	}
	if cacheLen() != mid {
		t.Error("RenderValue compiled again")
	}
}

func TestRenderValue(t *testing.T) {
	in := map[string]any{
		"name":  "{{ version }}",
		"ports": "{{ ports }}",
		"list":  []any{"a-{{ n }}", 5, nil, map[string]any{"deep": "{{ flag }}"}},
		"num":   42,
	}
	got, err := RenderValue(in, testVars)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name":  "1.2.3",
		"ports": []any{8080, 8081},
		"list":  []any{"a-3", 5, nil, map[string]any{"deep": true}},
		"num":   42,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	if in["name"] != "{{ version }}" {
		t.Error("RenderValue modified its input")
	}
	if _, err := RenderValue([]any{"{{ nope }}"}, testVars); err == nil {
		t.Error("undefined in a list not reported")
	}
}

func TestText(t *testing.T) {
	for v, want := range map[any]string{nil: "", 3: "3", 2.5: "2.5", 1e21: "1000000000000000000000", true: "true", "s": "s"} {
		if got := Text(v); got != want {
			t.Errorf("Text(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestDefinedGuards(t *testing.T) {
	for src, want := range map[string]string{
		"releasever is defined":                         "releasever",
		"a is defined and b is defined":                 "a,b",
		"a is defined and a | length > 0":               "a",
		"x.y is defined":                                "x",
		"not (x is undefined)":                          "x",
		"a is defined or b is defined":                  "", // either may be missing
		"a is not defined":                              "",
		"releasever is undefined":                       "",
		"groups['db'] is defined and ok is defined":     "groups,ok",
		"a is defined and (b is defined and c == 1)":    "a,b",
		"inventory_hostname == 'x' and y is defined":    "y",
		"(x | default('')) == '' and z is defined":      "z",
		"not a is undefined":                            "a",
		"a is defined and b is defined or c is defined": "",
	} {
		e, err := CompileExpr(src, diag.Pos{})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := strings.Join(e.DefinedGuards(), ","); got != want {
			t.Errorf("%s: guards %q, want %q", src, got, want)
		}
	}
}
