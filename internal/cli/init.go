package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/inventory"
)

// InitCmd writes a starting point: ferry.yml, an inventory per environment
// and a deploy playbook.
type InitCmd struct {
	Dir       string           `arg:"" optional:"" default:"." type:"path" help:"Directory to write into (default: the current one)."`
	Inventory inventorySources `short:"i" placeholder:"FILE|DIR|HOST,..." help:"Share the hosts of this inventory out among the environments (one for you, then staging, then prod) instead of writing example hosts."`
	User      string           `placeholder:"NAME" help:"Your name in the personal environment (default: the login name)."`
}

var initUserRe = regexp.MustCompile(`[^a-z0-9-]+`)

// Run implements the command.
func (c *InitCmd) Run(g *Globals) error {
	user := c.User
	if user == "" {
		user = whoami(g.env)
	}
	user = strings.Trim(initUserRe.ReplaceAllString(strings.ToLower(user), "-"), "-")
	if user == "" {
		return diag.Invalidf("no usable user name for the personal environment: pass --user NAME (letters, digits, -)")
	}
	files := map[string]string{"ferry.yml": initConfig, "deploy.yml": initPlaybook}
	if len(c.Inventory) == 0 {
		files["inventory/dev.yml"] = fmt.Sprintf(initExampleDev, user)
		files["inventory/staging.yml"] = initExampleStaging
		files["inventory/prod.yml"] = initExampleProd
	} else {
		inv, err := inventory.Load(g.ctx, c.Inventory, inventory.Options{Env: g.env.Lookup})
		if err != nil {
			return err
		}
		if len(inv.Hosts) < 3 {
			return diag.Invalidf("--inventory has %d hosts: ferry init needs 3 or more to give one to you, then staging and prod some each", len(inv.Hosts))
		}
		hosts := inv.Hosts
		staging := 1 + (len(hosts)-1)/2
		parts := []struct {
			file, group string
			hosts       []*inventory.Host
		}{
			{"inventory/dev.yml", "dev_" + strings.ReplaceAll(user, "-", "_"), hosts[:1]},
			{"inventory/staging.yml", "app", hosts[1:staging]},
			{"inventory/prod.yml", "app", hosts[staging:]},
		}
		src := strings.Join(c.Inventory, ", ")
		for _, p := range parts {
			text, err := initInventory(inv, p.group, p.hosts, src)
			if err != nil {
				return err
			}
			files[p.file] = text
		}
	}
	// Refuse before writing anything: one existing file stops it all.
	names := slices.Sorted(maps.Keys(files))
	for _, name := range names {
		path := filepath.Join(c.Dir, name)
		if _, err := os.Lstat(path); err == nil {
			return diag.Invalidf("%s exists: ferry init writes only new files (move it away, or init another directory)", path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("init: %w", err)
		}
	}
	for _, name := range names {
		path := filepath.Join(c.Dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		_, err = f.WriteString(files[name])
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		fmt.Fprintf(g.stdout, "wrote %s\n", path)
	}
	fmt.Fprintf(g.stdout, "next: ferry inventory --env staging --graph, then ferry check deploy.yml (your branches dev/%s/... deploy to dev-%s)\n", user, user)
	return nil
}

// initInventory writes hosts, with their own variables, as a YAML inventory
// in group.
func initInventory(inv *inventory.Inventory, group string, hosts []*inventory.Host, src string) (string, error) {
	hm := map[string]any{}
	for _, h := range hosts {
		vars, err := inv.HostVars(h.Name)
		if err != nil {
			return "", err
		}
		vars = inv.WithoutComputed(h, vars)
		if len(vars) == 0 {
			hm[h.Name] = nil
		} else {
			hm[h.Name] = vars
		}
	}
	doc := map[string]any{"all": map[string]any{"children": map[string]any{group: map[string]any{"hosts": hm}}}}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	sort.Strings(names)
	return fmt.Sprintf("# Written by ferry init from %s: %s.\n%s", src, strings.Join(names, ", "), b.String()), nil
}

const initConfig = `# ferry.yml: where a rollout goes (docs/environments.md).
# Paths are relative to this file.
environments:
  # ferry run deploy.yml --env staging -e version=v2
  staging: {inventory: inventory/staging.yml}
  # Protected: needs --env prod, and --yes without a terminal. No branch
  # ever resolves to it.
  prod: {inventory: inventory/prod.yml, protected: true}

# Personal environments: a branch dev/<user>/<topic> deploys to dev-<user>,
# the hosts of group dev_<user> (ferry run deploy.yml --branch dev/ann/x,
# or with no --env on such a branch: CI's variables or git say which).
personal:
  branch_pattern: '^dev/(?P<user>[a-z0-9-]+)/'
  env: 'dev-{{ user }}'
  inventory: inventory/dev.yml
  limit: 'dev_{{ user | replace("-", "_") }}'
`

const initExampleDev = `# Personal environments: one group per developer, dev_<user>.
# Replace the example host with yours (any Ansible inventory works; see
# docs/inventory.md for EC2 and bastions).
all:
  vars:
    ansible_user: deploy
  children:
    dev_%s:
      hosts:
        dev1.example.com:
`

const initExampleStaging = `# Staging: replace the example hosts with yours.
all:
  vars:
    ansible_user: deploy
    # ansible_ssh_common_args: '-J deploy@bastion.example.com'   # through a bastion
  children:
    app:
      hosts:
        staging[1:2].example.com:
`

const initExampleProd = `# Production: replace the example hosts with yours, or use an aws_ec2
# inventory (plugin: aws_ec2, filters: {tag:Env: prod}).
all:
  vars:
    ansible_user: deploy
  children:
    app:
      hosts:
        prod[1:4].example.com:
`

const initPlaybook = `# deploy.yml: a rolling deploy of one service, written by ferry init.
#
#   ferry check deploy.yml -e version=v2                 # no connection
#   ferry run deploy.yml --env staging -e version=v2 --check
#   ferry run deploy.yml --env staging -e version=v2
#
# It ships dist/<version>/ (here: dist/v2/app, a binary serving
# GET /status on 127.0.0.1:8080) as a release under /opt/app, runs it as
# the systemd unit "app", and checks that it answers. A host that fails
# goes back to the release it ran before; any failure halts the rollout.
- name: Deploy the app
  hosts: all
  serial: [1, "50%"]        # a canary, then half of the rest at a time
  max_fail_percentage: 0
  become: true
  vars:
    app: app                # names the release state each host keeps (ferry status)
    version: "{{ extra.version ?? 'v1' }}"
    dist: "{{ extra.dist ?? 'dist' }}"
    port: 8080
  tasks:
    - name: Unit file
      copy:
        dest: /etc/systemd/system/app.service
        mode: "0644"
        content: |
          [Unit]
          Description=app, deployed by ferry
          [Service]
          ExecStart=/opt/app/current/app -listen 127.0.0.1:{{ port }}
          Restart=on-failure
          [Install]
          WantedBy=multi-user.target
    - name: Stop
      systemd: {name: app, state: stopped, daemon_reload: true}
    - name: Upload the release
      release: {src: "{{ dist }}/{{ version }}/", path: /opt/app, version: "{{ version }}", mode: "0755", keep: 3}
    - name: Start
      systemd: {name: app, state: started, enabled: true}
    - name: Smoke test
      http: {url: "http://127.0.0.1:{{ port }}/status", status: 200, retries: 20, delay: 250ms}
  rollback:
    - name: Previous release
      release: {rollback: true, path: /opt/app}
    - name: Restart it
      systemd: {name: app, state: restarted}
`
