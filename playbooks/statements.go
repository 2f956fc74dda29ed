package playbooks

import (
	"regexp"

	"gopkg.in/yaml.v3"
)

// jinjaStatementRe finds a Jinja statement ({% for %}, {% set %}, ...) in a
// string. ferry renders those in template files (the template module), and
// in a playbook's strings only {% if %} and {% raw %} (internal/template
// turns them into an expression), where Ansible would: printing one literally would
// ship text nobody meant, so the loader refuses it with what to write
// instead. Only Jinja's statement words count: `printf '{%s}'` in a shell
// command is not one.
var jinjaStatementRe = regexp.MustCompile(`\{%-?\s*(for|endfor|set|endset|macro|endmacro|call|endcall|filter|endfilter|with|endwith|block|endblock|include|import|from)\b`)

// statements reports every playbook string that holds a Jinja statement.
// Aliases are not followed: their anchor is reported where it stands.
func (l *loader) statements(n *yaml.Node) {
	if n == nil || n.Kind == yaml.AliasNode {
		return
	}
	if n.Kind == yaml.ScalarNode {
		if n.Tag != "!!str" {
			return
		}
		if loc := jinjaStatementRe.FindStringSubmatchIndex(n.Value); loc != nil {
			pos := scalarPosAt(l.path, l.src, n)(len([]rune(n.Value[:loc[0]])))
			l.errorf(pos, "use {% if %} or an inline expression, e.g. {{ 'yes' if flag else 'no' }}, or put the text in a file for the template module, which renders {% %}",
				"{%% %s %%} in a playbook string is not supported: ferry renders Jinja statements in template files only", n.Value[loc[2]:loc[3]])
		}
		return
	}
	for _, c := range n.Content {
		l.statements(c)
	}
}
