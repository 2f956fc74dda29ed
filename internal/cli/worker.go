package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/environments"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/worker"
	"github.com/ferrydeploy/ferry/output"
	"github.com/ferrydeploy/ferry/playbooks"
)

// EnqueueCmd puts a deploy request on the workers' queue.
type EnqueueCmd struct {
	Playbook string   `arg:"" help:"Playbook, as the worker finds it (a path relative to the worker's working directory)."`
	Env      string   `required:"" env:"FERRY_ENV" placeholder:"NAME" help:"Environment to deploy to (also the message group: one rollout per environment at a time)."`
	Extra    []string `short:"e" name:"extra-vars" sep:"none" placeholder:"KEY=VALUE|@FILE" help:"Extra variables for the run (@FILE is read here and sent inline)."`
	Queue    string   `required:"" env:"FERRY_QUEUE_URL" placeholder:"URL" help:"SQS FIFO queue of the workers."`
	DedupID  string   `name:"dedup-id" env:"FERRY_DEDUP_ID" placeholder:"ID" help:"Deduplication ID (default: derived from the request and the CI job, so a retried CI step does not deploy twice)."`
}

// Run implements the command.
func (c *EnqueueCmd) Run(g *Globals) error {
	extra, err := playbooks.ParseExtraVars(c.Extra)
	if err != nil {
		return err
	}
	if err := c.checkLocal(g); err != nil {
		return err
	}
	r := worker.Request{
		Kind: worker.RequestKind, Playbook: c.Playbook, Environment: c.Env, ExtraVars: extra,
		Who: whoami(g.env), Origin: origin(g.env), JobURL: ciJobURL(g.env.Get), DedupID: c.DedupID, Time: time.Now().UTC(),
	}
	if r.DedupID == "" {
		r.DedupID = dedupID(r)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := awsapi.NewFactory(g.ctx, awsapi.Config{Env: g.env.Lookup})
	if err != nil {
		return err
	}
	q, err := f.Queue(c.Queue)
	if err != nil {
		return diag.Invalidf("--queue: %v", err)
	}
	if err := f.CheckCredentials(g.ctx); err != nil {
		return diag.Invalidf("%v: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where a role provides them (CI: the cloud's OIDC login)", err)
	}
	id, err := q.Send(g.ctx, string(body), c.Env, r.DedupID)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, id)
	return nil
}

// checkLocal refuses, before anything is sent, a request the worker would
// only fail on: in the deploy repository (a ferry.yml here), an
// environment it does not define and a playbook that is not there or does
// not validate. Elsewhere nothing local says what the worker has.
func (c *EnqueueCmd) checkLocal(g *Globals) error {
	cfg, err := g.loadConfig()
	if err != nil || cfg == nil {
		return err
	}
	if _, err := environments.Resolve(g.ctx, cfg, environments.Request{Env: c.Env, Getenv: g.env.Get}); err != nil {
		return err
	}
	// The checkout is the working directory, or the one that holds the
	// ferry.yml given with --config (CI steps often run elsewhere).
	path := c.Playbook
	if _, err := os.Stat(path); err != nil && g.Config != "" && !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(g.Config), c.Playbook)
	}
	if _, err := os.Stat(path); err != nil {
		return diag.Invalidf("playbook %s is not in this checkout: the worker reads it relative to its --playbook-dir, a checkout of the same repository (%v)", c.Playbook, err)
	}
	if _, err := playbooks.Load(path, g.env.List()); err != nil {
		return err
	}
	return nil
}

// dedupID identifies a request for SQS's five-minute deduplication: the
// same CI job asking for the same deploy twice (a retried step) is one
// request; outside CI every enqueue is a new one.
func dedupID(r worker.Request) string {
	extra, _ := json.Marshal(r.ExtraVars) // map keys come out sorted
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", r.Playbook, r.Environment, extra)
	if r.JobURL != "" {
		fmt.Fprint(h, r.JobURL)
	} else {
		var b [16]byte
		_, _ = rand.Read(b[:])
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))[:64]
}

