package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The app answers 503 until its ready delay has passed, and on SIGTERM
// finishes a request in flight before it exits (0).
func TestReadyDelayAndGracefulStop(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "app")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-listen", addr)
	cmd.Env = append(os.Environ(), "APP_READY_DELAY=400ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	get := func(path string) (int, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return resp.StatusCode, err
	}
	var codes []int
	for i := 0; i < 200; i++ {
		code, err := get("/status")
		if err == nil {
			if len(codes) == 0 || codes[len(codes)-1] != code {
				codes = append(codes, code)
			}
			if code == 200 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(codes) != 2 || codes[0] != 503 || codes[1] != 200 {
		t.Fatalf("status codes while starting: %v, want [503 200]", codes)
	}

	type res struct {
		code int
		err  error
	}
	slow := make(chan res, 1)
	go func() { c, err := get("/?delay=700ms"); slow <- res{c, err} }()
	time.Sleep(200 * time.Millisecond) // let the request reach the app
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := <-slow; r.err != nil || r.code != 200 {
		t.Fatalf("request in flight at SIGTERM: %d %v", r.code, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
