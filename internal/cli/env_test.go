package cli

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ferrydeploy/ferry/playbooks"
	"github.com/ferrydeploy/ferry/ssh"
	"github.com/pkg/sftp"
)

// recordConn is a tasks.Conn that records each command's stdin (a release
// record) and succeeds.
type recordConn struct {
	mu    sync.Mutex
	stdin []string
}

func (c *recordConn) Run(ctx context.Context, cmd string, opts ssh.RunOptions) (ssh.Result, error) {
	var b strings.Builder
	if opts.Stdin != nil {
		buf := make([]byte, 4096)
		for {
			n, err := opts.Stdin.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
	}
	c.mu.Lock()
	c.stdin = append(c.stdin, b.String())
	c.mu.Unlock()
	return ssh.Result{}, nil
}

func (c *recordConn) SFTP(context.Context, string) (*sftp.Client, error) { return nil, nil }
func (c *recordConn) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, net.ErrClosed
}

// The runner calls HostDone from every host's goroutine at once: recording
// releases must not share unguarded state between them (a "concurrent map
// writes" fatal mid-rollout). Run under -race (make test does).
func TestHostDoneConcurrentHosts(t *testing.T) {
	c := &RunCmd{}
	c.Playbook = "deploy.yml"
	opts := &playbooks.Options{RunID: "r1", Version: "1.0", User: "u",
		Extra: map[string]any{"version": "1.0", "token": "s3cret", "region": "eu"}}
	c.runHooks(&envHosts{}, nil, opts, func() {})
	play := &playbooks.Play{Secrets: []string{"token"}}
	conn := &recordConn{}
	const hosts = 16
	var wg sync.WaitGroup
	errs := make(chan error, hosts)
	for range hosts {
		wg.Go(func() {
			errs <- opts.HostDone(context.Background(), playbooks.HostDone{Conn: conn, Play: play,
				Vars: map[string]any{"app": "api"}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(conn.stdin) != hosts {
		t.Fatalf("%d releases recorded, want %d", len(conn.stdin), hosts)
	}
	for _, rec := range conn.stdin {
		if strings.Contains(rec, "s3cret") || !strings.Contains(rec, `"region":"eu"`) {
			t.Fatalf("release record %q: want region kept and the secret left out", rec)
		}
	}
}
