// How a play runs: preflight, before, its batches under the failure rules
// (max_fail_percentage, max_failures, rollback_completed) and pauses, after.

package playbooks

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// runPlay runs one play: preflight, before, batches, after.
func (r *Runner) runPlay(ctx, hard context.Context, pp playPlan) (int, events.Status, string) {
	play := pp.play
	names := make([]string, len(pp.hosts))
	byName := map[string]*hostRun{}
	for i, h := range pp.hosts {
		names[i] = h.Name
		byName[h.Name] = r.hostRunFor(h)
	}
	r.emit(events.Event{Kind: events.PlayStart, Play: play.Name, Hosts: names, Batches: len(pp.batches)})

	if code, msg := r.preflight(ctx, play, pp.hosts, byName); code != exitcode.OK {
		r.emit(events.Event{Kind: events.PlayEnd, Play: play.Name, Status: events.StatusUnreachable})
		return code, events.StatusUnreachable, msg
	}
	if code, msg := r.takeLock(ctx); code != exitcode.OK {
		r.emit(events.Event{Kind: events.PlayEnd, Play: play.Name, Status: events.StatusFailed})
		return code, events.StatusFailed, msg
	}

	r.ctlVars = controllerVars(pp.hosts)
	r.magic.Store(&playMagic{name: play.Name, all: anyList(names), live: anyList(names), batch: anyList(names)})
	code, status, msg := exitcode.OK, events.StatusOK, ""
	if !r.controllerTasks(ctx, hard, play, play.Before, "running") {
		code, status, msg = exitcode.Failed, events.StatusFailed, "a `before` task failed: no host was touched"
	}
	if code == exitcode.OK && len(play.Stage) > 0 && ctx.Err() == nil {
		if failed := r.stage(ctx, play, pp.batches, byName); len(failed) > 0 {
			code, status, msg = exitcode.Failed, events.StatusFailed, stageSummary(failed)
		}
	}

	var completed []*hostRun // finished hosts, in completion order
	totalFailed := 0
	for bi, batch := range pp.batches {
		if code != exitcode.OK || ctx.Err() != nil {
			break
		}
		num := bi + 1
		r.emit(events.Event{Kind: events.BatchStart, Play: play.Name, Batch: num, Batches: len(pp.batches), Hosts: batch})
		r.magic.Store(r.batchMagic(play, names, batch, byName))
		failed, worked := r.runBatch(ctx, hard, play, batch, byName, num)
		totalFailed += failed
		for _, n := range batch {
			if hr := byName[n]; hr.finished && !hr.failed {
				completed = append(completed, hr)
			}
		}
		halt, why := false, ""
		pct := 0.0
		if worked > 0 {
			pct = float64(failed) * 100 / float64(worked)
		}
		switch {
		case ctx.Err() != nil:
			// Hosts stopped by the interrupt are not a verdict on the release.
			halt, why = true, r.interruptedSummary(batch, byName)
		case failed > 0 && pct > play.MaxFailPercentage:
			halt, why = true, fmt.Sprintf("%d of %d hosts failed (%.0f%%), max_fail_percentage is %g", failed, worked, pct, play.MaxFailPercentage)
		case play.MaxFailures != nil && totalFailed > *play.MaxFailures:
			halt, why = true, fmt.Sprintf("%d hosts failed in this run, max_failures is %d", totalFailed, *play.MaxFailures)
		}
		if !halt && ctx.Err() == nil && play.Verify.After(num) {
			if gateWhy := r.verifyBatch(ctx, play, pp, bi, byName); gateWhy != "" && ctx.Err() == nil {
				completed = slices.DeleteFunc(completed, func(hr *hostRun) bool { return slices.Contains(batch, hr.h.Name) })
				halt, why = true, fmt.Sprintf("verify gate after batch %d: %s", num, gateWhy)
			}
		}
		interrupted := ctx.Err() != nil
		r.emit(events.Event{Kind: events.BatchEnd, Play: play.Name, Batch: num, Batches: len(pp.batches), Failed: failed, Halted: halt, Msg: why})
		if interrupted {
			code, status, msg = exitcode.Interrupted, events.StatusInterrupted, why
			break
		}
		if halt {
			code, status, msg = exitcode.Failed, events.StatusFailed, "rollout halted: "+why
			if play.RollbackCompleted {
				r.rollbackCompleted(ctx, play, completed, num)
			}
			break
		}
		if num == len(pp.batches) {
			continue
		}
		if slices.Contains(play.PauseAfter, num) || r.pauseReq.Swap(false) {
			if !r.approve(ctx, fmt.Sprintf("batch %d of %d done (%s). Continue with batch %d (%s)?", num, len(pp.batches), strings.Join(batch, ", "), num+1, strings.Join(pp.batches[num], ", "))) {
				if ctx.Err() == nil {
					code, status, msg = exitcode.Failed, events.StatusFailed, fmt.Sprintf("rollout stopped by the operator after batch %d", num)
				}
				break
			}
		}
	}
	if ctx.Err() != nil && code == exitcode.OK {
		code, status = exitcode.Interrupted, events.StatusInterrupted
	}
	if code == exitcode.OK && totalFailed > 0 {
		code, status, msg = exitcode.Failed, events.StatusFailed, fmt.Sprintf("%d hosts failed (within max_fail_percentage %g): the rollout went on", totalFailed, play.MaxFailPercentage)
	}
	if code == exitcode.OK {
		var skipped []string
		for _, h := range pp.hosts {
			if byName[h.Name].conn == nil {
				skipped = append(skipped, h.Name)
			}
		}
		if len(skipped) > 0 {
			// --allow-unreachable: the others are deployed; exit 3 still tells CI these were not.
			code, status, msg = exitcode.Unreachable, events.StatusUnreachable, fmt.Sprintf("deployed to every reachable host; not reached: %s", strings.Join(skipped, ", "))
		}
	}
	runStatus := "ok"
	switch {
	case ctx.Err() != nil:
		runStatus = "interrupted"
	case code != exitcode.OK:
		runStatus = "failed"
	}
	after, cancelAfter := r.cleanup(ctx)
	defer cancelAfter()
	if !r.controllerTasks(after, after, play, play.After, runStatus) && code == exitcode.OK {
		code, status, msg = exitcode.Failed, events.StatusFailed, "an `after` task failed"
	}
	r.emit(events.Event{Kind: events.PlayEnd, Play: play.Name, Status: status})
	return code, status, msg
}

