package tasks

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(deployHelperModule{}) }

// deployHelperModule is Ansible's deploy_helper (community.general): the
// Capistrano layout driven by the playbook. state=present makes path,
// releases/ and shared/ and sets the `deploy_helper` fact (new_release,
// new_release_path, previous_release, ...); the playbook fills the new
// release (marking it with the unfinished file); state=finalize removes
// the mark, points current at it atomically and removes unfinished and old
// releases. Two round trips: a read-only probe, then the change, both
// through tasks/hostfs. ferry's own `release:` does the same in one task.
type deployHelperModule struct{}

func (deployHelperModule) Spec() Spec {
	return Spec{
		Name: "deploy_helper",
		Doc:  "Ansible's deploy_helper: releases/, shared/ and a current symlink driven by the playbook, with the deploy_helper fact",
		Params: map[string]Param{
			"path":                {Type: String, Required: true, Doc: "project root (holds releases/, shared/, current)"},
			"state":               {Type: String, Default: "present", Choices: []string{"present", "finalize", "clean", "absent", "query"}, Doc: "present: make the directories; finalize: switch current to release and clean; clean: remove unfinished and old releases; absent: remove the project; query: only the fact"},
			"release":             {Type: String, Doc: "release name (default for present/query: the host's local time, %Y%m%d%H%M%S); required for finalize"},
			"releases_path":       {Type: String, Default: "releases", Doc: "releases directory, under path"},
			"shared_path":         {Type: String, Default: "shared", Doc: `shared directory, under path ("": none)`},
			"current_path":        {Type: String, Default: "current", Doc: "the symlink to the live release, under path"},
			"unfinished_filename": {Type: String, Default: "DEPLOY_UNFINISHED", Doc: "file that marks a release still being built"},
			"clean":               {Type: Bool, Default: "true", Doc: "finalize also cleans"},
			"keep_releases":       {Type: Int, Default: "5", Doc: "old releases to keep when cleaning, besides the new one and the one current points to"},
		},
		SetsFacts: []string{"deploy_helper"},
		Returns: map[string]string{
			"ansible_facts": "deploy_helper: project_path, current_path, releases_path, shared_path, previous_release, previous_release_path, new_release, new_release_path, unfinished_filename (also set as the host variable deploy_helper)",
		},
		HostFiles: deployHelperAttack,
	}
}

// dhProbe is what the read-only probe found.
type dhProbe struct {
	now      string // the host's local time, %Y%m%d%H%M%S
	base     bool   // path exists
	releases bool   // releases/ exists
	shared   bool   // shared/ exists
	current  string // realpath of current ("" if none)
	tmpLink  bool   // path/<release>.<unfinished> exists
	dirs     []dhRelease
}

type dhRelease struct {
	name       string
	ctime      int64
	unfinished bool
}

