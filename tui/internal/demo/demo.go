// Package demo plays a simulated rolling deploy as a stream of events, so
// the TUI can be exercised in a real terminal (tmux) without SSH or AWS.
// It honours the TUI's controls the way the runner does: pause_after,
// approval, pause-after-batch and graceful abort.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/parallel"
)

// Controller implements tui.Controls for the simulation.
type Controller struct {
	approve  chan bool
	pauseReq atomic.Bool
	aborts   atomic.Int32
	abortCh  chan struct{}
	once     sync.Once
}

// NewController returns a controller with nothing requested.
func NewController() *Controller {
	return &Controller{approve: make(chan bool, 1), abortCh: make(chan struct{})}
}

// Approve answers a pending pause.
func (c *Controller) Approve(ok bool) {
	select {
	case c.approve <- ok:
	default:
	}
}

// PauseAfterBatch asks for a pause after the running batch.
func (c *Controller) PauseAfterBatch() { c.pauseReq.Store(true) }

// Abort asks for a graceful abort; a second call stops at once.
func (c *Controller) Abort() {
	c.aborts.Add(1)
	c.once.Do(func() { close(c.abortCh) })
}

func (c *Controller) aborted() bool { return c.aborts.Load() > 0 }
func (c *Controller) hard() bool    { return c.aborts.Load() > 1 }

// Config shapes the simulated rollout.
type Config struct {
	Hosts      int           // number of hosts (default 20)
	Batches    []int         // batch sizes (default 1, 25%, rest)
	PauseAfter int           // batch number to pause after (0: none)
	Fail       map[int]bool  // host indexes (0-based) whose smoke test fails
	Step       time.Duration // base task duration (default 400ms)
	Forks      int           // parallel hosts per batch (default 5)
	Seed       uint64
}

var taskList = []struct{ name, module string }{
	{"Drain", "elb"}, {"Stop", "systemd"}, {"Upload", "copy"},
	{"Migrate", "shell"}, {"Start", "systemd"}, {"Smoke test", "http"}, {"Re-register", "elb"},
}

