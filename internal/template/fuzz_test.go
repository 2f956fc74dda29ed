package template

import (
	"errors"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// FuzzTemplate: any string compiles to a template or fails with a
// positioned error, and renders or fails with a positioned EvalError.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"plain", "{{ a }}", "x {{ a + 1 }} y", "{{ extra.v ?? 'd' }}", "{{ a.b.c ?? b ?? 1 }}",
		"{{ let x = a; x }}", "{{ filter(l, # > 1) }}", "{{ default(q, 1) }}", "{{ '}}' }}", "{{ {a: {b: 1}} }}",
		"{{", "}}", "{{ }}", "{{ a } }}", "{{ nosuch(1) }}", "{{ l | map(# * 2) | sum() }}", "{{ $env.a }}",
		"{{ basename(a) }}", "{{ from_json('{\"x\": [1]}').x[0] }}",
		"x{% if a %}y{{ a }}{% elif s %}z{% else %}w{% endif %}", "{%- if a -%}\n {{ l }}\n{%- endif %}", "{% raw %}{{ a }}{% endraw %}",
		"{% if a %}", "{% endif %}", "{% if a %}{% if s %}{% endif %}",
	} {
		f.Add(s)
	}
	vars := map[string]any{"a": 1, "l": []any{1, 2, 3}, "extra": map[string]any{}, "s": "text"}
	f.Fuzz(func(t *testing.T, src string) {
		tp, err := CompileTemplate(src, diag.Pos{File: "f", Line: 1, Col: 1})
		if err != nil {
			if !diag.IsInvalidInput(err) {
				t.Fatalf("compile error %T is not a diag error: %v", err, err)
			}
			return
		}
		v, err := tp.Render(vars)
		if err != nil {
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Pos.Line != 1 {
				t.Fatalf("render error %T is not a positioned EvalError: %v", err, err)
			}
			return
		}
		if !HasTemplate(src) && v != src {
			t.Fatalf("text without {{ changed: %q -> %v", src, v)
		}
		_ = tp.Refs()
		if e, err := CompileExpr(src, diag.Pos{}); err == nil {
			_, _ = e.Eval(vars)
		}
	})
}
