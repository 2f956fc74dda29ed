package environments

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// The lock's holder: on a host whose connection can keep a command running
// (Starter), a run takes the lock with a root shell that stays: it takes
// the lock, answers, and then waits for lines from ferry, "heartbeat" and
// finally the release records and "release", which it carries out under
// the same flock as any operation. Releasing the lock thus costs the host
// no second sudo (about 5 ms of CPU each on a small VM, on every host at
// once) and no second round trip of its own.
//
// A holder never releases on its own: when its stdin ends without a
// "release" (the controller was killed, the link dropped), it exits and
// the lock stays held, as a run that died leaves it; its heartbeat stops,
// and a run of the same machine sees that its process is gone.

// Stream is a command running on a host that its caller talks to: lines
// to its stdin, its stdout as it comes.
type Stream interface {
	io.Writer // to its stdin
	io.Reader // its stdout
	// CloseWrite ends its stdin.
	CloseWrite() error
	// Wait waits for it to end (its exit status and stderr; no stdout).
	Wait(ctx context.Context) (Result, error)
	// Close ends it at once.
	Close() error
}

// Starter is a Conn that can start a Stream (an SSH connection: a session
// of its own). Start returns ErrNoStream when this connection cannot (the
// lock then takes one command per operation, as on any Conn).
type Starter interface {
	Start(ctx context.Context, cmd string, opts RunOptions) (Stream, error)
}

// ErrNoStream is Start's answer on a connection that cannot keep a
// command running.
var ErrNoStream = errors.New("this connection cannot keep a command running")

const (
	holderBegin = "FERRY-LOCK-BEGIN" // first line ferry sends: what comes before it is sudo's unread password
	holderEnd   = "FERRY-LOCK-END"   // ends each answer
)

// holderScript takes the lock (lk acquire) and, when it took it, serves
// ferry's lines until "release" or the end of its stdin. Records are data:
// "record APP JSON", APP checked against the names AppName makes, the JSON
// written as it came to APP's state file (temporary file, then rename).
func holderScript(env, token string, timeout time.Duration, info []byte, adopt []string) string {
	return lockFuncs(env, token, timeout, info, adopt) + fmt.Sprintf(`while IFS= read -r l; do [ "$l" != %[1]s ] || break; done
lk acquire
echo %[2]s
[ "$st" = held ] || exit 0
sd=%[3]s
while IFS= read -r op; do
  case $op in
  heartbeat) lk heartbeat; echo %[2]s ;;
  "record "*)
    r=${op#record }; a=${r%%%% *}; r=${r#* }
    case $a in
    ''|.*|*[!A-Za-z0-9_.-]*) echo %[4]s bad app name ;;
    *) t="$sd/.tmp.$$"; if printf '%%s\n' "$r" >"$t" && mv -f "$t" "$sd/$a.json"; then :; else rm -f "$t"; echo %[4]s; fi ;;
    esac ;;
  release) lk release; echo %[2]s; exit 0 ;;
  esac
done
`, holderBegin, holderEnd, stateDir, stateFailed)
}

// holder is one host's running holder.
type holder struct {
	host string
	s    Stream
	r    *bufio.Reader
	mu   sync.Mutex
}

// ask sends req (whole lines) and reads the answer up to holderEnd. The
// holder is closed when ctx ends first.
func (h *holder) ask(ctx context.Context, req string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	type answer struct {
		out []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		if req != "" {
			if _, err := io.WriteString(h.s, req); err != nil {
				done <- answer{nil, err}
				return
			}
		}
		var out []byte
		for {
			line, err := h.r.ReadString('\n')
			if strings.TrimSuffix(line, "\n") == holderEnd {
				done <- answer{out, nil}
				return
			}
			out = append(out, line...)
			if err != nil {
				done <- answer{out, err}
				return
			}
		}
	}()
	select {
	case a := <-done:
		return a.out, a.err
	case <-ctx.Done():
		h.s.Close()
		return nil, ctx.Err()
	}
}

// end closes the holder's stdin and waits for it (a moment: it exits on
// its own then).
func (h *holder) end(ctx context.Context) (Result, error) {
	h.s.CloseWrite()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return h.s.Wait(wctx)
}

// startHolder takes the lock on h with a holder, when its connection can
// keep one running: the answer, and the holder when the lock was taken.
// ok false: the connection cannot; take it with a command (o.run).
func (o LockOptions) startHolder(ctx context.Context, h LockHost, token string, info []byte, adopt []string) (a lockAnswer, hd *holder, ok bool, err error) {
	st, can := h.Conn.(Starter)
	if !can {
		return a, nil, false, nil
	}
	ro := o.Become
	ro.Become = true
	ro.Stdin = nil
	s, err := st.Start(ctx, holderScript(o.Info.Env, token, o.Timeout, info, adopt), ro)
	if errors.Is(err, ErrNoStream) {
		return a, nil, false, nil
	}
	if err != nil {
		return a, nil, true, fmt.Errorf("lock acquire on %s: %w", h.Name, err)
	}
	// Small: every host keeps its holder's reader for the whole run.
	hd = &holder{host: h.Name, s: s, r: bufio.NewReaderSize(s, 512)}
	out, err := hd.ask(ctx, holderBegin+"\n")
	if err != nil {
		// No answer: the command ended (sudo refused, no flock) or the link did.
		res, werr := hd.end(ctx)
		stderr := strings.TrimSpace(string(res.Stderr))
		switch {
		case ctx.Err() != nil:
			return a, nil, true, fmt.Errorf("lock acquire on %s: %w", h.Name, ctx.Err())
		case werr != nil:
			return a, nil, true, fmt.Errorf("lock acquire on %s: %w", h.Name, werr)
		case res.ExitCode != 0 && deniedBySudo(stderr):
			return a, nil, true, &PrivilegeError{Host: h.Name, Msg: stderr}
		case res.ExitCode != 0:
			return a, nil, true, fmt.Errorf("lock acquire on %s: exit %d: %s", h.Name, res.ExitCode, stderr)
		}
		return a, nil, true, fmt.Errorf("lock acquire on %s: no answer from the lock script (is flock(1) installed? it is in util-linux): %s", h.Name, strings.TrimSpace(string(out)))
	}
	if a, err = parseLockAnswer(out); err != nil {
		hd.s.Close()
		return a, nil, true, fmt.Errorf("lock acquire on %s: %w", h.Name, err)
	}
	if a.info != nil {
		a.info.Host = h.Name
	}
	switch a.state {
	case "acquired", "taken", "adopted":
		return a, hd, true, nil
	}
	hd.end(ctx) // it exits: it holds nothing
	return a, nil, true, nil
}

// holderRelease writes recs and releases the lock through hd, then lets it
// end: the same answer as the release command.
func (l *Lock) holderRelease(ctx context.Context, hd *holder, recs []Release) (lockAnswer, error) {
	apps, lines, err := recordLines(recs)
	if err != nil {
		return lockAnswer{}, err
	}
	var req strings.Builder
	for i, app := range apps {
		fmt.Fprintf(&req, "record %s %s\n", app, lines[i])
	}
	req.WriteString("release\n")
	out, err := hd.ask(ctx, req.String())
	if err != nil {
		hd.s.Close()
		return lockAnswer{}, err
	}
	res, _ := hd.end(ctx)
	a, err := parseLockAnswer(out)
	if err != nil {
		return a, err
	}
	if bytes.Contains(out, []byte(stateFailed)) {
		a.stateErr = fmt.Errorf("record release on %s: %s", hd.host, strings.TrimSpace(string(res.Stderr)))
	}
	return a, nil
}