func (r *Runner) approve(ctx context.Context, msg string) bool {
	r.emit(events.Event{Kind: events.PauseWait, Msg: msg})
	ok := r.opts.Yes
	if !ok && r.opts.Approve != nil {
		var err error
		ok, err = r.opts.Approve(ctx, msg)
		if err != nil {
			ok = false
		}
	}
	st := events.StatusOK
	if !ok {
		st = events.StatusFailed
	}
	r.emit(events.Event{Kind: events.PauseEnd, Status: st})
	return ok
}

// needsBecome reports whether any task of the play may run through sudo.
func needsBecome(p *Play) bool {
	for _, t := range append(append(p.HostTasks(), p.Stage...), p.Rollback...) {
		if b, _ := p.BecomeFor(t); b {
			return true
		}
	}
	return false
}

// preflight connects to every host in parallel and checks sudo when the
// play needs it, so an unreachable host stops the run before anything changes.
func (r *Runner) preflight(ctx context.Context, play *Play, hosts []*inventory.Host, byName map[string]*hostRun) (int, string) {
	sudo := needsBecome(play) && r.opts.BecomePass == ""
	gather := play.Gathers(filepath.Dir(r.pb.Path))
	var mu sync.Mutex
	var bad []string
	forks := max(r.opts.Forks, 32)
	r.parallel(ctx, hosts, forks, func(h *inventory.Host) {
		hr := byName[h.Name]
		if hr.conn != nil && (!gather || hr.gathered != nil) {
			return
		}
		ch := h
		if play.RemoteUser != "" && h.User() == "" {
			ch = h.WithUser(play.RemoteUser) // Ansible's remote_user: below ansible_user
		}
		conn, err := hr.conn, error(nil)
		if conn == nil {
			conn, err = r.opts.Connector.Connect(ctx, ch)
		}
		msg := ""
		if err == nil && sudo && hr.conn == nil {
			var res tasks.Result
			// As root, like the play's tasks: in a playbook run this starts
			// the host's become shell (ssh: one sudo for all of them).
			res, err = conn.Run(ctx, "true", tasks.RunOptions{Become: true})
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("sudo -n fails for the login user (%s): give it passwordless sudo, or set FERRY_BECOME_PASSWORD", strings.TrimSpace(string(res.Stderr)))
			}
			msg = "sudo ok"
		}
		if err != nil {
			mu.Lock()
			bad = append(bad, h.Name)
			hr.recap.Unreachable++
			mu.Unlock()
			r.emit(events.Event{Kind: events.Preflight, Host: h.Name, Status: events.StatusUnreachable, Msg: strings.TrimPrefix(err.Error(), h.Name+": ")})
			return
		}
		if gather && hr.gathered == nil {
			// one command, on the connection just opened, while other hosts still connect
			become := tasks.RunOptions{Become: play.Become || play.BecomeUser != "", BecomeUser: play.BecomeUser, BecomePass: r.opts.BecomePass}
			facts, err := tasks.GatherFacts(ctx, conn, become, play.GatherSubset)
			if err != nil {
				mu.Lock()
				bad = append(bad, h.Name)
				hr.recap.Unreachable++
				mu.Unlock()
				r.emit(events.Event{Kind: events.Preflight, Host: h.Name, Status: events.StatusFailed, Msg: err.Error()})
				return
			}
			hr.gathered = facts
			msg = strings.TrimSpace(msg + " facts gathered")
		}
		hr.conn = conn
		r.emit(events.Event{Kind: events.Preflight, Host: h.Name, Status: events.StatusOK, Msg: msg})
	})
	if gather {
		r.shareFacts(hosts, byName)
	}
	if ctx.Err() != nil {
		return exitcode.Interrupted, "interrupted during preflight"
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		if r.opts.AllowUnreachable {
			r.emit(events.Event{Kind: events.Warning, Msg: fmt.Sprintf("continuing without unreachable hosts (--allow-unreachable): %s", strings.Join(bad, ", "))})
			return exitcode.OK, ""
		}
		return exitcode.Unreachable, fmt.Sprintf("preflight: %d unreachable (%s); nothing was changed. Fix them, narrow with --limit, or pass --allow-unreachable", len(bad), strings.Join(bad, ", "))
	}
	return exitcode.OK, ""
}

