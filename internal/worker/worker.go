package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
)

// Queue is what the worker needs of an SQS queue (awsapi.Queue).
type Queue interface {
	Receive(ctx context.Context, n int, wait, visibility time.Duration) ([]awsapi.Message, error)
	SetVisibility(ctx context.Context, receipt string, d time.Duration) error
	Delete(ctx context.Context, receipt string) error
}

// Outcome is how a run ended: ferry's exit code (0 success) and, when the
// run did not start or could not say, the error.
type Outcome struct {
	ExitCode int
	Err      error
}

// OK reports success.
func (o Outcome) OK() bool { return o.ExitCode == 0 && o.Err == nil }

func (o Outcome) String() string {
	if o.Err != nil {
		return fmt.Sprintf("exit %d: %v", o.ExitCode, o.Err)
	}
	return fmt.Sprintf("exit %d", o.ExitCode)
}

// Runner runs what messages ask for. Cancelling ctx is the graceful abort
// of `ferry run` on SIGTERM: the in-flight host finishes or rolls back.
type Runner interface {
	// Deploy runs a deploy request as `ferry run` would.
	Deploy(ctx context.Context, m awsapi.Message, r *Request) Outcome
	// Launch deploys the current release of the environment of the
	// launch's group to the launched instance only.
	Launch(ctx context.Context, m awsapi.Message, l *Launch) Outcome
}

// Lifecycle completes launch lifecycle actions (awsapi.Factory).
type Lifecycle interface {
	LifecycleHeartbeat(ctx context.Context, a awsapi.LifecycleAction) error
	CompleteLifecycle(ctx context.Context, a awsapi.LifecycleAction, result string) error
}

