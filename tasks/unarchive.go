package tasks

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(unarchiveModule{}) }

// unarchiveModule unpacks a tar (any compression the host's tar knows) or
// zip archive into a directory on the host, as Ansible's unarchive does.
// The archive (uploaded from the controller unless remote_src) is unpacked
// into a private temp directory inside dest and compared file by file with
// what is there; only then, and only if something differs, each entry is
// renamed into place, so a file is never seen half written and a rerun
// changes nothing.
type unarchiveModule struct{}

func (unarchiveModule) Spec() Spec {
	return Spec{
		Name: "unarchive",
		Doc:  "Unpack a tar or zip archive (from the controller, or already on the host with remote_src) into a directory on the host, changing only what differs",
		Params: map[string]Param{
			"src":        {Type: String, Required: true, Doc: "the archive: a controller path (relative to the playbook), or a path on the host with remote_src"},
			"dest":       {Type: String, Required: true, Doc: "existing directory on the host (absolute path)"},
			"remote_src": {Type: Bool, Default: "false", Doc: "src is already on the host (download it first with get_url)"},
			"creates":    {Type: String, Doc: "a path on the host: when it exists, nothing is done"},
			"owner":      {Type: String, Doc: "owner name or uid of everything unpacked"},
			"group":      {Type: String, Doc: "group name or gid of everything unpacked"},
			"extra_opts": {Type: List, Doc: "more options for tar (or unzip), e.g. [--strip-components=1]"},
		},
		HostFiles: unarchiveAttack,
		Returns: map[string]string{
			"dest":  "the directory",
			"files": "the paths (relative to dest) that were, or in check mode would be, added or replaced",
		},
	}
}

