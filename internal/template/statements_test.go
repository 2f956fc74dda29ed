package template

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// {% if %} and {% raw %} in playbook strings render as Ansible renders them
// (whitespace control, trim_blocks), a lone {{ }} inside keeps its type.
func TestPlaybookStringStatements(t *testing.T) {
	vars := map[string]any{"bg": true, "color": "green", "n": 2, "local": map[string]any{"app": map[string]any{"count": 3}}, "ports": []any{1, 2}}
	for _, c := range []struct {
		src  string
		want any
	}{
		{"app{% if bg %}_{{ color }}{% endif %}_{{ n }}", "app_green_2"},
		{"app{% if not bg %}_{{ color }}{% endif %}_{{ n }}", "app_2"},
		{"{% if bg %}Color is {{ color | upper }}.{% endif %}", "Color is GREEN."},
		{"{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}", "two"},
		{"{% if n == 5 %}one{% elif n == 6 %}two{% else %}many{% endif %}", "many"},
		{"{% if n == 5 %}one{% elif n == 6 %}two{% endif %}", ""},
		// the folded block of ansible-bluegreen-docker's pre_tasks
		{"{%- if local['app'] is defined -%}\n  {{ local['app'].count }}\n{%- else -%}\n  {{ n }}\n{%- endif %}", 3},
		{"{%- if local['web'] is defined -%}\n  {{ local['web'].count }}\n{%- else -%}\n  {{ n }}\n{%- endif %}", 2},
		{"{% if bg %}\nline\n{% endif %}\nnext", "line\nnext"}, // trim_blocks
		{"{% if bg %}{% if n > 1 %}both{% else %}bg{% endif %}{% endif %}", "both"},
		{"{% if bg %}{{ ports }}{% endif %}", []any{1, 2}},
		{"docker ps --format '{% raw %}{{.ID}}{% endraw %}' -f name={{ color }}", "docker ps --format '{{.ID}}' -f name=green"},
		{"it's {% if bg %}\"quoted\" \\ {% endif %}", "it's \"quoted\" \\ "},
	} {
		tm, err := CompileTemplate(c.src, diag.Pos{File: "t.yml", Line: 1, Col: 1})
		if err != nil {
			t.Errorf("%q: %v", c.src, err)
			continue
		}
		got, err := tm.Render(vars)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q = %#v, %v; want %#v", c.src, got, err, c.want)
		}
	}
	if !HasTemplate("{% if x %}a{% endif %}") || HasTemplate("printf '{%s}' x") || HasTemplate("50{%}") {
		t.Error("HasTemplate")
	}
	for _, bad := range []string{"{% if x %}a", "a{% endif %}", "{% if %}a{% endif %}", "{% if x %}a{% else %}b{% elif y %}c{% endif %}", "{% raw %}x", "{% endraw %}", "{% if x %}{{ }}{% endif %}"} {
		if _, err := CompileTemplate(bad, diag.Pos{File: "t.yml", Line: 3, Col: 5}); err == nil || !strings.Contains(err.Error(), "t.yml:3:5") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// check sees the variables inside
	tm, _ := CompileTemplate("{% if bg %}{{ missing }}{% endif %}", diag.Pos{File: "t.yml", Line: 1, Col: 1})
	var names []string
	for _, r := range tm.Refs() {
		names = append(names, r.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "missing") || !strings.Contains(strings.Join(names, ","), "bg") {
		t.Errorf("refs: %v", names)
	}
}
