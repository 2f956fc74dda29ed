package tasks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// cleanupTimeout bounds best-effort cleanup after an error or cancellation.
const cleanupTimeout = 10 * time.Second

// cleanupContext is a fresh context for cleanup: the task's own context may
// already have ended, which is often why cleanup is needed.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cleanupTimeout)
}

// lineWriter hands complete lines to out (the TUI's live tail).
type lineWriter struct {
	mu  sync.Mutex
	out func(string)
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.out(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a very long line: show what there is
		w.out(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.out(string(w.buf))
		w.buf = nil
	}
}

// runOn runs cmd on the host with the task's become settings and
// environment (the Conn sends its values on stdin, never on the command
// line). With stream, output lines go to h.Output while the command runs.
func runOn(ctx context.Context, h *Host, cmd string, stream bool) (Result, error) {
	if h.Conn == nil {
		return Result{}, errors.New("no connection to the host")
	}
	opts := h.Become
	opts.Stdin, opts.Stdout, opts.Stderr = nil, nil, nil
	var lw *lineWriter
	if stream && h.Output != nil {
		lw = &lineWriter{out: h.Output}
		opts.Stdout, opts.Stderr = lw, lw
	}
	res, err := h.Conn.Run(ctx, cmd, opts)
	if lw != nil {
		lw.flush()
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return res, err
}

// cmdResult is what `register` stores for a command.
func cmdResult(cmd string, r Result) map[string]any {
	stdout := strings.TrimRight(string(r.Stdout), "\n")
	stderr := strings.TrimRight(string(r.Stderr), "\n")
	return map[string]any{
		"cmd":          cmd,
		"rc":           r.ExitCode,
		"stdout":       stdout,
		"stderr":       stderr,
		"stdout_lines": splitLines(stdout),
		"stderr_lines": splitLines(stderr),
	}
}

func splitLines(s string) []any {
	if s == "" {
		return []any{}
	}
	parts := strings.Split(s, "\n")
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out
}

// failMsg describes a failed command in one line: the exit status and the
// last line of stderr (or stdout), which is usually the reason.
func failMsg(what string, r Result) string {
	last := lastLine(r.Stderr)
	if last == "" {
		last = lastLine(r.Stdout)
	}
	if last == "" {
		return fmt.Sprintf("%s exited with status %d", what, r.ExitCode)
	}
	return fmt.Sprintf("%s exited with status %d: %s", what, r.ExitCode, last)
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// sftpUser is the user files are written as: the become user when the task
// uses become (root by default), else the login user ("").
func sftpUser(h *Host) string {
	if !h.Become.Become {
		return ""
	}
	if h.Become.BecomeUser == "" {
		return "root"
	}
	return h.Become.BecomeUser
}

// localPath resolves a controller-side path against the playbook directory.
func localPath(h *Host, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
		return p
	}
	if h.Dir == "" {
		return p
	}
	first := filepath.Join(h.Dir, p)
	if len(h.Fallback) == 0 {
		return first
	}
	if fileExists(first) {
		return first
	}
	for _, d := range h.Fallback {
		if c := filepath.Join(d, p); fileExists(c) {
			return c
		}
	}
	return first // for the error message: where it was looked for first
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkMsg prefixes what a check run would do.
func checkMsg(format string, v ...any) string {
	return "would " + fmt.Sprintf(format, v...)
}
