package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/events"
)

// TestLabStagedSwitch: inside a host's window, a release staged by this
// run is checked and switched by one command; a host whose staged files
// changed after the stage (a task overwrites the binary here) gets them
// uploaded again before its switch, and runs what was meant.
func TestLabStagedSwitch(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 2)
	pb := filepath.Join(t.TempDir(), "switch.yml")
	os.WriteFile(pb, []byte(`- hosts: app
  become: true
  stage:
    - release: {src: "{{ extra.dist }}/v2/", path: /opt/app, version: v2, mode: "0755", activate: false}
  tasks:
    - name: Tamper
      shell: echo tampered > /opt/app/releases/v2/app
      when: "inventory_hostname == 'app2'"
    - name: Upload release
      release: {src: "{{ extra.dist }}/v2/", path: /opt/app, version: v2, mode: "0755", keep: 3}
`), 0o600)
	seen := countCommands(t)
	r := ferry(t, d.env, "run", pb, "-i", d.Inventory, "-e", "dist="+d.dist, "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stdout)
	}
	msgs := map[string]string{}
	for _, e := range jsonEvents(t, r.stdout) {
		if e.Kind == events.TaskEnd && e.Task == "Upload release" {
			msgs[e.Host] = e.Msg
		}
	}
	b, err := os.ReadFile(filepath.Join(d.dist, "v2", "app"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	want := hex.EncodeToString(sum[:])
	for _, h := range []string{"app1", "app2"} {
		out, err := d.Exec(context.Background(), h, "readlink /opt/app/current; sha256sum < /opt/app/releases/v2/app")
		if f := strings.Fields(out); err != nil || len(f) < 2 || f[0] != "/opt/app/releases/v2" || f[1] != want {
			t.Errorf("%s: current and checksum %q (%v), want /opt/app/releases/v2 and %s", h, out, err, want)
		}
		// The commands that can switch current to v2: the activation's
		// check (which reads the layout) carries one, run only if all is
		// as staged; the long way adds a switch of its own.
		var switches []bool // per such command: it is the check too
		for _, c := range seen.byHost[h] {
			if strings.Contains(c, "hf_link /opt/app/releases/v2 current") {
				switches = append(switches, strings.Contains(c, "hf_also"))
			}
		}
		tampered := h == "app2"
		if updated := strings.Contains(msgs[h], "updated"); updated != tampered || !strings.Contains(msgs[h], "current -> v2") {
			t.Errorf("%s: release task: %q", h, msgs[h])
		}
		want := []bool{true}
		if tampered {
			want = []bool{true, false}
		}
		if !slices.Equal(switches, want) {
			t.Errorf("%s: commands carrying the switch (true: also the check) %v, want %v", h, switches, want)
		}
	}
}
