package tui

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/ferrydeploy/ferry/events"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2025, 6, 11, 10, 15, 0, 0, time.UTC)

// fakeControls records what the TUI asked of the runner.
type fakeControls struct {
	approvals []bool
	pauses    int
	aborts    int
}

func (f *fakeControls) Approve(ok bool)  { f.approvals = append(f.approvals, ok) }
func (f *fakeControls) PauseAfterBatch() { f.pauses++ }
func (f *fakeControls) Abort()           { f.aborts++ }

// harness drives a Model with a fixed clock.
type harness struct {
	t   testing.TB
	m   Model
	ctl *fakeControls
	now time.Time
}

func newHarness(t testing.TB, w, h int) *harness {
	hs := &harness{t: t, ctl: &fakeControls{}, now: t0}
	hs.m = NewModel(Options{NoColor: true, Width: w, Height: h, Now: func() time.Time { return hs.now }}, hs.ctl)
	return hs
}

// at moves the clock to t0+d and stamps the events with it.
func (h *harness) at(d time.Duration, evs ...events.Event) {
	h.now = t0.Add(d)
	for _, e := range evs {
		e.Time = h.now
		h.send(EventMsg(e))
	}
}

func (h *harness) send(msg tea.Msg) tea.Cmd {
	m, cmd := h.m.Update(msg)
	h.m = m.(Model)
	return cmd
}

func (h *harness) key(keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		cmd = h.send(keyMsg(k))
	}
	return cmd
}

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "pgdown":
		return tea.KeyMsg{Type: tea.KeyPgDown}
	case "pgup":
		return tea.KeyMsg{Type: tea.KeyPgUp}
	case "home":
		return tea.KeyMsg{Type: tea.KeyHome}
	case "end":
		return tea.KeyMsg{Type: tea.KeyEnd}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// view renders and checks the frame's geometry: exactly Height lines, none wider than Width.
func (h *harness) view() string {
	h.t.Helper()
	v := ansi.Strip(h.m.View())
	lines := strings.Split(v, "\n")
	if len(lines) != h.m.s.height {
		h.t.Errorf("view has %d lines, want %d", len(lines), h.m.s.height)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > h.m.s.width {
			h.t.Errorf("line %d is %d wide (> %d): %q", i+1, w, h.m.s.width, l)
		}
	}
	return v
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	// trailing blanks are invisible in a terminal and noisy in a diff
	lines := strings.Split(got, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	got = strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./tui -update rewrites it)\n--- got:\n%s\n--- want:\n%s", name, got, want)
	}
}

var tasks = []string{"Drain", "Stop", "Upload", "Start", "Smoke test", "Re-register"}

func hostNames(n int) []string {
	var hs []string
	for i := 1; i <= n; i++ {
		hs = append(hs, fmt.Sprintf("api-%02d", i))
	}
	return hs
}

func (h *harness) start(hosts []string, batches int) {
	h.at(0,
		events.Event{Kind: events.RunStart, RunID: "20250611T101500-7f3a", Playbook: "deploy-api.yml", Env: "prod",
			Version: "v1.42.0", Inventory: "aws_ec2 tag:role=api", Hosts: hosts},
		events.Event{Kind: events.PlayStart, Play: "Rolling deploy of api", Hosts: hosts, Batches: batches},
	)
}

// runHost plays a whole host: every task ok/changed, or failing at failAt
// followed by a rollback.
func (h *harness) runHost(at time.Duration, host string, failAt int) {
	h.at(at, events.Event{Kind: events.HostStart, Host: host, Tasks: tasks})
	for i, task := range tasks {
		d := at + time.Duration(i+1)*time.Second
		h.at(d, events.Event{Kind: events.TaskStart, Host: host, Task: task, TaskIndex: i})
		st := events.StatusChanged
		msg := ""
		if i == 1 {
			st = events.StatusOK
		}
		if i == failAt {
			h.at(d, events.Event{Kind: events.TaskOutput, Host: host, Task: task, TaskIndex: i, Line: "GET /status → 503"})
			st, msg = events.StatusFailed, "status 503, want 200"
		}
		h.at(d+time.Second/2, events.Event{Kind: events.TaskEnd, Host: host, Task: task, TaskIndex: i, Status: st, Msg: msg, Duration: time.Second / 2})
		if i == failAt {
			h.at(d+time.Second, events.Event{Kind: events.TaskStart, Host: host, Task: "Release: previous", Rollback: true})
			h.at(d+2*time.Second, events.Event{Kind: events.TaskEnd, Host: host, Task: "Release: previous", Rollback: true, Status: events.StatusChanged})
			h.at(d+2*time.Second, events.Event{Kind: events.HostEnd, Host: host, Status: events.StatusRolledBack, Msg: "rolled back to v1.41.3"})
			return
		}
	}
	h.at(at+8*time.Second, events.Event{Kind: events.HostEnd, Host: host, Status: events.StatusChanged})
}

