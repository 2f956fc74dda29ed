package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/output"
)

// HistoryCmd lists past runs from the records.
type HistoryCmd struct {
	RunID     string `arg:"" optional:"" placeholder:"RUN_ID" help:"Show this run in detail."`
	Env       string `env:"FERRY_ENV" placeholder:"NAME" help:"Only runs on this environment."`
	RecordDir string `env:"FERRY_RECORD_DIR" default:".ferry/runs" placeholder:"DIR" help:"Where run records are."`
	Output    string `short:"o" env:"FERRY_HISTORY_OUTPUT" enum:"table,json" default:"table" help:"table or json."`
	Last      int    `short:"n" default:"50" help:"At most this many runs, newest first (0: all)."`
}

// runSummary is one run, as `ferry history` lists it.
type runSummary struct {
	RunID       string        `json:"run_id"`
	Started     time.Time     `json:"started"`
	User        string        `json:"user,omitempty"`
	Origin      string        `json:"origin,omitempty"`
	Env         string        `json:"env,omitempty"`
	Playbook    string        `json:"playbook,omitempty"`
	Version     string        `json:"version,omitempty"`
	Check       bool          `json:"check,omitempty"`
	Outcome     string        `json:"outcome"`   // ok, failed, interrupted, unreachable, locked, unfinished
	ExitCode    *int          `json:"exit_code"` // null for an unfinished run: it ended with no code of its own
	Duration    time.Duration `json:"duration_ns"`
	Hosts       int           `json:"hosts"`
	FailedHosts []string      `json:"failed_hosts,omitempty"`
	Msg         string        `json:"msg,omitempty"`
	Record      string        `json:"record"`
}

