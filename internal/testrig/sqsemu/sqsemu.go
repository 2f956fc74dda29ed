// Package sqsemu runs the third-party SQS emulator local-aws-sqs (an npm
// package: FIFO queues, visibility timeouts, redrive to dead-letter queues,
// long polling) as a child process on a loopback port, for the worker's
// tests. scripts/deps.sh sqs installs it into the repo's .deps/npm; ferry's
// code reaches it through the real aws-sdk-go-v2 SQS client
// (AWS_ENDPOINT_URL_SQS).
//
// Where local-aws-sqs 2.0.2 differs from SQS (tests must not count on
// these): a FIFO group's later messages are delivered while an earlier one
// is in flight (SQS holds them back); ChangeMessageVisibility counts as a
// receive (ApproximateReceiveCount, and so maxReceiveCount); the message
// system attributes are returned only for the older AttributeNames
// parameter, not MessageSystemAttributeNames; ApproximateNumberOfMessages
// includes messages in flight.
package sqsemu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// launcher starts the emulator on a free loopback port, prints its URL, and
// exits when its stdin closes: a test process that dies takes it along.
const launcher = `
const { createSqsServer } = require(process.argv[1]);
createSqsServer({ port: 0, hostname: "127.0.0.1", emulateQueueCreationLifecycle: false })
  .then((s) => { process.stdout.write("listening http://127.0.0.1:" + s.address().port + "\n"); });
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => process.exit(0));
`

// Emulator is a running local-aws-sqs.
type Emulator struct {
	URL string // http://127.0.0.1:PORT, for AWS_ENDPOINT_URL_SQS
	PID int

	cmd   *exec.Cmd
	stdin io.Closer
	done  chan error
}

// ModuleDir is where scripts/deps.sh installs local-aws-sqs:
// $FERRY_SQS_EMULATOR, else .deps/npm/node_modules/local-aws-sqs in the repo.
func ModuleDir() string {
	if d := os.Getenv("FERRY_SQS_EMULATOR"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(), ".deps", "npm", "node_modules", "local-aws-sqs")
}

// repoRoot is the nearest directory at or above the working directory (a
// test's package directory) that holds the module's go.mod. Not the
// source file's path (runtime.Caller): make test builds with -trimpath,
// which leaves a file only its import path.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/ferrydeploy/ferry\n")) {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}

// Available says why the emulator cannot run here, or nil.
func Available() error {
	if testing.Testing() && testing.Short() {
		return errors.New("no SQS emulator in -short mode (make unit): make test runs these tests")
	}
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed: run scripts/deps.sh sqs (make test does)")
	}
	if _, err := os.Stat(filepath.Join(ModuleDir(), "package.json")); err != nil {
		return fmt.Errorf("local-aws-sqs is not installed in %s: run scripts/deps.sh sqs (make test does)", ModuleDir())
	}
	return nil
}

// Start runs the emulator and waits (bounded by ctx and 30s) until it listens.
func Start(ctx context.Context) (*Emulator, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(ModuleDir())
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "-e", launcher, dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start local-aws-sqs: %w", err)
	}
	e := &Emulator{PID: cmd.Process.Pid, cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				urlc <- u
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		e.done <- cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case e.URL = <-urlc:
		return e, nil
	case err := <-e.done:
		e.done <- err
		return nil, fmt.Errorf("local-aws-sqs exited before listening: %v", err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("local-aws-sqs did not listen: %w", ctx.Err())
	}
}

// Close stops the emulator (SIGTERM to its PID, then SIGKILL) and waits.
func (e *Emulator) Close() error {
	_ = e.stdin.Close()
	_ = syscall.Kill(e.PID, syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(e.PID, syscall.SIGKILL)
		<-e.done
	}
	return nil
}

// StartT starts the emulator for a test, skipping it (with the reason) when
// the emulator is not installed, and stops it at cleanup.
func StartT(t testing.TB) *Emulator {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	e, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
