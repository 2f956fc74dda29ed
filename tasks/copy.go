package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() {
	Register(copyModule{})
	Register(templateModule{})
}

// copyParams are shared by copy, template and release.
var copyParams = map[string]Param{
	"dest":   {Type: String, Required: true, Doc: "path on the host; a trailing / (or an existing directory) means inside it"},
	"mode":   {Type: String, Doc: `octal mode, quoted ("0644"), or "preserve" to keep the local file's`},
	"owner":  {Type: String, Doc: "owner name or uid (needs become)"},
	"group":  {Type: String, Doc: "group name or gid"},
	"backup": {Type: Bool, Doc: "keep the replaced file as dest.<timestamp>~"},
	"force":  {Type: Bool, Doc: "replace a file whose content differs (default true); false only creates missing files"},
}

type copyModule struct{}

func (copyModule) Spec() Spec {
	return Spec{
		Name: "copy",
		Doc:  "Copy a local file or directory, or inline content, to the host: atomic replacement, skipped when the SHA-256 matches",
		Params: withParams(copyParams, map[string]Param{
			"src":        {Type: String, Doc: "local file or directory (a trailing / copies the directory's contents)"},
			"content":    {Type: String, Doc: "literal content for dest, instead of src"},
			"validate":   validateParam,
			"remote_src": {Type: Bool, Doc: "src is a file on the host: read there (not through a link another user owns), then written as content is; one file, up to 64 MiB"},
		}),
		OneOf:     [][]string{{"src", "content"}},
		HostFiles: copyAttack,
	}
}

func (copyModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("copy", args)
	o := readCopyOpts(a)
	src, dest := a.String("src", ""), a.String("dest", "")
	var content []byte
	hasContent := a.Has("content")
	if hasContent {
		content = []byte(a.String("content", ""))
	}
	remote := a.Bool("remote_src", false)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if hasContent == (src != "") {
		return Outcome{}, errors.New("copy: give exactly one of src or content")
	}
	if remote {
		if o.mode == "preserve" {
			return Outcome{}, errors.New("copy: mode preserve is not taken with remote_src: give the mode")
		}
		if strings.HasSuffix(dest, "/") {
			dest += path.Base(src)
		}
		b, srcMode, out, err := readHostFile(ctx, h, src)
		if err != nil || out.Failed {
			return out, err
		}
		content, hasContent = b, true
		if srcMode&0o004 == 0 {
			// A source not everyone may read stays private: with no mode
			// given, 0600, and dest's owner (perhaps the user who owns the
			// directory, who made dest first) is not kept.
			o.private = true
			if o.mode == "" {
				o.mode = "0600"
			}
		}
	}
	var plan *copyPlan
	var err error
	if hasContent {
		plan, err = contentPlan(content, dest, o)
	} else {
		plan, err = localPlan(localPath(h, src), src, dest, o)
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("copy: %w", err)
	}
	return plan.run(ctx, h)
}

type templateModule struct{}

func (templateModule) Spec() Spec {
	return Spec{
		Name:    "template",
		Doc:     "Render a local template with the task's variables and copy the result to the host (as copy does)",
		RoleDir: "templates",
		Params: withParams(copyParams, map[string]Param{
			"src":      {Type: String, Required: true, Doc: "local template file, rendered with the task's variables"},
			"validate": validateParam,
		}),
		HostFiles: templateAttack,
	}
}

func (templateModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("template", args)
	o := readCopyOpts(a)
	src, dest := a.String("src", ""), a.String("dest", "")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if h.Render == nil {
		return Outcome{}, errors.New("template: no renderer for this task")
	}
	local := localPath(h, src)
	text, err := os.ReadFile(local)
	if err != nil {
		return Outcome{}, fmt.Errorf("template: %w", err)
	}
	out, err := h.Render(string(text))
	if err != nil {
		return Outcome{}, fmt.Errorf("template %s: %w", src, err)
	}
	if strings.HasSuffix(dest, "/") {
		dest += strings.TrimSuffix(filepath.Base(local), ".tmpl")
	}
	if o.mode == "preserve" {
		st, _ := os.Stat(local)
		o.mode = fmt.Sprintf("%o", st.Mode().Perm())
	}
	plan, err := contentPlan([]byte(out), dest, o)
	if err != nil {
		return Outcome{}, fmt.Errorf("template: %w", err)
	}
	return plan.run(ctx, h)
}

type copyOpts struct {
	mode, owner, group string // mode: octal digits, "preserve" or ""
	backup, force      bool
	private            bool   // content from a source not everyone may read: never keep dest's owner
	validate           string // command run on the new file (%s: its path) before it replaces dest
}

// validateParam checks a new file before it replaces dest (copy, template, lineinfile).
var validateParam = Param{Type: String, Doc: "command that must succeed on the new file before it replaces dest; %s is the file's path (e.g. visudo -cf %s)"}

func readCopyOpts(a *Args) copyOpts {
	o := copyOpts{owner: a.String("owner", ""), group: a.String("group", ""), backup: a.Bool("backup", false), force: a.Bool("force", true),
		validate: a.String("validate", "")}
	if o.validate != "" && !strings.Contains(o.validate, "%s") {
		a.fail("validate", "must contain %%s where the new file's path goes, e.g. visudo -cf %%s")
	}
	if s, ok := a.Raw("mode").(string); ok && s == "preserve" {
		o.mode = "preserve"
	} else {
		o.mode = a.Mode("mode")
	}
	return o
}