func (deployHelperModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("deploy_helper", args)
	base := strings.TrimSuffix(a.String("path", ""), "/")
	state := a.String("state", "present")
	release := a.String("release", "")
	relDir := a.String("releases_path", "releases")
	sharedDir := a.String("shared_path", "shared")
	curName := a.String("current_path", "current")
	unf := a.String("unfinished_filename", "DEPLOY_UNFINISHED")
	clean := a.Bool("clean", true)
	keep := a.Int("keep_releases", 5)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if !path.IsAbs(base) || path.Clean(base) == "/" {
		return Outcome{}, fmt.Errorf("deploy_helper: path %q must be an absolute directory below /", base)
	}
	base = path.Clean(base)
	for k, v := range map[string]string{"releases_path": relDir, "current_path": curName, "unfinished_filename": unf} {
		if err := dhName(k, v); err != nil {
			return Outcome{}, err
		}
	}
	if sharedDir != "" {
		if err := dhName("shared_path", sharedDir); err != nil {
			return Outcome{}, err
		}
	}
	if release != "" {
		if err := dhName("release", release); err != nil {
			return Outcome{}, err
		}
	}
	if state == "finalize" && release == "" {
		return Outcome{}, fmt.Errorf("deploy_helper: release is required for state=finalize (try release: \"{{ deploy_helper.new_release }}\")")
	}
	if (state == "finalize" || state == "clean") && keep < 1 {
		return Outcome{}, fmt.Errorf("deploy_helper: keep_releases should be at least 1")
	}

	pr, err := probeDeploy(ctx, h, base, relDir, sharedDir, curName, unf, release)
	if err != nil {
		return Outcome{}, err
	}
	if release == "" && (state == "present" || state == "query") {
		release = pr.now
	}
	facts := dhFacts(base, relDir, sharedDir, curName, unf, release, pr)
	out := Outcome{Facts: map[string]any{"deploy_helper": facts}, Result: map[string]any{"ansible_facts": map[string]any{"deploy_helper": facts}}}

	var b strings.Builder
	var changes []string
	fmt.Fprintf(&b, "p=%s; ", shell.Quote(base))
	switch state {
	case "query":
		out.Msg = "release " + release + " (current: " + orNone(path.Base(pr.current)) + ")"
		return out, nil
	case "absent":
		out.Facts = map[string]any{"deploy_helper": []any{}}
		out.Result = map[string]any{"ansible_facts": map[string]any{"deploy_helper": []any{}}}
		if !pr.base {
			out.Msg = base + " is absent"
			return out, nil
		}
		changes = append(changes, "remove "+base)
		b.Reset()
		b.WriteString(hostfs.RemoveTrees(base))
	case "present":
		var mk []string
		if !pr.base {
			changes = append(changes, "create "+base)
		}
		if !pr.releases {
			mk = append(mk, relDir)
			changes = append(changes, "create "+path.Join(base, relDir))
		}
		if sharedDir != "" && !pr.shared {
			mk = append(mk, sharedDir)
			changes = append(changes, "create "+path.Join(base, sharedDir))
		}
		b.WriteString(`hf_in "$p" 1; `)
		if len(mk) > 0 {
			b.WriteString("hf_mkdirs " + shell.Join(mk...) + "; ")
		}
	case "finalize", "clean":
		if !pr.base {
			return Outcome{Failed: true, Msg: fmt.Sprintf("deploy_helper: %s does not exist: run state=present first", base)}, nil
		}
		b.WriteString(`hf_in "$p" 0; exec 6< .; `)
		newPath := path.Join(base, relDir, release)
		if state == "finalize" {
			var found *dhRelease
			for i := range pr.dirs {
				if pr.dirs[i].name == release {
					found = &pr.dirs[i]
				}
			}
			if found == nil {
				return Outcome{Failed: true, Msg: fmt.Sprintf("deploy_helper: the symlink target %s doesn't exist: run state=present and fill that release first, or give the release that was filled", newPath)}, nil
			}
			if found.unfinished {
				changes = append(changes, "remove "+path.Join(newPath, unf))
				fmt.Fprintf(&b, `hf_walk %s 0 || exit 1; hf_type %s; [ $hf_ty = d ] || hf_rmtree %[2]s; cd -P /proc/self/fd/6 && hf_at=$p || exit 1; `, shell.Quote(relDir+"/"+release), shell.Quote(unf))
				found.unfinished = false
			}
			if pr.current != newPath {
				changes = append(changes, fmt.Sprintf("%s -> %s (was %s)", curName, newPath, orNone(pr.current)))
				fmt.Fprintf(&b, `hf_private %s; hf_link %s %s; cd -P /proc/self/fd/6 && hf_at=$p && hf_clean || exit 1; `, shell.Quote(curName), shell.Quote(newPath), shell.Quote(curName))
				pr.current = newPath
			}
		}
		if state == "clean" || clean {
			if pr.tmpLink {
				tmp := release + "." + unf
				changes = append(changes, "remove "+path.Join(base, tmp))
				fmt.Fprintf(&b, `hf_type %[1]s; [ $hf_ty = d ] || hf_rmtree %[1]s; `, shell.Quote(tmp))
			}
			rm := dhPrune(pr.dirs, release, path.Base(pr.current), path.Dir(pr.current) == path.Join(base, relDir), keep)
			if len(rm) > 0 {
				fmt.Fprintf(&b, `hf_walk %s 0 || exit 1; `, shell.Quote(relDir))
				for _, r := range rm {
					changes = append(changes, "remove release "+r)
					fmt.Fprintf(&b, "hf_rmtree %s; ", shell.Quote(r))
				}
			}
		}
	}
	if len(changes) == 0 {
		out.Msg = "release " + release + ": nothing to change"
		return out, nil
	}
	out.Changed = true
	out.Diff = strings.Join(changes, "\n") + "\n"
	if h.Check {
		out.Msg = checkMsg("deploy_helper %s: %s", state, strings.Join(changes, "; "))
		return out, nil
	}
	script := b.String()
	if state != "absent" {
		script = hostfs.Script(script + "exit 0")
	}
	res, err := runOn(ctx, h, script, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("deploy_helper %s: %w", state, err)
	}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("deploy_helper "+state, res)}, nil
	}
	out.Msg = "deploy_helper " + state + ": " + strings.Join(changes, "; ")
	return out, nil
}