// midRollout: 10 hosts in batches 1/4/5; batch 1 done, batch 2 running with
// api-02 done, api-03 failed and rolled back, api-04 in its smoke test
// printing output, api-05 queued.
func midRollout(t testing.TB, w, hgt int) *harness {
	h := newHarness(t, w, hgt)
	hosts := hostNames(10)
	h.start(hosts, 3)
	for _, n := range hosts {
		h.at(time.Second, events.Event{Kind: events.Preflight, Host: n, Status: events.StatusOK})
	}
	h.at(2*time.Second, events.Event{Kind: events.BatchStart, Batch: 1, Batches: 3, Hosts: hosts[:1]})
	h.runHost(2*time.Second, "api-01", -1)
	h.at(11*time.Second, events.Event{Kind: events.BatchEnd, Batch: 1, Batches: 3})
	h.at(12*time.Second, events.Event{Kind: events.BatchStart, Batch: 2, Batches: 3, Hosts: hosts[1:5]})
	h.runHost(12*time.Second, "api-02", -1)
	h.runHost(12*time.Second, "api-03", 4)
	h.at(13*time.Second, events.Event{Kind: events.Warning, Host: "api-03", Msg: "smoke test failed; rolled back"})
	h.at(12*time.Second, events.Event{Kind: events.HostStart, Host: "api-04", Tasks: tasks})
	for i := range 4 {
		d := 12*time.Second + time.Duration(i+1)*time.Second
		h.at(d, events.Event{Kind: events.TaskStart, Host: "api-04", Task: tasks[i], TaskIndex: i})
		h.at(d, events.Event{Kind: events.TaskEnd, Host: "api-04", Task: tasks[i], TaskIndex: i, Status: events.StatusChanged, Duration: time.Second})
	}
	h.at(17*time.Second, events.Event{Kind: events.TaskStart, Host: "api-04", Task: "Smoke test", TaskIndex: 4, Module: "http"})
	for i := 1; i <= 3; i++ {
		h.at(17*time.Second+time.Duration(i)*time.Second, events.Event{Kind: events.TaskOutput, Host: "api-04", Task: "Smoke test", TaskIndex: 4,
			Line: fmt.Sprintf("GET http://127.0.0.1:8080/status → 503 (try %d/15)\x1b[31m\r", i)})
	}
	h.now = t0.Add(21*time.Second + 300*time.Millisecond)
	return h
}

func TestMidRollout(t *testing.T) {
	h := midRollout(t, 80, 24)
	v := h.view()
	golden(t, "mid_rollout_80x24", v)

	for _, want := range []string{
		"batch 2/3", "(2/4 done, 1 failed)", "hosts 3/10 done, 1 failed",
		"in service 8/10", // 10 - api-04 running - api-03 rolled back
		"› api-04", "Smoke test", "(try 3/15)",
		"rolled back", "Smoke test: status 503, want 200",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q", want)
		}
	}
	if strings.Contains(v, "\x1b") {
		t.Error("escape sequence from the remote output reached the screen")
	}

	h.send(tea.WindowSizeMsg{Width: 200, Height: 60})
	golden(t, "mid_rollout_200x60", h.view())
	h.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	if got := h.view(); got != v {
		t.Errorf("resizing back to 80x24 does not give the same screen:\n%s", got)
	}
}

