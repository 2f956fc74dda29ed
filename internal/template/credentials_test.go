package template

import (
	"slices"
	"strings"
	"testing"
)

// lookup('env') follows env_vars' rule: the controller's credentials,
// ferry's own become password first, are not for playbooks to read, even
// when the environment given to the template holds them.
func TestLookupEnvRefusesCredentials(t *testing.T) {
	vars := map[string]any{"env_vars": map[string]any{
		"FERRY_BECOME_PASSWORD": "s3cr3t-become", "DEPLOY_API_TOKEN": "s3cr3t-token", "APP_COLOUR": "blue",
	}}
	for _, name := range []string{"FERRY_BECOME_PASSWORD", "DEPLOY_API_TOKEN", "FERRY_SSH_KEY"} {
		v, err := RenderValue("{{ lookup('env', '"+name+"') }}", vars)
		if err == nil || !strings.Contains(err.Error(), "secrets:") || strings.Contains(Text(v), "s3cr3t") {
			t.Errorf("lookup('env', %s) = %v, %v; want refused", name, v, err)
		}
	}
	if v, err := RenderValue("{{ lookup('env', 'APP_COLOUR') }}", vars); err != nil || v != "blue" {
		t.Errorf("lookup('env', 'APP_COLOUR') = %v, %v", v, err)
	}
}

func TestLocalEnvironDropsFerrysOwnSecrets(t *testing.T) {
	got := LocalEnviron([]string{"PATH=/bin", "FERRY_BECOME_PASSWORD=hunter2", "ferry_ssh_key=k", "FERRY_SSH_KEY_PASSPHRASE=p", "AWS_PROFILE=prod", "AWS_SECRET_ACCESS_KEY=s"})
	want := []string{"PATH=/bin", "AWS_PROFILE=prod", "AWS_SECRET_ACCESS_KEY=s"}
	if !slices.Equal(got, want) {
		t.Errorf("LocalEnviron = %q, want %q", got, want)
	}
}
