package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

func init() { Register(addHostModule{}) }

// addHostModule adds a host to the run's inventory for later plays. Like
// Ansible it runs once per batch (Spec.Once); its other keys are the host's
// variables (ansible_host, ansible_user, ...).
type addHostModule struct{}

func (addHostModule) Spec() Spec {
	return Spec{
		Name:       "add_host",
		Doc:        "Add a host (and its variables) to the run's inventory, for later plays' hosts:",
		Controller: true,
		Inventory:  true,
		Once:       true,
		AnyParams:  true,
		Params: map[string]Param{
			"name":   {Type: String, Required: true, Doc: "the host's name (ansible_host sets its address)"},
			"groups": {Type: List, Doc: "groups to put the host in, created if needed; other keys are the host's variables"},
		},
		Returns: map[string]string{"add_host": "host_name, groups and host_vars"},
	}
}

func (addHostModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("add_host", args)
	name := strings.TrimSpace(a.String("name", ""))
	var groups []string
	for _, g := range a.StringList("groups") {
		groups = append(groups, strings.Split(g, ",")...) // Ansible's "a,b"
	}
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if name == "" || strings.ContainsAny(name, " \t,:") {
		return Outcome{}, errors.New("add_host: name must be a host name without spaces, commas or colons")
	}
	for _, g := range groups {
		if !groupNameRe.MatchString(g) {
			return Outcome{}, fmt.Errorf("add_host: %q is not a group name: use letters, digits, _ . -", g)
		}
	}
	vars := map[string]any{}
	for k, v := range args {
		if k != "name" && k != "groups" {
			vars[k] = v
		}
	}
	return Outcome{
		Changed:   true,
		Msg:       "host " + name,
		Result:    map[string]any{"add_host": map[string]any{"host_name": name, "groups": groups, "host_vars": vars}},
		Inventory: []InventoryChange{{Host: name, Vars: vars, Groups: groups}},
	}, nil
}
