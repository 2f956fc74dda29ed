package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(releaseModule{}) }

// releaseModule keeps a Capistrano layout:
//
//	path/releases/<version>/   one directory per release
//	path/current -> path/releases/<version>
//	path/.ferry-releases       versions in the order they were activated
//
// Activation order, not names, decides what "previous" means, so a rollback
// goes back to what really ran before, whatever the version strings.
type releaseModule struct{}

func (releaseModule) Spec() Spec {
	return Spec{
		Name: "release",
		Doc:  "Deploy into releases/<version> with a current symlink, keep the last N releases, and roll back to the previously activated one",
		Params: map[string]Param{
			"path":     {Type: String, Required: true, Doc: "base directory (holds releases/ and current)"},
			"src":      {Type: String, Doc: "local file or directory to put in the release"},
			"version":  {Type: String, Doc: "release name (default: a UTC timestamp)"},
			"keep":     {Type: Int, Doc: "releases to keep (default 5); current and previous are never removed"},
			"rollback": {Type: Bool, Doc: "point current back to the previously activated release"},
			"activate": {Type: Bool, Default: "true", Doc: "false: only put the files in releases/<version>, checksums verified (for `stage:`); a later call with the same src and version finds them in place and switches"},
			"mode":     {Type: String, Doc: `mode of the copied files ("0755")`},
			"owner":    {Type: String, Doc: "owner of the copied files"},
			"group":    {Type: String, Doc: "group of the copied files"},
		},
		HostFiles: releaseAttack,
	}
}

const historyFile = ".ferry-releases"

// releaseState is what the probe found under path.
type releaseState struct {
	current  string   // version current points to ("" if none)
	history  []string // activation order, oldest first
	releases []string // directories under releases/
}

