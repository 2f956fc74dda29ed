package tasks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

// A copy as root into a directory someone else can write to must not let
// that someone redirect it: temp files live in a private directory (0700,
// created by the SFTP server, whose umask ferry sets to 077), their mode
// and owner are set on the open SFTP handle, the finalize command works
// relative to the private directory after checking it, and only the final
// rename names dest.

// infoEnd ends the part of the probe's output that infoScript prints
// (it comes first).
const infoEnd = "\x01END\x00"

// probeInfo is what the probe learns besides the files: the umask new files
// get, and the numeric ids of the wanted owner and group.
type probeInfo struct {
	umask    string
	uid, gid string
}

// infoScript prints probeInfo (in the probe's round trip).
func (p *copyPlan) infoScript() string {
	var b strings.Builder
	b.WriteString(`printf '\001INFO\0umask=%s\0' "$(umask)"; `)
	if o := p.opts.owner; o != "" && !isNumber(o) {
		fmt.Fprintf(&b, `printf 'uid=%%s\0' "$(id -u -- %s 2>/dev/null)"; `, shell.Quote(o))
	}
	if g := p.opts.group; g != "" && !isNumber(g) {
		fmt.Fprintf(&b, `printf 'gid=%%s\0' "$(getent group -- %s 2>/dev/null | cut -d: -f3)"; `, shell.Quote(g))
	}
	b.WriteString(`printf '\001END\0'; `)
	return b.String()
}

func parseInfo(out []byte) probeInfo {
	var in probeInfo
	for _, rec := range bytes.Split(out, []byte{0}) {
		k, v, _ := strings.Cut(strings.TrimSpace(string(rec)), "=")
		switch k {
		case "umask":
			in.umask = v
		case "uid":
			in.uid = v
		case "gid":
			in.gid = v
		}
	}
	return in
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// copyAttrs are the resolved owner, group and default mode of a copy.
type copyAttrs struct {
	p        *copyPlan
	uid, gid int // -1: not asked for
	umask    os.FileMode
}

func (p *copyPlan) attrs(in probeInfo) (copyAttrs, error) {
	a := copyAttrs{p: p, uid: -1, gid: -1, umask: 0o022}
	if m, err := strconv.ParseUint(in.umask, 8, 32); err == nil {
		a.umask = os.FileMode(m) & 0o777
	}
	id := func(what, name, resolved string) (int, error) {
		if name == "" {
			return -1, nil
		}
		if isNumber(name) {
			resolved = name
		}
		n, err := strconv.ParseUint(resolved, 10, 32)
		if err != nil {
			return -1, fmt.Errorf("%s %q does not exist on the host: create it first or fix the %s", what, name, what)
		}
		return int(n), nil
	}
	var err error
	if a.uid, err = id("owner", p.opts.owner, in.uid); err != nil {
		return a, err
	}
	if a.gid, err = id("group", p.opts.group, in.gid); err != nil {
		return a, err
	}
	return a, nil
}

// set gives the freshly written temp file its final owner and mode, on the
// open handle: as dest had them (when replacing a file and nothing else is
// asked), else as asked, else the umask's default. Owner first: a chown
// clears setuid bits the mode may set.
func (c copyAttrs) set(f *sftp.File, a *copyAction) error {
	uid, gid, explicit := c.uid, c.gid, c.uid >= 0 || c.gid >= 0
	if !explicit && a.rf != nil && a.rf.typ == 'f' && !c.p.opts.private {
		uid, gid = atoiOr(a.rf.uid, -1), atoiOr(a.rf.gid, -1)
	}
	if uid >= 0 || gid >= 0 {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		if fs, ok := st.Sys().(*sftp.FileStat); ok {
			if uid < 0 {
				uid = int(fs.UID)
			}
			if gid < 0 {
				gid = int(fs.GID)
			}
		}
		if err := f.Chown(uid, gid); err != nil && explicit {
			return fmt.Errorf("set owner %s: %w (changing the owner needs become)", ownerText(c.p.opts.owner, c.p.opts.group), err)
		}
		// Keeping a replaced file's owner is best effort, as without root
		// it is not allowed.
	}
	mode := 0o666 &^ c.umask
	switch {
	case a.it.mode != "":
		m, err := strconv.ParseUint(a.it.mode, 8, 32)
		if err != nil {
			return fmt.Errorf("mode %q: %w", a.it.mode, err)
		}
		mode = unixMode(uint32(m))
	case a.rf != nil && a.rf.typ == 'f':
		if m, err := strconv.ParseUint(a.rf.mode, 8, 32); err == nil {
			mode = unixMode(uint32(m))
		}
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

func ownerText(owner, group string) string {
	if group == "" {
		return owner
	}
	return owner + ":" + group
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// unixMode converts octal permission bits (setuid, setgid, sticky
// included) to an os.FileMode the SFTP client encodes back to them.
func unixMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// makePrivateDir creates dir for temp files; it must not exist yet. ferry's
// SFTP servers create it 0700 (umask 077); another server's umask is
// corrected at once, while the directory is still empty.
func makePrivateDir(c *sftp.Client, dir string) error {
	if err := c.Mkdir(dir); err != nil {
		return fmt.Errorf("create temp directory %s: %w", dir, err)
	}
	st, err := c.Lstat(dir)
	if err != nil {
		return fmt.Errorf("create temp directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return errors.New("create temp directory " + dir + ": not a directory any more; check who else can write there")
	}
	if st.Mode().Perm() != 0o700 {
		if err := c.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("create temp directory %s: %w", dir, err)
		}
	}
	return nil
}

// removeRemoteDirs deletes private temp directories, best effort, with a
// fresh bounded context (rm does not follow a symlink put in their place).
func removeRemoteDirs(h *Host, dirs ...string) {
	if len(dirs) == 0 || h.Conn == nil {
		return
	}
	ctx, cancel := cleanupContext()
	defer cancel()
	_, _ = runOn(ctx, h, hostfs.RemoveTrees(dirs...), false)
}
