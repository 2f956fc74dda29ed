package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
)

// While a verify gate bakes, the banner counts down and shows each check's
// latest value; a failed gate leaves a warning naming the check.
func TestGateBanner(t *testing.T) {
	h := midRollout(t, 160, 24)
	h.at(40*time.Second, events.Event{Kind: events.GateStart, Batch: 2, Hosts: []string{"api-02"}, Duration: 30 * time.Second})
	h.at(41*time.Second, events.Event{Kind: events.GateCheck, Batch: 2, Task: "pages", Module: "http", TaskIndex: 1, Status: events.StatusOK, Msg: "api-02: 200 in 3ms"})
	h.at(52 * time.Second)
	v := h.view()
	if !strings.Contains(v, "GATE after batch 2: baking, 18s left") || !strings.Contains(v, "pages ok: api-02: 200 in 3ms") {
		t.Fatalf("no gate banner:\n%s", v)
	}
	h.at(53*time.Second, events.Event{Kind: events.GateEnd, Batch: 2, Status: events.StatusFailed, Msg: "pages (http) failed: api-02: status 500"})
	v = h.view()
	if strings.Contains(v, "baking") || !strings.Contains(v, "verify gate after batch 2 failed: pages (http) failed: api-02: status 500") {
		t.Fatalf("after the gate:\n%s", v)
	}
}
