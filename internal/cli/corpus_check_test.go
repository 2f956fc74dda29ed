package cli

import (
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// `ferry check -i INVENTORY` on corpus playbooks (testdata/ansible-corpus)
// with their inventories, as a user runs it: every problem reported is one
// that the migration guide lists as out of scope, each named once.
func TestCheckAnsibleCorpusWithInventory(t *testing.T) {
	isolate(t)
	corpus := filepath.Join("..", "..", "testdata", "ansible-corpus")
	tests := []struct {
		dir, playbook string
		inventories   []string
		want          []string // sorted problem messages (none: it passes)
	}{
		{"hardybmx_ad_rolling_update", "rolling_update.yml", []string{"hosts"},
			[]string{`module "git" is not supported by ferry`, `module "seboolean" is not supported by ferry`, `module "yum" is not supported by ferry`}},
		{"ansispire_rolling_update", "playbooks/rolling_update.yml", []string{"inventory/prod/hosts.ini", "lb-hosts.ini"},
			[]string{`module "ansible.builtin.git" is not supported by ferry`, `module "ansible.builtin.pip" is not supported by ferry`}},
		{"wamp_haproxy_elb", "rolling_update.yml", []string{"hosts"},
			[]string{`connection: "winrm" is not supported on a play`, `module "win_get_url" is not supported by ferry`}},
		{"lamp_simple", "site.yml", []string{"hosts"}, []string{`module "git" is not supported by ferry`, `module "mysql_db" is not supported by ferry`,
			`module "mysql_user" is not supported by ferry`, `module "seboolean" is not supported by ferry`, `module "yum" is not supported by ferry`}},
		{"tomcat_memcached_failover", "site.yml", []string{"hosts"}, []string{`module "yum" is not supported by ferry`}},
		{"tomcat_standalone", "site.yml", []string{"hosts"}, []string{`module "firewalld" is not supported by ferry`, `module "group" is not supported by ferry`,
			`module "user" is not supported by ferry`, `module "yum" is not supported by ferry`}},
		{"mastering_ansible_serial_handler", "forserial.yaml", []string{"mastery-hosts"}, nil},
		{"cloudforms_rolling_update", "playbooks/rolling-update.yml", []string{"files/inventory"},
			[]string{`module "package" is not supported by ferry`, `module "redhat_subscription" is not supported by ferry`, `module "yum" is not supported by ferry`}},
	}
	problem := regexp.MustCompile(`^(?:ferry: )?\S+:\d+:\d+: (.*)$`)
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join(corpus, tc.dir)
			args := []string{"check", filepath.Join(dir, tc.playbook)}
			for _, inv := range tc.inventories {
				args = append(args, "-i", filepath.Join(dir, inv))
			}
			r := ferry(t, nil, args...)
			wantCode := exitcode.Invalid
			if len(tc.want) == 0 {
				wantCode = exitcode.OK // passes as it is
			}
			if r.code != wantCode {
				t.Fatalf("exit %d, want %d", r.code, wantCode)
			}
			var got []string
			for _, line := range strings.Split(r.stderr, "\n") {
				if m := problem.FindStringSubmatch(line); m != nil {
					got = append(got, m[1])
				}
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
