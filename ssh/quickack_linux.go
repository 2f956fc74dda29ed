package ssh

import (
	"net"
	"syscall"
)

// quickAck keeps a TCP connection out of delayed-ACK mode. A bastion
// whose connection carries only forwarded channels never gets
// TCP_NODELAY from its sshd (OpenSSH sets it when a session starts), so
// when it relays a host's answer in two small writes, Nagle holds the
// second until this end acknowledges the first, which Linux delays by
// up to 40 ms: a stall on about half of all commands through a bastion.
// Acknowledging at once (TCP_QUICKACK, which the kernel clears again, so
// it is set after every read) removes the stall at the cost of an ACK
// per segment received.
func quickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{Conn: c, raw: raw}
	q.arm()
	return q
}

type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

func (q *quickAckConn) arm() {
	_ = q.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

func (q *quickAckConn) Read(p []byte) (int, error) {
	n, err := q.Conn.Read(p)
	if n > 0 {
		q.arm()
	}
	return n, err
}
