// Package tasks holds ferry's modules: one file per module (shell, copy,
// systemd, http, ...). Each module runs one step of a task on one host through
// that host's Conn and reports ok, changed, failed or skipped.
package tasks

import (
	"context"
	"net"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/ssh"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

// Conn is what a module needs from a host: commands, file transfer and
// TCP tunnels, all over the one SSH connection the run keeps to that host.
// ssh.Client implements it; tests may use a local implementation.
type Conn interface {
	// Run runs cmd (a shell command line, passed to the login shell as
	// OpenSSH does) and waits for it. A non-zero exit status is not an
	// error: it is reported in Result.ExitCode. Errors mean the command
	// could not be run or ctx ended (then the remote process is signalled).
	Run(ctx context.Context, cmd string, opts RunOptions) (Result, error)
	// SFTP returns an SFTP client on the host's connection, opened once per
	// user and reused. asUser "" is the login user; any other value runs the
	// host's sftp-server through `sudo -n -u asUser`, so files can be written
	// where only root (or the app's user) may write.
	SFTP(ctx context.Context, asUser string) (*sftp.Client, error)
	// DialContext opens a TCP connection from the host (direct-tcpip), e.g. to
	// 127.0.0.1:8080 on the host, without anything installed there.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// RunOptions tune one command (become, environment, streams). The SSH layer
// owns the type so its Client satisfies Conn without an adapter.
type RunOptions = ssh.RunOptions

// Result of a command: exit code and captured output.
type Result = ssh.Result

// The SSH client is the production Conn.
var _ Conn = (*ssh.Client)(nil)

// CommandPrelude is what the commands of the modules that change host
// files begin with (ferry's file functions): a connection's command
// shells can hold it (ssh.Config.Prelude), so those commands send only
// their body.
const CommandPrelude = hostfs.Lib
