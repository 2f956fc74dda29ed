package playbooks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/ssh"
)

// Reconnection: a host's connection (or the bastion's, which carries it)
// that dropped between tasks is made again before the next task, with a
// bounded, jittered backoff: each attempt is bounded by the connect
// timeout, and hosts behind one bastion share its one new connection
// (ssh.Manager), so a bastion coming back is not flooded past MaxStartups.

const (
	reconnectFirst    = 500 * time.Millisecond
	reconnectMaxDelay = 5 * time.Second
	// reconnectTries bounds attempts before a normal task; rollback and
	// `after` try for as long as their budget (the grace period) lasts.
	reconnectTries = 4
)

// reconnect makes sure hr has a live connection. It does nothing when the
// connection is up (or cannot tell it is down).
func (r *Runner) reconnect(ctx context.Context, hr *hostRun, untilDone bool) error {
	c, ok := hr.conn.(interface{ Closed() bool })
	if !ok || !c.Closed() {
		return nil
	}
	delay := reconnectFirst
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("connection lost, and no time left to reconnect (%v)", last)
		}
		conn, err := r.opts.Connector.Connect(ctx, hr.h)
		if err == nil {
			hr.conn = conn
			r.emit(events.Event{Kind: events.Warning, Host: hr.h.Name, Msg: fmt.Sprintf("connection lost; reconnected (attempt %d)", attempt)})
			return nil
		}
		last = err
		var se *ssh.Error
		if errors.As(err, &se) && !se.Retryable() {
			return fmt.Errorf("connection lost; reconnecting failed: %w", err)
		}
		if !untilDone && attempt >= reconnectTries {
			return fmt.Errorf("connection lost; %d reconnection attempts failed: %w", attempt, err)
		}
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		delay = min(delay*2, reconnectMaxDelay)
	}
}
