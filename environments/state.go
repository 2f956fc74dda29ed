package environments

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
)

// Release is what a host records about what it runs, after each
// successful deploy: /var/lib/ferry/<app>.json, root-owned, 0600.
type Release struct {
	App      string         `json:"app"`
	Env      string         `json:"env"`
	Version  string         `json:"version"`
	RunID    string         `json:"run_id"`
	User     string         `json:"user"`
	Origin   string         `json:"origin,omitempty"`
	Playbook string         `json:"playbook,omitempty"`
	Time     time.Time      `json:"time"`
	Extra    map[string]any `json:"extra_vars,omitempty"`
}

const stateDir = "/var/lib/ferry"

// stateMarker starts the payload on stdin: with a become password, sudo
// may leave the password line unread (NOPASSWD), and it must not end up in
// the file.
const stateMarker = "FERRY-STATE-BEGIN"

var unsafeApp = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// AppName is the state file's name for a play: the `app` variable when the
// play sets one, else the playbook's file name without extension.
func AppName(app, playbook string) string {
	if app == "" {
		app = strings.TrimSuffix(filepath.Base(playbook), filepath.Ext(playbook))
	}
	app = strings.Trim(unsafeApp.ReplaceAllString(app, "-"), "-.")
	if app == "" {
		app = "app"
	}
	return app
}

