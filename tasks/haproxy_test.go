package tasks

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// fakeHAProxy answers HAProxy's admin socket protocol (one command per
// connection, as in non-interactive mode) for the commands the module
// sends, keeping each server's state. A draining server loses one session
// per `show stat`, unless stuck.
type fakeHAProxy struct {
	sock  string
	mu    sync.Mutex
	srv   map[string]*fakeServer // "backend/server"
	cmds  []string
	shows int
}

type fakeServer struct {
	status string // UP, DRAIN, MAINT
	scur   int
	weight string
	stuck  bool
}

func newFakeHAProxy(t *testing.T, servers map[string]*fakeServer) *fakeHAProxy {
	f := &fakeHAProxy{sock: filepath.Join(t.TempDir(), "admin.sock"), srv: servers}
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeHAProxy) serve(c net.Conn) {
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	fmt.Fprint(c, f.do(strings.TrimSpace(line)))
}

func (f *fakeHAProxy) do(cmd string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cmd == "show stat" {
		f.shows++
		var b strings.Builder
		b.WriteString("# pxname,svname,qcur,qmax,scur,smax,status,weight,\n")
		keys := make([]string, 0, len(f.srv))
		for k := range f.srv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s := f.srv[k]
			if s.status == "DRAIN" && s.scur > 0 && !s.stuck {
				s.scur--
			}
			be, name, _ := strings.Cut(k, "/")
			fmt.Fprintf(&b, "%s,FRONTEND,,,0,0,OPEN,,\n%s,%s,0,0,%d,5,%s,%s,\n%s,BACKEND,0,0,0,5,UP,1,\n", be, be, name, s.scur, s.status, s.weight, be)
		}
		return b.String() + "\n"
	}
	f.cmds = append(f.cmds, cmd)
	f2 := strings.Fields(cmd)
	var id string
	switch {
	case strings.HasPrefix(cmd, "set server ") && len(f2) == 5:
		id = f2[2]
	case strings.HasPrefix(cmd, "disable server "), strings.HasPrefix(cmd, "set weight "):
		id = f2[2]
	case strings.HasPrefix(cmd, "shutdown sessions server "):
		id = f2[3]
	default:
		return "Unknown command.\n"
	}
	s := f.srv[id]
	if s == nil {
		return "No such server.\n"
	}
	switch {
	case strings.HasSuffix(cmd, "state drain"):
		s.status = "DRAIN"
	case strings.HasSuffix(cmd, "state ready"):
		s.status = "UP"
	case strings.HasPrefix(cmd, "disable server"):
		s.status = "MAINT"
	case strings.HasPrefix(cmd, "shutdown sessions"):
		s.scur = 0
	case strings.HasPrefix(cmd, "set weight"):
		s.weight = f2[3]
	}
	return "\n"
}

func (f *fakeHAProxy) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func (f *fakeHAProxy) status(id string) (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.srv[id].status, f.srv[id].scur
}

