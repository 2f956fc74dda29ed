// Package docs holds ferry's user documentation (Markdown). Its test checks
// that the README and every page link only inside the repository, and that
// each of those links resolves: a user of ferry has the repository, not the
// developers' notes beside it.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`(?m)^\s*\[[^\]]+\]:\s*(\S+)`)
	autoLink   = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]+)>`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	heading    = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
)

// links returns the link targets of a Markdown text, outside code.
func links(md string) []string {
	var prose strings.Builder
	fenced := false
	for _, l := range strings.Split(md, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		if !fenced && !strings.HasPrefix(l, "    ") {
			prose.WriteString(codeSpan.ReplaceAllString(l, ""))
			prose.WriteString("\n")
		}
	}
	s := prose.String()
	var out []string
	for _, re := range []*regexp.Regexp{inlineLink, refLink, autoLink} {
		for _, m := range re.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// slug is GitHub's anchor for a heading.
func slug(h string) string {
	h = strings.ToLower(codeSpan.ReplaceAllStringFunc(h, func(c string) string { return strings.Trim(c, "`") }))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(md string) map[string]bool {
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(md, -1) {
		out[slug(m[1])] = true
	}
	return out
}

// check returns the problems with one link of file (a path inside root).
func check(root, file, target string) error {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "//") {
		return fmt.Errorf("%s: link %q leaves the repository: document it here instead", file, target)
	}
	path, frag, _ := strings.Cut(target, "#")
	path, _, _ = strings.Cut(path, "?")
	dest := file
	if path != "" {
		if filepath.IsAbs(path) {
			return fmt.Errorf("%s: link %q is absolute: make it relative", file, target)
		}
		dest = filepath.Join(filepath.Dir(file), path)
		rel, err := filepath.Rel(root, dest)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%s: link %q leaves the repository", file, target)
		}
		if _, err := os.Stat(dest); err != nil {
			return fmt.Errorf("%s: link %q: %s does not exist", file, target, rel)
		}
	}
	if frag != "" && strings.HasSuffix(dest, ".md") {
		b, err := os.ReadFile(dest)
		if err != nil {
			return err
		}
		if !anchors(string(b))[frag] {
			return fmt.Errorf("%s: link %q: no heading #%s", file, target, frag)
		}
	}
	return nil
}

func TestLinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(root, "README.md")}
	err = filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(string(b)) {
			n++
			if err := check(root, f, l); err != nil {
				rel, _ := filepath.Rel(root, f)
				t.Error(strings.Replace(err.Error(), f, rel, 1))
			}
		}
	}
	if n == 0 {
		t.Fatal("no links found: the checker reads nothing")
	}
}

// TestCheckCatches: the checker refuses what it must.
func TestCheckCatches(t *testing.T) {
	root, _ := filepath.Abs("..")
	readme := filepath.Join(root, "README.md")
	for _, bad := range []string{"../" + "outside/SPEC.md", "../../x.md", "https://example.com/", "/etc/passwd", "docs/nope.md", "docs/playbooks.md#no-such-heading"} {
		if check(root, readme, bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"docs/playbooks.md", "BENCHMARKS.md", "docs/inventory.md#ec2-the-aws_ec2-plugin", "#quick-start"} {
		if err := check(root, readme, good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	if got := links("see [a](x.md) and `[b](y.md)`\n```\n[c](z.md)\n```\n<https://e.org>\n[r]: ref.md\n"); strings.Join(got, " ") != "x.md ref.md https://e.org" {
		t.Errorf("links = %q", got)
	}
}