func (releaseModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("release", args)
	base := strings.TrimSuffix(a.String("path", ""), "/")
	src := a.String("src", "")
	version := a.String("version", time.Now().UTC().Format("20060102150405"))
	keep := a.Int("keep", 5)
	rollback := a.Bool("rollback", false)
	activateIt := a.Bool("activate", true)
	o := readCopyOpts(a)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if !path.IsAbs(base) {
		return Outcome{}, fmt.Errorf("release: path %q must be absolute", base)
	}
	if keep < 1 {
		return Outcome{}, fmt.Errorf("release: keep must be at least 1")
	}
	if rollback {
		st, err := probeRelease(ctx, h, base)
		if err != nil {
			return Outcome{}, err
		}
		return rollbackRelease(ctx, h, base, st)
	}
	if src == "" {
		return Outcome{}, errors.New("release: src is required (or rollback: true)")
	}
	if err := checkVersion(version); err != nil {
		return Outcome{}, err
	}

	// 1. The release's files, with copy's checks and atomic writes.
	dir := path.Join(base, "releases", version)
	s := src
	if !strings.HasSuffix(s, "/") {
		s += "/" // a directory's contents, a file inside
	}
	plan, err := localPlan(localPath(h, src), s, dir+"/", o)
	if err != nil {
		return Outcome{}, fmt.Errorf("release: %w", err)
	}
	// The layout a stage read on this host in this run, for a switch on
	// the probe's round trip (below); used once.
	staged, _ := h.State[layoutKey(base)].(string)
	delete(h.State, layoutKey(base))
	// The files a stage of this run verified in dir, if any: the probe
	// does not read them again while they are the same files.
	if v, ok := h.State[verifiedKey(dir)].(map[string]string); ok {
		delete(h.State, verifiedKey(dir))
		if activateIt && !h.Check {
			plan.known = v
		}
	}
	var fast *releaseSwitch
	if activateIt {
		// The layout is read on the copy's probe round trip: what the copy
		// may add (releases/<version>) is accounted for below.
		plan.also = releaseProbe(base)
		fast = plan.fastSwitch(h, staged, base, version, keep)
	} else if !h.Check && h.State != nil {
		// Staging reads the layout once releases/<version> is made, at the
		// end of the probe's round trip (no round trip of its own): the
		// activation switches from it in one round trip if it still holds.
		plan.after = `hf_lay=$( ` + releaseProbe(base) + ` ) && printf 'L%s' "$hf_lay"`
		plan.recordIDs = true
	}
	if fast != nil && fast.activate && h.State != nil {
		// The probe's command may switch current. Noted before it runs: if
		// the connection is lost while it runs, its outcome is unknown, and
		// a rollback must still undo a switch that happened (it compares
		// with what the host's current is, so a switch that did not happen
		// is not undone).
		h.State[releaseKey(base)] = version
	}
	copied, err := plan.run(ctx, h)
	if err != nil || copied.Failed {
		if err == nil {
			err = errors.New(copied.Msg)
		}
		return Outcome{Failed: true, Msg: fmt.Sprintf("release %s: %v", version, err), Diff: copied.Diff}, nil
	}
	if !activateIt {
		// Staged: current, the history and older releases stay as they are.
		if lay, ok := bytes.CutPrefix(plan.afterOut, []byte("L")); ok && plan.afterRan && h.State != nil {
			h.State[layoutKey(base)] = string(lay)
		}
		if h.State != nil && len(plan.ids) > 0 {
			known := map[string]string{}
			for _, it := range plan.items {
				if id, ok := plan.ids[it.dest]; ok {
					known[strings.TrimPrefix(it.dest, dir+"/")] = id + " " + it.sum
				}
			}
			h.State[verifiedKey(dir)] = known
		}
		result := map[string]any{"release": dir, "version": version, "current": path.Join(base, "current"), "pruned": []any{}}
		if !copied.Changed {
			return Outcome{Msg: "release " + version + " is staged", Result: result}, nil
		}
		if h.Check {
			return Outcome{Changed: true, Msg: checkMsg("stage release %s: %s", version, copied.Msg), Diff: copied.Diff, Result: result}, nil
		}
		return Outcome{Changed: true, Msg: "release " + version + " staged: " + copied.Msg, Diff: copied.Diff, Result: result}, nil
	}

	// 2. Activate and prune in one command, from the layout as it was read
	// with the copy's probe.
	if plan.alsoCode != 0 {
		return Outcome{}, fmt.Errorf("release: inspect %s: exit %d: %s", base, plan.alsoCode, plan.alsoErr)
	}
	st := parseReleaseState(plan.alsoOut)
	sw := planSwitch(st, base, version, keep)
	activate, history, previous, prune := sw.activate, sw.history, sw.previous, sw.prune

	result := map[string]any{
		"release": dir, "version": version, "previous": previous,
		"current": path.Join(base, "current"), "pruned": toAnyList(prune),
	}
	var changes []string
	if copied.Changed {
		changes = append(changes, copied.Msg)
	}
	if activate {
		changes = append(changes, fmt.Sprintf("current -> %s (was %s)", version, orNone(st.current)))
	}
	for _, p := range prune {
		changes = append(changes, "remove release "+p)
	}
	diff := copied.Diff
	if len(changes) == 0 {
		return Outcome{Msg: "release " + version + " is current", Result: result}, nil
	}
	for _, c := range changes[boolInt(copied.Changed):] {
		diff += c + "\n"
	}
	if h.Check {
		return Outcome{Changed: true, Msg: checkMsg("deploy release %s: %s", version, strings.Join(changes, "; ")), Diff: diff, Result: result}, nil
	}
	if sw.needed(st) {
		switched := false
		if fast != nil && plan.afterRan {
			switch code := string(plan.afterOut); code {
			case "0": // switched on the probe's round trip
				// From the layout the stage read, which the host still had:
				// the same switch as the one just computed (else do that one).
				switched = fast.same(sw)
			case "3": // something changed since the stage: switch now
			default:
				return Outcome{Failed: true, Msg: fmt.Sprintf("switch %s exited with status %s: %s", base, code, plan.afterErr), Result: result}, nil
			}
		}
		if activate && h.State != nil {
			h.State[releaseKey(base)] = version // before the switch: as above
		}
		if !switched {
			if out, ok := switchRelease(ctx, h, base, sw.target, history, prune); !ok {
				out.Result = result
				return out, nil
			}
		}
	}
	return Outcome{Changed: true, Msg: "release " + version + ": " + strings.Join(changes, "; "), Diff: diff, Result: result}, nil
}

