package playbooks

import (
	"fmt"

	"github.com/ferrydeploy/ferry/events"
)

// LastDeploy returns the run_start of the newest run in the record
// directory dir that deployed env and finished ok (not --check), among the
// runs whose playbook match accepts (nil: any). Only records the invoking
// user owns and only they can write count (see untrustedRecord): an Auto
// Scaling launch deploys what they say, so they must be the worker's own,
// never what a host claims. ok is false when there is none.
func LastDeploy(dir, env string, match func(playbook string) bool) (events.Event, bool, error) {
	if why := untrustedDir(dir); why != "" {
		return events.Event{}, false, fmt.Errorf("refusing the run records in %s: %s", dir, why)
	}
	hs, _, err := heads(dir)
	if err != nil {
		return events.Event{}, false, fmt.Errorf("read run records in %s: %w", dir, err)
	}
	for i := len(hs) - 1; i >= 0; i-- {
		h := hs[i]
		s := h.start
		if h.untrusted != "" || s.Env != env || s.Check || s.Playbook == "" || s.Version == "" || h.end == nil || h.end.Status != events.StatusOK {
			continue
		}
		if match != nil && !match(s.Playbook) {
			continue
		}
		return s, true, nil
	}
	return events.Event{}, false, nil
}