// copyItem is one file to put on the host.
type copyItem struct {
	local   string // controller path, or "" for content
	content []byte
	size    int64
	sum     string // hex SHA-256 of what should land
	dest    string // remote path
	mode    string // wanted octal mode, "" to keep dest's (or the umask's for a new file)
	// altDest is dest/<name>, used instead of dest when dest turns out to be
	// an existing directory (copy: src=file dest=/etc/app).
	altDest string
}

// copyPlan is a whole copy: files, the directories they need, the options.
type copyPlan struct {
	items []*copyItem
	dirs  []string // remote directories that must exist (created with mkdir -p)
	root  string   // what Result reports as dest
	isDir bool     // src was a directory
	opts  copyOpts
	// also is a read-only script (hostfs functions at hand) that rides on
	// the probe's round trip, in a subshell of its own: release reads the
	// layout it is about to switch there. Its output and exit status land
	// in alsoOut and alsoCode.
	also     string
	alsoOut  []byte
	alsoCode int
	alsoErr  string // the probe's last line of stderr, when also failed
	// after is a script (hostfs functions at hand) that rides on the end
	// of the probe's round trip when not in check mode, once the probe
	// made the copy's root: a stage reads the release layout there. Its
	// output lands in afterOut (afterRan: it ran).
	after string
	// early rides on the probe's round trip too, when not in check mode,
	// but in the copy's root right after the probe listed and hashed it,
	// before it makes anything; unless it exits 3 the round trip ends there
	// (release switches current when all is in place). It finds also's
	// output in $hf_also and its status in $hf_ac, and, for a few top
	// files, their SHA-256 in $hf_sums (" SUM" per file found, in order).
	// Its exit status lands in afterOut (afterRan: it ran).
	early    string
	afterOut []byte
	afterRan bool
	afterErr string // the round trip's last line of stderr
	// recordIDs (a release's stage): the finalize prints what each file it
	// placed is (fileID), into ids by dest, once it has verified its
	// checksum.
	recordIDs bool
	ids       map[string]string
	// known: files of the tree a stage of this run verified, by name under
	// root: "ID SUM". The probe takes SUM for a file that is still ID
	// instead of hashing it again.
	known map[string]string
}

// fileID is the stat format that tells a file from any other and any
// change to it: device, inode, size, modification and change times to the
// nanosecond. A write to the file, a chmod, a rename or a utime moves its
// change time (which no one can set back but by moving the clock), so a
// file with the same ID has the content that was verified. A filesystem
// that keeps whole seconds could hide a write within the second: an ID
// without nanoseconds is not used (verifiedID).
const fileID = "%d:%i:%s:%.9Y:%.9Z"

// verifiedID says whether id (fileID's output) can vouch for a file.
func verifiedID(id string) bool {
	f := strings.Split(id, ":")
	if len(f) != 5 {
		return false
	}
	for _, t := range f[3:] {
		sec, ns, ok := strings.Cut(t, ".")
		if !ok || sec == "" || len(ns) != 9 || strings.Trim(ns, "0123456789") != "" || strings.Trim(ns, "0") == "" {
			return false
		}
	}
	return true
}

// idMark starts a line of the finalize's output: "\x01ID N fileID", the
// ID of the Nth file placed.
const idMark = "\x01ID "

// alsoEnd ends the output of copyPlan.also; its exit status follows.
const alsoEnd = "\x01ALSO\x00"

// afterMark starts the output of copyPlan.after, or the exit status of
// copyPlan.early (then ended by a NUL).
const afterMark = "\x01AFTER\x00"

func contentPlan(content []byte, dest string, o copyOpts) (*copyPlan, error) {
	if dest == "" || strings.HasSuffix(dest, "/") {
		return nil, fmt.Errorf("dest %q must name a file when content is given", dest)
	}
	if o.mode == "preserve" {
		return nil, errors.New(`mode "preserve" needs src`)
	}
	sum := sha256.Sum256(content)
	it := &copyItem{content: content, size: int64(len(content)), sum: hex.EncodeToString(sum[:]), dest: dest, mode: o.mode}
	return &copyPlan{items: []*copyItem{it}, dirs: []string{path.Dir(dest)}, root: dest, opts: o}, nil
}

// localPlan lists what copying local (written by the user as src) to dest means:
// a file goes to dest (or inside it when dest ends with / or is a
// directory); a directory goes inside dest, or only its contents when src
// ends with /, as in Ansible.
func localPlan(local, src, dest string, o copyOpts) (*copyPlan, error) {
	if dest == "" {
		return nil, errors.New("dest is required")
	}
	st, err := os.Stat(local)
	if err != nil {
		return nil, fmt.Errorf("src: %w", err)
	}
	if !st.IsDir() {
		it, err := fileItem(local, st, o)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(dest, "/") {
			it.dest = path.Join(dest, filepath.Base(local))
			return &copyPlan{items: []*copyItem{it}, dirs: []string{path.Clean(dest)}, root: it.dest, opts: o}, nil
		}
		it.dest = dest
		it.altDest = path.Join(dest, filepath.Base(local))
		return &copyPlan{items: []*copyItem{it}, dirs: []string{path.Dir(dest)}, root: dest, opts: o}, nil
	}
	root := path.Clean(dest)
	if !strings.HasSuffix(src, "/") {
		root = path.Join(root, filepath.Base(local))
	}
	p := &copyPlan{root: root, isDir: true, opts: o}
	err = filepath.WalkDir(local, func(lp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(local, lp)
		if err != nil {
			return err
		}
		remote := path.Join(root, filepath.ToSlash(rel))
		st, err := os.Stat(lp) // follows symlinks, like Ansible's local_follow
		if err != nil {
			return err
		}
		if st.IsDir() {
			p.dirs = append(p.dirs, remote)
			return nil
		}
		it, err := fileItem(lp, st, o)
		if err != nil {
			return err
		}
		it.dest = remote
		p.items = append(p.items, it)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("src: %w", err)
	}
	return p, nil
}

func fileItem(local string, st os.FileInfo, o copyOpts) (*copyItem, error) {
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", local)
	}
	sum, n, err := localSum(local)
	if err != nil {
		return nil, err
	}
	mode := o.mode
	if mode == "preserve" {
		mode = fmt.Sprintf("%o", st.Mode().Perm())
	}
	return &copyItem{local: local, size: n, sum: sum, mode: mode}, nil
}

