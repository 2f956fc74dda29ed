// The play's stage list: what each host needs before it is taken out of
// service (upload, verify, unpack) runs on every host at once, before batch
// 1, so a host's time out of service holds only the swap, the restart and
// the smoke test.

package playbooks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/inventory"
)

// stage runs play.Stage on every reachable host of batches, in parallel
// (at most --forks at once), and returns the hosts whose stage failed,
// sorted. A host that a resumed run already staged for this version is
// not staged again.
func (r *Runner) stage(ctx context.Context, play *Play, batches [][]string, byName map[string]*hostRun) []string {
	var hosts []*inventory.Host
	for _, b := range batches {
		for _, n := range b {
			if hr := byName[n]; hr.conn != nil {
				hosts = append(hosts, hr.h)
			}
		}
	}
	var mu sync.Mutex
	var failed []string
	r.parallel(ctx, hosts, r.opts.Forks, func(h *inventory.Host) {
		hr := byName[h.Name]
		if by := r.opts.Resume.stagedBy(play.Name, h.Name, r.opts.Version); by != "" {
			hr.staged = true
			r.emit(events.Event{Kind: events.StageEnd, Host: h.Name, Status: events.StatusSkipped, Version: r.opts.Version,
				Msg: fmt.Sprintf("staged for %s by run %s", r.opts.Version, by)})
			return
		}
		if msg := r.stageHost(ctx, play, hr); msg != "" {
			mu.Lock()
			failed = append(failed, h.Name)
			mu.Unlock()
			hr.failed = true
			r.emit(events.Event{Kind: events.HostEnd, Host: h.Name, Status: events.StatusFailed,
				Msg: "stage: " + msg + "; its service was not touched"})
		}
	})
	sort.Strings(failed)
	return failed
}

// stageHost runs the stage list on one host; it returns why it failed, or "".
func (r *Runner) stageHost(ctx context.Context, play *Play, hr *hostRun) string {
	hr.staging = true
	defer func() { hr.staging = false }()
	fail := func(msg string) string {
		r.emit(events.Event{Kind: events.StageEnd, Host: hr.h.Name, Status: events.StatusFailed, Version: r.opts.Version, Msg: msg})
		return msg
	}
	for i, t := range play.Stage {
		if ctx.Err() != nil {
			return fail("interrupted before " + t.DisplayName())
		}
		if err := r.reconnect(ctx, hr, false); err != nil {
			return fail(fmt.Sprintf("%s: %v", t.DisplayName(), err))
		}
		if ok, msg := r.runEntry(ctx, taskRun{play: play, hr: hr, t: t, idx: i}); !ok {
			return fail(fmt.Sprintf("%s: %s", t.DisplayName(), msg))
		}
	}
	hr.staged = true
	r.emit(events.Event{Kind: events.StageEnd, Host: hr.h.Name, Status: events.StatusOK, Version: r.opts.Version})
	return ""
}

// stageSummary says which hosts failed their stage.
func stageSummary(failed []string) string {
	return fmt.Sprintf("stage failed on %d host(s) (%s): no host was taken out of service", len(failed), strings.Join(failed, ", "))
}
