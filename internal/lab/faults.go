package lab

import (
	"context"
	"fmt"
	"net"
	"strconv"
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
