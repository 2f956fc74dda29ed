package browsertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The checks a report relies on must be able to fail: a console error, an
// exception and a fetch beyond the page are each seen.
func TestPageSeesProblems(t *testing.T) {
	page := filepath.Join(t.TempDir(), "bad.html")
	html := `<!DOCTYPE html><html><body><p id="x">hi</p>
<img src="http://127.0.0.1:9/nothing.png">
<script>console.error("broken on purpose")</script>
<script>undefinedFunction()</script></body></html>`
	if err := os.WriteFile(page, []byte(html), 0o600); err != nil {
		t.Fatal(err)
	}
	p := Open(t, "file://"+page, 800, 600)
	var text string
	p.Eval(t, `document.getElementById('x').textContent`, &text)
	if text != "hi" {
		t.Errorf("text %q", text)
	}
	probs := strings.Join(p.Problems(), "\n")
	for _, want := range []string{"broken on purpose", "undefinedFunction"} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems do not mention %q:\n%s", want, probs)
		}
	}
	if reqs := strings.Join(p.Requests(), " "); !strings.Contains(reqs, "127.0.0.1:9/nothing.png") {
		t.Errorf("requests %s, want the image", reqs)
	}
}