// remoteFile is what the probe saw of one path on the host.
type remoteFile struct {
	typ                       byte // f, d, l, ...
	mode, user, uid, grp, gid string
	sum                       string // regular files only
}

// probeScript prints, in one round trip, the type, mode, owner and group of
// every path under the copy's root (depth 0 for single files), then the
// SHA-256 of the regular files, NUL-separated so any file name survives,
// with paths relative to base (the root's directory for a single file, the
// root itself for a tree). GNU find and coreutils are assumed on the host.
// base is entered physically (hostfs): a symlink on the way that another
// user could have placed is refused, never followed. With mk (not in check
// mode) the same walk creates base when it is missing (there is nothing to
// list then), and the probe then creates the directories the copy needs
// (relative to base), the same way.
//
// need makes the staging directory (hostfs.Stage) in the same round trip
// when files will certainly be written: for a single file, when dest
// differs (hf_needpriv); for a tree, when files are missing.
func probeScript(base string, names []string, tree, mk bool, mkdirs []string, info, need, early, after string, known map[string]string) string {
	var b strings.Builder
	b.WriteString("hf_quiet=1; " + info)
	if mk {
		// One walk: base is entered, or made (then there is nothing in it
		// to list: hf_made names what the walk created).
		fmt.Fprintf(&b, `if hf_in %s 1 && [ -z "$hf_made" ]; then `, shell.Quote(base))
	} else {
		fmt.Fprintf(&b, "if hf_in %s 2; then ", shell.Quote(base))
	}
	switch {
	case tree && len(names) > 0:
		// A release of a few files (a binary and its config): hash just
		// them, each with hf_hash (openssl: a sixth of sha256sum's time on
		// a large binary), two processes instead of five.
		b.WriteString(`find . -printf '%y %m %u %U %g %G %p\0' 2>/dev/null; printf '\001SUMS\0'; hf_nf=0 hf_sums=; `)
		hash := `hf_hash "$f"`
		if len(known) > 0 {
			// A file a stage of this run verified and that is still the
			// same file (fileID) is not read again.
			b.WriteString(`hf_known() { case $1 in`)
			for _, n := range names {
				if k, ok := known[n]; ok {
					id, sum, _ := strings.Cut(k, " ")
					fmt.Fprintf(&b, ` %s) [ "$(stat -c %s -- "$1")" = %s ] && hf_s=%s;;`, shell.Quote("./"+n), shell.Quote(fileID), shell.Quote(id), sum)
				}
			}
			b.WriteString(` *) false;; esac; }; `)
			hash = `{ hf_known "$f" || hf_hash "$f"; }`
		}
		b.WriteString(`for f in`)
		for _, n := range names {
			b.WriteString(" " + shell.Quote("./"+n))
		}
		b.WriteString(`; do if [ -f "$f" ] && [ ! -L "$f" ]; then hf_nf=$((hf_nf+1)); ` + hash + ` && printf '%s  %s\0' "$hf_s" "$f" && hf_sums="$hf_sums $hf_s"; fi; done; `)
	case tree:
		b.WriteString(`find . -printf '%y %m %u %U %g %G %p\0' 2>/dev/null; printf '\001SUMS\0'; find . -type f -exec sha256sum -z -- {} + 2>/dev/null; hf_nf=$(find . -type f | wc -l); `)
	default:
		// dest/name is looked at only when dest is a real directory.
		b.WriteString("set -- " + shell.Quote("./"+names[0]) + "; ")
		if len(names) > 1 {
			fmt.Fprintf(&b, `[ -d %s ] && [ ! -L %s ] && set -- "$@" %s; `, shell.Quote("./"+names[0]), shell.Quote("./"+names[0]), shell.Quote("./"+names[1]))
		}
		// Single files are hashed once, for the probe's output and for
		// hf_needpriv, with openssl when it gives a digest (hf_hash): it uses
		// the CPU's SHA extensions, so an unchanged large binary is
		// recognised in a fraction of sha256sum's time. A tree keeps one
		// sha256sum for all its files, cheaper than a process per file.
		b.WriteString(`find "$@" -maxdepth 0 -printf '%y %m %u %U %g %G %p\0' 2>/dev/null; printf '\001SUMS\0'; hf_s1=; ` +
			`for f do [ -f "$f" ] && [ ! -L "$f" ] && hf_hash "$f" && { printf '%s  %s\0' "$hf_s" "$f"; [ "$f" = "$1" ] && hf_s1=$hf_s; }; done; `)
	}
	if mk && early != "" {
		b.WriteString(`( ` + early + ` ); hf_fc=$?; printf '\001AFTER\000%s\000' $hf_fc; [ $hf_fc = 3 ] || exit 0; `)
	}
	b.WriteString("fi; ")
	if mk {
		fmt.Fprintf(&b, "%shf_mkdirs%s; ", need, func() string {
			if len(mkdirs) == 0 {
				return ""
			}
			return " " + shell.Join(mkdirs...)
		}())
		if after != "" {
			b.WriteString(`printf '\001AFTER\000'; ` + after + "; ")
		}
	}
	b.WriteString("true")
	return hostfs.Script(b.String())
}