// releaseKey is where, in Host.State, release remembers the version this run
// made current under a path (or sent a command that may have, when its
// outcome was lost), so a rollback undoes only that.
func releaseKey(base string) string { return "release.activated:" + base }

func rollbackRelease(ctx context.Context, h *Host, base string, st releaseState) (Outcome, error) {
	// In a play's rollback, go back only if this run switched current: a
	// host that failed before its upload (or was interrupted) still runs
	// the release it ran before, and going back one would downgrade it.
	if h.Rollback && h.State != nil {
		if v, ok := h.State[releaseKey(base)]; !ok || v != st.current {
			return Outcome{Msg: fmt.Sprintf("nothing to undo in %s: this run did not make %s current", base, orNone(st.current)),
				Result: map[string]any{"current": path.Join(base, "current"), "version": st.current}}, nil
		}
		defer delete(h.State, releaseKey(base))
	}
	history := st.history
	if len(history) == 0 && st.current != "" {
		history = []string{st.current}
	}
	// Drop what is current (and anything activated after it), then the
	// newest remaining release that still exists is where we go back to.
	if j := lastIndex(history, st.current); st.current != "" && j >= 0 {
		history = history[:j]
	}
	prev := ""
	for len(history) > 0 {
		v := history[len(history)-1]
		if v != st.current && slices.Contains(st.releases, v) {
			prev = v
			break
		}
		history = history[:len(history)-1]
	}
	result := map[string]any{"current": path.Join(base, "current"), "previous": st.current}
	if prev == "" {
		msg := fmt.Sprintf("nothing to roll back to in %s: ", base)
		if st.current == "" {
			msg += "no release is current"
		} else {
			msg += "release " + st.current + " is the only one activated that still exists"
		}
		return Outcome{Failed: true, Msg: msg, Result: result}, nil
	}
	dir := path.Join(base, "releases", prev)
	result["release"], result["version"] = dir, prev
	change := fmt.Sprintf("current -> %s (was %s)", prev, orNone(st.current))
	if h.Check {
		return Outcome{Changed: true, Msg: checkMsg("roll back: %s", change), Diff: change + "\n", Result: result}, nil
	}
	if out, ok := switchRelease(ctx, h, base, dir, history, nil); !ok {
		out.Result = result
		return out, nil
	}
	return Outcome{Changed: true, Msg: "rolled back: " + change, Diff: change + "\n", Result: result}, nil
}

// releaseSwitch is what activating a release does to the layout.
type releaseSwitch struct {
	activate bool     // current changes
	target   string   // the release directory current then points to ("" when it stays)
	history  []string // the history to write
	previous string   // what ran before
	prune    []string // releases to remove
}

// planSwitch works out the activation of version from the layout st (the
// release's files are in place).
func planSwitch(st releaseState, base, version string, keep int) releaseSwitch {
	history := st.history
	if len(history) == 0 && st.current != "" {
		history = []string{st.current} // a layout ferry did not make: start from what runs
	}
	activate := st.current != version
	if activate && (len(history) == 0 || history[len(history)-1] != version) {
		history = append(history, version)
	}
	releases := st.releases
	if !slices.Contains(releases, version) {
		releases = append(releases, version)
	}
	previous := st.current
	if !activate && len(history) > 1 {
		previous = history[len(history)-2]
	}
	prune := pruneList(releases, history, keep, version, previous)
	history = slices.DeleteFunc(slices.Clone(history), func(v string) bool { return slices.Contains(prune, v) })
	sw := releaseSwitch{activate: activate, history: history, previous: previous, prune: prune}
	if activate {
		sw.target = path.Join(base, "releases", version)
	}
	return sw
}

// needed: the switch changes something on the host.
func (sw releaseSwitch) needed(st releaseState) bool {
	return sw.activate || len(sw.prune) > 0 || !slices.Equal(sw.history, st.history)
}

