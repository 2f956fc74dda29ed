package ssh

import (
	"net"
	"syscall"
	"testing"
)

// After an exchange in both directions (which puts Linux into delayed-ACK
// "pingpong" mode), a read on a quickAck connection leaves TCP_QUICKACK on.
func TestQuickAckRearmsAfterRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer s.Close()
		buf := make([]byte, 1)
		for _, b := range []byte("abc") {
			if _, err := s.Write([]byte{b}); err != nil {
				served <- err
				return
			}
			if _, err := s.Read(buf); err != nil {
				served <- err
				return
			}
		}
		served <- nil
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := quickAck(raw)
	if _, ok := c.(*quickAckConn); !ok {
		t.Fatalf("quickAck(%T) did not wrap a TCP connection", raw)
	}
	buf := make([]byte, 1)
	for i := 0; i < 3; i++ {
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		if got := quickAckOn(t, raw); got != 1 {
			t.Errorf("after read %d: TCP_QUICKACK is %d, want 1", i+1, got)
		}
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

func quickAckOn(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}