// rebase turns the probe's paths (relative to base) into the host paths
// the plan names.
func rebase(files map[string]*remoteFile, base string) map[string]*remoteFile {
	out := make(map[string]*remoteFile, len(files))
	for p, f := range files {
		out[path.Join(base, p)] = f
	}
	return out
}

// staleTempAge is how old a temp file next to dest must be before a later
// copy removes it: a copy whose connection was cut could not clean up after
// itself, and no live copy takes this long without touching its file.
const staleTempAge = 60 // minutes

// sweepStaleTemps removes temp files that earlier, interrupted copies to
// dest left behind; it runs in the probe's round trip.
func sweepStaleTemps(dest string) string {
	pattern := "." + sanitizeName(path.Base(dest)) + ".ferry-tmp-*"
	// Private directories now, plain files from older versions; rm does
	// not follow a symlink put in their place.
	return fmt.Sprintf("hf_sweep %s %s %d; ", shell.Quote(path.Dir(dest)), shell.Quote(pattern), staleTempAge)
}

// hashEachMax: up to this many files, all at the top of the tree, the
// probe hashes each by name; past it one sha256sum reads them all (a
// process per file would cost more than the faster hash saves).
const hashEachMax = 8

// fewTopFiles names the tree's files relative to its root when there are
// few and all sit at its top (no directory on the way, which could be a
// symlink a name lookup would follow and find -type f does not); else nil.
func (p *copyPlan) fewTopFiles() []string {
	if len(p.items) == 0 || len(p.items) > hashEachMax {
		return nil
	}
	names := make([]string, 0, len(p.items))
	for _, it := range p.items {
		n := strings.TrimPrefix(it.dest, p.root+"/")
		if n == it.dest || n == "" || strings.Contains(n, "/") {
			return nil
		}
		names = append(names, n)
	}
	return names
}

func parseProbe(out []byte) map[string]*remoteFile {
	files := map[string]*remoteFile{}
	stat, sums, _ := bytes.Cut(out, []byte("\x01SUMS\x00"))
	for _, rec := range bytes.Split(stat, []byte{0}) {
		f := strings.SplitN(string(rec), " ", 7)
		if len(f) != 7 || len(f[0]) != 1 {
			continue
		}
		files[f[6]] = &remoteFile{typ: f[0][0], mode: f[1], user: f[2], uid: f[3], grp: f[4], gid: f[5]}
	}
	for _, rec := range bytes.Split(sums, []byte{0}) {
		sum, p, ok := strings.Cut(string(rec), "  ")
		if !ok || len(sum) != 64 {
			continue
		}
		if rf := files[p]; rf != nil {
			rf.sum = sum
		}
	}
	return files
}

// attrsDiffer lists the attributes of rf that differ from what is wanted.
func (p *copyPlan) attrsDiffer(it *copyItem, rf *remoteFile) []string {
	var d []string
	if it.mode != "" && rf.mode != it.mode {
		d = append(d, fmt.Sprintf("mode %s → %s", rf.mode, it.mode))
	}
	if o := p.opts.owner; o != "" && o != rf.user && o != rf.uid {
		d = append(d, fmt.Sprintf("owner %s → %s", rf.user, o))
	}
	if g := p.opts.group; g != "" && g != rf.grp && g != rf.gid {
		d = append(d, fmt.Sprintf("group %s → %s", rf.grp, g))
	}
	return d
}

type copyAction struct {
	it      *copyItem
	exists  bool
	upload  bool
	attrs   bool   // only mode/owner/group change
	why     string // for the diff
	tmp     string // temp file on the host while uploading, inside priv
	priv    string // the private (0700) directory next to dest holding tmp
	rf      *remoteFile
	backup  string // where the replaced file is kept
	dirDest bool   // dest was an existing directory
}

