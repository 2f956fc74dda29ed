package playbooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/output"
	"github.com/ferrydeploy/ferry/tasks"
)

// Resuming a run (ferry run --resume): the records of a run and of the runs
// that resumed it are replayed as one journal. What it shows still open
// (drained, stopped, standby, suspended) is restored first; then the
// rollout goes on without the hosts those runs finished.

// Resumed is what a run left, read from its record and its predecessors'.
type Resumed struct {
	RunID    string // the run being resumed (the newest of its chain)
	Path     string
	Playbook string
	Env      string
	Version  string
	Digest   string
	// Extra is the -e values the run recorded (not the plays' secrets):
	// --resume takes each one not given again.
	Extra    map[string]any
	ended    bool                       // the run wrote its run_end
	status   events.Status              // ... with this status
	open     map[string]*journal        // host ("" = controller) → changes still open
	openOrd  []string                   // hosts of open, in the order first journaled
	done     map[string]map[string]bool // play → hosts finished
	order    map[string][]string        // play → its hosts in the run's order
	tasks    map[string][]string        // play → its task names, as run
	plays    []string
	finisher map[string]string            // host → run that finished it
	staged   map[string]map[string]string // play → host → run that staged it for Version
}

// stagedBy returns the run of the chain that staged host for version in
// play, or "" (nil: not a resumed run).
func (r *Resumed) stagedBy(play, host, version string) string {
	if r == nil || version != r.Version {
		return ""
	}
	return r.staged[play][host]
}

// ID is the resumed run's ID ("" for nil: not a resumed run).
func (r *Resumed) ID() string {
	if r == nil {
		return ""
	}
	return r.RunID
}

// PlaybookDigest is the SHA-256 of the playbook file ("" when unreadable):
// a resumed run refuses a playbook that changed.
func PlaybookDigest(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// recordHead reads a record's run_start and whether it ended, cheaply
// enough for a directory of records.
type recordHead struct {
	path  string
	start events.Event
	end   *events.Event
	// untrusted says why the invoking user must not act on this record
	// ("" when it may): someone else owns it or can write it.
	untrusted string
}

func heads(dir string) ([]recordHead, map[string][]events.Event, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, nil, err
	}
	var hs []recordHead
	all := map[string][]events.Event{}
	for _, f := range files {
		evs, err := output.ReadRecord(f)
		if err != nil || len(evs) == 0 || evs[0].Kind != events.RunStart {
			continue
		}
		h := recordHead{path: f, start: evs[0], untrusted: untrustedRecord(f)}
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Kind == events.RunEnd {
				h.end = &evs[i]
				break
			}
		}
		hs = append(hs, h)
		all[evs[0].RunID] = evs
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].start.Time.Before(hs[j].start.Time) })
	return hs, all, nil
}

func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// LoadJournal reads the run to resume from the records in dir: runID, or
// ("" or "last") the newest unfinished run of playbook in env that the
// invoking user owns. A record is what a resumed run acts on, as whoever
// resumes it: one that another user owns or can write, or in a directory
// another user can write, is refused (see untrustedRecord).
func LoadJournal(dir, runID, playbook, env string) (*Resumed, error) {
	if why := untrustedDir(dir); why != "" {
		return nil, &inputError{fmt.Errorf("--resume: refusing the run records in %s: %s; records are what a resumed run acts on: keep the directory yours (chmod go-w), or pass --record-dir", dir, why)}
	}
	return loadJournal(dir, runID, playbook, env, true)
}

