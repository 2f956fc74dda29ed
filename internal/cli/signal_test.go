package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// The first signal is the graceful abort; the second must stop at once
// (SPEC), even though the first one cancelled the context.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	ch := make(chan os.Signal, 2)
	second := make(chan struct{})
	ctx, stop := watchSignals(ch, func() { close(second) })
	defer stop()

	ch <- os.Interrupt
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first signal did not cancel the run")
	}
	ch <- os.Interrupt
	select {
	case <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal was ignored: a graceful abort cannot be cut short")
	}
}

// After stop, a signal changes nothing.
func TestSignalsAfterStopAreIgnored(t *testing.T) {
	ch := make(chan os.Signal, 2)
	ctx, stop := watchSignals(ch, func() { t.Error("second-signal action after stop") })
	stop()
	ch <- os.Interrupt
	ch <- os.Interrupt
	<-ctx.Done() // stop cancels the context itself
}

// Ctrl-C during ping is an interruption (130), not unreachable hosts (3).
func TestPingInterruptedExits130(t *testing.T) {
	t.Parallel()
	isolate(t)
	// A key, so ferry gets as far as the handshake (and waits there).
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	setTestEnv(t, "FERRY_SSH_KEY="+string(pem.EncodeToMemory(block)))
	// An SSH port that accepts and never answers: the signal comes while
	// ferry waits for the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cancel()
		<-done // hold the connection until the test ends
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	inv := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(inv, []byte(fmt.Sprintf("[app]\napp1 ansible_host=127.0.0.1 ansible_port=%d\n", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runEnv(ctx, []string{"--ssh-config", "none", "--known-hosts-policy", "off", "ping", "-i", inv}, commandEnv(t), strings.NewReader(""), &out, &errb)
	if code != exitcode.Interrupted {
		t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, exitcode.Interrupted, out.String(), errb.String())
	}
}

// TestCheckStopsOnFirstSignal: check and inventory only read files, so the
// first signal ends them even while a loader is still busy (issue 8).
func TestCheckStopsOnFirstSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	busy := make(chan struct{})
	defer close(busy)
	done := make(chan error, 1)
	go func() { done <- interruptible(ctx, func() error { <-busy; return nil }) }()
	cancel()
	select {
	case err := <-done:
		var buf bytes.Buffer
		if code := report(&buf, err); code != exitcode.Interrupted {
			t.Fatalf("exit %d (%v), want %d", code, err, exitcode.Interrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a busy check ignored the first signal")
	}
}