func (p *copyPlan) run(ctx context.Context, h *Host) (Outcome, error) {
	if h.Conn == nil {
		return Outcome{}, errors.New("copy: no connection to the host")
	}
	base, names := p.root, []string(nil)
	var rel []string
	if !p.isDir {
		base, names = path.Dir(p.items[0].dest), []string{path.Base(p.items[0].dest)}
		if alt := p.items[0].altDest; alt != "" {
			names = append(names, path.Join(names[0], path.Base(alt)))
		}
	} else {
		for _, d := range p.dirs {
			if r := strings.TrimPrefix(d, p.root+"/"); r != d {
				rel = append(rel, r)
			}
		}
		names = p.fewTopFiles()
	}
	sweep := ""
	if !h.Check && !p.isDir {
		sweep = sweepStaleTemps(p.items[0].dest)
	}
	need := ""
	if !p.isDir {
		it := p.items[0]
		need = fmt.Sprintf("hf_needpriv %s %s %s %s %s %s %s; ", shell.Quote(names[0]), it.sum, shell.Quote(it.mode), shell.Quote(p.opts.owner), shell.Quote(p.opts.group),
			boolDigit(p.opts.force), shell.Quote(stagePrefix(it.dest)))
	}
	if p.isDir {
		need = fmt.Sprintf(`hf_nf=${hf_nf:-0}; [ "$hf_nf" -ge %d ] || hf_stage %s; `, len(p.items), shell.Quote(stagePrefix(p.root)))
	}
	also := ""
	if p.also != "" {
		// The root device and this user's id, read once for the probe and
		// the subshell (hf_in reads them when they are unset).
		also = "hf_rdev=$(stat -c %d /); hf_myuid; hf_also=$( " + p.also + " ); hf_ac=$?; printf '%s\\001ALSO\\000%s\\000' \"$hf_also\" $hf_ac; "
	}
	res, err := runOn(ctx, h, probeScript(base, names, p.isDir, !h.Check, rel, also+sweep+p.infoScript(), need, p.early, p.after, p.known), false)
	if err != nil {
		return Outcome{}, fmt.Errorf("copy: inspect %s: %w", p.root, err)
	}
	out := res.Stdout
	if p.after != "" || p.early != "" {
		// Last in the output: a file name the probe listed cannot end it.
		if i := bytes.LastIndex(out, []byte(afterMark)); i >= 0 {
			p.afterOut, p.afterRan, out = out[i+len(afterMark):], true, out[:i:i]
			p.afterErr = lastLine(res.Stderr)
			if p.early != "" {
				// Its exit status; what the probe printed after it follows.
				var rest []byte
				p.afterOut, rest, _ = bytes.Cut(p.afterOut, []byte{0})
				out = append(out, rest...)
			}
		}
	}
	if p.also != "" {
		var found bool
		p.alsoOut, out, found = bytes.Cut(out, []byte(alsoEnd))
		code, rest, _ := bytes.Cut(out, []byte{0})
		p.alsoCode, out = 255, rest
		if n, err := strconv.Atoi(string(code)); found && err == nil {
			p.alsoCode = n
		}
		if p.alsoCode != 0 {
			p.alsoErr = lastLine(res.Stderr)
		}
	}
	infoOut, probed, _ := bytes.Cut(out, []byte(infoEnd))
	probed, privOut, _ := bytes.Cut(probed, []byte("\x01PRIV\x00"))
	// staged: the staging directory the probe made, if any; apply takes it
	// over, else it is removed here (also when the probe failed after it).
	staged := parseStage(privOut)
	defer func() {
		if staged != "" {
			removeRemoteDirs(h, staged)
		}
	}()
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("create directories for "+p.root, res)}, nil
	}
	remote := rebase(parseProbe(probed), base)
	info := parseInfo(infoOut)

	// Decide, per file, what has to happen.
	var acts []*copyAction
	for _, it := range p.items {
		rf := remote[it.dest]
		dirDest := false
		if rf != nil && rf.typ == 'd' {
			if it.altDest == "" {
				return Outcome{Failed: true, Msg: fmt.Sprintf("%s is a directory on the host; remove it or choose another dest", it.dest)}, nil
			}
			it.dest, rf, dirDest = it.altDest, remote[it.altDest], true
			if rf != nil && rf.typ == 'd' {
				return Outcome{Failed: true, Msg: fmt.Sprintf("%s is a directory on the host; remove it or choose another dest", it.dest)}, nil
			}
		}
		act := &copyAction{it: it, exists: rf != nil, dirDest: dirDest, rf: rf}
		switch {
		case rf == nil:
			act.upload, act.why = true, "new file"
		case rf.typ != 'f':
			act.upload, act.why = true, "replaces a non-regular file"
		case rf.sum != it.sum:
			if !p.opts.force {
				continue
			}
			act.upload, act.why = true, "content differs"
		default:
			if d := p.attrsDiffer(it, rf); len(d) > 0 {
				// Attributes are only ever set on a fresh private copy:
				// chmod/chown by path could be sent elsewhere by a symlink.
				act.upload, act.attrs, act.why = true, true, strings.Join(d, ", ")
			} else {
				continue
			}
		}
		acts = append(acts, act)
	}
	var newDirs []string
	if p.isDir {
		for _, d := range p.dirs {
			if rf := remote[d]; rf == nil || rf.typ != 'd' {
				newDirs = append(newDirs, d)
			}
		}
	}
	result := p.result(acts)
	if len(acts) == 0 && len(newDirs) == 0 {
		return Outcome{Msg: "unchanged: " + p.root, Result: result}, nil
	}
	diff := p.diff(acts)
	for _, d := range newDirs {
		diff += "+ " + d + "/ (new directory)\n"
	}
	if len(acts) == 0 { // only directories were missing (created by the probe)
		if h.Check {
			return Outcome{Changed: true, Msg: checkMsg("create %d directories under %s", len(newDirs), p.root), Diff: diff, Result: result}, nil
		}
		return Outcome{Changed: true, Msg: fmt.Sprintf("created %d directories under %s", len(newDirs), p.root), Diff: diff, Result: result}, nil
	}
	if h.Check {
		return Outcome{Changed: true, Msg: checkMsg("update %s", summary(acts, p.root)), Diff: diff, Result: result}, nil
	}
	if err := p.apply(ctx, h, acts, info, &staged); err != nil {
		return Outcome{Failed: true, Msg: fmt.Sprintf("copy to %s: %v", p.root, err), Diff: diff, Result: result}, nil
	}
	result = p.result(acts)
	return Outcome{Changed: true, Msg: "updated " + summary(acts, p.root), Diff: diff, Result: result}, nil
}

func summary(acts []*copyAction, root string) string {
	if len(acts) == 1 {
		return acts[0].it.dest + " (" + acts[0].why + ")"
	}
	return fmt.Sprintf("%d files under %s", len(acts), root)
}