func (unarchiveModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("unarchive", args)
	src, dest := a.String("src", ""), a.String("dest", "")
	remote := a.Bool("remote_src", false)
	creates := a.String("creates", "")
	owner, group := a.String("owner", ""), a.String("group", "")
	extra := a.StringList("extra_opts")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if src == "" {
		return Outcome{}, fmt.Errorf("unarchive: src is required")
	}
	if !path.IsAbs(dest) {
		return Outcome{}, fmt.Errorf("unarchive: dest %q must be an absolute path", dest)
	}
	if strings.Contains(src, "://") {
		return Outcome{}, fmt.Errorf("unarchive: src %q is a URL: download it with get_url first, then unarchive it with remote_src: true", src)
	}
	if h.Conn == nil {
		return Outcome{}, fmt.Errorf("unarchive: no connection to the host")
	}
	dest = path.Clean(dest)
	result := map[string]any{"dest": dest, "src": src}
	q := shell.Quote
	if creates != "" {
		res, err := runOn(ctx, h, "[ -e "+q(creates)+" ]", false)
		if err != nil {
			return Outcome{}, fmt.Errorf("unarchive: %w", err)
		}
		if res.ExitCode == 0 {
			return Outcome{Msg: creates + " exists", Result: result}, nil
		}
	}

	// An uploaded archive waits in a private directory under /tmp, which
	// only root owns (sticky): SFTP writes there by path, so never inside
	// dest, whose owner could redirect the path.
	tmp := "/tmp/.ferry-unarchive-" + randomSuffix()
	archive := src
	if !remote {
		local := localPath(h, src)
		f, err := os.Open(local)
		if err != nil {
			return Outcome{}, fmt.Errorf("unarchive: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return Outcome{}, fmt.Errorf("unarchive: %s is not a file", local)
		}
		client, err := h.Conn.SFTP(ctx, sftpUser(h))
		if err != nil {
			return Outcome{}, fmt.Errorf("unarchive: %w", err)
		}
		if _, err := client.Stat(dest); err != nil {
			return Outcome{Failed: true, Msg: fmt.Sprintf("dest %s: %v: create the directory first (file: state=directory)", dest, err), Result: result}, nil
		}
		if err := makePrivateDir(client, tmp); err != nil {
			return Outcome{Failed: true, Msg: "unarchive: " + err.Error(), Result: result}, nil
		}
		defer removeRemoteDirs(h, tmp)
		archive = tmp + "/archive"
		if err := putFile(ctx, client, f, st.Size(), archive, 0o600, nil); err != nil {
			return Outcome{Failed: true, Msg: fmt.Sprintf("unarchive: upload %s: %v", src, err), Result: result}, nil
		}
	}

	// hostfs does the work: the archive is opened (never through a link
	// another user placed), unpacked in a private directory inside dest
	// with no owner or permission from the archive and no setuid/setgid,
	// then each entry that differs is installed relative to held
	// directories of dest.
	var b strings.Builder
	fmt.Fprintf(&b, "d=%s; a=%s; c=%s; hf_dest=$d; ", q(dest), q(archive), boolDigit(h.Check))
	b.WriteString(`die() { echo "$*" >&2; exit 2; }; `)
	if remote {
		b.WriteString(`hf_at_file "$a" 2 follow || die "$a does not exist on the host"; hf_open "$hf_b" && [ $hf_ty = f ] || die "$a is not a file on the host"; `)
		// A new file whose content came from a root-only archive stays private.
		b.WriteString(`[ $(( 0$(stat -L -c %a /proc/self/fd/3) & 04 )) != 0 ] || umask 077; `)
		b.WriteString(`hf_in "$d" 2 || die "dest $d is not a directory: create it first (file: state=directory)"; `)
	} else {
		fmt.Fprintf(&b, `up=%s; hf_in "$up" 0; [ "$(stat -c %%u:%%a .)" = "$hf_uid:700" ] || die "the temp directory $up is not private any more"; `, q(tmp))
		b.WriteString(`hf_open archive && [ $hf_ty = f ] || die "the uploaded archive is gone"; cd .. && hf_rmtree "${up##*/}"; `)
		b.WriteString(`hf_in "$d" 2 || die "dest $d is not a directory: create it first (file: state=directory)"; `)
	}
	b.WriteString(`hf_private unarchive; `)
	own := "''"
	if owner != "" || group != "" {
		own = q(ownerText(owner, group))
	}
	fmt.Fprintf(&b, `hf_unpack "$a" %s%s; `, own, func() string {
		if len(extra) == 0 {
			return ""
		}
		return " " + shell.Join(extra...)
	}())
	mode := "1"
	if h.Check {
		mode = "2"
	}
	fmt.Fprintf(&b, `hf_sync %s %s < ../list; exit 0`, mode, own)
	script := hostfs.Script(b.String())
	res, err := runOn(ctx, h, script, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("unarchive %s: %w", src, err)
	}
	var files []string
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if f, ok := strings.CutPrefix(l, "CH "); ok {
			files = append(files, f)
		}
	}
	result["files"] = toAnyList(files)
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("unarchive", res), Result: result}, nil
	}
	if len(files) == 0 {
		return Outcome{Msg: "unchanged: " + dest, Result: result}, nil
	}
	var diff strings.Builder
	for i, f := range files {
		if i == 50 {
			fmt.Fprintf(&diff, "... and %d more\n", len(files)-i)
			break
		}
		diff.WriteString("+ " + path.Join(dest, f) + "\n")
	}
	if h.Check {
		return Outcome{Changed: true, Msg: checkMsg("unpack %d entries of %s into %s", len(files), src, dest), Diff: diff.String(), Result: result}, nil
	}
	return Outcome{Changed: true, Msg: fmt.Sprintf("unpacked %d entries of %s into %s", len(files), src, dest), Diff: diff.String(), Result: result}, nil
}

// unarchiveAttack: sample calls for the adversarial lab test (Spec.HostFiles).
func unarchiveAttack(at FileAttack) []FileCall {
	return []FileCall{
		{Args: map[string]any{"src": at.Local + "/archive.tar", "dest": at.Dir + "/www"}, Target: at.Dir + "/www/static/app.conf"},
		{Args: map[string]any{"src": at.Evil, "dest": at.Dir + "/www"}, Target: at.Dir + "/www/static/app.conf"},
		{Args: map[string]any{"src": at.Modes, "dest": at.Dir + "/www"}, Target: at.Dir + "/www/static/app.conf"},
		{Args: map[string]any{"src": at.Local + "/dotdot.tar", "dest": at.Dir + "/www"}, Target: at.Dir + "/www/static/app.conf"},
	}
}