func TestSelectionAndLog(t *testing.T) {
	h := midRollout(t, 80, 24)
	h.key("up") // api-03, the failed host; following stops
	v := h.view()
	if !strings.Contains(v, "› api-03") || !strings.Contains(v, "== host rolled_back") {
		t.Fatalf("selecting api-03 should show its log tail:\n%s", v)
	}
	h.key("enter")
	if h.m.s.mode != modeLog {
		t.Fatal("enter did not open the log")
	}
	v = h.view()
	golden(t, "log_api-03", v)
	if !strings.Contains(v, "── Drain") || !strings.Contains(v, "failed in 0.5s: status 503, want 200") {
		t.Errorf("full log lacks task lines:\n%s", v)
	}
	h.key("esc")
	if h.m.s.mode != modeHosts {
		t.Fatal("esc did not return to the hosts")
	}
	// a new line for api-04 must not move the selection back: following is off
	h.at(22*time.Second, events.Event{Kind: events.TaskOutput, Host: "api-04", Line: "x"})
	if h.m.s.rows[h.m.s.sel].name != "api-03" {
		t.Errorf("selection moved to %s", h.m.s.rows[h.m.s.sel].name)
	}
}

func TestPausePrompt(t *testing.T) {
	h := midRollout(t, 80, 24)
	h.key("p")
	if h.ctl.pauses != 1 {
		t.Fatalf("p: PauseAfterBatch called %d times", h.ctl.pauses)
	}
	if v := h.view(); !strings.Contains(v, "will pause after batch 2") {
		t.Errorf("no notice of the requested pause:\n%s", v)
	}
	h.key("p")
	if h.ctl.pauses != 1 {
		t.Error("a second p asked the runner again")
	}
	h.at(30*time.Second, events.Event{Kind: events.PauseWait, Msg: "batch 2 done: continue with batch 3 of 3?"})
	h.key("l") // the prompt must stay visible and answerable from the log view
	v := h.view()
	golden(t, "pause_prompt", v)
	if !strings.Contains(v, "PAUSED  Enter: continue  a: abort · batch 2 done") {
		t.Fatalf("no pause prompt:\n%s", v)
	}
	h.key("enter")
	if len(h.ctl.approvals) != 1 || !h.ctl.approvals[0] {
		t.Fatalf("enter: approvals %v, want [true]", h.ctl.approvals)
	}
	if h.m.s.mode != modeLog {
		t.Error("enter answered the pause and also left the log view")
	}
	if strings.Contains(h.view(), "PAUSED") {
		t.Error("prompt still shown after approval")
	}
	h.key("enter")
	if len(h.ctl.approvals) != 1 {
		t.Error("a second enter approved again")
	}
	h.at(31*time.Second, events.Event{Kind: events.PauseEnd, Status: events.StatusOK})

	// refusing: `a` is the graceful abort (Controls.Abort releases the pause)
	h.at(40*time.Second, events.Event{Kind: events.PauseWait, Msg: "again"})
	h.key("a")
	if h.ctl.aborts != 1 {
		t.Fatalf("a on a pause called Abort %d times, want 1", h.ctl.aborts)
	}
	if len(h.ctl.approvals) != 1 {
		t.Errorf("a on a pause also answered it: approvals %v", h.ctl.approvals)
	}
}

