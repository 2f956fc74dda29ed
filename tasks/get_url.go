package tasks

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(getURLModule{}) }

// getURLModule downloads a URL on the host, as Ansible's get_url does, with
// the host's curl (or wget): into a private temp directory next to dest,
// checked against checksum, then renamed over dest. One command.
type getURLModule struct{}

func (getURLModule) Spec() Spec {
	return Spec{
		Name: "get_url",
		Doc:  "Download a file from an HTTP(S) or FTP URL on the host (with its curl or wget) and put it at dest atomically, checked against a checksum",
		Params: map[string]Param{
			"url":            {Type: String, Required: true, Doc: "what to download (http, https or ftp)"},
			"dest":           {Type: String, Required: true, Doc: "file on the host, or a directory to download into under the URL's file name"},
			"checksum":       {Type: String, Doc: "sha256:HEX (or sha1:, sha512:, md5:): the download must match, and a dest that matches is not downloaded again"},
			"force":          {Type: Bool, Default: "false", Doc: "download even when dest exists (it is replaced only when the content differs)"},
			"mode":           {Type: String, Doc: `octal mode, quoted ("0644"); default: dest's, or the umask's for a new file`},
			"owner":          {Type: String, Doc: "owner name or uid"},
			"group":          {Type: String, Doc: "group name or gid"},
			"timeout":        {Type: Duration, Default: "10s", Doc: "how long the download may take"},
			"validate_certs": {Type: Bool, Default: "true", Doc: "verify the server's TLS certificate"},
		},
		HostFiles: getURLAttack,
		Returns: map[string]string{
			"dest":          "the file written",
			"checksum_dest": "SHA-256 of dest after the task",
		},
	}
}

var checksumRe = regexp.MustCompile(`^(sha1|sha224|sha256|sha384|sha512|md5):([0-9a-fA-F]+)$`)

// getURLEnv carries the URL to the host's shell, on stdin (RunOptions.Env).
const getURLEnv = "FERRY_GET_URL"