// parallel runs fn for each host, at most n at once. Hosts not yet started
// when ctx ends are skipped.
func (r *Runner) parallel(ctx context.Context, hosts []*inventory.Host, n int, fn func(*inventory.Host)) {
	parallel.Each(ctx, len(hosts), n, func(i int) { fn(hosts[i]) })
}

// runBatch runs the batch's hosts in parallel and returns how many failed.
// Hosts that failed preflight (kept out by --allow-unreachable) are not
// part of the batch: they are neither worked on nor counted; it returns the
// failed hosts and the hosts worked on.
func (r *Runner) runBatch(ctx, hard context.Context, play *Play, batch []string, byName map[string]*hostRun, num int) (int, int) {
	hosts := make([]*inventory.Host, 0, len(batch))
	for _, n := range batch {
		if byName[n].conn != nil {
			hosts = append(hosts, byName[n].h)
		}
	}
	var failed atomic.Int32
	// A batch that has started runs to the end on every host in it: hosts
	// waiting for a fork slot still start unless the run is interrupted.
	r.parallel(ctx, hosts, r.opts.Forks, func(h *inventory.Host) {
		if !r.runHost(ctx, hard, play, byName[h.Name], num) {
			failed.Add(1)
		}
	})
	return int(failed.Load()), len(hosts)
}

