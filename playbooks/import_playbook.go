package playbooks

// import_playbook: an entry of a playbook that reads the plays of another
// playbook in its place, when the playbook loads (as Ansible does).

import (
	"path/filepath"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/internal/template"
)

// importKeys are the keys an import_playbook entry may have.
var importKeys = []string{"import_playbook", "name", "vars", "tags"}

// importPlaybook loads the plays of an `import_playbook:` entry (or of the
// old playbook-level `include:`). ok is false when n is not such an entry.
func (l *loader) importPlaybook(n *yaml.Node) (plays []*Play, ok bool) {
	if n.Kind != yaml.MappingNode {
		return nil, false
	}
	var fileNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := shortName(n.Content[i].Value); k == "import_playbook" || k == "include" {
			fileNode = l.resolve(n.Content[i+1])
		}
	}
	if fileNode == nil {
		return nil, false
	}
	var vars []*VarDef
	var tags []string
	for _, kv := range l.pairs(n, "import_playbook") {
		switch shortName(kv.key) {
		case "import_playbook", "include", "name":
		case "vars":
			vars = l.vars(kv.v)
		case "tags":
			tags = l.strList(kv.v, "tags")
		case "when":
			l.errorf(l.pos(kv.k), "put the condition on the imported plays' tasks", "when: on import_playbook is not supported")
		default:
			l.errorf(l.pos(kv.k), l.choiceHint(kv.key, importKeys), "unknown import_playbook key %q", kv.key)
		}
	}
	file := l.str(fileNode, "import_playbook")
	switch {
	case file == "":
		l.errorf(l.pos(fileNode), "e.g. - import_playbook: webservers.yml", "import_playbook: want a file name")
		return nil, true
	case template.HasTemplate(file):
		l.errorf(l.pos(fileNode), "name the file literally: ferry reads imported playbooks when the playbook loads", "import_playbook: {{ }} in a file name is not supported")
		return nil, true
	case l.depth > 20:
		l.errorf(l.pos(fileNode), "look for a playbook that imports itself, directly or through another", "import_playbook: playbooks import each other too deeply")
		return nil, true
	}
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(l.baseDir(), file)
	}
	sub, root := l.subLoader(path, fileNode, "import_playbook")
	if root == nil {
		return nil, true
	}
	defer l.merge(sub)
	if root.Kind != yaml.SequenceNode {
		sub.errorf(sub.pos(root), "a playbook is a list of plays: start with `- hosts: PATTERN`", "playbook must be a list of plays, not %s", kindName(root))
		return nil, true
	}
	sub.depth = l.depth + 1
	// the imported playbook's roles, task files and relative src paths are
	// found beside it, as in Ansible
	saved := l.seen.playbook
	l.seen.playbook = path
	defer func() { l.seen.playbook = saved }()
	if filepath.Dir(path) != filepath.Dir(saved) {
		sub.dir = filepath.Dir(path)
	}
	for _, item := range root.Content {
		if l.doc != nil && l.doc.Err() != nil {
			break
		}
		item = sub.resolve(item)
		if inner, ok := sub.importPlaybook(item); ok {
			plays = append(plays, inner...)
		} else if p := sub.play(item); p != nil {
			plays = append(plays, p)
		}
	}
	for _, p := range plays {
		p.Vars = append(slices.Clone(vars), p.Vars...)
		p.Tags = append(p.Tags, tags...)
	}
	return plays, true
}