func (sw *releaseSwitch) same(o releaseSwitch) bool {
	return sw.activate == o.activate && sw.target == o.target && slices.Equal(sw.history, o.history) && slices.Equal(sw.prune, o.prune)
}

// layoutKey is where, in Host.State, a stage keeps the layout under base
// as it read it (the output of releaseProbe).
func layoutKey(base string) string { return "release.layout:" + base }

// verifiedKey is where, in Host.State, a stage leaves what it verified in
// a release's directory (copyPlan.known) for its activation in the run.
func verifiedKey(dir string) string { return "release.verified:" + dir }

// fastSwitch sets p.early, when it can, to activate version on the
// probe's round trip: from the layout a stage of this run read (staged),
// guarded on the host by what the probe has just seen. The switch runs
// only if the layout is still exactly the one staged and every file of
// the release is a regular file with this run's checksum and attributes
// (what the probe needs to find nothing to upload); else it prints 3 and
// the activation goes on as without a stage (probe, then switch). It
// returns the switch it would make, or nil.
func (p *copyPlan) fastSwitch(h *Host, staged, base, version string, keep int) *releaseSwitch {
	if staged == "" || h.Check || !p.isDir || len(p.dirs) != 1 || p.dirs[0] != p.root {
		return nil
	}
	names := p.fewTopFiles() // hashed by name by the probe, into $hf_sums
	if names == nil {
		return nil
	}
	st := parseReleaseState([]byte(staged))
	sw := planSwitch(st, base, version, keep)
	if !sw.needed(st) {
		return nil
	}
	var g strings.Builder
	sums := ""
	for _, it := range p.items {
		sums += " " + it.sum
	}
	fmt.Fprintf(&g, `[ "$hf_ac" = 0 ] && [ "$hf_also" = %s ] && [ "$hf_sums" = %s ]`, shell.Quote(staged), shell.Quote(sums))
	if o := p.opts; o.mode != "" || o.owner != "" || o.group != "" { // mode: all items or none
		// The attributes attrsDiffer compares, of each file (the probe
		// left the shell in the release's directory).
		g.WriteString(` && set -f && set -- $(stat -c '%a %U %u %G %g' --`)
		for _, n := range names {
			g.WriteString(" " + shell.Quote("./"+n))
		}
		fmt.Fprintf(&g, `) && [ $# = %d ]`, 5*len(names))
		for _, it := range p.items {
			if it.mode != "" {
				g.WriteString(` && [ "$1" = ` + shell.Quote(it.mode) + ` ]`)
			}
			if o.owner != "" {
				fmt.Fprintf(&g, ` && { [ "$2" = %s ] || [ "$3" = %[1]s ]; }`, shell.Quote(o.owner))
			}
			if o.group != "" {
				fmt.Fprintf(&g, ` && { [ "$4" = %s ] || [ "$5" = %[1]s ]; }`, shell.Quote(o.group))
			}
			g.WriteString(` && shift 5`)
		}
	}
	p.early = `( ` + g.String() + ` ) || exit 3; ` + switchScript(base, sw.target, sw.history, sw.prune)
	return &sw
}

// switchRelease writes the history, swaps current to target atomically
// (when target is set) and removes pruned releases, in one command.
func switchRelease(ctx context.Context, h *Host, base, target string, history, prune []string) (Outcome, bool) {
	res, err := runOn(ctx, h, hostfs.Script(switchScript(base, target, history, prune)), false)
	if err != nil {
		return Outcome{Failed: true, Msg: fmt.Sprintf("switch %s: %v", base, err)}, false
	}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("switch "+base, res)}, false
	}
	return Outcome{}, true
}