// verifyBatch runs the play's gate on the hosts batch bi finished; when it
// fails, they are rolled back (in parallel, as a failed batch's are) and
// it returns why.
func (r *Runner) verifyBatch(ctx context.Context, play *Play, pp playPlan, bi int, byName map[string]*hostRun) string {
	var done, baseline []*hostRun
	for _, n := range pp.batches[bi] {
		if hr := byName[n]; hr.finished && !hr.failed {
			done = append(done, hr)
		}
	}
	for _, b := range pp.batches[bi+1:] {
		for _, n := range b {
			if hr := byName[n]; hr.conn != nil {
				baseline = append(baseline, hr)
			}
		}
	}
	if len(done) == 0 {
		return ""
	}
	why := r.gate(ctx, play, bi+1, done, baseline)
	if why == "" || ctx.Err() != nil {
		return why
	}
	parallel.Each(ctx, len(done), r.opts.Forks, func(i int) {
		hr := done[i]
		rbCtx, cancel := r.cleanup(ctx)
		defer cancel()
		hr.failed = true
		st, msg := events.StatusRolledBack, "rolled back: the verify gate failed"
		if !r.rollback(rbCtx, play, hr, bi+1) {
			st, msg = events.StatusFailed, "the verify gate failed; ROLLBACK FAILED"
			if len(play.Rollback) == 0 {
				msg = "the verify gate failed; no rollback tasks"
			}
		}
		if left := r.leftState(hr); left != events.LeftInService {
			msg += "; left " + left
		}
		r.emit(events.Event{Kind: events.HostEnd, Host: hr.h.Name, Batch: bi + 1, Status: st, Msg: msg})
	})
	return why
}

// rollbackCompleted rolls back hosts this run already finished, newest first, one at a time.
func (r *Runner) rollbackCompleted(ctx context.Context, play *Play, done []*hostRun, batch int) {
	sort.SliceStable(done, func(i, j int) bool { return done[i].finishedAt.After(done[j].finishedAt) })
	for _, hr := range done {
		r.emit(events.Event{Kind: events.Warning, Host: hr.h.Name, Msg: "rollback_completed: rolling back this finished host"})
		rbCtx, cancel := r.cleanup(ctx)
		ok := r.rollback(rbCtx, play, hr, batch)
		cancel()
		st := events.StatusRolledBack
		if !ok {
			st = events.StatusFailed
		}
		r.emit(events.Event{Kind: events.HostEnd, Host: hr.h.Name, Batch: batch, Status: st, Msg: "rolled back (rollback_completed)"})
	}
}

func (r *Runner) approver() func(ctx context.Context, msg string) (bool, error) {
	return func(ctx context.Context, msg string) (bool, error) {
		return r.approve(ctx, msg), nil
	}
}

// batchMagic is ansible_play_hosts (the play's hosts not failed so far and
// reached) and ansible_play_batch (those of this batch) as a batch starts.
func (r *Runner) batchMagic(play *Play, names, batch []string, byName map[string]*hostRun) *playMagic {
	m := &playMagic{name: play.Name, all: anyList(names)}
	inBatch := map[string]bool{}
	for _, n := range batch {
		inBatch[n] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		hr := byName[n]
		if hr.failed || hr.conn == nil {
			continue
		}
		m.live = append(m.live, n)
		if inBatch[n] {
			m.batch = append(m.batch, n)
		}
	}
	if m.live == nil {
		m.live = []any{}
	}
	if m.batch == nil {
		m.batch = []any{}
	}
	return m
}
