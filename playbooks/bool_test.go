package playbooks

import (
	"testing"

	"github.com/ferrydeploy/ferry/tasks"
)

// TestBoolSameAtCheckAndRun: a bool argument that `ferry check` accepts is
// one the module reads at run time, and one it refuses fails both.
func TestBoolSameAtCheckAndRun(t *testing.T) {
	for _, w := range []string{"1", "0", "y", "n", "t", "f", "yes", "No", "on", "off", "true", "False"} {
		pb, err := Parse("pb.yml", []byte("- hosts: all\n  tasks:\n    - fx_svc: {name: a, enabled: "+w+"}\n"))
		if err != nil {
			t.Errorf("%s: check refuses: %v", w, err)
			continue
		}
		a := tasks.NewArgs("fx_svc", map[string]any{"enabled": pb.Plays[0].Tasks[0].Args["enabled"]})
		a.Bool("enabled", false)
		if err := a.Err(); err != nil {
			t.Errorf("%s: check accepts, run refuses: %v", w, err)
		}
	}
	for _, w := range []string{"maybe", "2", `""`} {
		_, err := Parse("pb.yml", []byte("- hosts: all\n  tasks:\n    - fx_svc: {name: a, enabled: "+w+"}\n"))
		a := tasks.NewArgs("fx_svc", map[string]any{"enabled": w})
		a.Bool("enabled", false)
		if err == nil || a.Err() == nil {
			t.Errorf("%s: check err %v, run err %v; want both to refuse", w, err, a.Err())
		}
	}
}
