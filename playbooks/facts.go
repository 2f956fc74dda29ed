// Facts: when a play gathers them (gather_facts), and how they join a
// host's variables. The gatherer itself is the setup module (tasks/setup.go).

package playbooks

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/tasks"
)

// factVar reports whether name is a variable that gathering facts defines:
// ansible_facts, or ansible_NAME for a fact the gatherer returns. Interface
// facts (ansible_eth0) depend on the host, so any other ansible_ name that
// is not a connection or magic variable counts too.
func factVar(name string) bool {
	if name == "ansible_facts" {
		return true
	}
	rest, ok := strings.CutPrefix(name, "ansible_")
	if !ok {
		return false
	}
	for _, f := range tasks.FactNames {
		if f == rest {
			return true
		}
	}
	return false
}

// factText reports whether text mentions a fact by name: for reads that
// no reference shows, hostvars[h].ansible_default_ipv4 or a template file.
func factText(text string) bool {
	for i := strings.Index(text, "ansible_"); i >= 0; {
		j := i + len("ansible_")
		for j < len(text) && (text[j] == '_' || text[j] >= 'a' && text[j] <= 'z' || text[j] >= '0' && text[j] <= '9') {
			j++
		}
		if factVar(text[i:j]) {
			return true
		}
		next := strings.Index(text[j:], "ansible_")
		if next < 0 {
			break
		}
		i = j + next
	}
	return false
}

// Gathers reports whether the play gathers facts before its tasks.
// gather_facts: true or false says; when the key is absent (Ansible then
// gathers), ferry gathers only when the play reads a fact, so a playbook
// that uses none costs no command for them.
func (p *Play) Gathers(playbookDir string) bool {
	if p.GatherFacts != nil {
		return *p.GatherFacts
	}
	return p.UsesFacts(playbookDir)
}

// UsesFacts reports whether any expression of the play, or a template file
// its template tasks name, reads a fact.
func (p *Play) UsesFacts(playbookDir string) bool {
	for _, d := range p.Vars {
		for _, t := range d.templates {
			if readsFacts(t.Refs(), t.Src) {
				return true
			}
		}
	}
	if p.hostsTmpl != nil && readsFacts(p.hostsTmpl.Refs(), p.hostsTmpl.Src) {
		return true
	}
	for _, t := range p.AllTasks() {
		for _, tm := range t.templates {
			if readsFacts(tm.Refs(), tm.Src) {
				return true
			}
		}
		for _, list := range []Conds{t.When, t.Until, t.ChangedWhen, t.FailedWhen, t.argExprs} {
			for _, e := range list {
				if readsFacts(e.Refs(), e.Src) {
					return true
				}
			}
		}
		if src, ok := t.Args["src"].(string); ok && t.Spec.RoleDir == "templates" && !template.HasTemplate(src) {
			if !filepath.IsAbs(src) {
				src = filepath.Join(t.srcDir(playbookDir), src)
			}
			if b, err := os.ReadFile(src); err == nil && factText(string(b)) {
				return true
			}
		}
	}
	return false
}

// readsFacts: an expression reads a fact by name, or through hostvars
// (hostvars[h].ansible_default_ipv4, whose name is only in the text).
func readsFacts(refs []template.Ref, src string) bool {
	for _, r := range refs {
		if factVar(r.Name) || r.Name == "hostvars" && factText(src) {
			return true
		}
	}
	return false
}
