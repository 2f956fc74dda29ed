package docs

// The pages' shell examples are tests: getting-started.md's ```sh blocks,
// then environments.md's and ci.md's, run in order in one bash session
// (set -euo pipefail) from the repository's root, against the fresh lab
// getting-started.md starts. A block preceded by `<!-- not run: REASON -->`
// is skipped. The block whose command is `ferry-lab run ... -- bash` opens
// the lab's shell: every later block runs inside it, as a reader's typing
// would. The lab needs root; elsewhere the test skips with the reason.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// block is one ```sh block of a page.
type block struct {
	page string
	line int
	text string
	skip string // the reason of a `<!-- not run: ... -->` before it
}

var notRunRe = regexp.MustCompile(`^<!--\s*not run:\s*(.*?)\s*-->$`)

// shellBlocks returns the ```sh blocks of a Markdown page.
func shellBlocks(page, md string) []block {
	var out []block
	var cur *block
	skip := ""
	for i, l := range strings.Split(md, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case cur != nil && strings.HasPrefix(t, "```"):
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		case t == "```sh":
			cur = &block{page: page, line: i + 1, skip: skip}
			skip = ""
		case strings.HasPrefix(t, "```"):
			skip = ""
		default:
			if m := notRunRe.FindStringSubmatch(t); m != nil {
				skip = m[1]
			} else if t != "" {
				skip = ""
			}
		}
	}
	return out
}

var labShellRe = regexp.MustCompile(`(?m)^(\s*ferry-lab run .*-- )bash\s*$`)

func TestShellBlocksParse(t *testing.T) {
	md := "text\n<!-- not run: needs AWS -->\n```sh\naws s3 ls\n```\n\n```sh\necho hi\n```\n```yaml\na: 1\n```\n"
	bs := shellBlocks("p.md", md)
	if len(bs) != 2 || bs[0].skip != "needs AWS" || bs[1].skip != "" || bs[1].text != "echo hi\n" || bs[1].line != 7 {
		t.Fatalf("%+v", bs)
	}
}

func TestPagesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the pages' examples start a lab and deploy to it")
	}
	if os.Geteuid() != 0 {
		t.Skip("the pages' examples start a lab of sshd hosts in network namespaces: needs root")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the pages build ferry: needs go on PATH")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var before, inside strings.Builder
	cur := &before
	lab := false
	for _, page := range []string{"docs/getting-started.md", "docs/environments.md", "docs/ci.md"} {
		md, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range shellBlocks(page, string(md)) {
			if b.skip != "" {
				continue
			}
			fmt.Fprintf(cur, "echo %s\n", shellQuote(fmt.Sprintf("== %s:%d", b.page, b.line)))
			if m := labShellRe.FindStringSubmatchIndex(b.text); m != nil && !lab {
				lab = true
				// The lab's shell runs the rest of the pages as a script.
				cur.WriteString(b.text[:m[3]] + `bash -euo pipefail "$PAGES_INSIDE"` + b.text[m[1]:])
				cur = &inside
				continue
			}
			cur.WriteString(b.text)
		}
	}
	if !lab {
		t.Fatal("getting-started.md has no `ferry-lab run ... -- bash` block: the examples need a lab")
	}
	dir := t.TempDir()
	outer, in := filepath.Join(dir, "outer.sh"), filepath.Join(dir, "inside.sh")
	os.WriteFile(outer, []byte(before.String()), 0o600)
	os.WriteFile(in, []byte(inside.String()), 0o600)
	timeout := 15 * time.Minute
	if d, ok := t.Deadline(); ok && time.Until(d)-30*time.Second < timeout {
		timeout = time.Until(d) - 30*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", outer)
	cmd.Dir = root
	cmd.Env = append(pageEnv(), "PAGES_INSIDE="+in, "TMPDIR="+dir)
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the pages' examples failed (%v):\n%s", err, out)
	}
	t.Logf("%s", out)
}

// pageEnv is this process's environment without ferry's own settings, so
// the pages run as on a reader's machine.
func pageEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FERRY_") || k == "GITHUB_ACTIONS" || k == "CI" || strings.HasPrefix(k, "GITHUB_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
