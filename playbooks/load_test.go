package playbooks

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
)

func TestLoadExample(t *testing.T) {
	pb, err := Load("testdata/deploy.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pb.Plays) != 1 {
		t.Fatalf("plays = %d", len(pb.Plays))
	}
	p := pb.Plays[0]
	if p.Name != "Rolling deploy of api" || p.Hosts != "role_api" || p.Order != OrderByZone {
		t.Errorf("play header = %q %q %q", p.Name, p.Hosts, p.Order)
	}
	want := []SerialStep{{Count: 1}, {Percent: 25}, {Percent: 100}}
	if len(p.Serial) != 3 || p.Serial[0] != want[0] || p.Serial[1] != want[1] || p.Serial[2] != want[2] {
		t.Errorf("serial = %v", p.Serial)
	}
	if p.MaxFailures == nil || *p.MaxFailures != 2 || !p.RollbackCompleted || len(p.PauseAfter) != 1 || p.PauseAfter[0] != 1 {
		t.Errorf("failure settings = %v %v %v", p.MaxFailures, p.RollbackCompleted, p.PauseAfter)
	}
	if len(p.Vars) != 4 || p.Vars[0].Name != "unit" || p.Vars[3].Name != "ports" {
		t.Errorf("vars = %v", p.Vars)
	}
	if len(p.Before) != 1 || len(p.Tasks) != 7 || len(p.Rollback) != 1 || len(p.After) != 2 {
		t.Fatalf("task lists = %d %d %d %d", len(p.Before), len(p.Tasks), len(p.Rollback), len(p.After))
	}
	if !p.Before[0].Spec.Controller {
		t.Errorf("asg should be a controller module")
	}
	up := p.Tasks[1]
	if up.Args["mode"] != "0755" {
		t.Errorf("mode = %#v, want the YAML text \"0755\"", up.Args["mode"])
	}
	loop := p.Tasks[2]
	if !loop.HasLoop || loop.Register != "listening" || loop.Retries != 3 || loop.Delay != 2*time.Second || len(loop.Until) != 1 {
		t.Errorf("loop task = %+v", loop)
	}
	if loop.Args["cmd"] != `ss -ltn | grep -q ":{{ item }}"` {
		t.Errorf("free-form cmd = %#v", loop.Args["cmd"])
	}
	v := p.Tasks[3]
	if v.Become == nil || !*v.Become || v.BecomeUser != "api" || !v.NoLog || len(v.ChangedWhen) != 1 || v.Tags[0] != "version" {
		t.Errorf("task keys = %+v", v)
	}
	if p.Rollback[0].Module != "fx_shell" {
		t.Errorf("ansible.builtin alias = %q", p.Rollback[0].Module)
	}
	if p.Tasks[1].Pos != (diag.Pos{File: "testdata/deploy.yml", Line: 23, Col: 7}) {
		t.Errorf("task pos = %v", p.Tasks[1].Pos)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Errorf("check: %v", err)
	}
}

