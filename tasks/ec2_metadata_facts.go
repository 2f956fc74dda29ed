package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

func init() {
	Register(ec2MetadataFactsModule{name: "ec2_metadata_facts"})
	Register(ec2MetadataFactsModule{name: "ec2_facts"}) // the older name
}

// ec2MetadataFactsModule reads the instance's metadata (IMDSv2: a session
// token, then the values) from the host itself, in one command, into
// ansible_ec2_* facts as Ansible's ec2_metadata_facts names them.
type ec2MetadataFactsModule struct{ name string }

func (m ec2MetadataFactsModule) Spec() Spec {
	return Spec{
		Name: m.name, GathersFacts: true,
		Doc: "Gather the EC2 instance's metadata (IMDSv2, from the host with curl) into ansible_ec2_* facts, in one command",
		Params: map[string]Param{
			"validate_certs": {Type: Bool, Doc: "accepted and ignored (the metadata service is plain HTTP)"},
		},
		Returns: map[string]string{"ansible_facts": "ansible_ec2_instance_id, ansible_ec2_instance_type, ansible_ec2_ami_id, ansible_ec2_local_ipv4, ansible_ec2_public_ipv4, ansible_ec2_placement_availability_zone, ansible_ec2_placement_region, ansible_ec2_hostname, ansible_ec2_instance_identity_document_accountid, ..."},
	}
}

// imdsPaths are the meta-data values read; each becomes ec2_<path with / and - as _>.
var imdsPaths = []string{"ami-id", "ami-launch-index", "hostname", "instance-id", "instance-type", "instance-life-cycle",
	"local-hostname", "local-ipv4", "mac", "public-hostname", "public-ipv4", "placement/availability-zone",
	"placement/availability-zone-id", "placement/region", "reservation-id", "security-groups", "profile"}

// The token is asked for once and kept in a shell variable: it never
// appears on a command line (curl reads the header from stdin).
const imdsScript = `command -v curl >/dev/null 2>&1 || { echo "ec2_metadata_facts: curl is not installed on the host" >&2; exit 3; }
u=http://169.254.169.254/latest
t=$(curl -sf -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$u/api/token") || { echo "ec2_metadata_facts: no instance metadata service (IMDSv2 token refused or unreachable)" >&2; exit 4; }
get() { printf 'X-aws-ec2-metadata-token: %s\n' "$t" | curl -sf -m 5 -H @- "$u/$1"; }
for p in ` + "$FERRY_IMDS_PATHS" + `; do echo "@@$p"; get "meta-data/$p"; echo; done
echo @@identity; get dynamic/instance-identity/document; echo`

func (m ec2MetadataFactsModule) Run(ctx context.Context, h *Host, _ map[string]any) (Outcome, error) {
	if h.Conn == nil {
		return Outcome{}, errors.New(m.name + ": no connection to the host")
	}
	res, err := h.Conn.Run(ctx, imdsScript, RunOptions{Env: map[string]string{"FERRY_IMDS_PATHS": strings.Join(imdsPaths, " ")}})
	if err != nil {
		return Outcome{}, fmt.Errorf("%s: %w", m.name, err)
	}
	if res.ExitCode != 0 {
		return Outcome{}, fmt.Errorf("%s", strings.TrimSpace(string(res.Stderr)))
	}
	facts := ParseIMDS(string(res.Stdout))
	prev, _ := h.Vars["ansible_facts"].(map[string]any)
	return Outcome{Msg: fmt.Sprintf("instance %v", facts["ec2_instance_id"]), Facts: FactVars(prev, facts), Result: map[string]any{"ansible_facts": prefixed(facts)}}, nil
}

// ParseIMDS reads the metadata script's output into facts named as
// Ansible's (without the ansible_ prefix): ec2_instance_id, ...
func ParseIMDS(out string) map[string]any {
	facts := map[string]any{}
	name := func(p string) string { return "ec2_" + strings.NewReplacer("/", "_", "-", "_", ":", "_").Replace(p) }
	cur := ""
	var body []string
	flush := func() {
		if cur == "" {
			return
		}
		v := strings.TrimRight(strings.Join(body, "\n"), "\n")
		if cur == "identity" {
			var doc map[string]any
			if json.Unmarshal([]byte(v), &doc) == nil {
				for k, x := range doc {
					facts["ec2_instance_identity_document_"+strings.ToLower(k)] = x
				}
			}
		} else if v != "" {
			facts[name(cur)] = v
		}
		body = nil
	}
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(line, "@@"); ok {
			flush()
			cur = p
			continue
		}
		body = append(body, line)
	}
	flush()
	return facts
}