// dhName: the layout's names are single path components under path.
func dhName(key, v string) error {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\n\x00") {
		return fmt.Errorf("deploy_helper: %s %q: want a name under path (no /)", key, v)
	}
	return nil
}

func dhFacts(base, relDir, sharedDir, curName, unf, release string, pr dhProbe) map[string]any {
	rel := path.Join(base, relDir)
	f := map[string]any{
		"project_path": base, "current_path": path.Join(base, curName), "releases_path": rel,
		"shared_path": nil, "previous_release": nil, "previous_release_path": nil,
		"new_release": release, "new_release_path": "", "unfinished_filename": unf,
	}
	if sharedDir != "" {
		f["shared_path"] = path.Join(base, sharedDir)
	}
	if pr.current != "" {
		f["previous_release"], f["previous_release_path"] = path.Base(pr.current), pr.current
	}
	if release != "" {
		f["new_release_path"] = path.Join(rel, release)
	}
	return f
}

// dhPrune is what cleaning removes, as Ansible's deploy_helper: releases
// still marked unfinished, then all but the keep newest (by ctime) of the
// others. The new release is never removed, nor (unlike Ansible, which
// keeps only the new one) the release current points to.
func dhPrune(dirs []dhRelease, release, current string, currentInReleases bool, keep int) []string {
	var out []string
	var finished []dhRelease
	for _, d := range dirs {
		switch {
		case d.name == release:
		case d.unfinished:
			out = append(out, d.name)
		default:
			finished = append(finished, d)
		}
	}
	sort.SliceStable(finished, func(i, j int) bool {
		if finished[i].ctime != finished[j].ctime {
			return finished[i].ctime > finished[j].ctime
		}
		return finished[i].name > finished[j].name
	})
	for i, d := range finished {
		if i >= keep && !(currentInReleases && d.name == current) {
			out = append(out, d.name)
		}
	}
	sort.Strings(out)
	return out
}

// probeDeploy reads the layout without changing anything: hostfs enters
// path and releases/ physically, and reads current with readlink.
func probeDeploy(ctx context.Context, h *Host, base, relDir, sharedDir, curName, unf, release string) (dhProbe, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `p=%s; hf_quiet=1; printf 'now=%%s\n' "$(date +%%Y%%m%%d%%H%%M%%S)"; if hf_in "$p" 2; then echo base; `, shell.Quote(base))
	fmt.Fprintf(&b, `if [ -L %[1]s ]; then c=$(readlink -f -- %[1]s 2>/dev/null || readlink -- %[1]s); printf 'current=%%s\n' "$c"; fi; `, shell.Quote(curName))
	if sharedDir != "" {
		fmt.Fprintf(&b, `[ -d %[1]s ] && [ ! -L %[1]s ] && echo shared; `, shell.Quote(sharedDir))
	}
	if release != "" {
		fmt.Fprintf(&b, `{ [ -L %[1]s ] || [ -e %[1]s ]; } && echo tmplink; `, shell.Quote(release+"."+unf))
	}
	fmt.Fprintf(&b, `if hf_walk %s 2; then echo releases; for d in */; do d=${d%%/}; case $d in *'
'*) continue;; esac; [ -d "$d" ] && [ ! -L "$d" ] || continue; u=0; [ -e "$d"/%s ] && u=1; printf 'r=%%s %%s %%s\n' "$(stat -c %%Z -- "$d")" "$u" "$d"; done; fi; `, shell.Quote(relDir), shell.Quote(unf))
	b.WriteString("fi; true")
	res, err := runOn(ctx, h, hostfs.Script(b.String()), false)
	if err != nil {
		return dhProbe{}, fmt.Errorf("deploy_helper: inspect %s: %w", base, err)
	}
	if res.ExitCode != 0 {
		return dhProbe{}, fmt.Errorf("deploy_helper: %s", failMsg("inspect "+base, res))
	}
	return parseDeployProbe(string(res.Stdout))
}

