package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Kind classifies why a host could not be reached.
type Kind int

const (
	KindOther          Kind = iota
	KindUnreachable         // no route, refused, DNS: the host or a hop is not there
	KindTimeout             // connect or handshake did not finish in time
	KindAuth                // the server rejected every key we offered
	KindHostKeyChanged      // the host presents a key different from known_hosts: possible MITM, never retried
	KindHostKeyUnknown      // strict policy and the host is not in known_hosts
)

func (k Kind) String() string {
	switch k {
	case KindUnreachable:
		return "unreachable"
	case KindTimeout:
		return "timeout"
	case KindAuth:
		return "permission denied"
	case KindHostKeyChanged:
		return "host key changed"
	case KindHostKeyUnknown:
		return "host key unknown"
	}
	return "connection failed"
}

// Error is a classified connection failure. Its message is one line naming
// the host (and the hop, when a bastion failed) and saying what to do next.
type Error struct {
	Host string // inventory name of the target
	Hop  string // user@addr:port of the hop that failed (the target itself when direct)
	Kind Kind
	Msg  string // what happened, lowercase
	Hint string // what to do next
	Err  error
	// NotStarted: the connection failed before the command could start on
	// the host (no session opened), so the command did nothing there.
	NotStarted bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Host)
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether trying again could help. A changed host key or
// rejected credentials never get better by retrying.
func (e *Error) Retryable() bool {
	return e.Kind == KindUnreachable || e.Kind == KindTimeout || e.Kind == KindOther
}

// NotStarted reports whether err says a command never started on its host
// (the session could not be opened): whatever the host's state, this
// command did not change it.
func NotStarted(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.NotStarted
}

// KindOf returns the Kind of err, KindOther when it is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// classifyDial turns a TCP-level (or forwarded channel) dial error into an *Error.
func classifyDial(host, hop string, via string, err error) *Error {
	e := &Error{Host: host, Hop: hop, Err: err}
	where := hop
	if via != "" {
		where = hop + " via " + via
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, os.ErrDeadlineExceeded):
		e.Kind = KindTimeout
		e.Msg = fmt.Sprintf("timed out connecting to %s", where)
		e.Hint = "check that the host is up and its security group allows SSH from the bastion; raise ConnectTimeout if the network is slow"
	case errors.Is(err, context.Canceled):
		e.Kind = KindOther
		e.Msg = fmt.Sprintf("connecting to %s: interrupted", where)
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connect failed") || strings.Contains(err.Error(), "Connection refused"):
		e.Kind = KindUnreachable
		e.Msg = fmt.Sprintf("connection to %s refused: %v", where, rootCause(err))
		e.Hint = "is sshd running on that port? check the address and port in the inventory"
	default:
		e.Kind = KindUnreachable
		e.Msg = fmt.Sprintf("cannot reach %s: %v", where, rootCause(err))
		e.Hint = "check the address, the route, and that the bastion can reach it"
	}
	return e
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			return op.Err
		}
		err = u
	}
}
