//go:build !linux

package ssh

import "net"

// quickAck is Linux's delayed-ACK fix (quickack_linux.go); elsewhere the
// connection is used as it is.
func quickAck(c net.Conn) net.Conn { return c }
