package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAssertFailDebugSetFact(t *testing.T) {
	h, _, _ := testHost(t)
	vals := map[string]any{"ok": true, "bad": false, "n": 3}
	h.Eval = func(e string) (any, error) {
		v, ok := vals[e]
		if !ok {
			return nil, fmt.Errorf("unknown name %s", e)
		}
		return v, nil
	}
	if out := runModule(t, h, "assert", map[string]any{"that": []any{"ok"}}); out.Failed {
		t.Fatalf("%+v", out)
	}
	out := runModule(t, h, "assert", map[string]any{"that": []any{"ok", "bad"}, "fail_msg": "not ready"})
	if !out.Failed || out.Msg != "not ready" {
		t.Fatalf("%+v", out)
	}
	if out = runModule(t, h, "assert", map[string]any{"that": "n"}); !out.Failed || !strings.Contains(out.Msg, "want true or false") {
		t.Fatalf("%+v", out)
	}
	if out = runModule(t, h, "fail", map[string]any{"msg": "stop here"}); !out.Failed || out.Msg != "stop here" {
		t.Fatalf("%+v", out)
	}
	if out = runModule(t, h, "debug", map[string]any{"var": "n"}); out.Msg != "n = 3" || out.Result["n"] != 3 {
		t.Fatalf("%+v", out)
	}
	out = runModule(t, h, "set_fact", map[string]any{"release": "v2", "count": 2})
	if out.Facts["release"] != "v2" || out.Facts["count"] != 2 || out.Changed {
		t.Fatalf("%+v", out)
	}
	m, _ := Lookup("set_fact")
	if _, err := m.Run(context.Background(), h, map[string]any{"bad-name": 1}); err == nil {
		t.Fatal("set_fact accepted a name expressions cannot use")
	}
}

func TestPause(t *testing.T) {
	h, _, _ := testHost(t)
	if out := runModule(t, h, "pause", map[string]any{"prompt": "go?"}); !out.Failed || !strings.Contains(out.Msg, "--yes") {
		t.Fatalf("no operator: %+v", out)
	}
	asked := ""
	h.Controller = &Controller{Approve: func(ctx context.Context, msg string) (bool, error) { asked = msg; return msg == "go?", nil }}
	if out := runModule(t, h, "pause", map[string]any{"prompt": "go?"}); out.Failed || asked != "go?" {
		t.Fatalf("approve: %+v", out)
	}
	if out := runModule(t, h, "pause", map[string]any{"prompt": "no"}); !out.Failed {
		t.Fatalf("refuse: %+v", out)
	}
	if out := runModule(t, h, "pause", map[string]any{"seconds": 0.01}); out.Failed {
		t.Fatalf("timed: %+v", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m, _ := Lookup("pause")
	if _, err := m.Run(ctx, h, map[string]any{"minutes": 5}); err == nil {
		t.Fatal("a cancelled pause went on")
	}
}

func TestNotifyPostsAndMasksWebhook(t *testing.T) {
	h, _, _ := testHost(t)
	var got map[string]string
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		if fail {
			http.Error(w, "invalid_token", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	hook := srv.URL + "/services/T000/B000/SECRETTOKEN"
	out := runModule(t, h, "webhook", map[string]any{"url": hook, "text": "api 1.2: ok"})
	if out.Failed || got["text"] != "api 1.2: ok" {
		t.Fatalf("%+v %v", out, got)
	}
	fail = true
	out = runModule(t, h, "webhook", map[string]any{"url": hook, "text": "x"})
	if !out.Failed || !strings.Contains(out.Msg, "invalid_token") {
		t.Fatalf("%+v", out)
	}
	srv.Close()
	out = runModule(t, h, "webhook", map[string]any{"url": hook, "text": "x"})
	for _, s := range []string{out.Msg, fmt.Sprint(out.Result)} {
		if strings.Contains(s, "SECRETTOKEN") {
			t.Fatalf("webhook leaked: %s", s)
		}
	}
	if !out.Failed {
		t.Fatalf("%+v", out)
	}
}

// TestValidateFromSpec: the Spec's rules are checked once, by Call, before
// the module runs; Run does not repeat them.
func TestValidateFromSpec(t *testing.T) {
	for _, c := range []struct {
		module string
		args   map[string]any
		want   string
	}{
		{"systemd", map[string]any{"name": "api", "state": "startd"}, `systemd: state: "startd" is not one of`},
		{"copy", map[string]any{"content": "x"}, "copy: dest: is required"},
		{"copy", map[string]any{"dest": "/x", "content": "x", "src": "y"}, "copy: takes only one of src, content"},
		{"wait_for", map[string]any{"timeout": "soon"}, "wait_for: timeout: "},
		{"file", map[string]any{"path": "/x", "force": "maybe"}, "file: force: want true or false"},
		{"http", map[string]any{"url": "http://x", "retries": "many"}, "http: retries: want a whole number"},
		{"shell", map[string]any{"cmd": "true", "chdri": "/"}, `shell: chdri: unknown parameter`},
	} {
		m, _ := Lookup(c.module)
		ran := false
		_, err := Call(context.Background(), spy{m, &ran}, &Host{}, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: err %v, want %q", c.module, c.args, err, c.want)
		}
		if ran {
			t.Errorf("%s ran with invalid arguments", c.module)
		}
	}
}

type spy struct {
	Module
	ran *bool
}

func (s spy) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	*s.ran = true
	return Outcome{}, nil
}
