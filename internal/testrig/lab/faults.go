package lab

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// Faults for tests of what a run does on a bad day. Each acts inside one
// host (its PID namespace), on processes found there by PID.

// StopSSHD kills every sshd process of a host (the listener and each
// connection's), as a crash of the SSH server would: every connection to
// or through the host drops at once.
func (l *Lab) StopSSHD(ctx context.Context, host string) error {
	_, err := l.Exec(ctx, host, `for p in /proc/[0-9]*; do `+
		`if [ "$(cat "$p/comm" 2>/dev/null)" = sshd ]; then kill -9 "${p#/proc/}" 2>/dev/null || true; fi; done`)
	return err
}

// StartSSHD starts a host's sshd again (after StopSSHD) and waits, bounded
// by ctx, until it answers on the host's address.
func (l *Lab) StartSSHD(ctx context.Context, host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	if _, err := l.Exec(ctx, host, `rm -f /run/sshd.pid; /usr/sbin/sshd -f /etc/ssh/sshd_config -E /var/log/sshd.log </dev/null`); err != nil {
		return err
	}
	addr := net.JoinHostPort(h.Addr, strconv.Itoa(h.Port))
	for {
		c, err := l.Dial(ctx, host, addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: sshd did not come back: %w", host, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Crash kills a host's PID 1, as a kernel panic or a power loss would:
// every process of the host dies at once and it does not come back. Its
// files stay readable through HostDir.
func (l *Lab) Crash(ctx context.Context, host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	if err := syscall.Kill(h.pid1, syscall.SIGKILL); err != nil {
		return fmt.Errorf("crash %s: %w", host, err)
	}
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("crash %s: its init did not end: %w", host, ctx.Err())
	}
}
