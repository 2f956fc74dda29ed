package environments

import (
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// A personal environment by name (--env dev-prod, by hand or in a worker's
// queue message, which runs `ferry run --env`) gets the guard rails a
// branch gets: it never reaches a named or protected environment.
func TestPersonalEnvByNameGuardRails(t *testing.T) {
	cfg := mustParse(t, `environments:
  prod:       {inventory: inventory/prod.ini, protected: true}
  production: {inventory: 'inventory/{{ env }}-hosts.ini'}
personal:
  branch_pattern: '^dev/(?P<user>[a-z0-9-]+)/'
  env: 'dev-{{ user }}'
  inventory: 'inventory/{{ user }}.ini'
`)
	for _, c := range []struct{ env, want string }{
		{"dev-prod", `names environment "prod"`},                                // a group naming a protected environment
		{"dev-PROD", `names environment "prod"`},                                // ... in any case
		{"dev-production-hosts", "the inventory of environment \"production\""}, // reaching its inventory
		{"dev-a.b", "is not what personal.branch_pattern"},                      // a value no branch could give
		{"dev-..", "is not what personal.branch_pattern"},
	} {
		_, err := resolve(t, cfg, Request{Env: c.env, Guard: true})
		if err == nil || !strings.Contains(err.Error(), c.want) || !diag.IsInvalidInput(err) {
			t.Errorf("--env %s: got %v, want %q", c.env, err, c.want)
		}
	}
	// The branch that would give the same names is refused the same way.
	for _, b := range []string{"dev/prod/x", "dev/production-hosts/x"} {
		if _, err := resolve(t, cfg, Request{Branch: b, Guard: true}); err == nil {
			t.Errorf("--branch %s was not refused", b)
		}
	}
	// An ordinary personal environment still resolves, by name or branch.
	for _, req := range []Request{{Env: "dev-ben", Guard: true}, {Branch: "dev/ben/x", Guard: true}} {
		tg, err := resolve(t, cfg, req)
		if err != nil || tg.Name != "dev-ben" || !tg.Personal || tg.Inventory[0] != "/repo/inventory/ben.ini" {
			t.Errorf("%+v: %+v %v", req, tg, err)
		}
	}
}
