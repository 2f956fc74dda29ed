package ssh

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keyring loads and caches signers: each identity file is read (and its
// passphrase asked) at most once per run, whatever the number of hosts.
type keyring struct {
	cfg *Config

	mu      sync.Mutex
	files   map[string]fileKey // path → loaded signers or the error
	agent   agent.ExtendedAgent
	agentOK bool
	envKey  []ssh.Signer
	envErr  error
	envDone bool
}

type fileKey struct {
	signers []ssh.Signer
	err     error
}

// namedSigner remembers where a key came from, for the "tried keys" message.
type namedSigner struct {
	ssh.Signer
	source string
}

func newKeyring(cfg *Config) *keyring {
	return &keyring{cfg: cfg, files: map[string]fileKey{}}
}

var defaultKeyNames = []string{"id_ed25519", "id_ecdsa", "id_rsa", "id_ed25519_sk", "id_ecdsa_sk"}

// signers returns every signer to offer to e, in OpenSSH's order: explicit
// files (flag, then the endpoint's own), FERRY_SSH_KEY, the agent, default keys.
func (k *keyring) signers(e endpoint) ([]namedSigner, []string, error) {
	var out []namedSigner
	var tried []string
	var firstErr error
	seen := map[string]bool{}
	add := func(s ssh.Signer, source string) {
		fp := string(s.PublicKey().Marshal())
		if seen[fp] {
			return
		}
		seen[fp] = true
		out = append(out, namedSigner{s, source})
		tried = append(tried, source)
	}
	files := append([]string{}, k.cfg.IdentityFiles...)
	files = append(files, e.identities...)
	for _, f := range files {
		ss, err := k.file(f, true)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, s := range ss {
			add(s, f)
		}
	}
	if len(k.cfg.KeyPEM) > 0 {
		ss, err := k.env()
		if err != nil {
			return nil, nil, err
		}
		for _, s := range ss {
			add(s, "FERRY_SSH_KEY")
		}
	}
	if a := k.agentClient(); a != nil {
		if ss, err := a.Signers(); err == nil {
			for _, s := range ss {
				add(s, "agent:"+ssh.FingerprintSHA256(s.PublicKey()))
			}
		}
	}
	if !k.cfg.NoDefaultKeys && len(files) == 0 {
		home := k.cfg.home()
		for _, n := range defaultKeyNames {
			p := filepath.Join(home, ".ssh", n)
			ss, err := k.file(p, false)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) && firstErr == nil {
					firstErr = err
				}
				continue
			}
			for _, s := range ss {
				add(s, p)
			}
		}
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, nil, firstErr
		}
		return nil, nil, errors.New("no SSH key to offer: pass --private-key, set FERRY_SSH_KEY, start ssh-agent, or create ~/.ssh/id_ed25519")
	}
	return out, tried, nil
}

func (k *keyring) file(path string, explicit bool) ([]ssh.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if fk, ok := k.files[path]; ok {
		return fk.signers, fk.err
	}
	ss, err := k.loadFile(path, explicit)
	k.files[path] = fileKey{ss, err}
	return ss, err
}

func (k *keyring) loadFile(path string, explicit bool) ([]ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("identity file %s does not exist: fix the path in the inventory, ssh config or --private-key", path)
		}
		return nil, fmt.Errorf("read identity file: %w", err)
	}
	s, err := k.parse(pem, path)
	if err != nil {
		return nil, err
	}
	ss := []ssh.Signer{s}
	// An OpenSSH certificate next to the key (id_x-cert.pub) is offered first, as ssh does.
	if cs, ok := loadCert(path+"-cert.pub", s); ok {
		ss = []ssh.Signer{cs, s}
	}
	return ss, nil
}

func loadCert(path string, s ssh.Signer) (ssh.Signer, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, false
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, false
	}
	cs, err := ssh.NewCertSigner(cert, s)
	if err != nil {
		return nil, false
	}
	return cs, true
}

// parse decodes a private key, using the passphrase from the environment or the prompt.
func (k *keyring) parse(pem []byte, what string) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(pem)
	if err == nil {
		return s, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, fmt.Errorf("parse private key %s: %w", what, err)
	}
	pass := k.cfg.Passphrase
	if len(pass) == 0 && k.cfg.Prompt != nil {
		pass, err = k.cfg.Prompt(fmt.Sprintf("Enter passphrase for %s: ", what))
		if err != nil {
			return nil, fmt.Errorf("read passphrase for %s: %w", what, err)
		}
	}
	if len(pass) == 0 {
		return nil, fmt.Errorf("private key %s is encrypted: set FERRY_SSH_KEY_PASSPHRASE or run on a terminal to be asked", what)
	}
	s, err = ssh.ParsePrivateKeyWithPassphrase(pem, pass)
	if err != nil {
		return nil, fmt.Errorf("decrypt private key %s: %w (check FERRY_SSH_KEY_PASSPHRASE)", what, err)
	}
	return s, nil
}

func (k *keyring) env() ([]ssh.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.envDone {
		return k.envKey, k.envErr
	}
	k.envDone = true
	pem := []byte(strings.TrimSpace(string(k.cfg.KeyPEM)) + "\n")
	// CI systems often flatten newlines in secrets to a literal \n.
	if !strings.Contains(string(pem[:len(pem)-1]), "\n") {
		pem = []byte(strings.ReplaceAll(string(pem), `\n`, "\n"))
	}
	s, err := k.parse(pem, "FERRY_SSH_KEY")
	if err != nil {
		k.envErr = err
		return nil, err
	}
	k.envKey = []ssh.Signer{s}
	return k.envKey, nil
}

func (k *keyring) agentClient() agent.ExtendedAgent {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.agentOK {
		return k.agent
	}
	k.agentOK = true
	sock := k.cfg.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock == "" || sock == "none" {
		return nil
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		if k.cfg.Log != nil {
			k.cfg.Log("ssh-agent at %s: %v", sock, err)
		}
		return nil
	}
	k.agent = agent.NewClient(c)
	return k.agent
}