func TestAbort(t *testing.T) {
	h := midRollout(t, 80, 24)
	if cmd := h.key("q"); cmd != nil {
		t.Fatal("q quit while the run is going")
	}
	if v := h.view(); !strings.Contains(v, "the run is still going") {
		t.Errorf("q gave no explanation:\n%s", v)
	}
	h.key("a")
	if h.ctl.aborts != 1 {
		t.Fatalf("a: Abort called %d times", h.ctl.aborts)
	}
	v := h.view()
	golden(t, "aborting", v)
	if !strings.Contains(v, "aborting…") {
		t.Errorf("no aborting state:\n%s", v)
	}
	// a second `a` (a double press) does not escalate; Ctrl-C does
	h.key("a")
	if h.ctl.aborts != 1 {
		t.Fatalf("second a: Abort called %d times, want 1", h.ctl.aborts)
	}
	if v := h.view(); !strings.Contains(v, "Ctrl-C stops at once") {
		t.Errorf("second a gave no explanation:\n%s", v)
	}
	if cmd := h.key("ctrl+c"); cmd != nil {
		t.Error("ctrl+c quit the TUI during the run")
	}
	if h.ctl.aborts != 2 {
		t.Fatalf("second ctrl+c: Abort called %d times, want 2", h.ctl.aborts)
	}
	if !strings.Contains(h.view(), "stopping now") {
		t.Error("no stop-at-once state")
	}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func finish(h *harness, hosts []string) events.Event {
	var rc []events.HostRecap
	for i, n := range hosts {
		r := events.HostRecap{Host: n, OK: 6, Changed: 5}
		switch {
		case n == "api-03":
			r = events.HostRecap{Host: n, OK: 4, Changed: 3, Failed: 1, RolledBack: true}
		case n == "api-04":
			r = events.HostRecap{Host: n, OK: 4, Changed: 4, Drained: true}
		case i >= 5:
			r = events.HostRecap{Host: n, Untouched: true}
		}
		rc = append(rc, r)
	}
	end := events.Event{Kind: events.RunEnd, Status: events.StatusFailed, ExitCode: 2, Recap: rc, Record: ".ferry/runs/20250611T101500-7f3a.jsonl"}
	h.at(45*time.Second,
		events.Event{Kind: events.HostEnd, Host: "api-04", Status: events.StatusInterrupted, Msg: "aborted"},
		events.Event{Kind: events.BatchEnd, Batch: 2, Batches: 3, Failed: 1, Halted: true, Msg: "1 of 4 hosts failed (max_fail_percentage 0)"},
		events.Event{Kind: events.PlayEnd, Status: events.StatusFailed},
		end)
	return end
}

func TestRecap(t *testing.T) {
	h := midRollout(t, 80, 24)
	end := finish(h, hostNames(10))
	h.now = t0.Add(time.Hour) // the elapsed time must stay frozen at the end
	v := h.view()
	golden(t, "recap", v)
	for _, want := range []string{"RECAP", "run FAILED", "exit 2", "STILL DRAINED", "untouched", "elapsed 00:00:45"} {
		if !strings.Contains(v, want) {
			t.Errorf("recap lacks %q", want)
		}
	}
	// the stream closes; the recap stays until q or enter
	if cmd := h.send(streamClosedMsg{}); cmd != nil {
		t.Error("closing the stream quit without ExitOnFinish")
	}
	h.key("tab")
	if h.m.s.mode != modeHosts {
		t.Error("tab did not switch to the hosts")
	}
	if !isQuit(h.key("enter")) {
		t.Error("enter after the run does not quit")
	}
	if !isQuit(h.key("q")) {
		t.Error("q after the run does not quit")
	}

	var buf bytes.Buffer
	if err := WriteRecap(&buf, end, true); err != nil {
		t.Fatal(err)
	}
	golden(t, "recap_scrollback", buf.String())
}

func TestExitOnFinish(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.m.s.opts.ExitOnFinish = true
	if !isQuit(h.send(streamClosedMsg{})) {
		t.Error("ExitOnFinish: closing the stream does not quit")
	}
}

func many(t testing.TB, n, w, hgt int) (*harness, []string) {
	h := newHarness(t, w, hgt)
	var hosts []string
	for i := 1; i <= n; i++ {
		hosts = append(hosts, fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", i/200, i%200))
	}
	h.start(hosts, 30)
	h.at(time.Second, events.Event{Kind: events.BatchStart, Batch: 1, Batches: 30, Hosts: hosts[:10]})
	for i, n := range hosts[:10] {
		h.at(time.Second, events.Event{Kind: events.HostStart, Host: n, Tasks: tasks})
		h.at(time.Second, events.Event{Kind: events.TaskStart, Host: n, Task: tasks[i%len(tasks)], TaskIndex: i % len(tasks)})
	}
	return h, hosts
}

func TestManyHosts(t *testing.T) {
	h, hosts := many(t, 300, 80, 24)
	rows := h.m.s.layout().rows
	countRows := func(v string) int {
		n := 0
		for _, host := range hosts {
			if strings.Contains(v, host+" ") {
				n++
			}
		}
		return n
	}
	v := h.view()
	if got := countRows(v); got != rows {
		t.Errorf("rendered %d host rows, want the %d visible ones", got, rows)
	}
	if !strings.Contains(v, hosts[0]) || strings.Contains(v, hosts[299]) {
		t.Error("the first page should show the first host and not the last")
	}
	h.key("end")
	v = h.view()
	if !strings.Contains(v, "› "+hosts[299]) || strings.Contains(v, hosts[0]+" ") {
		t.Errorf("after End the last host should be selected and the first gone:\n%s", v)
	}
	h.key("home", "pgdown", "pgdown", "down", "down", "down")
	want := 2*rows + 3
	if h.m.s.sel != want {
		t.Errorf("selection at %d, want %d", h.m.s.sel, want)
	}
	v = h.view()
	golden(t, "many_hosts_80x24", v)
	if !strings.Contains(v, "› "+hosts[want]) {
		t.Errorf("selected host %s not shown:\n%s", hosts[want], v)
	}
	if got := countRows(v); got != rows {
		t.Errorf("rendered %d host rows, want %d", got, rows)
	}
	h.key("up")
	if h.m.s.sel != want-1 {
		t.Errorf("up: selection at %d, want %d", h.m.s.sel, want-1)
	}
}

func TestLogCap(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.start([]string{"a"}, 1)
	for i := range 2500 {
		h.at(time.Second, events.Event{Kind: events.TaskOutput, Host: "a", Line: fmt.Sprintf("line %d", i)})
	}
	r := &h.m.s.byName["a"].log
	if r.len() != 2000 || r.dropped != 500 {
		t.Fatalf("log keeps %d lines, dropped %d; want 2000, 500", r.len(), r.dropped)
	}
	if r.at(0) != "line 500" || r.at(1999) != "line 2499" {
		t.Errorf("log ring holds %q … %q", r.at(0), r.at(1999))
	}
	h.key("enter", "home")
	if v := h.view(); !strings.Contains(v, "line 500") || !strings.Contains(v, "500 earlier dropped") {
		t.Errorf("log view at home:\n%s", v)
	}
	h.key("end")
	if v := h.view(); !strings.Contains(v, "line 2499") {
		t.Errorf("log view at end:\n%s", v)
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                     "plain",
		"\x1b[31mred\x1b[0m":        "red",
		"a\tb":                      "a   b",
		"10%\r50%\r100%":            "100%",
		"done\r":                    "done",
		"bell\a and \x1b]0;title\a": "bell and ",
		"bad \xff utf8":             "bad  utf8",
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "x", "\x1b[2J\x1b[H", "a\r\nb", "\t\t", "\xff\xfe", "\x1b]8;;http://x\x07link\x1b]8;;\x07"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := sanitize(s)
		for _, r := range out {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("sanitize(%q) left control %U", s, r)
			}
		}
	})
}