// TestRunnerFlow walks the example the way the runner will: vars, args, loop, conditions.
func TestRunnerFlow(t *testing.T) {
	pb, err := Load("testdata/deploy.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := pb.Plays[0]
	scope := &Scope{
		Inventory: map[string]any{"unit": "from-inventory", "az": "a"},
		Play:      p,
		Extra:     map[string]any{"version": "1.2.3"},
		Builtins:  map[string]any{"run": map[string]any{"status": "ok"}, "env": "staging", "host": map[string]any{}},
	}
	vars, err := scope.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if vars["unit"] != "api" || vars["version"] != "1.2.3" || vars["release_dir"] != "/opt/api/releases/1.2.3" {
		t.Errorf("vars = %v", vars)
	}
	args, err := p.Tasks[0].RenderArgs(vars)
	if err != nil || args["name"] != "api" || args["state"] != "stopped" {
		t.Errorf("args = %v, %v", args, err)
	}
	name, err := p.Tasks[0].RenderName(vars)
	if err != nil || name != "Stop api" {
		t.Errorf("name = %q, %v", name, err)
	}
	items, err := p.Tasks[2].LoopItems(vars)
	if err != nil || len(items) != 2 || items[0] != 8080 {
		t.Errorf("loop = %v, %v", items, err)
	}
	ok, err := p.Tasks[3].When.True(vars)
	if err != nil || !ok {
		t.Errorf("when = %v, %v", ok, err)
	}
	args, err = p.Tasks[3].RenderArgs(vars)
	if err != nil || args["cmd"] != "echo 1.2.3 > /opt/api/releases/1.2.3/VERSION\n" {
		t.Errorf("cmd = %q, %v", args["cmd"], err)
	}
	// the assert's `that` stays as written for the module to evaluate
	args, err = p.Tasks[6].RenderArgs(vars)
	if err != nil || len(args["that"].([]any)) != 2 {
		t.Errorf("that = %v, %v", args["that"], err)
	}
	// an undefined variable at run time names itself and its place
	_, err = p.Tasks[5].RenderArgs(vars)
	var ee *template.EvalError
	if !errors.As(err, &ee) || ee.Name != "deployed" || ee.Pos.Line != 46 || ee.Pos.Col != 37 {
		t.Errorf("render before set_fact: %v", err)
	}
	scope.Facts = map[string]any{"deployed": "1.2.3"}
	vars, _ = scope.Vars()
	args, err = p.Tasks[5].RenderArgs(vars)
	if err != nil || args["json"].(map[string]any)["version"] != "1.2.3" || args["status"] != 200 {
		t.Errorf("http args = %v, %v", args, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "line:col: message fragment | hint fragment"
	}{
		{"unknown play key", "- hosts: all\n  seral: 2\n  tasks: []\n",
			[]string{`2:3: unknown play key "seral" | did you mean "serial"?`}},
		{"module key at play level", "- hosts: all\n  fx_shell: echo\n",
			[]string{`2:3: unknown play key "fx_shell" | belongs to a task`}},
		{"no hosts", "- name: x\n  tasks: []\n", []string{`1:3: play has no hosts | add`}},
		{"serial word", "- hosts: all\n  serial: abc\n", []string{`2:11: serial: "abc" is not a number | serial is a host count`}},
		{"serial over 100", "- hosts: all\n  serial: [1, \"150%\"]\n", []string{`2:15: serial: 150% is out of range | between 1% and 100%`}},
		{"serial negative", "- hosts: all\n  serial: -1\n", []string{`2:11: serial: -1 is out of range | at least 1`}},
		{"serial map", "- hosts: all\n  serial: {a: 1}\n", []string{`2:11: serial: want a number or a percentage, not a mapping |`}},
		{"max fail percentage", "- hosts: all\n  max_fail_percentage: 150\n", []string{`2:24: max_fail_percentage: must be between 0 and 100 |`}},
		{"max fail negative", "- hosts: all\n  max_fail_percentage: -5\n", []string{`2:24: max_fail_percentage: must be between 0 and 100 |`}},
		{"order", "- hosts: all\n  order: sortd\n", []string{`2:10: order: "sortd" is not one of | did you mean "sorted"?`}},
		{"retries word", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      retries: x\n", []string{`4:16: retries: want a whole number |`}},
		{"delay", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      delay: soon\n", []string{`4:14: delay: "soon" is not a duration | e.g. 30s`}},
		{"when map", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      when: {a: 1}\n", []string{`4:13: when: want an expression, not a mapping |`}},
		{"unknown task key", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      regster: out\n", []string{`4:7: unknown module or task key "regster" | did you mean "register"?`}},
		{"unknown module", "- hosts: all\n  tasks:\n    - fx_shel: echo\n", []string{`3:7: unknown module or task key "fx_shel" | did you mean "fx_shell"?`}}, // one error, not two
		{"notify without handler", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      notify: restrat app\n  handlers:\n    - name: restart app\n      fx_shell: echo\n", []string{`3:7: notify: no handler is called "restrat app" | did you mean "restart app"?`}},
		{"unsupported ansible module", "- hosts: all\n  tasks:\n    - nagios: {action: silence}\n", []string{`3:7: module "nagios" is not supported by ferry | silence alerts`}},
		{"collection module", "- hosts: all\n  tasks:\n    - community.general.apk: {name: x}\n", []string{`3:7: module "community.general.apk" is not supported by ferry | does not manage packages`}},
		{"any windows module", "- hosts: all\n  tasks:\n    - win_get_url: {url: x, dest: y}\n    - ansible.windows.win_feature: {name: Web-Server}\n",
			[]string{`3:7: module "win_get_url" is not supported by ferry | Windows hosts are out of scope`, `4:7: module "ansible.windows.win_feature" is not supported by ferry | Windows hosts are out of scope`}},
		{"winrm connection", "- hosts: all\n  connection: winrm\n", []string{`2:15: connection: "winrm" is not supported on a play | Windows hosts are out of scope`}},
		{"ansible key", "- hosts: all\n  tasks:\n    - fx_shell: echo {{ item }}\n      with_random_choice: [a]\n", []string{`4:7: with_random_choice is not supported | loop:`}},
		{"two modules", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      fx_debug: {msg: hi}\n", []string{`4:7: task has two modules: fx_shell and fx_debug | split`}},
		{"no module", "- hosts: all\n  tasks:\n    - name: nothing\n", []string{`3:7: task has no module | add one module`}},
		{"unknown param", "- hosts: all\n  tasks:\n    - fx_svc: {name: api, stat: started}\n", []string{`3:27: fx_svc: unknown parameter "stat" | did you mean "state"?`}},
		{"choices", "- hosts: all\n  tasks:\n    - fx_svc: {name: api, state: startd}\n", []string{`3:34: fx_svc: state: "startd" is not one of | did you mean "started"?`}},
		{"missing required", "- hosts: all\n  tasks:\n    - fx_svc: {state: started}\n", []string{`3:7: fx_svc: missing required parameter "name" | fx_svc takes:`}},
		{"one of none", "- hosts: all\n  tasks:\n    - fx_copy: {dest: /x}\n", []string{`3:7: fx_copy: needs one of src, content |`}},
		{"one of both", "- hosts: all\n  tasks:\n    - fx_copy: {dest: /x, src: a, content: b}\n", []string{`3:7: fx_copy: takes only one of src, content, got src and content | keep one`}},
		{"param types", "- hosts: all\n  tasks:\n    - fx_svc: {name: [a], enabled: maybe, timeout: soon, retries: many}\n",
			[]string{`3:22: fx_svc: name: want a string, not a list |`, `3:36: fx_svc: enabled: want true or false |`, `3:52: fx_svc: timeout: "soon" is not a duration |`, `3:67: fx_svc: retries: want a whole number |`}},
		{"free form not allowed", "- hosts: all\n  tasks:\n    - fx_svc: api\n", []string{`3:15: fx_svc: parameters go in a mapping, not a string ("api") | fx_svc takes:`}},
		{"duplicate key", "- hosts: all\n  hosts: web\n", []string{`2:3: play: duplicate key "hosts" | the first "hosts" is at line 1`}},
		{"duplicate param", "- hosts: all\n  tasks:\n    - fx_svc:\n        name: a\n        name: b\n", []string{`5:9: fx_svc: duplicate key "name" | line 4`}},
		{"yaml syntax", "- hosts: all\n  tasks:\n    - fx_shell: [echo\n", []string{`3:5: invalid YAML: did not find expected ',' or ']' | check indentation`}},
		{"yaml tab", "- hosts: all\n\ttasks: []\n", []string{`2:2: invalid YAML: found a tab character that violates indentation |`}},
		{"not a list", "hosts: all\ntasks: []\n", []string{`1:1: playbook must be a list of plays, not a mapping | put `}},
		{"empty", "", []string{`1:1: playbook is empty |`}},
		{"template syntax", "- hosts: all\n  tasks:\n    - fx_shell: echo {{ version + }}\n", []string{`3:34: expression "version +": unexpected token EOF |`}},
		{"unclosed template", "- hosts: all\n  tasks:\n    - fx_shell: \"echo {{ version\"\n", []string{`3:23: unclosed {{ | close it`}},
		{"unknown function", "- hosts: all\n  tasks:\n    - fx_shell: echo {{ bsename(x) }}\n", []string{`3:25: expression "bsename(x)": unknown function bsename() | did you mean "basename"?`}},
		{"when with braces", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      when: \"{{ a }} == 1\"\n", []string{`4:13: when: {{ }} inside a bare expression | already an expression`}},
		{"when syntax", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      when: a ==\n", []string{`4:16: expression "a ==": unexpected token EOF |`}},
		{"assert that syntax", "- hosts: all\n  tasks:\n    - fx_assert:\n        that: [\"a > \"]\n", []string{`4:20: expression "a >": unexpected token EOF |`}},
		{"reserved var", "- hosts: all\n  vars: {env: prod}\n", []string{`2:10: vars: "env" is reserved |`}},
		{"bad var name", "- hosts: all\n  vars: {my-var: 1}\n", []string{`2:10: vars: "my-var" is not a valid variable name |`}},
		{"bad register", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      register: run\n", []string{`4:17: register: "run" is reserved |`}},
		{"loop scalar", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      loop: 3\n", []string{`4:13: loop: want a list, not a number |`}},
		{"become on controller", "- hosts: all\n  before:\n    - fx_asg: {suspend: [Launch]}\n      become: true\n", []string{`3:7: fx_asg runs on the controller: become has no effect |`}},
		{"pause_after zero", "- hosts: all\n  pause_after: [0]\n", []string{`2:17: pause_after: 0 is not a batch number |`}},
		{"task not mapping", "- hosts: all\n  tasks:\n    - echo hi\n", []string{`3:7: tasks: a task must be a mapping, not a string ("echo hi") |`}},
		{"tasks not list", "- hosts: all\n  tasks: {fx_shell: echo}\n", []string{`2:10: tasks: want a list of tasks, not a mapping |`}},
		{"several at once", "- hosts: all\n  seral: 1\n  tasks:\n    - fx_shel: x\n    - fx_svc: {name: a, state: x}\n",
			[]string{`2:3: unknown play key "seral" |`, `4:7: unknown module or task key "fx_shel" |`, `5:32: fx_svc: state: "x" is not one of |`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("pb.yml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error, want %v", tc.want)
			}
			if !diag.IsInvalidInput(err) {
				t.Errorf("error is not invalid input: %T", err)
			}
			var list diag.List
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want diag.List", err)
			}
			if len(list) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(list), len(tc.want), err)
			}
			for i, w := range tc.want {
				pos, rest, _ := strings.Cut(w, ": ")
				msg, hint, _ := strings.Cut(rest, " |")
				hint = strings.TrimSpace(hint)
				e := list[i]
				got := strings.TrimPrefix(e.Pos.String(), "pb.yml:")
				if got != pos || !strings.Contains(e.Msg, msg) || !strings.Contains(e.Hint, hint) {
					t.Errorf("error %d = %s: %s | %s\nwant %s", i, got, e.Msg, e.Hint, w)
				}
				if e.Pos.Line > 0 && e.Snippet == "" && strings.TrimSpace(tc.src) != "" {
					t.Errorf("error %d has no snippet", i)
				}
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, src string }{
		{"ansible bools", "- hosts: all\n  become: yes\n  tasks:\n    - fx_shell: echo\n      ignore_errors: no\n"},
		{"hosts list", "- hosts: [web, db]\n"},
		{"serial zero", "- hosts: all\n  serial: 0\n"},
		{"null module args", "- hosts: all\n  tasks:\n    - fx_debug:\n"},
		{"merge keys", "- hosts: all\n  tasks:\n    - fx_svc: &svc {name: a, state: started}\n    - fx_svc: {<<: *svc, state: stopped}\n"},
		{"when whole template", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      when: \"{{ true }}\"\n"},
		{"when list", "- hosts: all\n  tasks:\n    - fx_shell: echo\n      when: [true, 1 < 2]\n"},
		{"templated typed params", "- hosts: all\n  tasks:\n    - fx_svc: {name: a, enabled: \"{{ on }}\", retries: \"{{ n }}\"}\n"},
		{"fractional percent", "- hosts: all\n  serial: \"12.5%\"\n  max_fail_percentage: \"10%\"\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse("pb.yml", []byte(tc.src)); err != nil {
				t.Fatal(err)
			}
		})
	}
	pb, err := Parse("pb.yml", []byte("- hosts: all\n  tasks:\n    - fx_svc: &svc {name: a, state: started}\n    - fx_svc: {<<: *svc, state: stopped}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := pb.Plays[0].Tasks[1].Args; a["name"] != "a" || a["state"] != "stopped" {
		t.Errorf("merged args = %v", a)
	}
}

func TestBillionLaughs(t *testing.T) {
	src := "- hosts: all\n  vars:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h"} {
		src += "    " + n + ": &" + n + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = n
	}
	_, err := Parse("pb.yml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err = %v", err)
	}
}

func TestSelfAlias(t *testing.T) {
	_, err := Parse("pb.yml", []byte("- hosts: all\n  vars:\n    a: &v {b: *v}\n"))
	if err == nil || !strings.Contains(err.Error(), "pb.yml:3:8: alias refers to the node that contains it") {
		t.Fatalf("err = %v", err)
	}
}

func TestHelpers(t *testing.T) {
	p := mustPlay(t, "- hosts: \"{{ extra.target ?? 'web' }}\"\n  become: true\n  become_user: app\n  tasks:\n    - fx_shell: a\n      become: false\n    - fx_shell: b\n      become_user: root\n")
	if b, u := p.BecomeFor(p.Tasks[0]); b || u != "app" {
		t.Errorf("become task 0 = %v %q", b, u)
	}
	if b, u := p.BecomeFor(p.Tasks[1]); !b || u != "root" {
		t.Errorf("become task 1 = %v %q", b, u)
	}
	if h, err := p.RenderHosts(map[string]any{"extra": map[string]any{"target": "db"}}); err != nil || h != "db" {
		t.Errorf("hosts = %q, %v", h, err)
	}
	for _, tc := range []struct {
		tags, only, skip []string
		want             bool
	}{
		{nil, nil, nil, true},
		{[]string{"a"}, []string{"b"}, nil, false},
		{[]string{"a"}, []string{"a"}, nil, true},
		{[]string{"always"}, []string{"b"}, nil, true},
		{[]string{"a"}, nil, []string{"a"}, false},
		{[]string{"a", "b"}, []string{"a"}, []string{"b"}, false},
		{nil, []string{"all"}, nil, true},
	} {
		if got := Selected(tc.tags, tc.only, tc.skip); got != tc.want {
			t.Errorf("Selected(%v, %v, %v) = %v", tc.tags, tc.only, tc.skip, got)
		}
	}
}
