package tasks

import (
	"context"
	"fmt"
	"regexp"
)

func init() { Register(groupByModule{}) }

// groupByModule puts the host in a group named from its variables; later
// plays' hosts: patterns select the group (Spec.Inventory).
type groupByModule struct{}

func (groupByModule) Spec() Spec {
	return Spec{
		Name:       "group_by",
		Doc:        "Put the host in a group named from its variables, for later plays' hosts:",
		Controller: true,
		Inventory:  true,
		FreeForm:   "key",
		Params: map[string]Param{
			"key":     {Type: String, Required: true, Doc: "name of the group, usually templated (`role_{{ role }}`); created if needed"},
			"parents": {Type: List, Default: "all", Doc: "groups the group becomes a child of"},
		},
	}
}

// groupNameRe is what ferry's host patterns can name without quoting.
var groupNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (groupByModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("group_by", args)
	key := a.String("key", "")
	parents := a.StringList("parents")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	for _, g := range append([]string{key}, parents...) {
		if !groupNameRe.MatchString(g) {
			return Outcome{}, fmt.Errorf("group_by: %q is not a group name: use letters, digits, _ . -", g)
		}
	}
	return Outcome{
		Changed:   true,
		Msg:       "group " + key,
		Result:    map[string]any{"add_group": key, "parent_groups": parents},
		Inventory: []InventoryChange{{Host: h.Name, Groups: []string{key}, Parents: parents}},
	}, nil
}