// FuzzEvents feeds arbitrary event sequences: the model must never panic
// and must always draw a frame of the right size.
func FuzzEvents(f *testing.F) {
	f.Add([]byte{0, 1, 3, 4, 5, 6, 7, 8, 9}, "h", "t", 0, uint8(80), uint8(24))
	f.Add([]byte{4, 5, 5, 6, 7, 14}, "", "x", -3, uint8(20), uint8(5))
	f.Add([]byte{9, 10, 11, 12, 13, 14}, "a", "b", 99, uint8(200), uint8(60))
	kinds := []events.Kind{events.RunStart, events.PlayStart, events.Preflight, events.BatchStart, events.HostStart,
		events.TaskStart, events.TaskOutput, events.TaskEnd, events.HostEnd, events.BatchEnd, events.PauseWait,
		events.PauseEnd, events.Warning, events.PlayEnd, events.RunEnd}
	statuses := []events.Status{events.StatusOK, events.StatusFailed, events.StatusRolledBack, events.StatusRunning, ""}
	keys := []string{"up", "down", "enter", "esc", "pgdown", "end", "l", "tab", "a", "p", "?"}
	f.Fuzz(func(t *testing.T, ops []byte, host, task string, idx int, w, hgt uint8) {
		h := newHarness(t, int(w), int(hgt))
		for i, op := range ops {
			if op >= 200 {
				h.key(keys[int(op)%len(keys)])
				continue
			}
			e := events.Event{Kind: kinds[int(op)%len(kinds)], Host: host, Task: task, TaskIndex: idx + i%3,
				Batch: idx, Batches: i, Status: statuses[i%len(statuses)], Line: task, Msg: task,
				Rollback: i%4 == 0}
			if i%2 == 0 {
				e.Hosts, e.Tasks = []string{host, task}, []string{task}
				e.Recap = []events.HostRecap{{Host: host, Failed: 1}}
			}
			h.at(time.Duration(i)*time.Second, e)
		}
		v := h.m.View()
		if n := strings.Count(v, "\n") + 1; n != max(h.m.s.height, 1) {
			t.Fatalf("frame has %d lines for height %d", n, h.m.s.height)
		}
	})
}