// Play emits a whole run to emit, then returns. It never closes anything.
func Play(ctx context.Context, cfg Config, ctl *Controller, emit func(events.Event)) {
	if cfg.Hosts <= 0 {
		cfg.Hosts = 20
	}
	if cfg.Step <= 0 {
		cfg.Step = 400 * time.Millisecond
	}
	if cfg.Forks <= 0 {
		cfg.Forks = 5
	}
	if len(cfg.Batches) == 0 {
		q := max(cfg.Hosts/4, 1)
		cfg.Batches = []int{1, q, max(cfg.Hosts-1-q, 0)}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	var rmu sync.Mutex
	randDur := func() time.Duration {
		rmu.Lock()
		defer rmu.Unlock()
		return cfg.Step/2 + time.Duration(rng.Int64N(int64(cfg.Step)))
	}
	var hosts []string
	for i := range cfg.Hosts {
		hosts = append(hosts, fmt.Sprintf("api-%02d.prod.internal", i+1))
	}
	var names []string
	for _, t := range taskList {
		names = append(names, t.name)
	}
	var batches [][]string
	for i, rest := 0, hosts; len(rest) > 0; i++ {
		n := cfg.Batches[min(i, len(cfg.Batches)-1)]
		n = min(max(n, 1), len(rest))
		batches = append(batches, rest[:n])
		rest = rest[n:]
	}

	var mu sync.Mutex
	send := func(e events.Event) {
		e.Time = time.Now()
		mu.Lock()
		defer mu.Unlock()
		emit(e)
	}
	send(events.Event{Kind: events.RunStart, RunID: "20250611T101500-7f3a", Playbook: "deploy-api.yml", Env: "prod",
		Version: "v1.42.0", Inventory: "aws_ec2: tag:role=api", Hosts: hosts})
	send(events.Event{Kind: events.PlayStart, Play: "Rolling deploy of api", Hosts: hosts, Batches: len(batches)})
	for _, h := range hosts {
		send(events.Event{Kind: events.Preflight, Host: h, Status: events.StatusOK})
	}
	send(events.Event{Kind: events.Warning, Msg: "asg api-prod: suspended Launch, Terminate, AZRebalance until the run ends"})

	recap := map[string]*events.HostRecap{}
	for _, h := range hosts {
		recap[h] = &events.HostRecap{Host: h, Untouched: true}
	}
	var rmuRecap sync.Mutex
	status := events.StatusOK
	exit := 0

	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}

	runHost := func(idx int, h string) {
		send(events.Event{Kind: events.HostStart, Host: h, Tasks: names})
		hs := time.Now()
		rc := &events.HostRecap{Host: h}
		failed := false
		drained := false
		for ti, t := range taskList {
			if ctl.aborted() {
				break
			}
			send(events.Event{Kind: events.TaskStart, Host: h, Task: t.name, TaskIndex: ti, Module: t.module})
			ts := time.Now()
			st := events.StatusChanged
			msg := ""
			switch t.name {
			case "Migrate":
				for l := range 6 {
					if ctl.hard() || !sleep(randDur()/4) {
						break
					}
					send(events.Event{Kind: events.TaskOutput, Host: h, Task: t.name, TaskIndex: ti,
						Line: fmt.Sprintf("migrate: applying 2025061%d_%02d_add_index.sql ... done (%d rows)", l, idx, 1000*l+idx)})
				}
			case "Smoke test":
				st = events.StatusOK
				for try := 1; try <= 4; try++ {
					if ctl.hard() || !sleep(randDur()/3) {
						break
					}
					code := 200
					if cfg.Fail[idx] || try < 3 {
						code = 503
					}
					send(events.Event{Kind: events.TaskOutput, Host: h, Task: t.name, TaskIndex: ti,
						Line: fmt.Sprintf("GET http://127.0.0.1:8080/status → %d (try %d/4)", code, try)})
					if code == 200 {
						break
					}
				}
				if cfg.Fail[idx] {
					st, msg = events.StatusFailed, "status 503 after 4 tries, want 200"
				}
			default:
				sleep(randDur())
				if t.name == "Stop" && idx%3 == 0 {
					st = events.StatusOK
				}
			}
			if t.name == "Drain" {
				drained = true
			}
			if t.name == "Re-register" {
				drained = false
			}
			send(events.Event{Kind: events.TaskEnd, Host: h, Task: t.name, TaskIndex: ti, Module: t.module,
				Status: st, Msg: msg, Duration: time.Since(ts)})
			switch st {
			case events.StatusOK:
				rc.OK++
			case events.StatusChanged:
				rc.OK++
				rc.Changed++
			case events.StatusFailed:
				rc.Failed++
			}
			if st == events.StatusFailed {
				failed = true
				break
			}
		}
		hst := events.StatusChanged
		hmsg := ""
		if failed || (ctl.aborted() && drained) {
			for ri, r := range []string{"Release: previous", "Restart", "Re-register"} {
				send(events.Event{Kind: events.TaskStart, Host: h, Task: r, TaskIndex: ri, Rollback: true})
				sleep(randDur() / 2)
				send(events.Event{Kind: events.TaskEnd, Host: h, Task: r, TaskIndex: ri, Rollback: true, Status: events.StatusChanged})
			}
			hst, rc.RolledBack = events.StatusRolledBack, true
			hmsg = "rolled back to v1.41.3"
		} else if ctl.aborted() {
			hst = events.StatusInterrupted
		}
		send(events.Event{Kind: events.HostEnd, Host: h, Status: hst, Msg: hmsg, Duration: time.Since(hs)})
		rmuRecap.Lock()
		recap[h] = rc
		rmuRecap.Unlock()
	}

	for bi, batch := range batches {
		if ctl.aborted() || ctx.Err() != nil {
			status, exit = events.StatusInterrupted, 130
			break
		}
		send(events.Event{Kind: events.BatchStart, Batch: bi + 1, Batches: len(batches), Hosts: batch})
		var failedN atomic.Int32
		parallel.Each(context.Background(), len(batch), cfg.Forks, func(i int) {
			h := batch[i]
			idx := indexOf(hosts, h)
			if ctl.aborted() {
				return
			}
			runHost(idx, h)
			if cfg.Fail[idx] {
				failedN.Add(1)
			}
		})
		fn := int(failedN.Load())
		send(events.Event{Kind: events.BatchEnd, Batch: bi + 1, Batches: len(batches), Failed: fn})
		if fn > 0 {
			status, exit = events.StatusFailed, 2
			send(events.Event{Kind: events.Warning, Msg: fmt.Sprintf("batch %d: %d host(s) failed and were rolled back; max_fail_percentage 20 lets the rollout go on", bi+1, fn)})
		}
		if bi+1 < len(batches) && (bi+1 == cfg.PauseAfter || ctl.pauseReq.Swap(false)) && !ctl.aborted() {
			send(events.Event{Kind: events.PauseWait, Batch: bi + 1, Msg: fmt.Sprintf("batch %d done: check the canary, then continue with batch %d of %d", bi+1, bi+2, len(batches))})
			ok := false
			select {
			case ok = <-ctl.approve:
			case <-ctl.abortCh:
			case <-ctx.Done():
			}
			pst := events.StatusOK
			if !ok {
				pst = events.StatusFailed
				ctl.Abort()
			}
			send(events.Event{Kind: events.PauseEnd, Status: pst})
		}
	}
	if ctl.aborted() {
		status, exit = events.StatusInterrupted, 130
	}
	send(events.Event{Kind: events.PlayEnd, Play: "Rolling deploy of api", Status: status})
	var rc []events.HostRecap
	for _, h := range hosts {
		rc = append(rc, *recap[h])
	}
	send(events.Event{Kind: events.RunEnd, Status: status, Recap: rc, Record: ".ferry/runs/20250611T101500-7f3a.jsonl", ExitCode: exit})
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