func (p *copyPlan) diff(acts []*copyAction) string {
	var b strings.Builder
	for _, a := range acts {
		mark := "~"
		if !a.exists {
			mark = "+"
		}
		fmt.Fprintf(&b, "%s %s (%s)\n", mark, a.it.dest, a.why)
	}
	return b.String()
}

func (p *copyPlan) result(acts []*copyAction) map[string]any {
	r := map[string]any{"dest": p.root, "changed": len(acts) > 0}
	if !p.isDir {
		it := p.items[0]
		r["dest"], r["checksum"], r["size"] = it.dest, it.sum, it.size
		if it.mode != "" {
			r["mode"] = "0" + it.mode
		}
		for _, a := range acts {
			if a.backup != "" {
				r["backup_file"] = a.backup
			}
		}
	} else {
		files := make([]any, 0, len(acts))
		for _, a := range acts {
			files = append(files, a.it.dest)
		}
		r["files"], r["count"] = files, len(p.items)
	}
	if p.opts.owner != "" {
		r["owner"] = p.opts.owner
	}
	if p.opts.group != "" {
		r["group"] = p.opts.group
	}
	return r
}

// uploadWorkers bounds files in flight at once; each file also uses the SFTP
// client's concurrent writes.
const uploadWorkers = 4

// apply uploads each file into a private directory next to its dest,
// gives it its final mode and owner on the open handle, verifies it and
// keeps backups in one command, then renames each over its dest. Nothing is
// changed by a path another user could redirect (issue: symlink races as
// root). On any error the private directories are removed; a dest is only
// ever replaced whole.
//
// The files are written into one staging directory (hostfs.Stage): made by
// the probe (*staged, taken over) or by one more command, in a directory
// only root can write, so that not even SFTP's paths can be redirected.
func (p *copyPlan) apply(ctx context.Context, h *Host, acts []*copyAction, info probeInfo, staged *string) (err error) {
	client, err := h.Conn.SFTP(ctx, sftpUser(h))
	if err != nil {
		return fmt.Errorf("open sftp: %w", err)
	}
	attrs, err := p.attrs(info)
	if err != nil {
		return err
	}
	stamp := time.Now().Format("2006-01-02@15:04:05")

	stage := *staged
	*staged = ""
	if stage == "" {
		res, err := runOn(ctx, h, hostfs.Stage(path.Dir(acts[0].it.dest), stagePrefix(acts[0].it.dest)), false)
		if err != nil {
			return err
		}
		_, after, _ := bytes.Cut(res.Stdout, []byte("\x01PRIV\x00"))
		if stage = parseStage(after); res.ExitCode != 0 || stage == "" {
			return errors.New(failMsg("create a temp directory for "+acts[0].it.dest, res))
		}
	}
	privList := []string{stage}
	for i, a := range acts {
		a.priv, a.tmp = stage, path.Join(stage, fmt.Sprintf("f%d", i))
	}
	defer func() {
		if err != nil {
			removeRemoteDirs(h, privList...)
		}
	}()

	// Upload, a few files at a time.
	if err := forEach(ctx, acts, func(a *copyAction) error {
		if e := uploadItem(ctx, client, a.it, a.tmp, func(f *sftp.File) error { return attrs.set(f, a) }); e != nil {
			return fmt.Errorf("upload %s: %w", a.it.dest, e)
		}
		return nil
	}); err != nil {
		return explainUploadFailure(ctx, h, acts, err)
	}

	// Verify, keep backups, then rename: one command per chunk of files,
	// working inside each private directory (its cwd) after entering its
	// parent physically and checking it is still ours; every file of the
	// chunk is verified before the first rename, relative to the held
	// parent (hostfs).
	_, fsync := client.HasExtension("fsync@openssh.com")
	var scripts []string
	var chunk []*copyAction
	size := 0
	index := make(map[*copyAction]int, len(acts))
	for i, a := range acts {
		index[a] = i
	}
	lastDir := "" // the directory the last chunk ends in, held (fd 8)
	flush := func() {
		if len(chunk) == 0 {
			return
		}
		var b strings.Builder
		b.WriteString(hostfs.Lib + finalizePrelude)
		// The directory entered last stays held from the checks to the
		// renames (they change neither the cwd nor fd 8): a chunk of one
		// directory enters it once.
		cur := ""
		for _, pass := range []bool{false, true} {
			for _, a := range chunk {
				if d := path.Dir(a.it.dest); d != cur {
					b.WriteString(enterStage(d, a.priv))
					cur = d
				}
				if pass {
					fmt.Fprintf(&b, "hf_place %s %s; ", shell.Quote("./"+path.Base(a.tmp)), shell.Quote(path.Base(a.it.dest)))
					if p.recordIDs {
						fmt.Fprintf(&b, "printf '\\001ID %d '; stat -c %s -- %s; ", index[a], shell.Quote(fileID), shell.Quote("/proc/self/fd/8/"+path.Base(a.it.dest)))
					}
				} else {
					b.WriteString(p.finalizeLine(a, stamp, !fsync))
				}
			}
		}
		scripts = append(scripts, b.String())
		chunk, size, lastDir = nil, 0, cur
	}
	for _, a := range acts {
		n := 2*len(enterStage(path.Dir(a.it.dest), a.priv)) + len(p.finalizeLine(&copyAction{it: a.it, exists: a.exists}, stamp, !fsync)) + 2*len(a.it.dest)
		if size+n > 60<<10 {
			flush()
		}
		chunk = append(chunk, a)
		size += n
	}
	flush()
	// The staging directory is empty once the last chunk is renamed: it is
	// removed (best effort, as hf_rmtrees) relative to its parent when that
	// is the held directory, else by its path, entered physically.
	if path.Dir(stage) == lastDir {
		scripts[len(scripts)-1] += "( cd -P /proc/self/fd/8 && hf_rmtree " + shell.Quote(path.Base(stage)) + " ) 2>/dev/null; "
	} else {
		scripts[len(scripts)-1] += "cd / && hf_rmtrees " + shell.Quote(stage) + "; "
	}
	for _, s := range scripts {
		res, err := runOn(ctx, h, s, false)
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			if msg := lastLine(res.Stderr); msg != "" {
				return errors.New(msg)
			}
			return fmt.Errorf("finalizing the copy exited with status %d", res.ExitCode)
		}
		if p.recordIDs {
			p.readIDs(res.Stdout, acts)
		}
	}
	return nil
}