func TestASCII(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.m.s.sym = asciiSymbols
	h.start([]string{"a", "b"}, 1)
	h.at(time.Second, events.Event{Kind: events.HostStart, Host: "a", Tasks: tasks})
	h.at(time.Second, events.Event{Kind: events.TaskStart, Host: "a", Task: "Drain", TaskIndex: 0})
	h.at(time.Second, events.Event{Kind: events.TaskEnd, Host: "a", Task: "Drain", TaskIndex: 0, Status: events.StatusChanged})
	v := h.view()
	for _, r := range v {
		if r > 0x7e {
			t.Fatalf("non-ASCII %q in ASCII mode:\n%s", r, v)
		}
	}
	if !strings.Contains(v, "~.....") {
		t.Errorf("ASCII marks missing:\n%s", v)
	}
	if !asciiFromEnv(func(k string) string { return map[string]string{"LANG": "C"}[k] }) ||
		asciiFromEnv(func(k string) string { return map[string]string{"LC_ALL": "en_US.UTF-8", "LANG": "C"}[k] }) ||
		asciiFromEnv(func(string) string { return "" }) {
		t.Error("asciiFromEnv misreads the locale")
	}
}

func TestTaskIndexConventions(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.start([]string{"a"}, 1)
	h.at(time.Second, events.Event{Kind: events.HostStart, Host: "a", Tasks: tasks})
	// 1-based index from the runner
	h.at(time.Second, events.Event{Kind: events.TaskEnd, Host: "a", Task: "Stop", TaskIndex: 2, Status: events.StatusOK})
	// unknown task (a loop item or a task not in the list)
	h.at(time.Second, events.Event{Kind: events.TaskEnd, Host: "a", Task: "Extra", TaskIndex: 40, Status: events.StatusSkipped})
	r := h.m.s.byName["a"]
	if r.tasks[1].status != events.StatusOK || r.tasks[2].status != events.StatusPending {
		t.Errorf("1-based index marked the wrong task: %+v", r.tasks)
	}
	if len(r.tasks) != 7 || r.tasks[6].status != events.StatusSkipped {
		t.Errorf("unknown task not appended: %+v", r.tasks)
	}
}

// TestRun drives the real program loop on pipes (no terminal): events in,
// stream closed, recap printed to the output after the screen is left.
func TestRun(t *testing.T) {
	ch := make(chan events.Event, 64)
	ctl := &fakeControls{}
	hosts := hostNames(3)
	ch <- events.Event{Kind: events.RunStart, Playbook: "p.yml", Env: "staging", Hosts: hosts, RunID: "r1"}
	ch <- events.Event{Kind: events.PlayStart, Hosts: hosts, Batches: 1}
	for _, n := range hosts {
		ch <- events.Event{Kind: events.HostStart, Host: n, Tasks: tasks}
		ch <- events.Event{Kind: events.HostEnd, Host: n, Status: events.StatusOK}
	}
	ch <- events.Event{Kind: events.RunEnd, Status: events.StatusOK, Recap: []events.HostRecap{{Host: "api-01", OK: 6}}}
	close(ch)
	var out bytes.Buffer
	inR, inW := io.Pipe()
	defer inW.Close()
	err := Run(context.Background(), Options{In: inR, Out: &out, NoColor: true, ExitOnFinish: true, NoAltScreen: true}, ch, ctl)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := ansi.Strip(out.String())
	i := strings.LastIndex(got, "RECAP")
	if i < 0 || !strings.Contains(got[i:], "api-01") || !strings.Contains(got, "ferry · p.yml · env staging · run r1") {
		t.Errorf("recap not printed after the screen:\n%s", got)
	}
}

