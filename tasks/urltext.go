package tasks

import (
	"net/url"
	"strings"
)

// shownURL is how a URL appears in output and results: a query string or
// a password often is the credential (?token=, presigned X-Amz-Signature),
// so they are replaced; scheme, host and path stay, to say what was asked.
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<url>"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// hideURL replaces raw, wherever it appears in s (an error from net/http
// quotes the whole URL), with its shownURL.
func hideURL(s, raw string) string {
	if raw == "" {
		return s
	}
	return strings.ReplaceAll(s, raw, shownURL(raw))
}
