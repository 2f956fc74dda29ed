package playbooks

import (
	"strings"

	"github.com/ferrydeploy/ferry/internal/template"
)

// The controller's environment holds credentials (AWS keys, CI tokens,
// ferry's own SSH key and become password). A playbook sees the controller's
// environment as env_vars, but not those: a template or a debug task could
// otherwise print them, or send them to every host. A play that needs one
// names it in secrets: as env_vars.NAME; it is then in env_vars for that
// play, and masked in every output. ferry's own SSH key and become password
// are never exposed.

// envSecretPrefix marks an environment variable in a play's secrets: list.
const envSecretPrefix = "env_vars."

// ControllerSecrets returns the values of the controller's own credentials
// in the environment getenv reads (ferry's SSH key and passphrase, the become password,
// AWS secret keys), for the output mask.
func ControllerSecrets(getenv func(string) string) []string {
	var out []string
	for _, k := range []string{"FERRY_SSH_KEY", "FERRY_SSH_KEY_PASSPHRASE", "FERRY_BECOME_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"} {
		if v := getenv(k); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// namedEnv returns the credential-like environment variables play names in
// secrets: (env_vars.NAME) that are set in environ, by name.
func namedEnv(play *Play, environ []string) map[string]string {
	var out map[string]string
	for _, name := range play.Secrets {
		k, ok := strings.CutPrefix(name, envSecretPrefix)
		if !ok || template.ControllerSecrets[k] {
			continue
		}
		if v, ok := lookupEnv(environ, k); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// envVarsWith is env_vars plus the variables a play named.
func envVarsWith(base any, named map[string]string) map[string]any {
	m, _ := base.(map[string]any)
	out := make(map[string]any, len(m)+len(named))
	for k, v := range m {
		out[k] = v
	}
	for k, v := range named {
		out[k] = v
	}
	return out
}

// lookupEnv finds k in environ (KEY=VALUE; the last one wins, as in exec).
func lookupEnv(environ []string, k string) (string, bool) {
	v, ok := "", false
	for _, kv := range environ {
		if name, val, found := strings.Cut(kv, "="); found && name == k {
			v, ok = val, true
		}
	}
	return v, ok
}

// PublicExtra is what of the -e values extra may be written down (the run
// record, the hosts' release records): not version (recorded on its own),
// not a name any play of pb declares in secrets: (a later play's too),
// and not a name that looks like a credential.
func PublicExtra(pb *Playbook, extra map[string]any) map[string]any {
	secret := map[string]bool{}
	if pb != nil {
		for _, p := range pb.Plays {
			for _, s := range p.Secrets {
				secret[s] = true
			}
		}
	}
	out := map[string]any{}
	for k, v := range extra {
		if k != "version" && !secret[k] && !template.CredentialEnv(k) {
			out[k] = v
		}
	}
	return out
}