// readIDs takes the finalize's ID lines (idMark) into p.ids.
func (p *copyPlan) readIDs(out []byte, acts []*copyAction) {
	for _, l := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(l, idMark)
		if !ok {
			continue
		}
		n, id, _ := strings.Cut(rest, " ")
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= len(acts) || !verifiedID(id) {
			continue
		}
		if p.ids == nil {
			p.ids = map[string]string{}
		}
		p.ids[acts[i].it.dest] = id
	}
}

// forEach runs fn on every item, uploadWorkers at a time, and returns the
// first error (later items are not started after one).
func forEach[T any](ctx context.Context, items []T, fn func(T) error) error {
	return parallel.FirstError(ctx, len(items), uploadWorkers, func(i int) error { return fn(items[i]) })
}

// finalizePrelude defines the helpers of the finalize command (POSIX sh).
// hs FILE sets s to the file's SHA-256: with openssl when it answers with a
// digest (it uses the CPU's SHA extensions: 4-6 times faster than
// coreutils' sha256sum, whose re-read of a large upload otherwise costs as
// much as a third of the copy), else with sha256sum.
// v TMP SUM DEST: the temp file holds exactly what was sent.
const finalizePrelude = `hs() { s=$(openssl dgst -sha256 -r < "$1" 2>/dev/null) && s=${s%% *} && [ ${#s} = 64 ] && return 0; s=$(sha256sum < "$1") || return 1; s=${s%% *}; }; ` +
	`v() { hs "$1" || exit 1; [ "$s" = "$2" ] || { echo "checksum mismatch for $3: sent $2, landed $s; check free space on the host" >&2; exit 1; }; }; `

// enterStage holds dest's directory dir (fd 8, entered physically) and
// makes the staging directory the finalize command's working directory,
// once it is sure the directory is still the one ferry made (owned by this
// user, mode 0700): from then on file names are relative to them and
// nobody else can change what they name.
func enterStage(dir, stage string) string {
	return "hf_enterstage " + shell.Quote(dir) + " " + shell.Quote(stage) + "; "
}

// stagePrefix names the staging directory of a copy to dest (the sweep of
// stale temps matches it).
func stagePrefix(dest string) string {
	return "." + sanitizeName(path.Base(dest)) + ".ferry-tmp-"
}

// parseStage reads the staging directory's path that hf_stage printed
// after its marker.
func parseStage(after []byte) string {
	name, _, ok := bytes.Cut(after, []byte{0})
	if !ok || len(name) == 0 || name[0] != '/' {
		return ""
	}
	return string(name)
}

// finalizeLine is the finalize command's part for one file, run inside its
// private directory: verify, validate, keep a backup. sync flushes the
// file with coreutils when the server lacks fsync@openssh.com.
func (p *copyPlan) finalizeLine(a *copyAction, stamp string, sync bool) string {
	var b strings.Builder
	dest := shell.Quote(a.it.dest)
	tmp := "./" + path.Base(a.tmp)
	if sync {
		fmt.Fprintf(&b, "sync -- %s 2>/dev/null; ", tmp)
	}
	fmt.Fprintf(&b, "v %s %s %s; ", tmp, a.it.sum, dest)
	if p.opts.validate != "" {
		// The private directory is the cwd: "$PWD/fN" is the new file.
		cmd := strings.ReplaceAll(p.opts.validate, "%s", `"$PWD/`+path.Base(a.tmp)+`"`)
		fmt.Fprintf(&b, `vo=$( ( %s ) </dev/null 2>&1 ) || { printf 'validate (%%s) rejected the new %%s: %%s\n' %s %s "$(printf '%%s\n' "$vo" | tail -n 1)" >&2; exit 1; }; `,
			cmd, shell.Quote(p.opts.validate), dest)
	}
	if a.exists && p.opts.backup {
		a.backup = a.it.dest + "." + stamp + "~"
		// Relative to the held parent; a symlink at dest is kept as a symlink.
		fmt.Fprintf(&b, "hf_backup %s %s; ", shell.Quote(path.Base(a.it.dest)), shell.Quote(path.Base(a.backup)))
	}
	b.WriteString("\n")
	return b.String()
}

func uploadItem(ctx context.Context, c *sftp.Client, it *copyItem, remote string, finish func(*sftp.File) error) error {
	var r io.Reader
	if it.local != "" {
		f, err := os.Open(it.local)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	} else {
		r = bytes.NewReader(it.content)
	}
	return putFile(ctx, c, r, it.size, remote, 0o600, finish)
}