// ciJobURL is the web page of the CI job running ferry, from the CI's
// own variables ("" outside CI).
func ciJobURL(getenv func(string) string) string {
	if getenv("GITHUB_ACTIONS") == "true" && getenv("GITHUB_RUN_ID") != "" {
		server := getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		return fmt.Sprintf("%s/%s/actions/runs/%s", server, getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID"))
	}
	for _, k := range []string{"CI_JOB_URL", "BUILD_URL", "BUILDKITE_BUILD_URL", "CIRCLE_BUILD_URL"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// WorkerCmd consumes deploy requests and launch notifications.
type WorkerCmd struct {
	// The host flags of a run, but no --limit: a request deploys to its whole environment.
	Inventory      inventorySources `short:"i" env:"FERRY_INVENTORY" placeholder:"FILE|DIR" help:"Inventory for requests whose environment ferry.yml does not define."`
	Bastion        string           `env:"FERRY_BASTION" placeholder:"USER@HOST[:PORT][,HOP...]" help:"Jump through these hosts for every host, overriding the inventory and ssh config."`
	Forks          int              `short:"f" env:"FERRY_FORKS" default:"10" help:"Hosts worked on at once, per run."`
	Queue          []string         `required:"" env:"FERRY_QUEUE_URL" sep:"," placeholder:"URL" help:"SQS queue(s) to consume: the FIFO queue of deploy requests, and a standard queue for Auto Scaling lifecycle hooks (hooks cannot notify FIFO queues)."`
	Concurrency    int              `default:"1" env:"FERRY_CONCURRENCY" help:"Messages worked on at once, per queue (rollouts of different environments in parallel)."`
	Visibility     Duration         `default:"2m" env:"FERRY_VISIBILITY" help:"How long a received message stays hidden from other workers; extended every third of it while its run lasts."`
	Heartbeat      Duration         `default:"1m" env:"FERRY_HEARTBEAT" help:"How often a launch's lifecycle action is kept alive while its deploy runs."`
	LaunchPlaybook string           `env:"FERRY_LAUNCH_PLAYBOOK" placeholder:"FILE" help:"Playbook for launched instances when the hook's metadata names none."`
	Output         string           `short:"o" env:"FERRY_OUTPUT" enum:"plain,json" default:"plain" help:"Log format of the worker and its runs: plain or json."`
	RecordDir      string           `env:"FERRY_RECORD_DIR" default:".ferry/runs" placeholder:"DIR" help:"Where run records go."`
	Grace          Duration         `env:"FERRY_GRACE" default:"2m" help:"After SIGTERM: how long the in-flight host may take to finish or roll back."`
	LockWait       Duration         `env:"FERRY_LOCK_WAIT" default:"30m" placeholder:"DURATION" help:"How long a run queues for its environment's deploy lock (held by another worker's run) before it fails."`
	// The allow-list: a message is data from whoever can send to the
	// queue, so it asks only for what the worker's operator allows.
	PlaybookDir string   `name:"playbook-dir" env:"FERRY_PLAYBOOK_DIR" default:"." placeholder:"DIR" help:"Requests name playbooks relative to this directory (no absolute paths, no '..', no symlinks out of it)."`
	AllowEnv    []string `name:"allow-env" env:"FERRY_ALLOW_ENV" sep:"," placeholder:"PATTERN" help:"Environments requests may deploy to (glob patterns, e.g. staging,dev-*; default: any that is not protected). A protected environment only when named exactly."`
	AllowVar    []string `name:"allow-var" env:"FERRY_ALLOW_VAR" sep:";" placeholder:"NAME=REGEX" help:"An -e variable requests may set, with the pattern its value must match whole (version=[A-Za-z0-9][A-Za-z0-9._+-]* is always allowed unless given here). Others are refused."`
}

// protectedEnv reports whether ferry.yml protects env; ferry.yml is read
// again each time, as each run reads it. An unreadable one protects all.
func (g *Globals) protectedEnv(env string) bool {
	cfg, err := g.loadConfig()
	if err != nil || cfg == nil {
		return err != nil
	}
	e, ok := cfg.Environments[env]
	return ok && e.Protected
}

// policy is the worker's allow-list, from its flags.
func (c *WorkerCmd) policy() (*worker.Policy, error) {
	p := &worker.Policy{PlaybookDir: c.PlaybookDir, Envs: c.AllowEnv}
	if len(c.AllowVar) > 0 {
		p.Vars = maps.Clone(worker.DefaultVars) // version, unless overridden
		for _, a := range c.AllowVar {
			name, re, err := worker.ParseAllowVar(a)
			if err != nil {
				return nil, diag.Invalidf("%v", err)
			}
			p.Vars[name] = re
		}
	}
	return p, nil
}

// Run implements the command.
func (c *WorkerCmd) Run(g *Globals) error {
	f, err := awsapi.NewFactory(g.ctx, awsapi.Config{Env: g.env.Lookup})
	if err != nil {
		return err
	}
	queues := map[string]worker.Queue{}
	region := ""
	for _, u := range c.Queue {
		q, err := f.Queue(u)
		if err != nil {
			return diag.Invalidf("--queue: %v", err)
		}
		queues[u], region = q, q.Region
	}
	policy, err := c.policy()
	if err != nil {
		return err
	}
	var mu sync.Mutex
	logw := &lockedWriter{mu: &mu, w: g.stdout}
	r := &cliRunner{c: c, g: g, mu: &mu, policy: policy}
	return worker.Run(g.ctx, worker.Options{
		Queues: queues, Runner: r, Lifecycle: f, Region: region,
		Concurrency: c.Concurrency, Visibility: timeDuration(c.Visibility), Heartbeat: timeDuration(c.Heartbeat),
		Log:       func(e worker.Event) { c.logEvent(logw, e) },
		Policy:    policy,
		Protected: g.protectedEnv,
	})
}

func (c *WorkerCmd) logEvent(w io.Writer, e worker.Event) {
	if c.Output == "json" {
		b, _ := json.Marshal(e)
		w.Write(append(b, '\n'))
		return
	}
	// Messages carry text their sender chose (who, origin, playbook).
	for _, p := range []*string{&e.Message, &e.Env, &e.Detail, &e.Queue} {
		*p = output.SafeText(*p)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s worker %s", e.Time.Format("15:04:05.000"), e.Action)
	if e.Message != "" {
		fmt.Fprintf(&b, " message %s", e.Message)
	}
	if e.Env != "" {
		fmt.Fprintf(&b, " env %s", e.Env)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.Action == "listening" {
		fmt.Fprintf(&b, " on %s", e.Queue)
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}

// lockedWriter writes each call whole, under a lock shared with the runs' output.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// cliRunner runs messages through the same code path as `ferry run`, in
// this process, with the worker's flags.
type cliRunner struct {
	c      *WorkerCmd
	g      *Globals
	mu     *sync.Mutex
	policy *worker.Policy
}

// flags are the worker's flags that a run takes too.
func (r *cliRunner) flags() []string {
	g := r.g
	var a []string
	for i := 0; i < g.Verbose; i++ {
		a = append(a, "-v")
	}
	if g.KnownHostsPolicy != "" {
		a = append(a, "--known-hosts-policy", g.KnownHostsPolicy)
	}
	for _, k := range g.KnownHosts {
		a = append(a, "--known-hosts", k)
	}
	for _, k := range g.PrivateKey {
		a = append(a, "--private-key", k)
	}
	if g.SSHConfig != "" {
		a = append(a, "--ssh-config", g.SSHConfig)
	}
	if g.Config != "" {
		a = append(a, "--config", g.Config)
	}
	a = append(a, "--connect-timeout", time.Duration(g.ConnectTimeout).String())
	return a
}

func (r *cliRunner) runFlags() []string {
	c := r.c
	var a []string
	for _, i := range c.Inventory {
		a = append(a, "-i", i)
	}
	if c.Bastion != "" {
		a = append(a, "--bastion", c.Bastion)
	}
	a = append(a, "--forks", strconv.Itoa(c.Forks), "--record-dir", c.RecordDir,
		"--grace", timeDuration(c.Grace).String(), "--lock-wait", timeDuration(c.LockWait).String(), "--output", c.Output, "--yes", "--report")
	return a
}

// run runs `ferry run ARGS` in this process; its output goes to the
// worker's, whole lines at a time, each prefixed in plain mode.
func (r *cliRunner) run(ctx context.Context, prefix string, args ...string) worker.Outcome {
	if r.c.Output == "json" {
		prefix = ""
	}
	out := newPrefixWriter(r.mu, r.g.stdout, prefix)
	errw := newPrefixWriter(r.mu, r.g.stderr, prefix)
	defer out.Flush()
	defer errw.Flush()
	// The worker's own flags come first: a run's arguments may end with
	// "--" and the playbook.
	argv := append(append(r.flags(), "run"), r.runFlags()...)
	argv = append(argv, args...)
	// The worker's environment, not the process's (they differ in tests).
	code := runEnv(ctx, argv, r.g.env, strings.NewReader(""), out, errw)
	return worker.Outcome{ExitCode: code}
}

func extraJSON(extra map[string]any) string {
	b, _ := json.Marshal(extra)
	return string(b)
}

// Deploy implements worker.Runner.
func (r *cliRunner) Deploy(ctx context.Context, m awsapi.Message, req *worker.Request) worker.Outcome {
	// Values from the message go as --flag=value: none can pass for a flag.
	args := []string{"--env=" + req.Environment, "--requested-by=" + requester(req, m), "--requested-from=" + requestOrigin(req, m.ID)}
	if len(req.ExtraVars) > 0 {
		args = append(args, "--extra-vars="+extraJSON(req.ExtraVars))
	}
	prefix := "[" + req.Environment + "] "
	// A message seen before may have a run that died with its worker
	// (SIGKILL, a lost machine): finish that one from its journal.
	if m.ReceiveCount > 1 {
		if id := r.diedRun(m.ID); id != "" {
			r.say(fmt.Sprintf("%sresuming run %s of message %s from its journal\n", prefix, id, m.ID))
			args = append(args, "--resume="+id)
		}
	}
	return r.run(ctx, prefix, append(args, "--", req.Playbook)...)
}

// requester is who the run's record says asked for it: the sender SQS
// authenticated, and, marked as such, who the message claims to be from.
func requester(req *worker.Request, m awsapi.Message) string {
	return fmt.Sprintf("%s (claims: %s)", worker.Sender(m), output.SafeText(req.Who))
}

// requestOrigin is the run's origin in its record: the worker, the CI job
// that asked (as the message claims), and the message (how diedRun finds
// the run again).
func requestOrigin(req *worker.Request, msgID string) string {
	from := req.JobURL
	if from == "" {
		from = req.Origin
	}
	h, _ := os.Hostname()
	return fmt.Sprintf("ferry worker on %s for claimed %s, message %s", h, output.SafeText(from), msgID)
}

// diedRun returns the ID of the latest run of message msgID in the record
// directory when that run never ended (its worker died); "" otherwise.
// Workers that may take over each other's messages share --record-dir.
func (r *cliRunner) diedRun(msgID string) string {
	files, _ := filepath.Glob(filepath.Join(r.c.RecordDir, "*.jsonl"))
	var latest []events.Event
	for _, f := range files {
		if playbooks.UntrustedRecord(f) != "" {
			continue // not this worker's to resume (--resume would refuse it)
		}
		evs, err := output.ReadRecord(f)
		if err != nil || len(evs) == 0 || evs[0].Kind != events.RunStart || !strings.HasSuffix(evs[0].Origin, ", message "+msgID) {
			continue
		}
		if latest == nil || evs[0].Time.After(latest[0].Time) {
			latest = evs
		}
	}
	if latest == nil {
		return ""
	}
	for _, e := range latest {
		if e.Kind == events.RunEnd {
			return ""
		}
	}
	return latest[0].RunID
}

// requestFlags let a worker's run record who asked for it, not the worker.
type requestFlags struct {
	RequestedBy   string `hidden:"" placeholder:"USER" help:"Who asked for this run (set by ferry worker)."`
	RequestedFrom string `hidden:"" placeholder:"WHERE" help:"Where the request came from (set by ferry worker)."`
}

func (f *requestFlags) requester(env environ) string {
	if f.RequestedBy != "" {
		return f.RequestedBy
	}
	return whoami(env)
}

func (f *requestFlags) requestOrigin(env environ) string {
	if f.RequestedFrom != "" {
		return f.RequestedFrom
	}
	return origin(env)
}
