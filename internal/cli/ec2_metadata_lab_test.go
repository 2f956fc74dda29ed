package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// imdsResponder is a small IMDSv2: a token from PUT /latest/api/token, and
// metadata only for requests that carry it.
const imdsResponder = `
import http.server
TOKEN = "tok-5f2a"
DATA = {"/latest/meta-data/instance-id": "i-0lab1", "/latest/meta-data/placement/region": "eu-west-1",
        "/latest/meta-data/placement/availability-zone": "eu-west-1a", "/latest/meta-data/local-ipv4": "10.0.0.5",
        "/latest/dynamic/instance-identity/document": '{"accountId": "123456789012", "instanceId": "i-0lab1", "region": "eu-west-1"}'}
class H(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self.reply(200 if ok else 400, TOKEN if ok else "")
    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self.reply(401, "")
        v = DATA.get(self.path)
        self.reply(200 if v is not None else 404, v or "")
    def reply(self, code, body):
        b = body.encode()
        self.send_response(code); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(("169.254.169.254", 80), H).serve_forever()
`

// ec2_metadata_facts reads the instance's metadata with IMDSv2 from the host
// (a responder in the lab host's own network namespace answers at
// 169.254.169.254, and refuses requests without the session token), in one
// command.
func TestLabEC2MetadataFacts(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 1})
	isolate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if _, err := l.ExecInput(ctx, "app1", strings.NewReader(imdsResponder), "cat > /root/imds.py && ip addr add 169.254.169.254/32 dev lo"); err != nil {
		t.Fatal(err)
	}
	out, err := l.Exec(ctx, "app1", "nohup /usr/bin/python3 /root/imds.py >/root/imds.log 2>&1 </dev/null & echo $!")
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	t.Cleanup(func() {
		if pid > 0 {
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = l.Exec(c, "app1", "kill "+strconv.Itoa(pid))
		}
	})
	ready := false
	for i := 0; i < 100 && !ready; i++ {
		_, err := l.Exec(ctx, "app1", "curl -sf -m 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 5' http://169.254.169.254/latest/api/token")
		ready = err == nil
		if !ready {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ready {
		log, _ := l.Exec(ctx, "app1", "cat /root/imds.log")
		t.Fatalf("the metadata responder did not start: %s", log)
	}
	// Commands are counted as sshd sessions: one per command only without
	// the connection's command shell (ssh/shell.go).
	env := []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + t.TempDir(), "FERRY_SSH_SHELL=0"}
	pb := filepath.Join(dir, "ec2.yml")
	write := func(extra string) {
		src := "- hosts: app\n  gather_facts: false\n  tasks:\n" + extra +
			"    - assert: {that: \"inventory_hostname == 'app1'\"}\n"
		if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sessions := func() int {
		out, err := l.Exec(ctx, "app1", "grep -c 'Starting session: command' /var/log/sshd.log || true")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n
	}
	run := func() (result, int) {
		before := sessions()
		r := ferry(t, env, "run", pb, "-i", l.Inventory, "--output", "plain")
		return r, sessions() - before
	}
	write("")
	r, base := run()
	if r.code != 0 {
		t.Fatalf("baseline: exit %d", r.code)
	}
	write(`    - amazon.aws.ec2_metadata_facts:
    - assert:
        that:
          - ansible_ec2_instance_id == 'i-0lab1'
          - ansible_facts.ec2_placement_region == 'eu-west-1'
          - ansible_ec2_instance_identity_document_accountid == '123456789012'
`)
	r, withIMDS := run()
	if r.code != 0 {
		t.Fatalf("ec2_metadata_facts: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if withIMDS != base+1 {
		t.Errorf("commands: %d with ec2_metadata_facts, %d without: want exactly one more", withIMDS, base)
	}
}
