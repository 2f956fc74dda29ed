package ssh_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/ssh"
)

// blackhole forwards TCP to addr until dead is set; then it reads and
// drops everything, both ways, as a link that died without a FIN does.
func blackhole(t *testing.T, addr string, dead *atomic.Bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				dst.Close()
				return
			}
			if !dead.Load() {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return ln.Addr().String()
}

// TestRunOnDeadLinkHonoursCtx: on a link that died silently, opening a
// session and running a command return when ctx ends, not when the
// keepalives give up on the connection (45s by default).
func TestRunOnDeadLinkHonoursCtx(t *testing.T) {
	l := lab.StartT(t, lab.Options{Hosts: 1})
	var dead atomic.Bool
	b := l.Bastions[0]
	proxy := blackhole(t, net.JoinHostPort(b.Addr, strconv.Itoa(b.Port)), &dead)
	host, port, _ := net.SplitHostPort(proxy)
	p, _ := strconv.Atoi(port)
	mgr, err := ssh.NewManager(ssh.Config{IdentityFiles: []string{l.KeyFile}, Policy: ssh.Off, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mgr.Connect(ctx, ssh.Target{Name: "bastion", Addr: host, Port: p, User: l.User, NoJumps: true})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.Run(ctx, "echo alive", ssh.RunOptions{}); err != nil || string(res.Stdout) != "alive\n" {
		t.Fatalf("before the link dies: %q %v", res.Stdout, err)
	}
	dead.Store(true)

	done := make(chan error, 1)
	rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
	defer rcancel()
	go func() {
		_, err := c.Run(rctx, "echo never", ssh.RunOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
	case <-time.After(30 * time.Second): // well under the 45s keepalives would take
		t.Fatal("Run on a dead link ignored its context")
	}
}
