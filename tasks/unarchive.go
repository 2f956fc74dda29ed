package tasks

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
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

	tmp := path.Join(dest, ".ferry-unarchive-"+randomSuffix())
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

	var b strings.Builder
	fmt.Fprintf(&b, "d=%s; a=%s; t=%s; c=%s; ", q(dest), q(archive), q(tmp), boolDigit(h.Check))
	b.WriteString(`die() { echo "$*" >&2; exit 2; }; `)
	b.WriteString(`[ -d "$d" ] || die "dest $d is not a directory: create it first (file: state=directory)"; `)
	b.WriteString(`[ -f "$a" ] || die "$a does not exist on the host"; `)
	if remote {
		b.WriteString(`mkdir -m 700 -- "$t" || exit 1; `)
	}
	b.WriteString(`trap 'rm -rf -- "$t"' EXIT; mkdir -- "$t/x" || exit 1; `)
	xo := ""
	if len(extra) > 0 {
		xo = " " + shell.Join(extra...)
	}
	fmt.Fprintf(&b, `if [ "$(head -c 2 -- "$a")" = PK ]; then command -v unzip >/dev/null 2>&1 || die "$a is a zip archive and the host has no unzip: install it, or ship a tar"; unzip -q -o%s -- "$a" -d "$t/x" || die "unzip $a failed"; `, xo)
	fmt.Fprintf(&b, `else tar -xf "$a" -C "$t/x"%s || die "tar -xf $a failed (is it an archive?)"; fi; `, xo)
	if owner != "" || group != "" {
		fmt.Fprintf(&b, `chown -R -- %s "$t/x" || exit 1; `, q(ownerText(owner, group)))
	}
	// Compare every entry with dest: type, content, mode (and owner when asked).
	own := ""
	if owner != "" || group != "" {
		own = ` && [ "$(stat -c %u:%g -- "$f")" = "$(stat -c %u:%g -- "$d/$f")" ]`
	}
	b.WriteString(`cd "$t/x" || exit 1; find . -mindepth 1 -print | sed 's|^\./||' > "$t/list"; ch=0; `)
	b.WriteString(`while IFS= read -r f; do same=1; `)
	b.WriteString(`if [ -L "$f" ]; then { [ -L "$d/$f" ] && [ "$(readlink -- "$f")" = "$(readlink -- "$d/$f")" ]; } || same=0; `)
	fmt.Fprintf(&b, `elif [ -d "$f" ]; then { [ -d "$d/$f" ] && [ ! -L "$d/$f" ] && [ "$(stat -c %%a -- "$f")" = "$(stat -c %%a -- "$d/$f")" ]%s; } || same=0; `, own)
	fmt.Fprintf(&b, `else { [ -f "$d/$f" ] && [ ! -L "$d/$f" ] && cmp -s -- "$f" "$d/$f" && [ "$(stat -c %%a -- "$f")" = "$(stat -c %%a -- "$d/$f")" ]%s; } || same=0; fi; `, own)
	b.WriteString(`[ "$same" = 1 ] || { echo "CH $f"; ch=1; }; done < "$t/list"; `)
	b.WriteString(`[ "$ch" = 0 ] && exit 0; [ "$c" = 1 ] && exit 0; `)
	// Directories first (find lists parents before children), then each
	// file or link renamed over its dest.
	b.WriteString(`while IFS= read -r f; do if [ -d "$f" ] && [ ! -L "$f" ]; then `)
	b.WriteString(`if [ -L "$d/$f" ] || { [ -e "$d/$f" ] && [ ! -d "$d/$f" ]; }; then rm -f -- "$d/$f" || exit 1; fi; `)
	b.WriteString(`[ -d "$d/$f" ] || mkdir -- "$d/$f" || exit 1; chmod --reference="$f" -- "$d/$f" || exit 1; `)
	if own != "" {
		b.WriteString(`chown --reference="$f" -- "$d/$f" || exit 1; `)
	}
	b.WriteString(`fi; done < "$t/list"; `)
	b.WriteString(`while IFS= read -r f; do if [ ! -d "$f" ] || [ -L "$f" ]; then `)
	b.WriteString(`if [ -d "$d/$f" ] && [ ! -L "$d/$f" ]; then die "$d/$f is a directory where the archive has a file: remove it first"; fi; `)
	b.WriteString(`mv -f -- "$f" "$d/$f" || exit 1; fi; done < "$t/list"; exit 0`)

	res, err := runOn(ctx, h, b.String(), false)
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
