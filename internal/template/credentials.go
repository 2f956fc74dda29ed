package template

import "strings"

// ControllerSecrets are environment variables that hold ferry's own
// credentials: playbooks never see them, through env_vars or lookup('env').
var ControllerSecrets = map[string]bool{
	"FERRY_SSH_KEY": true, "FERRY_SSH_KEY_PASSPHRASE": true, "FERRY_BECOME_PASSWORD": true,
}

// LocalEnviron is environ (KEY=VALUE) without ferry's own secrets: the
// environment of commands ferry runs on the controller (delegate_to:
// localhost, ansible_connection=local), which keep the operator's other
// variables (PATH, HOME, AWS_PROFILE, ...) as Ansible's local connection does.
func LocalEnviron(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); !ControllerSecrets[strings.ToUpper(k)] {
			out = append(out, kv)
		}
	}
	return out
}

// credentialMarks are parts of variable names that say "credential".
var credentialMarks = []string{"TOKEN", "PASSWORD", "PASSWD", "SECRET", "PASSPHRASE", "PRIVATE_KEY", "API_KEY", "APIKEY", "CREDENTIAL"}

// CredentialEnv reports whether the controller variable k looks like a
// credential, and so stays out of env_vars unless a play names it; the
// same rule refuses it to lookup('env').
func CredentialEnv(k string) bool {
	u := strings.ToUpper(k)
	if ControllerSecrets[u] || strings.HasPrefix(u, "AWS_ACCESS_KEY") || u == "AWS_SESSION_TOKEN" || u == "AWS_SECURITY_TOKEN" {
		return true
	}
	for _, m := range credentialMarks {
		if strings.Contains(u, m) {
			return true
		}
	}
	return false
}