// loadJournal is LoadJournal; trusting reports records nobody may act on
// (untrusted) as errors, or, picking the newest run, passes them over.
// `ferry status` only reads what dead runs left, and reads every record.
func loadJournal(dir, runID, playbook, env string, trusting bool) (*Resumed, error) {
	hs, all, err := heads(dir)
	if err != nil {
		return nil, fmt.Errorf("read run records in %s: %w", dir, err)
	}
	if trusting {
		kept := hs[:0]
		for _, h := range hs {
			if h.untrusted != "" && h.start.RunID == runID {
				return nil, &inputError{fmt.Errorf("--resume %s: refusing its record %s: %s; a resumed run acts on what its record says, so only records you own and only you can write are resumed", runID, h.path, h.untrusted)}
			}
			if h.untrusted != "" {
				delete(all, h.start.RunID) // a chain reaching it is refused below
				continue
			}
			kept = append(kept, h)
		}
		hs = kept
	}
	resumedBy := map[string]string{}
	for _, h := range hs {
		if h.start.ResumeOf != "" {
			resumedBy[h.start.ResumeOf] = h.start.RunID
		}
	}
	var pick *recordHead
	if runID != "" && runID != "last" {
		for i := range hs {
			if hs[i].start.RunID == runID {
				pick = &hs[i]
			}
		}
		if pick == nil {
			return nil, &inputError{fmt.Errorf("--resume %s: no such run in %s (ferry history lists runs; --record-dir chooses the directory)", runID, dir)}
		}
		if by := resumedBy[runID]; by != "" {
			return nil, &inputError{fmt.Errorf("--resume %s: run %s already resumed it: resume that one", runID, by)}
		}
	} else {
		for i := len(hs) - 1; i >= 0; i-- {
			h := hs[i]
			unfinished := h.end == nil || h.end.Status != events.StatusOK
			if unfinished && resumedBy[h.start.RunID] == "" && samePath(h.start.Playbook, playbook) && h.start.Env == env && !h.start.Check {
				pick = &hs[i]
				break
			}
		}
		if pick == nil {
			return nil, &inputError{fmt.Errorf("--resume: no unfinished run of %s (env %q) in %s: nothing to resume", playbook, env, dir)}
		}
	}
	if pick.end != nil && pick.end.Status == events.StatusOK {
		return nil, &inputError{fmt.Errorf("--resume %s: that run finished (ok): nothing to resume", pick.start.RunID)}
	}
	// The chain, oldest first: a resumed run's predecessors hold what it
	// inherited.
	var chain [][]events.Event
	seen := map[string]bool{}
	for id := pick.start.RunID; id != "" && !seen[id]; {
		seen[id] = true
		evs, ok := all[id]
		if !ok {
			return nil, &inputError{fmt.Errorf("--resume: the record of run %s (resumed by a later run) is missing from %s, or is not yours to resume", id, dir)}
		}
		chain = append([][]events.Event{evs}, chain...)
		id = evs[0].ResumeOf
	}
	res := &Resumed{RunID: pick.start.RunID, Path: pick.path, Playbook: pick.start.Playbook, Env: pick.start.Env,
		Version: pick.start.Version, Digest: pick.start.Digest, ended: pick.end != nil,
		open: map[string]*journal{}, done: map[string]map[string]bool{}, order: map[string][]string{},
		tasks: map[string][]string{}, finisher: map[string]string{}, staged: map[string]map[string]string{}}
	if pick.end != nil {
		res.status = pick.end.Status
	}
	// The first run of the chain fixes the plan (order, task list) and the
	// fingerprint the playbook is checked against.
	first := chain[0][0]
	res.Digest, res.Version, res.Extra = first.Digest, first.Version, first.Extra
	for ci, evs := range chain {
		// inPlay: host_end before any play_start is a resumed run reporting
		// hosts finished earlier; a play's name may be "" (an unnamed play).
		play, inPlay := "", false
		for _, e := range evs {
			switch e.Kind {
			case events.PlayStart:
				play, inPlay = e.Play, true
				if ci == 0 {
					if _, ok := res.order[play]; !ok {
						res.plays = append(res.plays, play)
					}
					res.order[play] = e.Hosts
				}
				if res.done[play] == nil {
					res.done[play] = map[string]bool{}
				}
			case events.HostStart:
				if _, ok := res.tasks[play]; !ok && ci == 0 {
					res.tasks[play] = e.Tasks
				}
			case events.HostEnd:
				if !inPlay {
					continue
				}
				ok := e.Status == events.StatusOK || e.Status == events.StatusChanged
				res.done[play][e.Host] = ok
				if ok && res.finisher[e.Host] == "" {
					res.finisher[e.Host] = e.RunID
				}
			case events.StageEnd:
				if play == "" || e.Status != events.StatusOK || e.Version != res.Version {
					continue
				}
				if res.staged[play] == nil {
					res.staged[play] = map[string]string{}
				}
				if res.staged[play][e.Host] == "" {
					res.staged[play][e.Host] = e.RunID
				}
			case events.Intent:
				j := res.open[e.Host]
				if j == nil {
					j = &journal{}
					res.open[e.Host] = j
					res.openOrd = append(res.openOrd, e.Host)
				}
				c := openChange{key: e.Change, what: e.Msg}
				if e.Undo != nil {
					c.undo = *e.Undo
				}
				j.add(c)
			case events.Undone:
				if j := res.open[e.Host]; j != nil {
					j.remove(e.Change)
				}
			}
		}
	}
	return res, nil
}