// Event is one line of the worker's own log (the runs log their own).
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // always "worker"
	Queue   string    `json:"queue,omitempty"`
	Message string    `json:"message_id,omitempty"`
	Action  string    `json:"action"` // listening, received, deleted, returned, left, ignored, completed, error, stopped
	Env     string    `json:"env,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// Options configure Run.
type Options struct {
	Queues      map[string]Queue // by URL
	Runner      Runner
	Lifecycle   Lifecycle
	Region      string // of the queues: lifecycle notifications name none
	Concurrency int    // messages worked on at once, per queue; default 1
	// Visibility is how long a received message stays hidden from other
	// workers; it is extended every Visibility/3 while its run lasts, so a
	// worker that dies hands it on after at most Visibility. Default 2m.
	Visibility time.Duration
	Wait       time.Duration // long poll; default 20s (SQS's most)
	// Heartbeat is how often a launch's lifecycle action is kept alive;
	// default 1m (hooks time out after HeartbeatTimeout, 1h by default).
	Heartbeat time.Duration
	Log       func(Event)
	// Policy, when set, is what a deploy request may ask for; Protected
	// says whether an environment is protected (ferry.yml).
	Policy    *Policy
	Protected func(env string) bool
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Visibility <= 0 {
		o.Visibility = 2 * time.Minute
	}
	if o.Wait <= 0 {
		o.Wait = 20 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Minute
	}
	if o.Log == nil {
		o.Log = func(Event) {}
	}
}

// Run consumes the queues until ctx is cancelled (SIGTERM), then lets
// the runs in flight abort gracefully, hands their messages back and
// returns nil. Queue errors are logged and retried with backoff: a worker
// under systemd outlives an SQS outage.
func Run(ctx context.Context, o Options) error {
	if len(o.Queues) == 0 {
		return errNoQueue
	}
	o.defaults()
	w := &worker{o: o, busy: map[string]*sync.Mutex{}}
	var wg sync.WaitGroup
	for url, q := range o.Queues {
		o.Log(Event{Time: time.Now(), Kind: "worker", Queue: url, Action: "listening",
			Detail: fmt.Sprintf("concurrency %d, visibility %s", o.Concurrency, o.Visibility)})
		for i := 0; i < o.Concurrency; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.consume(ctx, url, q)
			}()
		}
	}
	wg.Wait()
	o.Log(Event{Time: time.Now(), Kind: "worker", Action: "stopped"})
	return nil
}

type worker struct {
	o Options

	mu   sync.Mutex
	busy map[string]*sync.Mutex // message group → held while one of its runs goes on
}

func (w *worker) log(e Event) {
	e.Time, e.Kind = time.Now(), "worker"
	w.o.Log(e)
}

// consume receives one message at a time and works on it.
func (w *worker) consume(ctx context.Context, url string, q Queue) {
	backoff := time.Second
	for ctx.Err() == nil {
		msgs, err := q.Receive(ctx, 1, w.o.Wait, w.o.Visibility)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log(Event{Queue: url, Action: "error", Detail: fmt.Sprintf("%v; retrying in %s", err, backoff)})
			if sleep(ctx, backoff) != nil {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		for _, m := range msgs {
			w.handle(ctx, url, q, m)
		}
	}
}

// groupLock serialises the runs of one message group in this process.
// SQS already delivers a FIFO group's messages one at a time; this keeps
// that true when a visibility timeout lapses, or on emulators that do not
// hold groups back. Across workers, the environment's deploy lock does.
func (w *worker) groupLock(group string) func() {
	if group == "" {
		return func() {}
	}
	w.mu.Lock()
	l := w.busy[group]
	if l == nil {
		l = &sync.Mutex{}
		w.busy[group] = l
	}
	w.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// handle works on one message, keeping it hidden while it does.
func (w *worker) handle(ctx context.Context, url string, q Queue, m awsapi.Message) {
	// Queue calls outlive a SIGTERM: the message must still be extended
	// during the graceful abort, then handed back.
	qctx := context.WithoutCancel(ctx)
	ev := Event{Queue: url, Message: m.ID}
	p, err := Parse(m.Body)
	if err != nil {
		ev.Action, ev.Detail = "left", fmt.Sprintf("%v (receive %d); the queue's redrive policy moves it to the dead-letter queue", err, m.ReceiveCount)
		w.log(ev)
		return
	}
	if p.Kind == KindTest {
		ev.Action, ev.Detail = "ignored", "autoscaling:TEST_NOTIFICATION (sent when a lifecycle hook is created); deleted"
		w.delete(qctx, q, m, ev)
		return
	}
	stop := w.keepHidden(qctx, q, m, ev)
	defer stop()
	switch p.Kind {
	case KindRequest:
		w.deploy(ctx, qctx, q, m, p.Request, ev)
	case KindLaunch:
		w.launch(ctx, qctx, q, m, p.Launch, ev)
	}
}

func (w *worker) deploy(ctx, qctx context.Context, q Queue, m awsapi.Message, r *Request, ev Event) {
	ev.Env = r.Environment
	unlock := w.groupLock(m.GroupID)
	defer unlock()
	if ctx.Err() != nil {
		w.handBack(qctx, q, m, ev, "stopping before it started")
		return
	}
	ev.Action = "received"
	ev.Detail = fmt.Sprintf("deploy %s to %s, version %q, sent by %s, claims to be from %s%s (receive %d)", r.Playbook, r.Environment, r.Version(), Sender(m), r.Who, jobSuffix(r.JobURL), m.ReceiveCount)
	w.log(ev)
	if w.o.Policy != nil {
		checked, err := w.allowed(r)
		if err != nil {
			ev.Action, ev.Detail = "refused", fmt.Sprintf("%v; nothing ran; the message goes to the dead-letter queue after maxReceiveCount receives (this was receive %d)", err, m.ReceiveCount)
			w.log(ev)
			return
		}
		r = checked
	}
	out := w.o.Runner.Deploy(ctx, m, r)
	switch {
	case out.OK():
		ev.Action, ev.Detail = "deleted", "deploy succeeded"
		w.delete(qctx, q, m, ev)
	case ctx.Err() != nil:
		w.handBack(qctx, q, m, ev, "interrupted ("+out.String()+")")
	default:
		ev.Action, ev.Detail = "left", fmt.Sprintf("deploy failed (%s); the message comes back after its visibility timeout, and goes to the dead-letter queue after maxReceiveCount receives (this was receive %d)", out, m.ReceiveCount)
		w.log(ev)
	}
}

// allowed checks r against the worker's policy and returns it with its
// playbook's path under the worker's playbook directory.
func (w *worker) allowed(r *Request) (*Request, error) {
	full, err := w.o.Policy.Playbook(r.Playbook)
	if err != nil {
		return nil, fmt.Errorf("refused by the worker's allow-list: %w", err)
	}
	protected := w.o.Protected != nil && w.o.Protected(r.Environment)
	if err := w.o.Policy.Env(r.Environment, protected); err != nil {
		return nil, fmt.Errorf("refused by the worker's allow-list: %w", err)
	}
	if err := w.o.Policy.ExtraVars(r.ExtraVars); err != nil {
		return nil, fmt.Errorf("refused by the worker's allow-list: %w", err)
	}
	checked := *r
	checked.Playbook = full
	return &checked, nil
}

// Sender is who sent m as SQS says (SenderId): the identity a run
// records; what the message says of itself (who, origin) is only claimed.
func Sender(m awsapi.Message) string {
	if m.SenderID == "" {
		return "an unknown sender (the queue gave no SenderId)"
	}
	return "sqs:" + m.SenderID
}

func (w *worker) launch(ctx, qctx context.Context, q Queue, m awsapi.Message, l *Launch, ev Event) {
	a := awsapi.LifecycleAction{Region: w.o.Region, Account: l.AccountID, Group: l.AutoScalingGroupName,
		Hook: l.LifecycleHookName, Token: l.LifecycleActionToken, InstanceID: l.EC2InstanceID}
	ev.Action = "received"
	ev.Detail = fmt.Sprintf("launch of %s in %s (hook %s, receive %d)", a.InstanceID, a.Group, a.Hook, m.ReceiveCount)
	w.log(ev)
	if w.o.Lifecycle == nil {
		ev.Action, ev.Detail = "left", "no AWS access for lifecycle actions"
		w.log(ev)
		return
	}
	stopHB := w.every(qctx, w.o.Heartbeat, func() {
		if err := w.o.Lifecycle.LifecycleHeartbeat(qctx, a); err != nil {
			w.log(Event{Queue: ev.Queue, Message: ev.Message, Action: "error", Detail: err.Error()})
		}
	})
	out := w.o.Runner.Launch(ctx, m, l)
	stopHB()
	if !out.OK() && ctx.Err() != nil {
		// The hook still waits: the next worker deploys the instance.
		w.handBack(qctx, q, m, ev, "interrupted ("+out.String()+")")
		return
	}
	result := "CONTINUE"
	if !out.OK() {
		result = "ABANDON"
	}
	if err := w.o.Lifecycle.CompleteLifecycle(qctx, a, result); err != nil {
		if strings.Contains(err.Error(), "No active Lifecycle Action") {
			// Completed already (a duplicate delivery) or timed out: the
			// hook has moved on, nothing is left to do with this message.
			ev.Action, ev.Detail = "deleted", fmt.Sprintf("deploy %s; the lifecycle action is no longer pending (%v)", out, err)
			w.delete(qctx, q, m, ev)
			return
		}
		ev.Action, ev.Detail = "left", fmt.Sprintf("deploy %s, but %v", out, err)
		w.log(ev)
		return
	}
	ev.Action, ev.Detail = "completed", fmt.Sprintf("%s: %s (%s)", a, result, out)
	w.log(ev)
	ev.Action, ev.Detail = "deleted", "lifecycle action completed"
	w.delete(qctx, q, m, ev)
}

// keepHidden extends the message's visibility every Visibility/3 until
// the returned function is called.
func (w *worker) keepHidden(ctx context.Context, q Queue, m awsapi.Message, ev Event) func() {
	return w.every(ctx, w.o.Visibility/3, func() {
		if err := q.SetVisibility(ctx, m.Receipt, w.o.Visibility); err != nil {
			w.log(Event{Queue: ev.Queue, Message: ev.Message, Env: ev.Env, Action: "error", Detail: "keep the message hidden: " + err.Error()})
		}
	})
}

// every calls f every d in the background until the returned function is
// called (which waits for a call in progress).
func (w *worker) every(ctx context.Context, d time.Duration, f func()) func() {
	d = max(d, time.Second)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-stopped }) }
}

func (w *worker) delete(ctx context.Context, q Queue, m awsapi.Message, ev Event) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := q.Delete(ctx, m.Receipt); err != nil {
		ev.Action, ev.Detail = "error", fmt.Sprintf("%s, but the message could not be deleted: %v", ev.Detail, err)
	}
	w.log(ev)
}

// handBack makes the message visible at once, for another worker.
func (w *worker) handBack(ctx context.Context, q Queue, m awsapi.Message, ev Event, why string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ev.Action, ev.Detail = "returned", why+"; the message is visible again"
	if err := q.SetVisibility(ctx, m.Receipt, 0); err != nil {
		ev.Action, ev.Detail = "error", fmt.Sprintf("%s; handing the message back failed (%v): it comes back after its visibility timeout", why, err)
	}
	w.log(ev)
}

func jobSuffix(url string) string {
	if url == "" {
		return ""
	}
	return " (" + url + ")"
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var errNoQueue = errors.New("no queue: pass --queue URL or set FERRY_QUEUE_URL")