// switchScript is switchRelease's command (hostfs functions at hand).
func switchScript(base, target string, history, prune []string) string {
	// hostfs: base is entered physically; the history file and the link
	// are made in a private directory there and renamed over the old ones;
	// pruned releases are removed relative to the held releases/.
	var b strings.Builder
	fmt.Fprintf(&b, "p=%s; hf_in \"$p\" 0; hf_private current; ", shell.Quote(base))
	b.WriteString(`printf '%s\n'`)
	for _, v := range history {
		b.WriteString(" " + shell.Quote(v))
	}
	b.WriteString(` > ./h || exit 1; `)
	if target != "" {
		fmt.Fprintf(&b, `hf_link %s current; `, shell.Quote(target))
	}
	b.WriteString(`hf_place ./h .ferry-releases; `)
	if len(prune) > 0 {
		b.WriteString(`cd -P /proc/self/fd/8 && hf_at=$p && hf_walk releases 0 || exit 1; `)
		for _, v := range prune {
			fmt.Fprintf(&b, `hf_rmtree %s; `, shell.Quote(v))
		}
	}
	b.WriteString("exit 0")
	return b.String()
}

func probeRelease(ctx context.Context, h *Host, base string) (releaseState, error) {
	res, err := runOn(ctx, h, hostfs.Script(releaseProbe(base)), false)
	if err != nil {
		return releaseState{}, fmt.Errorf("release: inspect %s: %w", base, err)
	}
	if res.ExitCode != 0 {
		return releaseState{}, fmt.Errorf("release: %s", failMsg("inspect "+base, res))
	}
	return parseReleaseState(res.Stdout), nil
}

// releaseProbe prints the layout under base (hostfs functions at hand).
func releaseProbe(base string) string {
	// hostfs: base and releases/ are entered physically (a symlink another
	// user placed is refused), the history is read without following links.
	return `p=` + shell.Quote(base) + `; hf_quiet=1; if hf_in "$p" 2; then ` +
		`c=$(readlink -- current 2>/dev/null) || c=""; printf '%s\n' "current=$c" '--history'; ` +
		`hf_type ` + historyFile + `; if [ $hf_ty != n ]; then x=$(hf_read ` + historyFile + `) || exit 2; printf '%s\n' "${x#E}"; fi; printf '%s\n' '--releases'; ` +
		`if hf_walk releases 2; then for d in */; do [ -d "$d" ] && [ ! -L "${d%/}" ] && printf '%s\n' "${d%/}"; done; fi; ` +
		`else printf '%s\n' current= --history --releases; fi; true`
}

func parseReleaseState(out []byte) releaseState {
	var st releaseState
	section := ""
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "current=") && section == "":
			t := strings.TrimPrefix(l, "current=")
			if t != "" {
				st.current = path.Base(t)
			}
		case l == "--history" || l == "--releases":
			section = l
		case l == "":
		case section == "--history":
			st.history = append(st.history, l)
		case section == "--releases":
			st.releases = append(st.releases, l)
		}
	}
	return st
}

// pruneList returns the releases to delete: all but the keep most recently
// activated, never current nor the one before it. Releases never activated
// (absent from history) count as oldest, in name order.
func pruneList(releases, history []string, keep int, current, previous string) []string {
	rank := map[string]int{}
	for i, v := range history {
		rank[v] = i + 1
	}
	sorted := slices.Clone(releases)
	sort.SliceStable(sorted, func(i, j int) bool {
		ri, rj := rank[sorted[i]], rank[sorted[j]]
		if ri != rj {
			return ri > rj
		}
		return sorted[i] > sorted[j]
	})
	var out []string
	for i, v := range sorted {
		if i < keep || v == current || v == previous {
			continue
		}
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func checkVersion(v string) error {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\n\x00") || strings.HasPrefix(v, ".") {
		return fmt.Errorf("release: version %q cannot name a directory: use letters, digits, '.', '-', '_'", v)
	}
	return nil
}

func lastIndex(s []string, v string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == v {
			return i
		}
	}
	return -1
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func toAnyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// releaseAttack: sample calls for the adversarial lab test (Spec.HostFiles).
func releaseAttack(at FileAttack) []FileCall {
	return []FileCall{{Args: map[string]any{"path": at.Dir + "/rel", "src": at.Local + "/tree", "version": "v9", "keep": 1}, Target: at.Dir + "/rel/releases/v9/app.conf"}}
}
