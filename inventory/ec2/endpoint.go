package ec2

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/ferrydeploy/ferry/awsapi"
	"gopkg.in/yaml.v3"
)

// An inventory file names where ferry sends signed AWS requests (and, with
// assumed roles, session tokens) when it sets endpoint_url: a file from a
// repository must not be able to send them somewhere else unnoticed. So a
// non-AWS endpoint from a file is warned about, plain http is refused unless
// it stays on this machine (an emulator), and AWS_ENDPOINT_URL set by the
// operator wins over the file.

// endpointURL checks the endpoint_url option; "" when it is refused.
func (p *parser) endpointURL(v *yaml.Node, c *config) string {
	raw := strings.TrimSpace(p.scalar(v))
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.fail(v, "e.g. endpoint_url: https://ec2.eu-west-1.amazonaws.com", "endpoint_url: %q is not an http(s) URL", raw)
		return ""
	}
	host := u.Hostname()
	if u.Scheme == "http" && !isLoopback(host) {
		p.fail(v, "use https, or set AWS_ENDPOINT_URL for a local emulator",
			"endpoint_url: plain http to %s would send signed requests and session tokens in clear", host)
		return ""
	}
	if !isAWSHost(host) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: endpoint_url %s is not an AWS endpoint: ferry sends its signed AWS requests there (set AWS_ENDPOINT_URL instead if that is intended)",
			p.file, v.Line, u.Redacted()))
	}
	return raw
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isAWSHost reports whether host is in one of AWS's own domains.
func isAWSHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range []string{".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov"} {
		if strings.HasSuffix(h, d) {
			return true
		}
	}
	return false
}

// endpointFromEnv is the endpoint the operator set for EC2 in the
// environment (the SDK's own variables); it wins over the file's.
func endpointFromEnv(env awsapi.LookupEnv) string {
	for _, k := range []string{"AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"} {
		if v, _ := env(k); v != "" {
			return k
		}
	}
	return ""
}
