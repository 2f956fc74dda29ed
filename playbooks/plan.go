// Planning: which hosts each play takes (--limit, --resume), in what order,
// cut into which batches; checked before anything is touched.

package playbooks

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"

	"github.com/ferrydeploy/ferry/inventory"
)

// playPlan is a play resolved against the inventory.
type playPlan struct {
	play    *Play
	hosts   []*inventory.Host
	batches [][]string
	done    []*inventory.Host // --resume: hosts an earlier run finished
	// empty: the play matched no host, which is allowed after a play that
	// changes the inventory (group_by, add_host): it is skipped, as in Ansible.
	empty bool
}

// Plan resolves every play's hosts and batches without connecting, so bad
// patterns and missing approvals fail before anything is touched.
func (r *Runner) plan() ([]playPlan, error) {
	var plans []playPlan
	var limit map[string]bool
	if r.opts.Limit != "" {
		hs, err := r.opts.Inventory.Match(r.opts.Limit)
		if err != nil {
			return nil, err
		}
		limit = map[string]bool{}
		for _, h := range hs {
			limit[h.Name] = true
		}
	}
	dynamic := false // an earlier play changes the inventory
	for _, p := range r.pb.Plays {
		pattern, err := r.hostPattern(p)
		if err != nil {
			return nil, fmt.Errorf("play %q: hosts: %w", p.Name, err)
		}
		hs, err := r.opts.Inventory.Match(pattern)
		var nomatch *inventory.NoMatchError
		if err != nil && dynamic && errors.As(err, &nomatch) {
			// The group may be made by the earlier play: planned again after it.
			plans = append(plans, playPlan{play: p, empty: true})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("play %q: %w", p.Name, err)
		}
		if p.Local {
			for _, h := range hs {
				if !h.Local() {
					return nil, &inputError{fmt.Errorf("play %q: connection: local, but the inventory's %s connects over SSH: set ansible_connection=local on it", p.Name, h.Name)}
				}
			}
		}
		// A play's own group_by/add_host excuse only later plays: a play the
		// limit empties is refused below even when it would add hosts (a
		// first play on localhost that finds the hosts, under -l app1).
		changes := p.ChangesInventory()
		if limit != nil {
			var kept []*inventory.Host
			for _, h := range hs {
				if limit[h.Name] {
					kept = append(kept, h)
				}
			}
			if len(kept) == 0 && dynamic {
				plans = append(plans, playPlan{play: p, empty: true})
				continue
			}
			if len(kept) == 0 {
				hint := ": name one of them in the limit, or run without it"
				if slices.ContainsFunc(hs, r.opts.Inventory.Implicit) {
					hint = fmt.Sprintf(": add localhost to the limit (-l '%s:localhost'), as with Ansible's --limit", r.opts.Limit)
				}
				return nil, &inputError{fmt.Errorf("play %q: --limit %q leaves none of its hosts (%q)%s", p.Name, r.opts.Limit, p.Hosts, hint)}
			}
			hs = kept
		}
		dynamic = dynamic || changes
		byName := map[string]*inventory.Host{}
		names := make([]string, len(hs))
		for i, h := range hs {
			byName[h.Name] = h
			names[i] = h.Name
		}
		names = OrderHosts(names, p.Order, OrderOptions{
			Seed: uint64(r.opts.Now().UnixNano()),
			Zone: func(n string) string {
				z, _ := byName[n].Vars["availability_zone"].(string)
				return z
			},
		})
		names = r.opts.Resume.replan(p, names)
		batches := r.opts.Resume.skipDone(p, Batches(names, p.Serial))
		var done []*inventory.Host
		if r.opts.Resume != nil {
			all := names
			names = nil
			for _, b := range batches {
				names = append(names, b...) // finished hosts are not connected to again
			}
			for _, n := range all {
				if !slices.Contains(names, n) {
					done = append(done, byName[n])
				}
			}
		}
		ordered := make([]*inventory.Host, len(names))
		for i, n := range names {
			ordered[i] = byName[n]
		}
		if r.opts.Approve == nil && !r.opts.Yes && needsApproval(p) {
			return nil, &inputError{fmt.Errorf("play %q waits for approval (pause_after or pause) but nobody can answer: run it in a terminal, or pass --yes to approve in advance", p.Name)}
		}
		plans = append(plans, playPlan{play: p, hosts: ordered, batches: batches, done: done})
	}
	return plans, nil
}

// inputError marks plan errors as invalid input (exit 4).
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }

func (e *inputError) Unwrap() error { return e.err }

