package cli

import (
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/environments"
)

// A drift line never shows an empty majority: when no version is recorded
// by the majority there is none to name.
func TestStatusDriftWithoutMajorityVersion(t *testing.T) {
	st := &envStatus{Env: "staging", Versions: map[string]string{"app": ""}, Hosts: []*hostStatus{
		{Host: "app1", Releases: map[string]environments.Release{"app": {App: "app", Version: ""}}},
		{Host: "app2", Releases: map[string]environments.Release{"other": {App: "other", Version: "v1"}}},
	}}
	st.Versions["other"] = "v1"
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	if strings.Contains(out, "majority )") || strings.Contains(out, "majority ;") {
		t.Errorf("empty majority in:\n%s", out)
	}
	if !strings.Contains(out, "DRIFT (not deployed)") {
		t.Errorf("no plain drift line for app2's missing app:\n%s", out)
	}
	if !strings.Contains(out, "DRIFT (not deployed; majority v1)") {
		t.Errorf("no majority named for app1's missing other:\n%s", out)
	}
}