// putFile writes r to a new file remote (which must not exist) with mode
// perm, flushed to disk (fsync@openssh.com) when the server supports it.
// finish, when given, runs on the open handle after the content is written
// (final mode and owner are set there, never by path).
func putFile(ctx context.Context, c *sftp.Client, r io.Reader, size int64, remote string, perm os.FileMode, finish func(*sftp.File) error) error {
	f, err := c.OpenFile(remote, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = f.Close()
		}
	}()
	// Private until finalized: the content may be a secret. (ferry's SFTP
	// server runs with umask 077 and the file sits in a private directory;
	// this covers a server started otherwise.)
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	n, err := f.ReadFromWithConcurrency(&ctxReader{ctx: ctx, r: r}, 0)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("wrote %d of %d bytes: the local file changed during the copy", n, size)
	}
	if _, ok := c.HasExtension("fsync@openssh.com"); ok {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
	}
	if finish != nil {
		if err := finish(f); err != nil {
			return err
		}
	}
	closed = true
	return f.Close()
}

// ctxReader ends a transfer when ctx ends: the SFTP client's own calls do
// not take a context.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// explainUploadFailure adds what OpenSSH's sftp-server does not say: it
// reports a full disk (ENOSPC) as a bare SSH_FX_FAILURE. When the upload
// failed that way, the free space where the files go tells the operator why.
func explainUploadFailure(ctx context.Context, h *Host, ups []*copyAction, err error) error {
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure || len(ups) == 0 {
		return err
	}
	dir := path.Dir(ups[0].it.dest)
	res, derr := runOn(ctx, h, "df -Pk "+shell.Quote(dir)+" | awk 'NR==2 {print $4}'", false)
	if derr != nil || res.ExitCode != 0 {
		return err
	}
	free := strings.TrimSpace(string(res.Stdout))
	var need int64
	for _, a := range ups {
		if a.upload {
			need += a.it.size
		}
	}
	return fmt.Errorf("%w: %s has %s KiB free for %d KiB to upload: no space left on the device? free some (old releases, logs) and run again",
		err, dir, free, (need+1023)/1024)
}

// copyAttack: sample calls for the adversarial lab test (Spec.HostFiles).
func copyAttack(at FileAttack) []FileCall {
	return []FileCall{
		{Args: map[string]any{"content": "setting=1\n", "dest": at.Dir + "/conf/app.conf"}, Target: at.Dir + "/conf/app.conf"},
		{Args: map[string]any{"src": at.Local + "/tree/", "dest": at.Dir + "/conf/", "mode": "0644", "backup": true}, Target: at.Dir + "/conf/app.conf"},
		// remote_src reads as root where the attacker can plant links
		{Args: map[string]any{"src": at.Dir + "/in/key", "remote_src": true, "dest": at.Dir + "/conf/key", "mode": "0400"}, Target: at.Dir + "/in/key"},
		// a root-only file copied with no mode into the attacker's directory,
		// where the attacker made dest first (its owner must not be kept)
		{Args: map[string]any{"src": at.Secret, "remote_src": true, "dest": at.Dir + "/conf/key"}, Target: at.Dir + "/conf/key",
			Layout: []string{"conf/", "conf/key"}},
	}
}

// readHostFile reads one regular file on the host through hostfs (its
// directories entered physically, a symlink followed only when root owns it
// where only root can write), for copy's remote_src.
// It also returns the file's permission bits, as the open file has them.
func readHostFile(ctx context.Context, h *Host, src string) ([]byte, uint32, Outcome, error) {
	if !path.IsAbs(src) {
		return nil, 0, Outcome{}, fmt.Errorf("copy: remote_src: src %q must be an absolute path on the host", src)
	}
	script := hostfs.Script(`s=` + shell.Quote(src) + `; hf_at_file "$s" 0 follow || exit 2; hf_n=$(stat -L -c %s -- "$hf_b" 2>/dev/null) || hf_n=0; ` +
		`[ "$hf_n" -le 67108864 ] || hf_die "$s is over 64 MiB"; hf_read "$hf_b" && { [ ! -e /proc/self/fd/3 ] || printf '\001MODE\000%s' "$(stat -L -c %a /proc/self/fd/3)"; }`)
	res, err := runOn(ctx, h, script, false)
	if err != nil {
		return nil, 0, Outcome{}, fmt.Errorf("copy: read %s: %w", src, err)
	}
	if res.ExitCode != 0 {
		return nil, 0, Outcome{Failed: true, Msg: failMsg("copy: read "+src, res)}, nil
	}
	out := res.Stdout
	if len(out) == 0 || out[0] == 'N' {
		return nil, 0, Outcome{Failed: true, Msg: fmt.Sprintf("copy: src %s does not exist on the host", src)}, nil
	}
	i := bytes.LastIndex(out, []byte(srcModeMark))
	mode, perr := strconv.ParseUint(string(out[max(i, 0)+len(srcModeMark):]), 8, 32)
	if i < 1 || perr != nil {
		return nil, 0, Outcome{}, fmt.Errorf("copy: read %s: the host did not say the file's mode", src)
	}
	return out[1:i], uint32(mode), Outcome{}, nil
}

// srcModeMark follows a remote_src file's content; its mode comes next.
const srcModeMark = "\x01MODE\x00"

// templateAttack: sample calls for the adversarial lab test (Spec.HostFiles).
func templateAttack(at FileAttack) []FileCall {
	return []FileCall{{Args: map[string]any{"src": at.Local + "/file", "dest": at.Dir + "/conf/app.conf"}, Target: at.Dir + "/conf/app.conf"}}
}