// Check refuses to resume when the playbook, the release or the inventory
// changed in a way that makes finishing the run unsafe, saying what changed.
func (r *Resumed) Check(pb *Playbook, inv *inventory.Inventory, env, version string) error {
	refuse := func(format string, args ...any) error {
		return &inputError{fmt.Errorf("cannot resume run %s: "+format+"; start a new run instead (without --resume)", append([]any{r.RunID}, args...)...)}
	}
	if env != r.Env {
		return refuse("it deployed to env %q, this run to %q", r.Env, env)
	}
	if version != r.Version && version == "" {
		return &inputError{fmt.Errorf("cannot resume run %s without its version: pass the same -e version=%s", r.RunID, r.Version)}
	}
	if version != r.Version {
		return refuse("it deployed version %q, this run version %q", r.Version, version)
	}
	if r.Digest == "" {
		return refuse("its record holds no playbook digest, so nothing proves %s is the playbook it ran", pb.Path)
	}
	if d := PlaybookDigest(pb.Path); d != r.Digest {
		for _, p := range pb.Plays {
			was, ok := r.tasks[p.Name]
			if !ok {
				continue
			}
			var now []string
			for _, t := range p.HostTasks() {
				now = append(now, t.DisplayName())
			}
			if strings.Join(was, "\x00") != strings.Join(now, "\x00") {
				return refuse("the tasks of play %q changed: they were [%s], they are [%s]", p.Name, strings.Join(was, ", "), strings.Join(now, ", "))
			}
		}
		return refuse("%s changed since (SHA-256 %.12s then, %.12s now)", pb.Path, r.Digest, d)
	}
	var gone []string
	for _, p := range r.plays {
		for _, h := range r.order[p] {
			if _, ok := inv.Host(h); !ok {
				gone = append(gone, h)
			}
		}
	}
	for _, h := range r.openOrd {
		if _, ok := inv.Host(h); h != "" && !ok && !slices.Contains(gone, h) {
			gone = append(gone, h)
		}
	}
	if len(gone) > 0 {
		return refuse("hosts of that run are no longer in the inventory: %s", strings.Join(gone, ", "))
	}
	return nil
}

