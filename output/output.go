// Package output turns the run's event stream into what people and machines
// read: plain host-prefixed lines for logs and CI (with GitHub Actions groups
// and annotations), JSON lines for tools, the run record on disk, and the
// masking of secrets that every one of them goes through.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferrydeploy/ferry/events"
)

// Plain renders events as one line each, timestamped and host-prefixed.
type Plain struct {
	mu      sync.Mutex
	w       io.Writer
	verbose int
	github  bool // GITHUB_ACTIONS=true: ::group:: per batch, ::error:: per failed host
	width   int
	inGroup bool
	check   bool // a --check run: each task's message is what it would do
	now     func() time.Time
}

// NewPlain returns a plain renderer; verbose ≥ 1 also prints command output.
func NewPlain(w io.Writer, verbose int, github bool) *Plain {
	return &Plain{w: w, verbose: verbose, github: github, width: 8, now: time.Now}
}

// Emit implements events.Sink.
func (p *Plain) Emit(e events.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	raw := e
	e = safeEvent(e)
	ts := e.Time
	if ts.IsZero() {
		ts = p.now()
	}
	stamp := ts.Format("15:04:05")
	host := func() string { return fmt.Sprintf("%s %-*s | ", stamp, p.width, e.Host) }
	switch e.Kind {
	case events.RunStart:
		p.check = e.Check
		parts := []string{"ferry run " + e.RunID, e.Playbook}
		if e.Env != "" {
			parts = append(parts, "env "+e.Env)
		}
		if e.Version != "" {
			parts = append(parts, "version "+e.Version)
		}
		if e.Check {
			parts = append(parts, "CHECK MODE (nothing changes)")
		}
		fmt.Fprintf(p.w, "%s %s\n", stamp, strings.Join(parts, " · "))
	case events.PlayStart:
		for _, h := range e.Hosts {
			p.width = max(p.width, len(h))
		}
		fmt.Fprintf(p.w, "%s PLAY [%s] %d hosts in %d batches\n", stamp, e.Play, len(e.Hosts), e.Batches)
	case events.Preflight:
		if e.Status != events.StatusOK {
			fmt.Fprintf(p.w, "%sPREFLIGHT %s: %s\n", host(), strings.ToUpper(string(e.Status)), e.Msg)
		} else if p.verbose > 0 {
			fmt.Fprintf(p.w, "%spreflight ok %s\n", host(), e.Msg)
		}
	case events.StageEnd:
		switch e.Status {
		case events.StatusOK:
			fmt.Fprintf(p.w, "%sSTAGED %s\n", host(), e.Version)
		case events.StatusSkipped:
			fmt.Fprintf(p.w, "%sSTAGE SKIPPED: %s\n", host(), e.Msg)
		default:
			fmt.Fprintf(p.w, "%sSTAGE FAILED: %s\n", host(), e.Msg)
		}
	case events.GateStart:
		fmt.Fprintf(p.w, "%s GATE after batch %d (%s): %s\n", stamp, e.Batch, strings.Join(e.Hosts, " "), e.Msg)
	case events.GateCheck:
		if e.Status == events.StatusFailed || p.verbose > 0 {
			fmt.Fprintf(p.w, "%s   gate check %s #%d: %s: %s\n", stamp, e.Task, e.TaskIndex, e.Status, e.Msg)
		}
	case events.GateEnd:
		if e.Status == events.StatusOK {
			fmt.Fprintf(p.w, "%s GATE after batch %d passed: %s\n", stamp, e.Batch, e.Msg)
		} else {
			fmt.Fprintf(p.w, "%s GATE after batch %d %s: %s\n", stamp, e.Batch, strings.ToUpper(string(e.Status)), e.Msg)
			if p.github {
				fmt.Fprintf(p.w, "::error title=verify gate after batch %d::%s\n", e.Batch, ghMessage(safeLine(raw.Msg)))
			}
		}
	case events.BatchStart:
		if p.github {
			if p.inGroup {
				fmt.Fprintln(p.w, "::endgroup::")
			}
			fmt.Fprintf(p.w, "::group::batch %d/%d: %s\n", e.Batch, e.Batches, strings.Join(e.Hosts, " "))
			p.inGroup = true
		}
		fmt.Fprintf(p.w, "%s BATCH %d/%d: %s\n", stamp, e.Batch, e.Batches, strings.Join(e.Hosts, " "))
	case events.TaskStart:
		if p.verbose > 0 {
			fmt.Fprintf(p.w, "%s%s%s ...\n", host(), rb(e), e.Task)
		}
	case events.TaskOutput:
		if p.verbose > 0 {
			fmt.Fprintf(p.w, "%s  %s\n", host(), e.Line)
		}
	case events.TaskEnd:
		line := fmt.Sprintf("%s%s%s: %s", host(), rb(e), e.Task, e.Status)
		if e.Duration > 0 {
			line += fmt.Sprintf(" (%s)", round(e.Duration))
		}
		if e.Msg != "" && (e.Status == events.StatusFailed || p.verbose > 0 || e.Module == "debug" || p.check) {
			line += ": " + e.Msg
		}
		fmt.Fprintln(p.w, line)
		if p.github && e.Status == events.StatusFailed {
			fmt.Fprintf(p.w, "::error title=%s failed on %s::%s\n", ghProperty(safeLine(raw.Task)), ghProperty(safeLine(raw.Host)), ghMessage(safeLine(raw.Msg)))
		}
	case events.HostEnd:
		fmt.Fprintf(p.w, "%sHOST %s", host(), strings.ToUpper(string(e.Status)))
		if e.Duration > 0 {
			fmt.Fprintf(p.w, " (%s)", round(e.Duration))
		}
		if e.Msg != "" {
			fmt.Fprintf(p.w, ": %s", e.Msg)
		}
		fmt.Fprintln(p.w)
	case events.BatchEnd:
		msg := fmt.Sprintf("%s BATCH %d/%d done", stamp, e.Batch, e.Batches)
		if e.Failed > 0 {
			msg += fmt.Sprintf(": %d failed", e.Failed)
		}
		if e.Halted {
			msg += " — HALTING the rollout"
		}
		if e.Msg != "" {
			msg += " (" + e.Msg + ")"
		}
		fmt.Fprintln(p.w, msg)
	case events.PauseWait:
		fmt.Fprintf(p.w, "%s PAUSE: %s\n", stamp, e.Msg)
	case events.PauseEnd:
		fmt.Fprintf(p.w, "%s PAUSE %s\n", stamp, map[bool]string{true: "approved", false: "refused"}[e.Status == events.StatusOK])
	case events.Warning:
		if e.Host != "" {
			fmt.Fprintf(p.w, "%sWARNING: %s\n", host(), e.Msg)
		} else {
			fmt.Fprintf(p.w, "%s WARNING: %s\n", stamp, e.Msg)
		}
		if p.github {
			fmt.Fprintf(p.w, "::warning::%s\n", ghMessage(safeLine(raw.Msg)))
		}
	case events.Lock:
		fmt.Fprintf(p.w, "%s LOCK %s\n", stamp, e.Msg)
	case events.PlayEnd:
	case events.RunEnd:
		if p.inGroup {
			fmt.Fprintln(p.w, "::endgroup::")
			p.inGroup = false
		}
		fmt.Fprint(p.w, Recap(e))
	}
}

