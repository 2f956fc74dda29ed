package playbooks

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// The corpus: real, public Ansible rolling-deploy playbooks kept verbatim
// (with their licence and SOURCE) in testdata/ansible-corpus. Each must load,
// or fail only on modules ferry does not have, each named once with what to
// use instead.
func TestAnsibleCorpus(t *testing.T) {
	corpus := map[string]struct {
		playbook    string
		unsupported []string // modules outside ferry's list, in sorted order
	}{
		"lamp_haproxy":                {"rolling_update.yml", []string{"git", "nagios", "seboolean", "yum"}},
		"lamp_haproxy_aws":            {"rolling_update.yml", []string{"git", "nagios"}},
		"jboss_standalone":            {"deploy-application.yml", []string{"jboss"}},
		"deployments_rolling":         {"playbooks/deploy.yml", []string{"cron", "git", "npm"}},
		"deployments_balancer":        {"playbooks/deploy.yml", nil}, // passes since haproxy
		"foxylion_ansible_sample":     {"rolling_update.yml", []string{"nagios", "seboolean"}},
		"dfederlein_ansible_demos":    {"rolling_update.yml", []string{"git", "nagios", "seboolean", "yum"}},
		"ansible_examples_delegation": {"delegation.yml", nil}, // passes as it is
		"tomcat_memcached_failover":   {"site.yml", []string{"yum"}},
		"tomcat_standalone":           {"site.yml", []string{"firewalld", "group", "user", "yum"}},
		"lamp_simple":                 {"site.yml", []string{"git", "mysql_db", "mysql_user", "seboolean", "yum"}},
		"nodejs_role":                 {"playbook.yml", []string{"dnf", "npm", "rpm_key"}}, // role with meta/main.yml
		"tgwf_admin_portal":           {"deploy.yml", []string{"git"}},                     // deploy_helper releases, guarded include hooks, environment: "{{ var }}"
		"ansistrano_rollback":         {"rollback.yml", nil},                               // current back to the previous release: find sorted by mtime, file state=link
		"ansible_bluegreen_docker":    {"playbook.yml", []string{"blockinfile"}},           // blue/green containers behind nginx: {% if %} strings, json_query, uri health checks
		"ansistrano_symfony":          {"symfony_50.yml", []string{"git"}},                 // hooks set by the dependent role's vars, remote_src, when: x is defined guards
		"bmemartin_docker_compose":    {"playbooks/docker_compose.yaml", nil},              // docker_compose_v2 project, networks, a recreate handler
		"ansistrano_deploy":           {"deploy.yml", nil},                                 // releases/ + current symlink; templated include_tasks, find
	}
	dirs, err := os.ReadDir("../testdata/ansible-corpus")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 8 || len(dirs) != len(corpus) {
		t.Fatalf("%d corpus entries on disk, %d in the test", len(dirs), len(corpus))
	}
	lineRe := regexp.MustCompile(`^module "([^"]+)" is not supported by ferry$`)
	for _, d := range dirs {
		c, ok := corpus[d.Name()]
		if !ok {
			t.Errorf("%s: not listed in the test", d.Name())
			continue
		}
		dir := filepath.Join("../testdata/ansible-corpus", d.Name())
		for _, f := range []string{"SOURCE"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", d.Name(), err)
			}
		}
		if lic, _ := filepath.Glob(filepath.Join(dir, "LICENSE*")); len(lic) == 0 {
			t.Errorf("%s: no LICENSE", d.Name())
		}
		pb, err := Load(filepath.Join(dir, c.playbook))
		var got []string
		if err != nil {
			var list diag.List
			if !errors.As(err, &list) {
				t.Errorf("%s: %v", d.Name(), err)
				continue
			}
			for _, e := range list {
				m := lineRe.FindStringSubmatch(e.Msg)
				if m == nil || e.Hint == "" || e.Pos.Line == 0 {
					t.Errorf("%s: an error that is not an unsupported module with its equivalent: %v", d.Name(), e)
					continue
				}
				got = append(got, m[1])
			}
		} else if err := pb.Check(nil); err != nil {
			t.Errorf("%s: check: %v", d.Name(), err)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(c.unsupported, ",") {
			t.Errorf("%s: unsupported modules %v, want %v (each once)", d.Name(), got, c.unsupported)
		}
	}
}