// WriteRelease records rel on the host in one round trip: the file is
// written to a private temporary file next to its destination, then
// renamed over the old one, so readers see the old or the new file, never
// a part. (A run records its hosts' releases with the
// release of its lock instead: Lock.Release.)
func WriteRelease(ctx context.Context, conn Conn, rel Release, become RunOptions) error {
	script, stdin, err := recordScript([]Release{rel})
	if err != nil {
		return err
	}
	ro := become
	ro.Become = true
	ro.Stdin = stdin
	res, err := conn.Run(ctx, script, ro)
	if err != nil {
		return fmt.Errorf("record release: %w", err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("record release in %s: exit %d: %s", stateDir, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

// stateFailed is what the release command prints when the records it
// carries could not be written (the lock is released regardless).
const stateFailed = "FERRY-STATE-ERROR"

// recordScript writes rels (one per app: the last one of an app wins) on
// the host: the script and its stdin, where the records travel (never on
// a command line), one JSON line each after stateMarker. Each file is
// written to a temporary file next to it, then renamed over the old one:
// named by the shell's PID (unique on the host while it runs; the lock
// script does the same) in root's 0700 directory, where no one else can
// plant a name, and 0600 (umask 077).
func recordScript(rels []Release) (string, io.Reader, error) {
	apps, lines, err := recordLines(rels)
	if err != nil {
		return "", nil, err
	}
	// Shell builtins read the records; one process per file (mv):
	// on hundreds of hosts at once, every extra process shows.
	var script, payload strings.Builder
	fmt.Fprintf(&script, `set -e; umask 077
d=%s; [ -d "$d" ] || mkdir -p "$d"
t=; trap '[ -z "$t" ] || rm -f "$t"' EXIT
while IFS= read -r l; do [ "$l" != %s ] || break; done
`, stateDir, stateMarker)
	payload.WriteString("\n" + stateMarker + "\n")
	for i, app := range apps {
		payload.Write(lines[i])
		payload.WriteString("\n")
		fmt.Fprintf(&script, "IFS= read -r r; [ -n \"$r\" ]; t=\"$d/.tmp.$$\"; printf '%%s\\n' \"$r\" >\"$t\"; mv -f \"$t\" \"$d/\"%s.json; t=\n", shell.Quote(app))
	}
	return script.String(), strings.NewReader(payload.String()), nil
}

// recordLines is what rels record: one JSON line per app (named by
// AppName; the last release of an app wins), apps sorted.
func recordLines(rels []Release) (apps []string, lines [][]byte, err error) {
	byApp := map[string]Release{}
	for _, rel := range rels {
		rel.App = AppName(rel.App, "")
		byApp[rel.App] = rel
	}
	apps = slices.Sorted(maps.Keys(byApp))
	for _, app := range apps {
		b, err := json.Marshal(byApp[app])
		if err != nil {
			return nil, nil, err
		}
		lines = append(lines, b)
	}
	return apps, lines, nil
}

// HostState is what one host says in one round trip: its releases and
// the locks on it.
type HostState struct {
	Host     string             `json:"host"`
	Releases map[string]Release `json:"releases"` // by app
	Locks    []LockInfo         `json:"locks,omitempty"`
}

// stateScript prints every release file and lock file of the host:
// "FERRY-STATE <app>" then its JSON line; "FERRY-LOCK <env> <age>" then its line.
// Only builtins run unless there are files to print: on hundreds of hosts
// at once, every extra process shows.
const stateScript = `d=/var/lib/ferry
for f in "$d"/*.json; do [ -f "$f" ] || continue; n=${f##*/}; echo "FERRY-STATE ${n%.json}"; cat "$f"; echo; done
for f in "$d"/locks/*.json; do [ -f "$f" ] || continue; [ -n "${now:-}" ] || now=$(date +%s); n=${f##*/}; echo "FERRY-LOCK ${n%.json} $(( now - $(stat -c %Y "$f") ))"; cat "$f"; echo; done
true`

// StateCommand is the one command ReadState runs (as root), for
// benchmarks that compare it with a plain `cat`.
func StateCommand() string { return stateScript }

// ReadState reads the host's releases and locks in one command.
func ReadState(ctx context.Context, name string, conn Conn, become RunOptions) (HostState, error) {
	ro := become
	ro.Become = true
	ro.Stdin = nil
	res, err := conn.Run(ctx, stateScript, ro)
	if err != nil {
		return HostState{Host: name}, err
	}
	if res.ExitCode != 0 {
		return HostState{Host: name}, fmt.Errorf("%s: read %s: exit %d: %s", name, stateDir, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return ParseState(name, res.Stdout)
}

// ParseState parses stateScript's output.
func ParseState(name string, out []byte) (HostState, error) {
	hs := HostState{Host: name, Releases: map[string]Release{}}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var kind, key string
	var age time.Duration
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "FERRY-STATE":
			kind, key = "state", f[1]
			continue
		case len(f) == 3 && f[0] == "FERRY-LOCK":
			kind, key = "lock", f[1]
			n, _ := strconv.Atoi(f[2])
			age = time.Duration(n) * time.Second
			continue
		case strings.TrimSpace(line) == "":
			continue
		}
		switch kind {
		case "state":
			var r Release
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				return hs, fmt.Errorf("%s: %s/%s.json is not a release record: %v", name, stateDir, key, err)
			}
			if r.App == "" {
				r.App = key
			}
			hs.Releases[key] = r
		case "lock":
			var li LockInfo
			if err := json.Unmarshal([]byte(line), &li); err != nil {
				return hs, fmt.Errorf("%s: lock %s is unreadable: %v", name, key, err)
			}
			li.Age, li.Host, li.Token = age, name, ""
			li.Heartbeat = time.Now().Add(-age).Truncate(time.Second)
			if li.Env == "" {
				li.Env = key
			}
			hs.Locks = append(hs.Locks, li)
		}
		kind = ""
	}
	sort.Slice(hs.Locks, func(i, j int) bool { return hs.Locks[i].Env < hs.Locks[j].Env })
	return hs, nil
}

// Drift compares the hosts' releases of app: the majority version (ties:
// the newest deploy's), and the hosts that run something else or nothing.
func Drift(states []HostState, app string) (majority string, drifted []string) {
	count := map[string]int{}
	newest := map[string]time.Time{}
	for _, s := range states {
		if r, ok := s.Releases[app]; ok {
			count[r.Version]++
			if r.Time.After(newest[r.Version]) {
				newest[r.Version] = r.Time
			}
		}
	}
	best := -1
	for v, n := range count {
		if n > best || (n == best && newest[v].After(newest[majority])) || (n == best && newest[v].Equal(newest[majority]) && v < majority) {
			majority, best = v, n
		}
	}
	for _, s := range states {
		if r, ok := s.Releases[app]; !ok || r.Version != majority {
			drifted = append(drifted, s.Host)
		}
	}
	sort.Strings(drifted)
	return majority, drifted
}
