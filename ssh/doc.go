// Package ssh is ferry's connection layer: one SSH connection per host for
// the whole run, one shared connection per bastion, multi-hop ProxyJump,
// the auth operators and CI jobs use (agent, identity files, certificates, a
// key in FERRY_SSH_KEY), OpenSSH known_hosts semantics, keepalives and
// timeouts. Commands, SFTP and TCP tunnels are channels on that one
// connection, so a task costs one round trip, not a handshake.
//
// Connection failures are classified (see Error) so the CLI can say what to
// do next and so a changed host key is never retried.
package ssh