func TestHAProxyDrainWaitDisableEnable(t *testing.T) {
	h, _, _ := testHost(t)
	f := newFakeHAProxy(t, map[string]*fakeServer{
		"web/app1": {status: "UP", scur: 3, weight: "1"},
		"api/app1": {status: "UP", scur: 0, weight: "1"},
		"web/app2": {status: "UP", scur: 2, weight: "1"},
	})
	args := func(kv ...any) map[string]any {
		m := map[string]any{"host": "app1", "socket": f.sock, "wait_interval": "10ms"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	// Check mode sends nothing.
	h.Check = true
	out := runModule(t, h, "haproxy", args("state", "drain"))
	if !out.Changed || out.Failed || len(f.sent()) != 0 {
		t.Fatalf("check: %+v, sent %v", out, f.sent())
	}
	h.Check = false

	// Drain in every backend that has app1, waiting for its sessions to end.
	out = runModule(t, h, "haproxy", args("state", "drain", "wait", true))
	if !out.Changed || out.Failed {
		t.Fatalf("%+v", out)
	}
	want := []string{"set server api/app1 state drain", "set server web/app1 state drain"}
	if got := f.sent(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if st, n := f.status("web/app1"); st != "DRAIN" || n != 0 {
		t.Fatalf("web/app1 %s with %d sessions after wait", st, n)
	}
	if st, _ := f.status("web/app2"); st != "UP" {
		t.Fatalf("app2 touched: %s", st)
	}
	if out.Result["status"].(map[string]any)["web"] != "DRAIN" {
		t.Fatalf("result %v", out.Result)
	}
	// Again: nothing to do, nothing sent.
	if out = runModule(t, h, "haproxy", args("state", "drain")); out.Changed || out.Failed || len(f.sent()) != 2 {
		t.Fatalf("second drain: %+v, sent %v", out, f.sent())
	}

	// Disable in one backend only, then enable everywhere with wait.
	out = runModule(t, h, "haproxy", args("state", "disabled", "backend", "web", "wait", true))
	if !out.Changed || out.Failed {
		t.Fatalf("%+v", out)
	}
	if st, _ := f.status("web/app1"); st != "MAINT" {
		t.Fatalf("web/app1 %s", st)
	}
	if st, _ := f.status("api/app1"); st != "DRAIN" {
		t.Fatalf("api/app1 %s", st)
	}
	out = runModule(t, h, "haproxy", args("state", "enabled", "wait", true, "weight", "5"))
	if !out.Changed || out.Failed {
		t.Fatalf("%+v", out)
	}
	for _, id := range []string{"web/app1", "api/app1"} {
		if st, _ := f.status(id); st != "UP" {
			t.Fatalf("%s %s", id, st)
		}
	}
	if f.srv["web/app1"].weight != "5" {
		t.Fatalf("weight %s", f.srv["web/app1"].weight)
	}
}

func TestHAProxyWaitBoundedAndErrors(t *testing.T) {
	h, _, _ := testHost(t)
	f := newFakeHAProxy(t, map[string]*fakeServer{"web/app1": {status: "UP", scur: 4, weight: "1", stuck: true}})

	// Sessions that never end: the wait gives up after wait_retries looks.
	before := f.shows
	out := runModule(t, h, "haproxy", map[string]any{"host": "app1", "socket": f.sock, "state": "disabled", "drain": true,
		"wait": true, "wait_interval": "5ms", "wait_retries": 3})
	if !out.Failed || !strings.Contains(out.Msg, "after 3 looks") || !strings.Contains(out.Msg, "4 sessions") {
		t.Fatalf("%+v", out)
	}
	if n := f.shows - before; n != 1+3 {
		t.Fatalf("%d show stat, want 4 (one before, three waiting)", n)
	}
	if st, _ := f.status("web/app1"); st != "DRAIN" {
		t.Fatalf("disabled before its sessions ended: %s", st)
	}

	// A server that is not there: reported, or a failure when asked.
	out = runModule(t, h, "haproxy", map[string]any{"host": "nope", "socket": f.sock, "state": "disabled"})
	if out.Failed || out.Changed || !strings.Contains(out.Msg, "not in any backend") {
		t.Fatalf("%+v", out)
	}
	out = runModule(t, h, "haproxy", map[string]any{"host": "app1", "backend": "api", "socket": f.sock, "state": "disabled", "fail_on_not_found": true})
	if !out.Failed || !strings.Contains(out.Msg, "backend api") {
		t.Fatalf("%+v", out)
	}
	// Not a socket.
	out = runModule(t, h, "haproxy", map[string]any{"host": "app1", "socket": filepath.Join(t.TempDir(), "x.sock"), "state": "enabled"})
	if !out.Failed || !strings.Contains(out.Msg, "is not a socket") {
		t.Fatalf("%+v", out)
	}
	// HAProxy's refusal (here: an unknown command) fails the task with its answer.
	c := &haproxyCall{h: h, sock: f.sock, server: "app1"}
	res, err := c.send(t.Context(), []string{"frobnicate web/app1"})
	if err != nil || !res.Failed || !strings.Contains(res.Msg, "Unknown command.") {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestParseHAProxyStat(t *testing.T) {
	if _, err := parseHAProxyStat("Permission denied\n", "a"); err == nil {
		t.Fatal("no error for a non-stat answer")
	}
	if _, err := parseHAProxyStat("# pxname,svname\nweb,a\n", "a"); err == nil || !strings.Contains(err.Error(), "status") {
		t.Fatalf("err %v", err)
	}
	m, err := parseHAProxyStat("# pxname,svname,scur,status,\nweb,a,2,UP 2/3,\nweb,b,0,MAINT,\n", "a")
	if err != nil || m["web"].status != "UP 2/3" || m["web"].scur != "2" || len(m) != 1 {
		t.Fatalf("%v %v", m, err)
	}
}

func FuzzParseHAProxyStat(f *testing.F) {
	for _, s := range []string{"# pxname,svname,status\nweb,a,UP\n", "# a\n\"", "", "# pxname,svname,status\nweb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseHAProxyStat(s, "a")
		if err == nil && m == nil {
			t.Fatal("nil map without error")
		}
	})
}