// hostDetail is one host of a run in detail.
type hostDetail struct {
	Host     string        `json:"host"`
	Status   string        `json:"status"`
	Batch    int           `json:"batch,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Msg      string        `json:"msg,omitempty"`
	Tasks    []taskDetail  `json:"tasks"`
}

type taskDetail struct {
	Task     string        `json:"task"`
	Status   string        `json:"status"`
	Duration time.Duration `json:"duration_ns"`
	Rollback bool          `json:"rollback,omitempty"`
	Msg      string        `json:"msg,omitempty"`
}

func summarize(path string, evs []events.Event) runSummary {
	s := runSummary{Record: path, Outcome: "unfinished", RunID: strings.TrimSuffix(filepath.Base(path), ".jsonl")}
	for _, e := range evs {
		switch e.Kind {
		case events.RunStart:
			s.RunID, s.Started, s.User, s.Origin, s.Env, s.Playbook, s.Version, s.Check = e.RunID, e.Time, e.User, e.Origin, e.Env, e.Playbook, e.Version, e.Check
			s.Hosts = len(e.Hosts)
		case events.RunEnd:
			code := e.ExitCode
			s.Outcome, s.ExitCode, s.Duration, s.Msg = string(e.Status), &code, e.Duration, e.Msg
			if e.ExitCode == exitcode.Locked {
				s.Outcome = "locked"
			}
			for _, r := range e.Recap {
				if r.Failed > 0 || r.Unreachable > 0 || r.RolledBack {
					s.FailedHosts = append(s.FailedHosts, r.Host)
				}
			}
		}
	}
	if s.Outcome == "unfinished" && len(evs) > 0 {
		s.Duration = evs[len(evs)-1].Time.Sub(s.Started)
	}
	return s
}

func details(evs []events.Event) []hostDetail {
	byHost := map[string]*hostDetail{}
	var order []string
	get := func(h string) *hostDetail {
		d, ok := byHost[h]
		if !ok {
			d = &hostDetail{Host: h, Status: "untouched"}
			byHost[h] = d
			order = append(order, h)
		}
		return d
	}
	for _, e := range evs {
		switch {
		case e.Kind == events.RunStart:
			for _, h := range e.Hosts {
				get(h)
			}
		case e.Host == "":
		case e.Kind == events.Preflight && e.Status != events.StatusOK:
			d := get(e.Host)
			d.Status, d.Msg = string(e.Status), e.Msg
		case e.Kind == events.HostStart:
			d := get(e.Host)
			d.Batch, d.Status = e.Batch, "running"
		case e.Kind == events.TaskEnd:
			d := get(e.Host)
			d.Tasks = append(d.Tasks, taskDetail{Task: e.Task, Status: string(e.Status), Duration: e.Duration, Rollback: e.Rollback, Msg: e.Msg})
		case e.Kind == events.HostEnd:
			d := get(e.Host)
			d.Status, d.Duration, d.Msg = string(e.Status), e.Duration, e.Msg
		}
	}
	out := make([]hostDetail, 0, len(order))
	for _, h := range order {
		out = append(out, *byHost[h])
	}
	return out
}

// loadRuns reads every record in dir, newest first.
func loadRuns(dir string) ([]runSummary, map[string][]events.Event, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, diag.Invalidf("no run records in %s: %v (runs write them there; pass --record-dir DIR)", dir, err)
	}
	var runs []runSummary
	all := map[string][]events.Event{}
	for _, f := range files {
		// A run killed mid-write leaves a truncated last line: keep what was read.
		evs, _ := output.ReadRecord(f)
		s := summarize(f, evs)
		runs = append(runs, s)
		all[s.RunID] = evs
	}
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].Started.Equal(runs[j].Started) {
			return runs[i].Started.After(runs[j].Started)
		}
		return runs[i].RunID > runs[j].RunID
	})
	return runs, all, nil
}

// Run implements the command.
func (c *HistoryCmd) Run(g *Globals) error {
	runs, all, err := loadRuns(c.RecordDir)
	if err != nil {
		return err
	}
	if c.RunID != "" {
		for _, r := range runs {
			if r.RunID == c.RunID || strings.HasPrefix(r.RunID, c.RunID) && c.RunID != "" {
				return c.show(g, r, details(all[r.RunID]))
			}
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.RunID)
		}
		return diag.Invalidf("no run %q in %s; `ferry history` lists them%s", c.RunID, c.RecordDir, suggestSuffix(c.RunID, ids))
	}
	var shown []runSummary
	for _, r := range runs {
		if c.Env != "" && r.Env != c.Env {
			continue
		}
		shown = append(shown, r)
		if c.Last > 0 && len(shown) == c.Last {
			break
		}
	}
	if c.Output == "json" {
		if shown == nil {
			shown = []runSummary{}
		}
		b, _ := json.MarshalIndent(shown, "", "  ")
		fmt.Fprintf(g.stdout, "%s\n", b)
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tWHO\tENV\tPLAYBOOK\tVERSION\tOUTCOME\tDURATION\tFAILED HOSTS")
	for _, r := range shown {
		outcome := r.Outcome
		if r.Check {
			outcome += " (check)"
		}
		// Records hold what requests claimed (who, origin, version): text
		// to show, never to let steer the terminal or the CI log.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safe(r.RunID), r.Started.Local().Format("2006-01-02 15:04:05"), safe(dash(r.User)), safe(dash(r.Env)),
			safe(dash(filepath.Base(r.Playbook))), safe(dash(r.Version)), outcome, r.Duration.Round(100*time.Millisecond), safe(dash(strings.Join(r.FailedHosts, ","))))
	}
	return tw.Flush()
}

func (c *HistoryCmd) show(g *Globals, r runSummary, hosts []hostDetail) error {
	if c.Output == "json" {
		b, _ := json.MarshalIndent(struct {
			runSummary
			HostDetails []hostDetail `json:"host_details"`
		}{r, hosts}, "", "  ")
		fmt.Fprintf(g.stdout, "%s\n", b)
		return nil
	}
	w := g.stdout
	fmt.Fprintf(w, "run %s · %s · env %s · version %s\n", safe(r.RunID), safe(r.Playbook), safe(dash(r.Env)), safe(dash(r.Version)))
	fmt.Fprintf(w, "by %s from %s, started %s, %s\n", safe(dash(r.User)), safe(dash(r.Origin)), r.Started.Local().Format("2006-01-02 15:04:05"), r.Duration.Round(100*time.Millisecond))
	if r.Outcome == "unfinished" {
		// No run_end: the process was killed (or still runs); it exited with no code of its own.
		fmt.Fprint(w, "outcome: unfinished (the record has no end: the run was killed, or is still running; `ferry status` shows what it left)")
	} else {
		fmt.Fprintf(w, "outcome: %s (exit %d)", r.Outcome, *r.ExitCode)
	}
	if r.Msg != "" {
		fmt.Fprintf(w, ": %s", safe(r.Msg))
	}
	fmt.Fprintf(w, "\nrecord: %s\n", r.Record)
	for _, h := range hosts {
		fmt.Fprintf(w, "\n%s: %s", safe(h.Host), h.Status)
		if h.Batch > 0 {
			fmt.Fprintf(w, " (batch %d, %s)", h.Batch, h.Duration.Round(10*time.Millisecond))
		}
		if h.Msg != "" {
			fmt.Fprintf(w, " — %s", safe(h.Msg))
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, t := range h.Tasks {
			name := t.Task
			if t.Rollback {
				name = "rollback: " + name
			}
			msg := ""
			if t.Status == string(events.StatusFailed) && t.Msg != "" {
				msg = firstLine(t.Msg)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", safe(name), t.Status, t.Duration.Round(time.Millisecond), safe(msg))
		}
		tw.Flush()
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func suggestSuffix(word string, candidates []string) string {
	if h := diag.Suggest(word, candidates); h != "" {
		return "; " + h
	}
	return ""
}

// safe shows text from a record (or a host) on one line of output.
func safe(s string) string { return output.SafeText(s) }