func parseDeployProbe(out string) (dhProbe, error) {
	var pr dhProbe
	for _, l := range strings.Split(out, "\n") {
		switch {
		case l == "":
		case strings.HasPrefix(l, "now="):
			pr.now = strings.TrimPrefix(l, "now=")
		case l == "base":
			pr.base = true
		case l == "shared":
			pr.shared = true
		case l == "releases":
			pr.releases = true
		case l == "tmplink":
			pr.tmpLink = true
		case strings.HasPrefix(l, "current="):
			pr.current = strings.TrimPrefix(l, "current=")
		case strings.HasPrefix(l, "r="):
			f := strings.SplitN(strings.TrimPrefix(l, "r="), " ", 3)
			if len(f) != 3 {
				return dhProbe{}, fmt.Errorf("deploy_helper: unexpected probe output %q", l)
			}
			ct, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return dhProbe{}, fmt.Errorf("deploy_helper: unexpected probe output %q", l)
			}
			pr.dirs = append(pr.dirs, dhRelease{name: f[2], ctime: ct, unfinished: f[1] == "1"})
		default:
			return dhProbe{}, fmt.Errorf("deploy_helper: unexpected probe output %q", l)
		}
	}
	if pr.now == "" {
		return dhProbe{}, fmt.Errorf("deploy_helper: the host did not say its time")
	}
	return pr, nil
}

// dhAttackLayout is the attacker's layout for deploy_helper's cleanup: r1
// being finished, r0 and r2 old, r3 unfinished, links to the root-only
// tree inside them and beside them.
func dhAttackLayout(at FileAttack) []string {
	secret := path.Dir(at.Secret)
	return []string{"dh/releases/r1/", "dh/releases/r0/sub/", "dh/releases/r2/", "dh/releases/r3/", "dh/shared/",
		"dh/releases/r1/DEPLOY_UNFINISHED", "dh/releases/r3/DEPLOY_UNFINISHED", "dh/releases/r0/sub/f",
		"dh/releases/r2/link -> " + secret, "dh/releases/r0/link -> " + secret, "dh/r1.DEPLOY_UNFINISHED -> " + secret}
}

// deployHelperAttack: sample calls for the adversarial lab test.
func deployHelperAttack(at FileAttack) []FileCall {
	return []FileCall{
		{Args: map[string]any{"path": at.Dir + "/dh", "state": "present", "release": "r1"}, Target: at.Dir + "/dh/shared/x"},
		// finalize with old, unfinished releases and the temp link for the
		// cleanup to remove (rm -rf as root in the attacker's releases/)
		{Args: map[string]any{"path": at.Dir + "/dh", "state": "finalize", "release": "r1", "keep_releases": 1}, Target: at.Dir + "/dh/releases/r1/DEPLOY_UNFINISHED",
			Layout: dhAttackLayout(at)},
		{Args: map[string]any{"path": at.Dir + "/dh", "state": "clean", "release": "r1", "keep_releases": 1}, Target: at.Dir + "/dh/releases/r0/sub/f",
			Layout: dhAttackLayout(at)},
	}
}
