package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
	runreport "github.com/ferrydeploy/ferry/report"
)

// ReportCmd renders a run record as one HTML page.
type ReportCmd struct {
	RunID     string `arg:"" placeholder:"RUN_ID|RECORD" help:"A run ID (or a unique prefix) from --record-dir, or the path of a record (.jsonl)."`
	RecordDir string `env:"FERRY_RECORD_DIR" default:".ferry/runs" placeholder:"DIR" help:"Where run records are."`
	Out       string `short:"O" placeholder:"FILE" help:"Write the page here (default: RUN_ID.html next to the record)."`
	Open      bool   `help:"Open the page (xdg-open when present; else print its path)."`
}

// Run implements the command.
func (c *ReportCmd) Run(g *Globals) error {
	record, err := c.record()
	if err != nil {
		return err
	}
	dest := c.Out
	if dest == "" {
		dest = runreport.PathFor(record)
	}
	if err := runreport.WriteFile(record, dest); err != nil {
		return err
	}
	if c.Open {
		if opener := g.env.lookPath("xdg-open"); opener != "" {
			// The browser may outlive ferry: start it and leave.
			cmd := exec.Command(opener, dest)
			cmd.Env = g.env.List()
			if err := cmd.Start(); err == nil {
				go cmd.Wait()
				fmt.Fprintf(g.stdout, "opened %s\n", dest)
				return nil
			}
		}
	}
	fmt.Fprintln(g.stdout, dest)
	return nil
}

// record finds the record c.RunID names.
func (c *ReportCmd) record() (string, error) {
	if strings.HasSuffix(c.RunID, ".jsonl") || strings.ContainsRune(c.RunID, os.PathSeparator) {
		if _, err := os.Stat(c.RunID); err != nil {
			return "", diag.Invalidf("no run record %s: %v", c.RunID, err)
		}
		return c.RunID, nil
	}
	files, _ := filepath.Glob(filepath.Join(c.RecordDir, "*.jsonl"))
	var ids, match []string
	for _, f := range files {
		id := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		ids = append(ids, id)
		if id == c.RunID {
			return f, nil
		}
		if c.RunID != "" && strings.HasPrefix(id, c.RunID) {
			match = append(match, f)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return "", diag.Invalidf("no run %q in %s; `ferry history` lists them%s", c.RunID, c.RecordDir, suggestSuffix(c.RunID, ids))
	}
	sort.Strings(match)
	return "", diag.Invalidf("run ID prefix %q matches %d runs in %s; give more of it", c.RunID, len(match), c.RecordDir)
}