// replan drops the hosts the resumed runs finished from a play's plan,
// keeping that run's host order (a shuffled order stays the same).
func (r *Resumed) replan(p *Play, names []string) []string {
	if r == nil {
		return names
	}
	order, ok := r.order[p.Name]
	if !ok {
		return names
	}
	now := map[string]bool{}
	for _, n := range names {
		now[n] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range order {
		if now[n] {
			out = append(out, n)
			seen[n] = true
		}
	}
	for _, n := range names {
		if !seen[n] {
			out = append(out, n) // new in the inventory: deployed like the rest
		}
	}
	return out
}

// skipDone filters finished hosts out of batches, dropping emptied ones.
func (r *Resumed) skipDone(p *Play, batches [][]string) [][]string {
	if r == nil {
		return batches
	}
	var out [][]string
	for _, b := range batches {
		var kept []string
		for _, n := range b {
			if !r.done[p.Name][n] {
				kept = append(kept, n)
			}
		}
		if len(kept) > 0 {
			out = append(out, kept)
		}
	}
	return out
}

// restore undoes, on every host (then on the controller), what the resumed
// run left open, newest change first, and reports finished hosts as such.
// Restoration has the grace budget and survives an interrupt, as rollback does.
func (r *Runner) restore(ctx context.Context, plans []playPlan) (int, events.Status, string) {
	res := r.opts.Resume
	playOf := map[string]playPlan{}
	for _, pp := range plans {
		for _, h := range pp.hosts {
			if _, ok := playOf[h.Name]; !ok {
				playOf[h.Name] = pp
			}
		}
	}
	var hosts []*inventory.Host
	for _, name := range res.openOrd {
		if name == "" || len(res.open[name].open) == 0 {
			continue
		}
		h, ok := r.opts.Inventory.Host(name)
		if !ok {
			continue // Check refused this already
		}
		hosts = append(hosts, h)
	}
	if len(hosts) > 0 || (res.open[""] != nil && len(res.open[""].open) > 0) {
		r.emit(events.Event{Kind: events.Warning, Msg: fmt.Sprintf("resuming run %s: restoring first what it left undone", res.RunID)})
	}
	rctx, cancel := r.cleanup(ctx)
	defer cancel()
	var mu sync.Mutex
	var failed []string
	r.parallel(rctx, hosts, r.opts.Forks, func(h *inventory.Host) {
		pp, ok := playOf[h.Name]
		if !ok && len(plans) > 0 {
			pp = plans[0]
		}
		if pp.play == nil {
			return
		}
		hr := r.hostRunFor(h)
		if err := r.restoreOn(rctx, pp.play, hr, res.open[h.Name]); err != nil {
			mu.Lock()
			failed = append(failed, fmt.Sprintf("%s (%v)", h.Name, err))
			mu.Unlock()
		}
	})
	if j := res.open[""]; j != nil && len(j.open) > 0 && len(plans) > 0 {
		r.ctlVars = controllerVars(plans[0].hosts)
		if err := r.restoreOn(rctx, plans[0].play, nil, j); err != nil {
			failed = append(failed, fmt.Sprintf("controller (%v)", err))
		}
	}
	for _, pp := range plans {
		for _, h := range pp.done {
			hr := r.hostRunFor(h)
			if !hr.finished {
				hr.finished, hr.touched = true, true
				r.emit(events.Event{Kind: events.HostEnd, Host: h.Name, Status: events.StatusOK,
					Msg: fmt.Sprintf("finished by run %s: not deployed again", res.finisher[h.Name])})
			}
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return exitcode.Failed, events.StatusFailed, fmt.Sprintf("could not restore what run %s left undone on %s: the rollout does not go on; fix that and run --resume again",
			res.RunID, strings.Join(failed, ", "))
	}
	return exitcode.OK, events.StatusOK, ""
}

// restoreOn journals j's changes again (this run now owns them) and undoes
// them on hr (nil: the controller), newest first.
func (r *Runner) restoreOn(ctx context.Context, play *Play, hr *hostRun, j *journal) error {
	// What undoes each change comes from the playbook, never from the
	// record: a record names a change, the playbook's task that makes it
	// says (through its module's Spec.Leaves) which call undoes it.
	var errs []error
	open := make([]openChange, 0, len(j.open))
	for _, c := range j.open {
		u, err := r.undoFromPlaybook(hr, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		open = append(open, u)
	}
	for _, c := range open {
		if err := r.intent(hr, c); err != nil {
			return err
		}
	}
	if hr != nil {
		if hr.conn == nil {
			conn, err := r.opts.Connector.Connect(ctx, hr.h)
			if err != nil {
				return err
			}
			hr.conn = conn
		}
		hr.touched = true
	}
	for i := len(open) - 1; i >= 0; i-- {
		c := open[i]
		mod, ok := tasks.Lookup(c.undo.Module)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown module %q", c.what, c.undo.Module))
			continue
		}
		if hr != nil {
			if err := r.reconnect(ctx, hr, true); err != nil {
				return err
			}
			for k, v := range c.undo.State {
				hr.state[k] = v
			}
		}
		become := c.undo.Become
		t := &Task{Name: "Restore: " + c.what, Module: c.undo.Module, Spec: mod.Spec(), Args: c.undo.Args, Become: &become, BecomeUser: c.undo.BecomeUser}
		if ok, msg := r.runTaskOn(ctx, taskRun{play: play, hr: hr, t: t, idx: i, rollback: true, status: "restoring"}); !ok {
			errs = append(errs, fmt.Errorf("%s: %s", c.what, msg))
		}
	}
	return errors.Join(errs...)
}

// undoFromPlaybook returns the journaled change c with the undo that the
// playbook says: a task of the playbook whose module leaves the change c
// names (Spec.Leaves, with the task's arguments rendered for hr, nil: the
// controller) gives the module, its arguments and the task's become. Of
// the record, only the change's key is used, and, for a module that keeps
// its own memory (Spec.Undo, elb), that memory under the module's own key.
// A change no task of the playbook makes is not undone.
func (r *Runner) undoFromPlaybook(hr *hostRun, c openChange) (openChange, error) {
	host := "the controller"
	if hr != nil {
		host = hr.h.Name
	}
	for _, play := range r.pb.Plays {
		for _, t := range play.AllTasks() {
			if t.Spec.Leaves == nil {
				continue
			}
			vars, err := r.vars(play, hr, 0, "restoring")
			if err == nil {
				vars, err = taskVars(t, vars)
			}
			if err != nil {
				continue
			}
			items := []any{nil}
			if t.HasLoop {
				if items, err = t.LoopItems(vars); err != nil {
					continue
				}
			}
			for _, item := range items {
				iv := vars
				if t.HasLoop {
					loopVar := "item"
					if t.LoopVar != "" {
						loopVar = t.LoopVar
					}
					iv = Merge(vars, map[string]any{loopVar: item})
				}
				args, err := t.RenderArgs(iv)
				if err != nil {
					continue
				}
				ch, ok := t.Spec.Leaves(args, iv)
				if !ok || ch.Key != c.key {
					continue
				}
				u := changeOf(ch)
				if undoMod, ok := tasks.Lookup(ch.Module); ok {
					if key := undoMod.Spec().Undo; key != "" && c.undo.State[key] != nil {
						u.undo.State = map[string]any{key: c.undo.State[key]}
					}
					if !undoMod.Spec().Controller {
						u.undo.Become, u.undo.BecomeUser = play.BecomeFor(t)
						u.undo.Become = u.undo.Become || u.undo.BecomeUser != ""
					}
				}
				return u, nil
			}
		}
	}
	return openChange{}, fmt.Errorf("the record of run %s says it left change %q on %s, but no task of %s makes that change: not undoing what only the record says; check the host and restore it by hand",
		r.opts.Resume.ID(), c.key, host, r.pb.Path)
}

// interruptedSummary says truthfully what became of a batch's hosts after
// an interrupt: finished, rolled back, or left as what.
func (r *Runner) interruptedSummary(batch []string, byName map[string]*hostRun) string {
	finished, rolled := 0, 0
	var left []string
	for _, n := range batch {
		hr := byName[n]
		switch {
		case !hr.touched:
		case hr.finished && !hr.failed:
			finished++
		case hr.recap.RolledBack:
			rolled++
		default:
			if l := r.leftState(hr); l != events.LeftInService {
				left = append(left, n+": "+l)
			} else {
				left = append(left, n+": failed, "+l)
			}
		}
	}
	msg := fmt.Sprintf("interrupted: of the hosts in flight %d finished, %d rolled back", finished, rolled)
	if n := len(left); n > 0 {
		const show = 5
		more := ""
		if len(left) > show {
			more = fmt.Sprintf(" and %d more (see the recap)", len(left)-show)
			left = left[:show]
		}
		msg += fmt.Sprintf(", %d left as they were: %s%s", n, strings.Join(left, "; "), more)
	}
	return msg
}

// LeftOut is what a run that did not finish left undone on one host (""
// for the controller: suspended scaling), by its journal.
type LeftOut struct {
	RunID    string `json:"run_id"`
	Playbook string `json:"playbook"`
	Env      string `json:"env,omitempty"`       // the run's --env ("" for -i only)
	Source   string `json:"inventory,omitempty"` // the run's -i
	Host     string `json:"host"`
	Left     string `json:"left"` // "out of load balancer, unit app stopped"
	// Ended is how the run ended ("failed", "interrupted", ...); "" when it
	// did not finish (killed, or still running).
	Ended string `json:"ended,omitempty"`
}

// LeftByDeadRuns lists, for env, what the runs in dir that neither
// finished nor were resumed left undone (`ferry status`).
func LeftByDeadRuns(dir, env string) ([]LeftOut, error) {
	hs, all, err := heads(dir)
	if err != nil {
		return nil, err
	}
	resumed := map[string]bool{}
	for _, h := range hs {
		resumed[h.start.ResumeOf] = true
	}
	// A run without --env deploys to the environment `ferry status` calls "default".
	norm := func(e string) string {
		if e == "" {
			return "default"
		}
		return e
	}
	var out []LeftOut
	for _, h := range hs {
		if norm(h.start.Env) != norm(env) || h.start.Check || resumed[h.start.RunID] || (h.end != nil && h.end.Status == events.StatusOK) {
			continue
		}
		r, err := loadJournal(dir, h.start.RunID, h.start.Playbook, h.start.Env, false)
		if err != nil {
			continue
		}
		ended := ""
		if h.end != nil {
			ended = string(h.end.Status)
		}
		for _, host := range r.openOrd {
			if left := r.open[host].left(); left != "" && !restoredLater(hs, all, h, host) {
				out = append(out, LeftOut{RunID: r.RunID, Playbook: r.Playbook, Env: h.start.Env, Source: h.start.Inventory, Host: host, Left: left, Ended: ended})
			}
		}
	}
	return out, nil
}

// restoredLater reports whether a run started after h's finished host's
// task list, or left it in service: what h left there is gone.
func restoredLater(hs []recordHead, all map[string][]events.Event, h recordHead, host string) bool {
	if host == "" {
		return false
	}
	for _, later := range hs {
		if !later.start.Time.After(h.start.Time) || later.start.Check {
			continue
		}
		if later.end != nil {
			for _, rc := range later.end.Recap {
				if rc.Host == host && rc.Left == events.LeftInService {
					return true
				}
			}
		}
		for _, e := range all[later.start.RunID] {
			if e.Kind == events.HostEnd && e.Host == host && (e.Status == events.StatusOK || e.Status == events.StatusChanged) {
				return true
			}
		}
	}
	return false
}