// ChangesInventory reports whether a task of p changes the run's inventory
// (Spec.Inventory), so later plays' hosts are known only after it.
func (p *Play) ChangesInventory() bool {
	for _, t := range p.AllTasks() {
		if t.Spec.Inventory {
			return true
		}
	}
	return false
}

func needsApproval(p *Play) bool {
	if len(p.PauseAfter) > 0 {
		return true
	}
	for _, t := range p.HostTasks() {
		if t.Spec.Approval != nil && t.Spec.Approval(t.Args) {
			return true
		}
	}
	return false
}

func (s SerialStep) String() string {
	if s.Percent > 0 {
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(s.Count)
}

// size is the number of hosts this step takes, out of total hosts in the play:
// a percentage is rounded down, and is at least 1.
func (s SerialStep) size(total int) int {
	if s.Percent > 0 {
		n := int(math.Floor(float64(total) * s.Percent / 100))
		return max(n, 1)
	}
	return s.Count
}

// Batches cuts hosts (already in play order) into batches per serial: each
// step takes its size, the last step repeats until no host is left, and the
// last batch may be smaller. An empty serial (or a single 0) is one batch of
// every host. No hosts: no batches.
func Batches(hosts []string, serial []SerialStep) [][]string {
	if len(hosts) == 0 {
		return nil
	}
	steps := make([]SerialStep, 0, len(serial))
	for _, s := range serial {
		if s.Count > 0 || s.Percent > 0 {
			steps = append(steps, s)
		}
	}
	if len(steps) == 0 {
		return [][]string{append([]string(nil), hosts...)}
	}
	var out [][]string
	rest := hosts
	for i := 0; len(rest) > 0; i++ {
		step := steps[min(i, len(steps)-1)]
		n := min(step.size(len(hosts)), len(rest))
		out = append(out, append([]string(nil), rest[:n]...))
		rest = rest[n:]
	}
	return out
}

// OrderOptions are what some orders need.
type OrderOptions struct {
	Seed uint64                   // for OrderShuffle: the same seed gives the same order
	Zone func(host string) string // for OrderByZone: the host's availability zone ("" if unknown)
}

// OrderHosts returns hosts (in inventory order) in the play's order. The
// input is not modified.
func OrderHosts(hosts []string, order Order, opt OrderOptions) []string {
	out := append([]string(nil), hosts...)
	switch order {
	case OrderSorted:
		sort.Strings(out)
	case OrderReverseSorted:
		sort.Sort(sort.Reverse(sort.StringSlice(out)))
	case OrderShuffle:
		r := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	case OrderByZone:
		out = byZone(out, opt.Zone)
	}
	return out
}

// byZone interleaves zones in proportion to their size: the next host comes
// from the zone that, after giving it, has given the smallest share of its
// hosts (ties: the zone that has given fewer, then the zone seen first). Any run of
// consecutive hosts — a batch — then takes from each zone about its share,
// so a batch empties a zone only when the batch is as large as the zone's
// share requires (a zone of one host is emptied by whichever batch takes it).
func byZone(hosts []string, zoneOf func(string) string) []string {
	if zoneOf == nil {
		return hosts
	}
	type zone struct {
		hosts []string
		taken int
	}
	var zones []*zone
	index := map[string]*zone{}
	for _, h := range hosts {
		name := zoneOf(h)
		z := index[name]
		if z == nil {
			z = &zone{}
			index[name] = z
			zones = append(zones, z)
		}
		z.hosts = append(z.hosts, h)
	}
	out := make([]string, 0, len(hosts))
	for len(out) < len(hosts) {
		var best *zone
		for _, z := range zones {
			if z.taken == len(z.hosts) {
				continue
			}
			if best == nil {
				best = z
				continue
			}
			// compare (z.taken+1)/len(z.hosts) with (best.taken+1)/len(best.hosts)
			a := (z.taken + 1) * len(best.hosts)
			b := (best.taken + 1) * len(z.hosts)
			if a < b || (a == b && z.taken < best.taken) {
				best = z
			}
		}
		out = append(out, best.hosts[best.taken])
		best.taken++
	}
	return out
}

// hostPattern is the play's hosts:, rendered when it holds {{ }} with -e
// and the inventory's variables of the group all (as Ansible does).
func (r *Runner) hostPattern(p *Play) (string, error) {
	if p.hostsTmpl == nil {
		return p.Hosts, nil
	}
	var all map[string]any
	if g := r.opts.Inventory.Groups["all"]; g != nil {
		all = g.Vars
	}
	vars := Merge(all, r.opts.Extra)
	vars["extra"] = r.opts.Extra
	return p.RenderHosts(vars)
}
