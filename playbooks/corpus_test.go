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
		others      []string // other out-of-scope lines (Windows connections), in order
	}{
		"lamp_haproxy":                     {"rolling_update.yml", []string{"git", "nagios", "seboolean", "yum"}, nil},
		"lamp_haproxy_aws":                 {"rolling_update.yml", []string{"git", "nagios"}, nil},
		"jboss_standalone":                 {"deploy-application.yml", []string{"jboss"}, nil},
		"deployments_rolling":              {"playbooks/deploy.yml", []string{"cron", "git", "npm"}, nil},
		"deployments_balancer":             {"playbooks/deploy.yml", nil, nil}, // passes since haproxy
		"foxylion_ansible_sample":          {"rolling_update.yml", []string{"nagios", "seboolean"}, nil},
		"dfederlein_ansible_demos":         {"rolling_update.yml", []string{"git", "nagios", "seboolean", "yum"}, nil},
		"ansible_examples_delegation":      {"delegation.yml", nil, nil}, // passes as it is
		"tomcat_memcached_failover":        {"site.yml", []string{"yum"}, nil},
		"tomcat_standalone":                {"site.yml", []string{"firewalld", "group", "user", "yum"}, nil},
		"lamp_simple":                      {"site.yml", []string{"git", "mysql_db", "mysql_user", "seboolean", "yum"}, nil},
		"nodejs_role":                      {"playbook.yml", []string{"dnf", "npm", "rpm_key"}, nil},         // role with meta/main.yml
		"hardybmx_ad_rolling_update":       {"rolling_update.yml", []string{"git", "seboolean", "yum"}, nil}, // socat to the HAProxy admin socket
		"ansispire_rolling_update":         {"playbooks/rolling_update.yml", []string{"ansible.builtin.git", "ansible.builtin.pip"}, nil},
		"cloudforms_rolling_update":        {"playbooks/rolling-update.yml", []string{"package", "redhat_subscription", "yum"}, nil},                    // import_playbook, serial per tier
		"mastering_ansible_serial_handler": {"forserial.yaml", nil, nil},                                                                                // passes: a run_once handler looping over play_hosts, delegated
		"wamp_haproxy_elb":                 {"rolling_update.yml", []string{"win_get_url"}, []string{`connection: "winrm" is not supported on a play`}}, // local_action ec2_elb
		"tgwf_admin_portal":                {"deploy.yml", []string{"git"}, nil},                                                                        // deploy_helper releases, guarded include hooks, environment: "{{ var }}"
		"ansistrano_rollback":              {"rollback.yml", nil, nil},                                                                                  // current back to the previous release: find sorted by mtime, file state=link
		"ansible_bluegreen_docker":         {"playbook.yml", []string{"blockinfile"}, nil},                                                              // blue/green containers behind nginx: {% if %} strings, json_query, uri health checks
		"ansistrano_symfony":               {"symfony_50.yml", []string{"git"}, nil},                                                                    // hooks set by the dependent role's vars, remote_src, when: x is defined guards
		"bmemartin_docker_compose":         {"playbooks/docker_compose.yaml", nil, nil},                                                                 // docker_compose_v2 project, networks, a recreate handler
		"ansistrano_deploy":                {"deploy.yml", nil, nil},                                                                                    // releases/ + current symlink; templated include_tasks, find
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
		pb, err := Load(filepath.Join(dir, c.playbook), nil)
		var got, others []string
		if err != nil {
			var list diag.List
			if !errors.As(err, &list) {
				t.Errorf("%s: %v", d.Name(), err)
				continue
			}
			for _, e := range list {
				if len(others) < len(c.others) && e.Msg == c.others[len(others)] && e.Hint != "" && e.Pos.Line > 0 {
					others = append(others, e.Msg)
					continue
				}
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
		if len(others) != len(c.others) {
			t.Errorf("%s: out-of-scope lines %q, want %q", d.Name(), others, c.others)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(c.unsupported, ",") {
			t.Errorf("%s: unsupported modules %v, want %v (each once)", d.Name(), got, c.unsupported)
		}
	}
}
