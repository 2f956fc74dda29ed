package tasks

import (
	"context"
	"strings"
	"testing"
)

// wait_for with neither port nor path sleeps delay then timeout, as Ansible's does.
func TestWaitForSleeps(t *testing.T) {
	m, _ := Lookup("wait_for")
	out, err := Call(context.Background(), m, &Host{Conn: newLocalConn(t)}, map[string]any{"timeout": "10ms", "delay": "5ms"})
	if err != nil || !strings.Contains(out.Msg, "slept 15ms") {
		t.Fatalf("%+v %v", out, err)
	}
	if _, err := Call(context.Background(), m, &Host{Conn: newLocalConn(t)}, map[string]any{"port": 1, "path": "/x"}); err == nil {
		t.Error("port and path together were accepted")
	}
}
