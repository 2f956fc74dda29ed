package tasks

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
)

func init() { Register(statModule{}) }

// statModule reports what a path on the host is, as Ansible's stat does:
// the result's `stat` holds exists, isdir, mode, checksum and the rest,
// for `register` and `when`. It changes nothing, so it also runs in check
// mode. One remote command (GNU stat and coreutils).
type statModule struct{}

func (statModule) Spec() Spec {
	return Spec{
		Name: "stat",
		Doc:  "Report whether a path on the host exists and what it is (type, mode, owner, size, times, checksum), for register and when",
		Params: map[string]Param{
			"path":               {Type: String, Required: true, Doc: "path on the host"},
			"follow":             {Type: Bool, Default: "false", Doc: "describe what a symlink points to, not the link"},
			"get_checksum":       {Type: Bool, Default: "true", Doc: "checksum a regular file"},
			"checksum_algorithm": {Type: String, Default: "sha1", Choices: []string{"sha1", "sha256", "sha512", "md5"}, Doc: "checksum to compute"},
		},
		Returns: map[string]string{
			"stat": "exists; when it does: path, isreg, isdir, islnk, ischr, isblk, isfifo, issock, mode (\"0644\"), uid, gid, pw_name, gr_name, size, mtime, atime, ctime, inode, nlink, dev, lnk_target (links), checksum (readable regular files)",
		},
	}
}

// statFields is what the remote stat prints, in order (%F last: it may
// hold spaces).
const statFormat = `%a|%u|%g|%U|%G|%s|%Y|%X|%Z|%i|%h|%d|%F`

func (statModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("stat", args)
	p := a.String("path", "")
	follow := a.Bool("follow", false)
	sum := a.Bool("get_checksum", true)
	algo := a.String("checksum_algorithm", "sha1")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "p=%s; ", shell.Quote(p))
	b.WriteString(`if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo missing; exit 0; fi; `)
	l := ""
	if follow {
		l = "-L "
	}
	fmt.Fprintf(&b, "stat %s-c %s -- \"$p\" || exit 1; ", l, shell.Quote(statFormat))
	b.WriteString(`if [ -L "$p" ]; then printf 'link:%s\n' "$(readlink -- "$p")"; fi; `)
	if sum {
		reg := `[ -f "$p" ] && [ ! -L "$p" ]` // as lstat sees it
		if follow {
			reg = `[ -f "$p" ]`
		}
		fmt.Fprintf(&b, `if %s && [ -r "$p" ]; then s=$(%ssum < "$p") && printf 'sum:%%s\n' "${s%%%% *}"; fi; `, reg, algo)
	}
	b.WriteString("exit 0")
	res, err := runOn(ctx, h, b.String(), false)
	if err != nil {
		return Outcome{}, fmt.Errorf("stat %s: %w", p, err)
	}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("stat", res)}, nil
	}
	st, err := parseStat(p, string(res.Stdout))
	if err != nil {
		return Outcome{}, fmt.Errorf("stat %s: %w", p, err)
	}
	msg := p + " does not exist"
	if st["exists"] == true {
		msg = fmt.Sprintf("%s: %s, mode %s", p, kindOf(st), st["mode"])
	}
	return Outcome{Msg: msg, Result: map[string]any{"stat": st}}, nil
}

// parseStat reads the remote command's output into Ansible's stat fields.
func parseStat(p, out string) (map[string]any, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "missing" {
		return map[string]any{"exists": false}, nil
	}
	f := strings.SplitN(lines[0], "|", 13)
	if len(f) != 13 {
		return nil, fmt.Errorf("unexpected stat output %q", lines[0])
	}
	num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	mode, err := strconv.ParseUint(f[0], 8, 32)
	if err != nil {
		return nil, fmt.Errorf("unexpected mode %q", f[0])
	}
	kind := f[12]
	st := map[string]any{
		"exists": true, "path": p, "mode": fmt.Sprintf("%04o", mode),
		"uid": num(f[1]), "gid": num(f[2]), "pw_name": f[3], "gr_name": f[4], "size": num(f[5]),
		"mtime": float64(num(f[6])), "atime": float64(num(f[7])), "ctime": float64(num(f[8])),
		"inode": num(f[9]), "nlink": num(f[10]), "dev": num(f[11]),
		"isreg": strings.Contains(kind, "regular"), "isdir": kind == "directory", "islnk": kind == "symbolic link",
		"ischr": kind == "character special file", "isblk": kind == "block special file",
		"isfifo": kind == "fifo", "issock": kind == "socket",
	}
	for _, l := range lines[1:] {
		if v, ok := strings.CutPrefix(l, "link:"); ok {
			st["lnk_target"] = v
			st["lnk_source"] = p
		} else if v, ok := strings.CutPrefix(l, "sum:"); ok {
			st["checksum"] = v
		}
	}
	return st, nil
}

func kindOf(st map[string]any) string {
	for _, k := range []string{"isreg", "isdir", "islnk", "ischr", "isblk", "isfifo", "issock"} {
		if st[k] == true {
			return map[string]string{"isreg": "file", "isdir": "directory", "islnk": "symlink", "ischr": "character device",
				"isblk": "block device", "isfifo": "fifo", "issock": "socket"}[k]
		}
	}
	return "other"
}