// rb marks rollback tasks.
func rb(e events.Event) string {
	if e.Rollback {
		return "ROLLBACK "
	}
	if e.Stage {
		return "STAGE "
	}
	return ""
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Minute:
		return d.Round(time.Second)
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// Recap renders the end-of-run summary, Ansible's PLAY RECAP plus what ferry knows more.
func Recap(e events.Event) string {
	var b strings.Builder
	w := 4
	for _, r := range e.Recap {
		w = max(w, len(r.Host))
	}
	b.WriteString("\nPLAY RECAP\n")
	for _, r := range e.Recap {
		fmt.Fprintf(&b, "%-*s : ok=%-3d changed=%-3d failed=%-3d skipped=%-3d unreachable=%d", w, r.Host, r.OK, r.Changed, r.Failed, r.Skipped, r.Unreachable)
		var notes []string
		if r.RolledBack {
			notes = append(notes, "rolled back")
		}
		switch {
		case r.LeftOut():
			notes = append(notes, "LEFT "+strings.ToUpper(r.Left))
		case r.Drained:
			notes = append(notes, "OUT OF LOAD BALANCER")
		case r.Left != "":
			notes = append(notes, r.Left)
		}
		if r.Untouched {
			notes = append(notes, "untouched")
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, "  (%s)", strings.Join(notes, ", "))
		}
		if r.OutOfService > 0 {
			fmt.Fprintf(&b, "  out of service %s", round(r.OutOfService))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nrun %s: %s (exit %d)\n", e.RunID, strings.ToUpper(string(e.Status)), e.ExitCode)
	if e.Msg != "" {
		fmt.Fprintf(&b, "%s\n", e.Msg)
	}
	if e.Record != "" {
		fmt.Fprintf(&b, "record: %s\n", e.Record)
	}
	return b.String()
}

// JSON writes one JSON object per event, one per line.
type JSON struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSON returns a JSON-lines renderer.
func NewJSON(w io.Writer) *JSON { return &JSON{enc: json.NewEncoder(w)} }

// Emit implements events.Sink.
func (j *JSON) Emit(e events.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e) // a closed stdout must not stop the rollout
}

// Mask replaces secret values in every text field before passing events on.
type Mask struct {
	next    events.Sink
	mu      sync.RWMutex
	secrets []string
	known   map[string]bool // every form in secrets
	added   map[string]bool // values whose forms are in secrets
}

// NewMask wraps next.
func NewMask(next events.Sink) *Mask { return &Mask{next: next, known: map[string]bool{}} }

// Add registers values to hide, in every form they can take (see
// secretForms; values shorter than 3 characters are ignored:
// masking "1" would garble every line). The runner adds a play's secrets
// for every task on every host, so known values cost one map lookup and
// the list Apply walks stays as long as the set of distinct secrets.
func (m *Mask) Add(values ...string) {
	m.mu.RLock()
	var fresh []string
	for _, v := range values {
		if len(v) >= 3 && !m.added[v] {
			fresh = append(fresh, v)
		}
	}
	m.mu.RUnlock()
	if len(fresh) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.known == nil {
		m.known = map[string]bool{}
	}
	if m.added == nil {
		m.added = map[string]bool{}
	}
	for _, v := range fresh {
		m.added[v] = true
		for _, f := range secretForms(v) {
			if len(f) >= 3 && !m.known[f] {
				m.known[f] = true
				m.secrets = append(m.secrets, f)
			}
		}
	}
	// Longest first, so a secret containing another is masked whole.
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
}

// Apply masks s.
func (m *Mask) Apply(s string) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, v := range m.secrets {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "********")
		}
	}
	return s
}

