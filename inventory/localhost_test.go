package inventory

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func loadINI(t *testing.T, text string) *Inventory {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(context.Background(), []string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func matchNames(t *testing.T, inv *Inventory, pattern string) []string {
	t.Helper()
	hs, err := inv.Match(pattern)
	if err != nil {
		t.Fatalf("Match(%q): %v", pattern, err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

const appINI = "[app]\napp1 ansible_host=10.0.0.1\napp2 ansible_host=10.0.0.2\n\n[all:vars]\nregion=eu-west-1\n"

// A pattern naming exactly localhost, 127.0.0.1 or ::1 selects Ansible's
// implicit localhost when the inventory does not list it: it runs on the
// controller and sees group all's variables, in no group.
func TestImplicitLocalhostWhenAbsent(t *testing.T) {
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		inv := loadINI(t, appINI)
		hs, err := inv.Match(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(hs) != 1 || hs[0].Name != name {
			t.Fatalf("%s: got %v, want the implicit localhost", name, hs)
		}
		h := hs[0]
		if !h.Local() || !inv.Implicit(h) {
			t.Errorf("%s: local=%v implicit=%v, want both", name, h.Local(), inv.Implicit(h))
		}
		if h.Vars["ansible_connection"] != "local" || h.Vars["region"] != "eu-west-1" {
			t.Errorf("%s: vars %v: want ansible_connection=local and all's region", name, h.Vars)
		}
		if len(h.Groups) != 0 {
			t.Errorf("%s: groups %v, want none", name, h.Groups)
		}
		if got, ok := inv.Host(name); !ok || got != h {
			t.Errorf("Host(%q) = %v, %v: want the same implicit host", name, got, ok)
		}
		if slices.Contains(inv.Hosts, h) {
			t.Errorf("%s: the implicit localhost joined Hosts", name)
		}
	}
	// One implicit host whichever name later patterns use, as in Ansible.
	inv := loadINI(t, appINI)
	a, _ := inv.Match("localhost")
	b, _ := inv.Match("127.0.0.1")
	if a[0] != b[0] {
		t.Errorf("localhost and 127.0.0.1 are two hosts, want one")
	}
	// Only those exact names: globs and regexes do not reach it.
	for _, p := range []string{"local*", "~local.*", "localhst"} {
		if _, err := inv.Match(p); err == nil {
			t.Errorf("Match(%q) succeeded, want no match", p)
		}
	}
}

// A listed localhost is the one used, with its own variables and groups.
func TestListedLocalhostWins(t *testing.T) {
	inv := loadINI(t, appINI+"\n[ctl]\nlocalhost ansible_connection=local tier=ctl\n")
	hs, err := inv.Match("localhost")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || inv.Implicit(hs[0]) || hs[0].Vars["tier"] != "ctl" || !slices.Contains(hs[0].Groups, "ctl") {
		t.Fatalf("got %+v, want the listed localhost (tier=ctl, in ctl)", hs)
	}
	if got := matchNames(t, inv, "all"); !slices.Contains(got, "localhost") {
		t.Errorf("all = %v: a listed localhost is in all", got)
	}
	// Listed without ansible_connection, it is reached over SSH like any host.
	inv = loadINI(t, "localhost ansible_host=10.0.0.9\n")
	hs, _ = inv.Match("localhost")
	if hs[0].Local() || hs[0].Address() != "10.0.0.9" {
		t.Errorf("listed localhost: local=%v address=%s, want its inventory settings", hs[0].Local(), hs[0].Address())
	}
}

// `all` (and `*`, ungrouped, --list, --graph) never include the implicit
// localhost, even after a pattern created it.
func TestImplicitLocalhostNotInAll(t *testing.T) {
	inv := loadINI(t, "lone\n"+appINI)
	matchNames(t, inv, "localhost")
	for _, p := range []string{"all", "*", "ungrouped", "all:!app"} {
		if got := matchNames(t, inv, p); slices.Contains(got, "localhost") {
			t.Errorf("%s = %v: includes the implicit localhost", p, got)
		}
	}
	list, err := inv.ListJSONAnsible()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(list), "localhost") {
		t.Errorf("--list shows the implicit localhost:\n%s", list)
	}
	if g := inv.Graph("all"); strings.Contains(g, "localhost") {
		t.Errorf("--graph shows the implicit localhost:\n%s", g)
	}
	// An inventory with no host at all still has only the implicit one.
	if _, err := loadINI(t, "[app]\n").Match("all"); err == nil {
		t.Errorf("all on an empty inventory matched something")
	}
}

// The implicit localhost combines with other terms: unions (controller
// first), intersections, exclusions.
func TestImplicitLocalhostInCombinations(t *testing.T) {
	inv := loadINI(t, appINI)
	for _, c := range []struct{ pattern, want string }{
		{"localhost:app", "localhost app1 app2"},
		{"app,localhost", "localhost app1 app2"},
		{"app:localhost:&app", "app1 app2"},
		{"app:localhost:!localhost", "app1 app2"},
		{"localhost:!app", "localhost"},
		{"localhost[0]", "localhost"},
	} {
		if got := strings.Join(matchNames(t, inv, c.pattern), " "); got != c.want {
			t.Errorf("%s = %q, want %q", c.pattern, got, c.want)
		}
	}
	if _, err := inv.Match("localhost:!localhost"); err == nil {
		t.Errorf("localhost:!localhost selected a host")
	}
}

// A change to the inventory (add_host, set group vars) reaches the implicit
// localhost's variables, as it reaches every host's.
func TestImplicitLocalhostFollowsInventoryChanges(t *testing.T) {
	inv := loadINI(t, appINI)
	h, _ := inv.Host("localhost")
	inv.SetGroupVars("all", map[string]any{"region": "us-east-1"})
	inv.AddHost(&Host{Name: "new1"}, "launched")
	if got := matchNames(t, inv, "localhost:launched"); strings.Join(got, " ") != "localhost new1" {
		t.Errorf("localhost:launched = %v", got)
	}
	if h.Vars["region"] != "us-east-1" {
		t.Errorf("region = %v after SetGroupVars(all), want us-east-1", h.Vars["region"])
	}
}

// host_vars/localhost applies to the implicit localhost, as in Ansible
// (and is no longer reported as matching no host).
func TestImplicitLocalhostHostVars(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hosts.ini"), []byte(appINI), 0o600)
	os.MkdirAll(filepath.Join(dir, "host_vars"), 0o755)
	os.WriteFile(filepath.Join(dir, "host_vars", "localhost.yml"), []byte("tier: ctl\nregion: here\n"), 0o600)
	inv, err := Load(context.Background(), []string{filepath.Join(dir, "hosts.ini")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range inv.Warnings {
		if strings.Contains(w, "localhost") {
			t.Errorf("warning %q: host_vars/localhost is the implicit localhost's", w)
		}
	}
	hs, err := inv.Match("localhost")
	if err != nil {
		t.Fatal(err)
	}
	if v := hs[0].Vars; v["tier"] != "ctl" || v["region"] != "here" || v["ansible_connection"] != "local" {
		t.Errorf("vars %v: want host_vars/localhost over group all's, still local", v)
	}
	if got := matchNames(t, inv, "all"); slices.Contains(got, "localhost") {
		t.Errorf("all = %v after host_vars/localhost", got)
	}
	vars, _ := inv.HostVars("localhost")
	if out := inv.WithoutComputed(hs[0], vars); out["tier"] != "ctl" {
		t.Errorf("--host localhost: %v, want tier from host_vars", out)
	}
}