// TestRunUnattended: once a signal stopped the run (Options.Unattended
// closed), Run shows the abort and returns when the stream closes, without
// waiting for q, and still prints the recap.
func TestRunUnattended(t *testing.T) {
	ch := make(chan events.Event, 64)
	hosts := hostNames(2)
	ch <- events.Event{Kind: events.RunStart, Playbook: "p.yml", Hosts: hosts, RunID: "r1"}
	ch <- events.Event{Kind: events.PlayStart, Hosts: hosts, Batches: 1}
	ch <- events.Event{Kind: events.HostStart, Host: "api-01", Tasks: tasks}
	unattended := make(chan struct{})
	inR, inW := io.Pipe()
	defer inW.Close()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Options{In: inR, Out: out, NoColor: true, NoAltScreen: true, Unattended: unattended, Width: 100, Height: 20}, ch, &fakeControls{})
	}()
	close(unattended)
	// the screen says the run is aborting before the run ends
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(ansi.Strip(out.String()), "aborting") {
		if time.Now().After(deadline) {
			t.Fatalf("no aborting banner after a signal:\n%s", ansi.Strip(out.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ch <- events.Event{Kind: events.HostEnd, Host: "api-01", Status: events.StatusInterrupted}
	ch <- events.Event{Kind: events.RunEnd, Status: events.StatusInterrupted, ExitCode: 130, Recap: []events.HostRecap{{Host: "api-01", OK: 2}, {Host: "api-02", Untouched: true}}}
	close(ch)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept waiting for a key after the signalled run ended")
	}
	got := ansi.Strip(out.String())
	if i := strings.LastIndex(got, "RECAP"); i < 0 || !strings.Contains(got[i:], "run INTERRUPTED (exit 130)") {
		t.Errorf("recap not printed after the screen:\n%s", got)
	}
}

// syncBuffer is a bytes.Buffer safe to read while the program writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunContextCancel(t *testing.T) {
	ch := make(chan events.Event) // never closed: the run is still going
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inR, inW := io.Pipe()
	defer inW.Close()
	var out bytes.Buffer
	err := Run(ctx, Options{In: inR, Out: &out, NoColor: true, NoAltScreen: true}, ch, &fakeControls{})
	if !errors.Is(err, ErrStreamOpen) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v, want ErrStreamOpen and context.Canceled", err)
	}
}

type panicControls struct{ fakeControls }

func (*panicControls) Abort() { panic("runner bug") }

// TestRunPanic: a panic inside the program restores the terminal (bubbletea)
// and Run reports it, leaving the stream to the caller.
func TestRunPanic(t *testing.T) {
	ch := make(chan events.Event)
	defer close(ch)
	inR, inW := io.Pipe()
	defer inW.Close()
	go func() { _, _ = inW.Write([]byte("a")) }()
	var out bytes.Buffer
	err := Run(context.Background(), Options{In: inR, Out: &out, NoColor: true, NoAltScreen: true}, ch, &panicControls{})
	if !errors.Is(err, tea.ErrProgramPanic) || !errors.Is(err, ErrStreamOpen) {
		t.Fatalf("Run after a panic: %v", err)
	}
}

// BenchmarkView300Hosts measures one frame under load: a burst of events
// (output lines, task transitions) from a 10-host batch, then View.
func BenchmarkView300Hosts(b *testing.B) {
	for _, color := range []bool{false, true} {
		name := "nocolor"
		if color {
			name = "color"
		}
		b.Run(name, func(b *testing.B) {
			h, hosts := many(b, 300, 120, 40)
			if color {
				h.m.s.st = colorStyles()
			}
			h.key("pgdown") // selection away from the top, following off
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				n := hosts[i%10]
				ti := i % len(tasks)
				h.m.s.apply(events.Event{Kind: events.TaskOutput, Host: n, Task: tasks[ti], Line: "GET /status → 503 (try 3/15)"})
				h.m.s.apply(events.Event{Kind: events.TaskOutput, Host: n, Task: tasks[ti], Line: "\x1b[32mok\x1b[0m\tdone"})
				h.m.s.apply(events.Event{Kind: events.TaskEnd, Host: n, Task: tasks[ti], TaskIndex: ti, Status: events.StatusChanged})
				h.m.s.apply(events.Event{Kind: events.TaskStart, Host: n, Task: tasks[(ti+1)%len(tasks)], TaskIndex: (ti + 1) % len(tasks)})
				_ = h.m.View()
			}
		})
	}
}

func colorStyles() styles {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI256)
	return stylesFor(r)
}

// TestColor checks that colors are drawn unless NoColor, and that colored
// frames keep their geometry.
func TestColor(t *testing.T) {
	h := midRollout(t, 80, 24)
	if strings.Contains(h.m.View(), "\x1b[") {
		t.Fatal("NoColor frame contains escape sequences")
	}
	h.m.s.st = colorStyles()
	v := h.m.View()
	if !strings.Contains(v, "\x1b[") {
		t.Fatal("colored frame has no escape sequences")
	}
	if got, want := ansi.Strip(v), ansi.Strip(h.view()); got != want {
		t.Error("colors change the text of the frame")
	}
	t.Setenv("NO_COLOR", "1")
	m := NewModel(Options{Width: 80, Height: 24}, nil)
	m.s.apply(events.Event{Kind: events.RunStart, Playbook: "x.yml", Hosts: []string{"a"}})
	if strings.Contains(m.View(), "\x1b[") {
		t.Error("NO_COLOR is ignored")
	}
}