// applyValue masks every text in v, a decoded JSON value, in a copy.
func (m *Mask) applyValue(v any) any {
	switch x := v.(type) {
	case string:
		return m.Apply(x)
	case map[string]any:
		if x == nil {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = m.applyValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.applyValue(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = m.Apply(e)
		}
		return out
	}
	return v
}

// Emit implements events.Sink. Every free-text field is masked, including
// those set from -e or rendered names (Version, Play, the host's task list).
func (m *Mask) Emit(e events.Event) {
	m.mu.RLock()
	none := len(m.secrets) == 0
	m.mu.RUnlock()
	if none {
		m.next.Emit(e)
		return
	}
	e.Msg = m.Apply(e.Msg)
	e.Line = m.Apply(e.Line)
	e.Task = m.Apply(e.Task)
	e.Play = m.Apply(e.Play)
	e.Version = m.Apply(e.Version)
	e.User = m.Apply(e.User)
	e.Origin = m.Apply(e.Origin)
	if e.Undo != nil {
		// An undo's arguments are rendered task arguments: they can hold a secret.
		u := *e.Undo
		u.Args, _ = m.applyValue(u.Args).(map[string]any)
		u.State, _ = m.applyValue(u.State).(map[string]any)
		e.Undo = &u
	}
	if len(e.Extra) > 0 {
		e.Extra, _ = m.applyValue(e.Extra).(map[string]any)
	}
	if len(e.Tasks) > 0 {
		tasks := make([]string, len(e.Tasks))
		for i, t := range e.Tasks {
			tasks[i] = m.Apply(t)
		}
		e.Tasks = tasks // a copy: the slice belongs to the emitter
	}
	m.next.Emit(e)
}
