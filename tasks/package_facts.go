package tasks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

func init() { Register(packageFactsModule{}) }

// packageFactsModule lists the host's installed packages as Ansible's
// package_facts does (ansible_facts.packages), from dpkg, rpm or apk, in one
// command.
type packageFactsModule struct{}

func (packageFactsModule) Spec() Spec {
	return Spec{
		Name: "package_facts", GathersFacts: true,
		Doc: "Gather the host's installed packages (dpkg, rpm or apk) into ansible_facts.packages, in one command",
		Params: map[string]Param{
			"manager":  {Type: List, Default: "auto", Doc: "auto, apt, rpm or apk: which package database to read"},
			"strategy": {Type: String, Default: "first", Choices: []string{"first", "all"}, Doc: "first: only the first manager found; all: every one"},
		},
		Returns: map[string]string{"ansible_facts": "packages: name → list of {name, version, release, epoch, arch, source}"},
	}
}

const packageFactsScript = `for m in $FERRY_PKG_MANAGERS; do case $m in
apt) command -v dpkg-query >/dev/null 2>&1 || continue; echo @@apt; dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n' 2>/dev/null ;;
rpm) command -v rpm >/dev/null 2>&1 || continue; echo @@rpm; rpm -qa --queryformat '%{NAME}\t%{VERSION}\t%{RELEASE}\t%{EPOCH}\t%{ARCH}\n' 2>/dev/null ;;
apk) command -v apk >/dev/null 2>&1 || continue; echo @@apk; apk info -v 2>/dev/null ;;
esac; [ "$FERRY_PKG_ALL" = 1 ] || break; done`

func (packageFactsModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("package_facts", args)
	managers := a.StringList("manager")
	strategy := a.String("strategy", "first")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if h.Conn == nil {
		return Outcome{}, errors.New("package_facts: no connection to the host")
	}
	var list []string
	for _, m := range managers {
		switch m {
		case "auto":
			list = append(list, "apt", "rpm", "apk")
		case "apt", "rpm", "apk":
			list = append(list, m)
		default:
			return Outcome{}, fmt.Errorf("package_facts: manager %q: ferry reads apt (dpkg), rpm and apk", m)
		}
	}
	if len(list) == 0 {
		list = []string{"apt", "rpm", "apk"}
	}
	all := "0"
	if strategy == "all" {
		all = "1"
	}
	ro := RunOptions{Env: map[string]string{"FERRY_PKG_MANAGERS": strings.Join(list, " "), "FERRY_PKG_ALL": all}}
	res, err := h.Conn.Run(ctx, packageFactsScript, ro)
	if err != nil {
		return Outcome{}, fmt.Errorf("package_facts: %w", err)
	}
	pkgs := ParsePackages(string(res.Stdout))
	prev, _ := h.Vars["ansible_facts"].(map[string]any)
	facts := map[string]any{"packages": pkgs}
	return Outcome{Msg: fmt.Sprintf("%d packages", len(pkgs)), Facts: FactVars(prev, facts), Result: map[string]any{"ansible_facts": facts}}, nil
}

// ParsePackages reads the package facts script's output.
func ParsePackages(out string) map[string]any {
	pkgs := map[string]any{}
	add := func(p map[string]any) {
		l, _ := pkgs[p["name"].(string)].([]any)
		pkgs[p["name"].(string)] = append(l, p)
	}
	sec := ""
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "@@"); ok {
			sec = name
			continue
		}
		fs := strings.Split(line, "\t")
		switch {
		case sec == "apt" && len(fs) == 4 && strings.HasPrefix(fs[0], "ii"):
			add(map[string]any{"name": fs[1], "version": fs[2], "arch": fs[3], "category": "", "origin": "", "source": "apt"})
		case sec == "rpm" && len(fs) == 5:
			var epoch any
			if n, err := strconv.Atoi(fs[3]); err == nil {
				epoch = n
			}
			add(map[string]any{"name": fs[0], "version": fs[1], "release": fs[2], "epoch": epoch, "arch": fs[4], "source": "rpm"})
		case sec == "apk" && strings.TrimSpace(line) != "":
			// name-version-rN: the name may hold dashes, the version may not
			parts := strings.Split(strings.TrimSpace(line), "-")
			if len(parts) >= 3 {
				n := strings.Join(parts[:len(parts)-2], "-")
				add(map[string]any{"name": n, "version": parts[len(parts)-2], "release": parts[len(parts)-1], "source": "apk"})
			}
		}
	}
	return pkgs
}