func (getURLModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("get_url", args)
	u, dest := a.String("url", ""), a.String("dest", "")
	checksum := a.String("checksum", "")
	force := a.Bool("force", false)
	mode := a.Mode("mode")
	owner, group := a.String("owner", ""), a.String("group", "")
	timeout := a.Duration("timeout", 10*time.Second)
	validate := a.Bool("validate_certs", true)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "ftp") || pu.Host == "" {
		return Outcome{}, fmt.Errorf("get_url: url %q: want an http, https or ftp URL", u)
	}
	if pu.User != nil {
		return Outcome{}, fmt.Errorf("get_url: url %q has credentials in it: they would show in the host's process list; download on the controller and copy: instead", shownURL(u))
	}
	if strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r == 0x7f }) {
		return Outcome{}, fmt.Errorf("get_url: url %q has spaces, quotes, backslashes or control characters: percent-encode them", shownURL(u))
	}
	if dest == "" {
		return Outcome{}, fmt.Errorf("get_url: dest is required")
	}
	var algo, want string
	if checksum != "" {
		m := checksumRe.FindStringSubmatch(checksum)
		if m == nil {
			return Outcome{}, fmt.Errorf("get_url: checksum %q: want ALGORITHM:HEX (sha256:HEX, sha512:HEX, ...)", checksum)
		}
		algo, want = m[1], strings.ToLower(m[2])
	}
	name := path.Base(pu.Path)
	if name == "/" || name == "." || name == "" {
		name = "index.html"
	}
	secs := int(timeout.Seconds())
	if secs < 1 {
		secs = 1
	}
	q := shell.Quote
	var b strings.Builder
	// The URL (its query may be a token, a presigned signature) reaches
	// the host on stdin, with the environment, and curl or wget reads it
	// from a pipe: never on a command line (ps, sudo's log). Messages show
	// it without its query ($s).
	fmt.Fprintf(&b, "u=$%s; unset %s; s=%s; d=%s; n=%s; c=%s; f=%s; chk=%s; want=%s; hf_quiet=1; ", getURLEnv, getURLEnv, q(shownURL(u)), q(dest), q(name), boolDigit(h.Check), boolDigit(force), q(algo), q(want))
	// dest's directory is entered physically (hostfs); everything after is
	// relative to it, and the download is renamed over dest from a private
	// directory there.
	b.WriteString(`case "$d" in */) d="$d$n";; esac; hf_at_file "$d" 0; `)
	b.WriteString(`if [ -d "$hf_b" ] && [ ! -L "$hf_b" ]; then hf_w=$d; hf_walk "$hf_b" 0; hf_b=$n; fi; `)
	b.WriteString(`echo "DEST ${hf_at%/}/$hf_b"; `)
	b.WriteString(`sum() { "$1"sum < "$2" | cut -d' ' -f1; }; `)
	b.WriteString(`have=0; hf_open "$hf_b" && have=1; [ "$hf_ty" = d ] && { echo "${hf_at%/}/$hf_b is a directory" >&2; exit 2; }; [ "$hf_ty" = f ] || have=0; `)
	b.WriteString(`if [ $have = 1 ]; then if [ -n "$chk" ]; then [ "$(sum "$chk" /proc/self/fd/3)" = "$want" ] && { echo "HAVE $(sum sha256 /proc/self/fd/3)"; exit 0; }; elif [ "$f" = 0 ]; then echo "HAVE $(sum sha256 /proc/self/fd/3)"; exit 0; fi; fi; `)
	b.WriteString(`[ "$c" = 1 ] && { echo WOULD; exit 0; }; `)
	b.WriteString(`hf_private "$hf_b"; `)
	insecureCurl, insecureWget := "", ""
	if !validate {
		insecureCurl, insecureWget = "-k ", "--no-check-certificate "
	}
	fmt.Fprintf(&b, `if command -v curl >/dev/null 2>&1; then printf 'url = "%%s"\n' "$u" | curl -fsSL %s--max-time %d -o ./f -K - || { echo "download $s failed (curl exit $?)" >&2; exit 4; }; `, insecureCurl, secs)
	fmt.Fprintf(&b, `elif command -v wget >/dev/null 2>&1; then printf '%%s\n' "$u" | wget -q %s-T %d -O ./f -i - || { echo "download $s failed (wget exit $?)" >&2; exit 4; }; `, insecureWget, secs)
	b.WriteString(`else echo "the host has neither curl nor wget: install one, or download on the controller and copy:" >&2; exit 3; fi; `)
	b.WriteString(`if [ -n "$chk" ]; then got=$(sum "$chk" ./f); [ "$got" = "$want" ] || { echo "checksum mismatch: $s has $chk:$got, want $chk:$want" >&2; exit 5; }; fi; `)
	b.WriteString(`new=$(sum sha256 ./f); ch=0; [ $have = 1 ] && [ "$(sum sha256 /proc/self/fd/3)" = "$new" ] || ch=1; `)
	m := ""
	if mode != "" {
		m = q(mode)
		fmt.Fprintf(&b, `[ $have = 1 ] && [ "$(stat -L -c %%a /proc/self/fd/3)" = %s ] || ch=1; `, q(strings.TrimLeft(mode, "0")))
	} else {
		m = `"$dm"`
		b.WriteString(`dm=; [ $have = 1 ] && dm=$(stat -L -c %a /proc/self/fd/3); `)
	}
	own := ""
	if owner != "" || group != "" {
		own = q(ownerText(owner, group))
	}
	fmt.Fprintf(&b, `hf_setnew ./f %s %s; `, m, orEmpty(own))
	b.WriteString(`[ "$ch" = 0 ] && { echo "HAVE $new"; exit 0; }; hf_place ./f "$hf_b"; echo "GOT $new"`)
	script := hostfs.Script(b.String())
	if h.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+30*time.Second)
		defer cancel()
	}
	hu := *h
	hu.Become.Env = maps.Clone(h.Become.Env)
	if hu.Become.Env == nil {
		hu.Become.Env = map[string]string{}
	}
	hu.Become.Env[getURLEnv] = u
	res, err := runOn(ctx, &hu, script, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("get_url %s: %w", shownURL(u), err)
	}
	result := map[string]any{"url": shownURL(u), "dest": dest}
	var got string
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "DEST":
			result["dest"] = v
		case "HAVE", "GOT":
			result["checksum_dest"], got = v, k
		case "WOULD":
			got = k
		}
	}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("get_url", res), Result: result}, nil
	}
	d := result["dest"].(string)
	switch got {
	case "HAVE":
		return Outcome{Msg: "unchanged: " + d, Result: result}, nil
	case "WOULD":
		return Outcome{Changed: true, Msg: checkMsg("download %s to %s", shownURL(u), d), Result: result}, nil
	case "GOT":
		return Outcome{Changed: true, Msg: fmt.Sprintf("downloaded %s to %s", shownURL(u), d), Diff: "+ " + d + " (from " + shownURL(u) + ")\n", Result: result}, nil
	}
	return Outcome{Failed: true, Msg: "get_url: unexpected output: " + lastLine(res.Stdout), Result: result}, nil
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// orEmpty is s, or an empty shell word.
func orEmpty(s string) string {
	if s == "" {
		return "''"
	}
	return s
}

// getURLAttack: sample calls for the adversarial lab test (Spec.HostFiles).
func getURLAttack(at FileAttack) []FileCall {
	return []FileCall{{Args: map[string]any{"url": at.URL, "dest": at.Dir + "/conf/app.conf", "force": true, "mode": "0644"}, Target: at.Dir + "/conf/app.conf"}}
}
