package template

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// json_query as ansible-bluegreen-docker uses it: the published host ports
// of every container a loop registered, flattened.
func TestJSONQuery(t *testing.T) {
	ports := func(hp ...string) map[string]any {
		m := map[string]any{}
		for i, p := range hp {
			m[[]string{"5000/tcp", "5001/tcp"}[i]] = []any{map[string]any{"HostIp": "0.0.0.0", "HostPort": p}}
		}
		return map[string]any{"ansible_facts": map[string]any{"docker_container": map[string]any{"NetworkSettings": map[string]any{"Ports": m}}}}
	}
	vars := map[string]any{
		"deploy": map[string]any{"results": []any{ports("40270"), ports("40271")}},
		"hosts":  []any{map[string]any{"name": "a", "port": 8080, "up": true}, map[string]any{"name": "b", "port": int64(9090), "up": false}},
	}
	for _, c := range []struct {
		src  string
		want any
	}{
		{"{{ deploy.results | json_query('[].ansible_facts.docker_container.NetworkSettings.Ports[].*[][] ') | map(attribute='HostPort') | list }}", []any{"40270", "40271"}},
		{"{{ hosts | json_query('[?up].name') }}", []any{"a"}},
		{"{{ hosts | json_query('[?port > `8500`].port') }}", []any{9090}},
		{"{{ hosts | json_query('[0].port') }}", 8080},
		{"{{ hosts | json_query('[5].port') }}", nil},
	} {
		tm, err := CompileTemplate(c.src, diag.Pos{File: "t.yml", Line: 1, Col: 1})
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		got, err := tm.Render(vars)
		if c.want == nil {
			if err == nil && got != nil {
				t.Errorf("%s = %#v, want nil", c.src, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, %v; want %#v", c.src, got, err, c.want)
		}
	}
	tm, _ := CompileTemplate("{{ hosts | json_query('[?') }}", diag.Pos{File: "t.yml", Line: 1, Col: 1})
	if _, err := tm.Render(vars); err == nil || !strings.Contains(err.Error(), "json_query") {
		t.Errorf("bad query: %v", err)
	}
}
