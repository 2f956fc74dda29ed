package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
)

// CompletionCmd prints, installs or removes shell completion. The shell
// asks ferry itself for completions (COMP_LINE, answered by kongplete in
// Main), so every script only points the shell at this binary.
type CompletionCmd struct {
	Shell     string `arg:"" optional:"" enum:"bash,zsh,fish," default:"" help:"bash, zsh or fish (default: the shell $SHELL names)."`
	Install   bool   `xor:"action" help:"Install it: a block in ~/.bashrc or ~/.zshrc, or ~/.config/fish/completions/ferry.fish."`
	Uninstall bool   `xor:"action" help:"Remove what --install added."`
}

// completionScripts load completion for the binary at ${bin}.
var completionScripts = map[string]string{
	"bash": "complete -C ${bin} ferry\n",
	"zsh":  "autoload -U +X bashcompinit && bashcompinit\ncomplete -C ${bin} ferry\n",
	"fish": `function __complete_ferry
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    ${bin}
end
complete -f -c ferry -a "(__complete_ferry)"
`,
}

// The block --install adds to a shell's startup file, found again by --uninstall.
const (
	completionBegin = "# >>> ferry completion (ferry completion --uninstall removes this block) >>>\n"
	completionEnd   = "# <<< ferry completion <<<\n"
)

// Run implements the command.
func (c *CompletionCmd) Run(g *Globals) error {
	shell := c.Shell
	if shell == "" {
		shell = filepath.Base(g.env.Get("SHELL"))
		if _, ok := completionScripts[shell]; !ok {
			return diag.Invalidf("cannot tell the shell from SHELL=%q: name it, as in `ferry completion bash` (bash, zsh or fish)", g.env.Get("SHELL"))
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find ferry's own path: %w", err)
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return fmt.Errorf("find ferry's own path: %w", err)
	}
	script := strings.ReplaceAll(completionScripts[shell], "${bin}", bin)
	if !c.Install && !c.Uninstall {
		fmt.Fprint(g.stdout, script)
		return nil
	}
	home := g.env.Get("HOME")
	if home == "" {
		return diag.Invalidf("no home directory to install completion in: set HOME")
	}
	if shell == "fish" {
		return c.fish(g, filepath.Join(home, ".config", "fish", "completions", "ferry.fish"), script)
	}
	rc := filepath.Join(home, "."+shell+"rc")
	old, err := os.ReadFile(rc)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", rc, err)
	}
	rest, had := cutBlock(string(old))
	var next string
	switch {
	case c.Uninstall && !had:
		fmt.Fprintf(g.stdout, "no ferry completion in %s: nothing to remove\n", rc)
		return nil
	case c.Uninstall:
		next = rest
	default:
		if rest != "" && !strings.HasSuffix(rest, "\n") {
			rest += "\n"
		}
		next = rest + completionBegin + script + completionEnd
	}
	if err := os.WriteFile(rc, []byte(next), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", rc, err)
	}
	if c.Uninstall {
		fmt.Fprintf(g.stdout, "removed ferry completion from %s\n", rc)
	} else {
		fmt.Fprintf(g.stdout, "installed ferry completion in %s (new shells load it; this one: source %s)\n", rc, rc)
	}
	return nil
}

// fish reads every file in its completions directory: the script is one.
func (c *CompletionCmd) fish(g *Globals, file, script string) error {
	if c.Uninstall {
		err := os.Remove(file)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(g.stdout, "no ferry completion at %s: nothing to remove\n", file)
			return nil
		}
		if err != nil {
			return fmt.Errorf("remove %s: %w", file, err)
		}
		fmt.Fprintf(g.stdout, "removed %s\n", file)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("install completion: %w", err)
	}
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return fmt.Errorf("install completion: %w", err)
	}
	fmt.Fprintf(g.stdout, "installed ferry completion at %s (new fish shells load it)\n", file)
	return nil
}

// cutBlock removes the block --install added from a startup file's text.
func cutBlock(s string) (string, bool) {
	i := strings.Index(s, completionBegin)
	if i < 0 {
		return s, false
	}
	j := strings.Index(s[i:], completionEnd)
	if j < 0 {
		return s[:i], true
	}
	return s[:i] + s[i+j+len(completionEnd):], true
}
