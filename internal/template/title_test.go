package template

import (
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// title is Jinja's: words start after whitespace, '-', '(', '{', '[' or '<'
// (so "o'neil" is one word, unlike Go's deprecated strings.Title).
func TestTitleFilter(t *testing.T) {
	for src, want := range map[string]string{
		"hello WORLD":       "Hello World",
		"o'neil mcDONALD":   "O'neil Mcdonald",
		"blue-green (beta)": "Blue-Green (Beta)",
		"ünïcode  x":        "Ünïcode  X",
		"":                  "",
	} {
		tp, err := CompileTemplate("{{ s | title }}", diag.Pos{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tp.RenderString(map[string]any{"s": src})
		if err != nil || got != want {
			t.Errorf("%q | title = %q, %v; want %q", src, got, err, want)
		}
	}
}
