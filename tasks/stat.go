package tasks

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
)

func init() {
	Register(statModule{})
	Register(waitForConnectionModule{})
}

// statModule reads a path's metadata on the host, as Ansible's stat does:
// register it and test `result.stat.exists`, `.isdir`, `.mode`, `.checksum`.
// It changes nothing (so it also runs under --check).
type statModule struct{}

func (statModule) Spec() Spec {
	return Spec{
		Name:     "stat",
		FreeForm: "path",
		Params: map[string]Param{
			"path":           {Type: String, Required: true, Doc: "path on the host"},
			"follow":         {Type: Bool, Doc: "follow a symlink (default false)"},
			"get_checksum":   {Type: Bool, Doc: "SHA-1 of a regular file as `checksum` (default true)"},
			"get_attributes": {Type: Bool, Doc: "accepted for Ansible; ignored"},
			"get_mime":       {Type: Bool, Doc: "accepted for Ansible; ignored"},
			"checksum_algorithm": {Type: String, Choices: []string{"sha1", "sha256"},
				Doc: "sha1 (Ansible's default) or sha256"},
		},
	}
}

func (statModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("stat", args)
	path := a.String("path", "")
	follow := a.Bool("follow", false)
	sum := a.Bool("get_checksum", true)
	algo := a.Choice("checksum_algorithm", "sha1", "sha1", "sha256")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	flag := ""
	if follow {
		flag = "-L "
	}
	q := shell.Quote(path)
	// One round trip: the stat line, the link target, and the checksum of a regular file.
	cmd := fmt.Sprintf(`if [ -e %[1]s ] || [ -L %[1]s ]; then stat %[2]s-c '%%F|%%s|%%a|%%U|%%G|%%u|%%g|%%Y' -- %[1]s; readlink -- %[1]s || echo; `, q, flag)
	if sum {
		cmd += fmt.Sprintf(`if [ -f %[1]s ] && [ -r %[1]s ]; then %[2]ssum < %[1]s; fi; `, q, algo)
	}
	cmd += "else echo absent; fi"
	res, err := h.Conn.Run(ctx, cmd, h.Become)
	if err != nil {
		return Outcome{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: fmt.Sprintf("stat %s: %s", path, strings.TrimSpace(string(res.Stderr)))}, nil
	}
	lines := strings.Split(strings.TrimRight(string(res.Stdout), "\n"), "\n")
	st := map[string]any{"exists": false, "path": path}
	if len(lines) > 0 && lines[0] != "absent" {
		f := strings.Split(lines[0], "|")
		if len(f) == 8 {
			size, _ := strconv.ParseInt(f[1], 10, 64)
			uid, _ := strconv.Atoi(f[5])
			gid, _ := strconv.Atoi(f[6])
			mtime, _ := strconv.ParseInt(f[7], 10, 64)
			mode := f[2]
			for len(mode) < 4 {
				mode = "0" + mode
			}
			st = map[string]any{"exists": true, "path": path, "size": size, "mode": mode,
				"pw_name": f[3], "gr_name": f[4], "uid": uid, "gid": gid, "mtime": mtime,
				"isdir": f[0] == "directory", "isreg": strings.HasPrefix(f[0], "regular"),
				"islnk": f[0] == "symbolic link"}
			if len(lines) > 1 && lines[1] != "" {
				st["lnk_target"] = lines[1]
			}
			if len(lines) > 2 {
				if s, _, ok := strings.Cut(lines[2], " "); ok || s != "" {
					st["checksum"] = s
				}
			}
		}
	}
	return Outcome{Msg: fmt.Sprintf("%s: exists=%v", path, st["exists"]), Result: map[string]any{"stat": st}}, nil
}

// waitForConnectionModule is Ansible's wait_for_connection: the host answers
// a command over its connection (ferry's preflight already connected it).
type waitForConnectionModule struct{}

func (waitForConnectionModule) Spec() Spec {
	return Spec{
		Name: "wait_for_connection",
		Params: map[string]Param{
			"timeout":         {Type: Duration, Doc: "give up after (default 600s)"},
			"delay":           {Type: Duration, Doc: "accepted for Ansible"},
			"sleep":           {Type: Duration, Doc: "accepted for Ansible"},
			"connect_timeout": {Type: Duration, Doc: "accepted for Ansible"},
		},
	}
}

func (waitForConnectionModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("wait_for_connection", args)
	timeout := a.Duration("timeout", 600_000_000_000)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := h.Conn.Run(ctx, "true", RunOptions{})
	if err != nil || res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: fmt.Sprintf("the host does not answer: %v", err)}, nil
	}
	return Outcome{Msg: "connected"}, nil
}
