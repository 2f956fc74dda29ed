package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMeasure(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	spans := []span{
		{at(100), at(300)}, // overlaps the next: union 100..400
		{at(200), at(400)},
		{at(0), at(50)},
		{at(250), at(260)}, // inside the first two
		{at(1000), at(1100)},
	}
	sum, union, total := measure(spans)
	if d := sum - 0.56; d > 1e-9 || d < -1e-9 {
		t.Errorf("sum = %v, want 0.56", sum)
	}
	if d := union - 0.45; d > 1e-9 || d < -1e-9 {
		t.Errorf("union = %v, want 0.45", union)
	}
	if d := total - 1.1; d > 1e-9 || d < -1e-9 {
		t.Errorf("first to last = %v, want 1.1", total)
	}
	if s, u, f := measure(nil); s != 0 || u != 0 || f != 0 {
		t.Errorf("measure(nil) = %v %v %v", s, u, f)
	}
}

func TestFlagsRejected(t *testing.T) {
	for _, args := range [][]string{
		{"-accounts", "12"},
		{"-regions", ""},
		{"-instances", "-1"},
		{"-nope"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestServe starts the command, lists one region's instances the way the
// SDK's query protocol does, and checks the seeding and the counters.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := filepath.Join(t.TempDir(), "endpoint")
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-instances", "10", "-regions", "eu-west-1,us-east-1",
			"-accounts", "111111111111,222222222222", "-ready", ready}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})

	var endpoint string
	for i := 0; i < 500 && endpoint == ""; i++ {
		if b, err := os.ReadFile(ready); err == nil {
			endpoint = strings.TrimSpace(string(b))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if endpoint == "" {
		t.Fatal("no ready file after 5 s")
	}

	form := url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"},
		"Filter.1.Name": {"tag:Env"}, "Filter.1.Value.1": {"prod"}}
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	// 10 instances over 2 accounts × 2 regions: the first scope (first
	// account, eu-west-1) gets 3.
	if got := strings.Count(string(body), "<instanceId>"); got != 3 {
		t.Errorf("%d instances in the first account's eu-west-1, want 3", got)
	}

	st := getStats(t, endpoint)
	if st.Requests != 1 || st.Bytes != int64(len(body)) || st.BusyUnion <= 0 || st.BusyUnion > st.FirstToEnd+1e-9 {
		t.Errorf("stats = %+v after one request of %d bytes", st, len(body))
	}
	resp, err = http.Post(endpoint+"/__emu/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := getStats(t, endpoint); st.Requests != 0 || st.BusySum != 0 {
		t.Errorf("stats after reset = %+v", st)
	}
}

func getStats(t *testing.T, endpoint string) Stats {
	t.Helper()
	resp, err := http.Get(endpoint + "/__emu/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
