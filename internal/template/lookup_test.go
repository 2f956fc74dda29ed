package template

import (
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// lookup('env') reads the env_vars it is given, never the process
// environment: the runner leaves credentials out of env_vars unless a play
// names them, and a lookup must not be a way around that.
func TestLookupEnvReadsGivenEnvironment(t *testing.T) {
	t.Setenv("FERRY_TEST_LOOKUP_ONLY_IN_PROCESS", "leaked")
	vars := map[string]any{"env_vars": map[string]any{"REGION": "eu-west-1"}}
	cases := []struct{ src, want string }{
		{"{{ lookup('env', 'REGION') }}", "eu-west-1"},
		{"{{ lookup('ansible.builtin.env', 'REGION') }}", "eu-west-1"},
		{"{{ lookup('env', 'FERRY_TEST_LOOKUP_ONLY_IN_PROCESS') }}", ""},
		{"{{ lookup('env', 'FERRY_TEST_LOOKUP_ONLY_IN_PROCESS', default='none') }}", "none"},
		{"{{ query('env', 'REGION') | first }}", "eu-west-1"},
		{"{{ q('env', 'REGION', 'NOPE') | length }}", "2"},
	}
	for _, c := range cases {
		tp, err := CompileTemplate(c.src, diag.Pos{})
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		got, err := tp.RenderString(vars)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got != c.want {
			t.Errorf("%s = %q, want %q", c.src, got, c.want)
		}
	}
	// Without env_vars (an inventory plugin, an environment file) nothing is set.
	tp, err := CompileTemplate("{{ lookup('env', 'REGION', default='x') }}", diag.Pos{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tp.RenderString(nil); err != nil || got != "x" {
		t.Errorf("no env_vars: got %q, %v; want the default", got, err)
	}
}
