package playbooks

import (
	"reflect"
	"testing"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

func spec(t *testing.T, name string) tasks.Spec {
	t.Helper()
	m, ok := tasks.Lookup(name)
	if !ok {
		t.Fatalf("no module %s", name)
	}
	return m.Spec()
}

// The journal asks each module's Spec what a call leaves to undo.
func TestIntentOfAsksSpec(t *testing.T) {
	vars := map[string]any{"instance_id": "i-1", "region": "eu-west-1", "account_id": "123", "autoscaling_group": "web"}
	for _, c := range []struct {
		module string
		args   map[string]any
		want   *openChange
	}{
		{"systemd", map[string]any{"name": "app.service", "state": "stopped"}, &openChange{key: "unit:app", what: "unit app stopped",
			undo: events.Undo{Module: "systemd", Args: map[string]any{"name": "app.service", "state": "started"}, Become: true, BecomeUser: "root"}}},
		{"systemd", map[string]any{"name": "app", "state": "started"}, nil},
		{"asg", map[string]any{"state": "standby"}, &openChange{key: "standby", what: "in Auto Scaling standby",
			undo: events.Undo{Module: "asg", Args: map[string]any{"instance_id": "i-1", "region": "eu-west-1", "account": "123", "state": "in_service"}}}},
		{"asg", map[string]any{"suspend": []any{"Launch"}}, &openChange{key: "suspend", what: "Auto Scaling processes suspended",
			undo: events.Undo{Module: "asg", Args: map[string]any{"instance_id": "i-1", "region": "eu-west-1", "account": "123", "resume": []any{"Launch"}, "groups": []any{"web"}}}}},
		{"elb", map[string]any{"state": "drained"}, nil}, // elb journals through Host.Journal
		{"command", map[string]any{"cmd": "true"}, nil},
	} {
		got, ok := intentOf(spec(t, c.module), c.args, vars, true, "root")
		if ok != (c.want != nil) || (ok && !reflect.DeepEqual(got, *c.want)) {
			t.Errorf("%s %v: got %+v, %v; want %+v", c.module, c.args, got, ok, c.want)
		}
	}
}

func TestSettleAsksSpec(t *testing.T) {
	var evs []events.Event
	r := NewRunner(&Playbook{}, Options{Sink: events.SinkFunc(func(e events.Event) { evs = append(evs, e) })})
	hr := r.hostRunFor(&inventory.Host{Name: "web1"})
	vars := map[string]any{"instance_id": "i-1"}

	elb := spec(t, "elb")
	if err := r.moduleJournal(hr, elb, map[string]any{"state": "drained"}, vars)(tasks.ElbStateKey, "lbs"); err != nil {
		t.Fatal(err)
	}
	if err := r.moduleJournal(hr, spec(t, "systemd"), nil, vars)("x", 1); err == nil {
		t.Error("systemd journals no change of its own: want an error")
	}
	c, _ := intentOf(spec(t, "systemd"), map[string]any{"name": "app", "state": "stopped"}, vars, false, "")
	if err := r.intent(hr, c); err != nil {
		t.Fatal(err)
	}
	if got := hr.journal.left(); got != "out of load balancer, unit app stopped" {
		t.Fatalf("left %q", got)
	}
	if u := evs[0].Undo; evs[0].Change != "elb" || u.Module != "elb" || u.Args["state"] != "registered" || u.State[tasks.ElbStateKey] != "lbs" {
		t.Errorf("elb intent: %+v %+v", evs[0], u)
	}

	r.settle(hr, spec(t, "systemd"), map[string]any{"name": "app", "state": "started"}, vars, true, false)
	hr.state[tasks.ElbStateKey] = "lbs" // a register that failed: State still holds the drain
	r.settle(hr, elb, map[string]any{"state": "registered"}, vars, true, false)
	if got := hr.journal.left(); got != "out of load balancer, unit app stopped" {
		t.Fatalf("a failed start or an elb whose State holds the drain closed a change: left %q", got)
	}
	r.settle(hr, spec(t, "systemd"), map[string]any{"name": "app.service", "state": "restarted"}, vars, false, false)
	hr.state[tasks.ElbStateKey] = nil
	r.settle(hr, elb, map[string]any{"state": "registered"}, vars, false, false)
	if got := hr.journal.left(); got != "" {
		t.Errorf("left %q after start and register", got)
	}
}

// A stop that failed before changing anything (the unit does not exist)
// leaves nothing stopped: the recap must not say so.
func TestSettleUntouchedFailureClosesIntent(t *testing.T) {
	r := NewRunner(&Playbook{}, Options{})
	hr := r.hostRunFor(&inventory.Host{Name: "web1"})
	args := map[string]any{"name": "api", "state": "stopped"}
	c, ok := intentOf(spec(t, "systemd"), args, nil, false, "")
	if !ok {
		t.Fatal("a stop journals its intent")
	}
	if err := r.intent(hr, c); err != nil {
		t.Fatal(err)
	}
	r.settle(hr, spec(t, "systemd"), args, nil, true, false)
	if got := hr.journal.left(); got != "unit api stopped" {
		t.Fatalf("a stop that failed after acting: left %q, want the unit stopped", got)
	}
	r.settle(hr, spec(t, "systemd"), args, nil, true, true)
	if got := hr.journal.left(); got != "" {
		t.Errorf("a stop of a unit that does not exist: left %q, want nothing", got)
	}
}
