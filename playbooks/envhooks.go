package playbooks

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// Locker takes the environment's deploy lock. The runner calls it once,
// after the first play's preflight and before anything changes, and calls
// the returned release at the end of the run, whatever happened. An error
// that is a LockHeld ends the run with exit 5, invalid input (diag) with 4.
type Locker func(ctx context.Context) (release func(context.Context), err error)

// LockHeld is implemented by lock errors meaning another run holds the lock.
type LockHeld interface{ LockHeld() bool }

// HostDone describes a host that finished its task list of play.
type HostDone struct {
	Host *inventory.Host
	Conn tasks.Conn
	Play *Play
	Vars map[string]any // the host's variables at the end (version, app, ...)
	// Extra is what of -e the host's release record may keep (PublicExtra:
	// no secret of any play, a later one's included).
	Extra map[string]any
}

// takeLock runs the Locker once per run.
func (r *Runner) takeLock(ctx context.Context) (int, string) {
	if r.opts.Lock == nil || r.lockTaken {
		return exitcode.OK, ""
	}
	r.lockTaken = true
	release, err := r.opts.Lock(ctx)
	if err != nil {
		var held LockHeld
		code := exitcode.Unreachable
		switch {
		case errors.As(err, &held) && held.LockHeld():
			code = exitcode.Locked
		case diag.IsInvalidInput(err):
			code = exitcode.Invalid // e.g. a host where the lock needs sudo it lacks
		case ctx.Err() != nil:
			code = exitcode.Interrupted
		}
		r.emit(events.Event{Kind: events.Lock, Env: r.opts.Env, Status: events.StatusFailed, Msg: err.Error()})
		return code, "deploy lock: " + err.Error() + "; nothing was changed"
	}
	r.unlock = release
	return exitcode.OK, ""
}

// releaseLock gives the lock back, even after an interrupt.
func (r *Runner) releaseLock(ctx context.Context) {
	if r.unlock == nil {
		return
	}
	cctx, cancel := r.cleanup(ctx)
	defer cancel()
	r.unlock(cctx)
	r.unlock = nil
}

// hostDone hands a finished host to Options.HostDone (the release record);
// a failure there is reported, but the host did deploy.
func (r *Runner) hostDone(ctx context.Context, play *Play, hr *hostRun, batch int) {
	if r.opts.HostDone == nil || r.opts.Check {
		return
	}
	vars, err := r.vars(play, hr, batch, "running")
	if err == nil {
		err = r.opts.HostDone(ctx, HostDone{Host: hr.h, Conn: hr.conn, Play: play, Vars: vars, Extra: PublicExtra(r.pb, r.opts.Extra)})
	}
	if err != nil {
		r.emit(events.Event{Kind: events.Warning, Host: hr.h.Name, Msg: fmt.Sprintf("deployed, but its release state was not recorded: %v", err)})
	}
}
