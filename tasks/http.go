package tasks

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/internal/value"
)

func init() { Register(httpModule{}) }

// httpModule makes an HTTP request from the host's side of the SSH
// connection (a direct-tcpip channel per connection), so 127.0.0.1:8080 is
// the host's own port and nothing needs to be installed there.
type httpModule struct{}

const (
	maxHTTPBody    = 4 << 20  // read at most this much of a response
	maxResultBody  = 64 << 10 // keep at most this much in Result["body"]
	maxHTTPRetries = 1000
)

func (httpModule) Spec() Spec {
	return Spec{
		Name: "http",
		Doc:  "Request a URL from the host and check the status and body: smoke tests and health checks, with retries",
		Params: map[string]Param{
			"url":              {Type: String, Required: true, Doc: "URL as seen from the host (http://127.0.0.1:8080/status)"},
			"method":           {Type: String, Doc: "default GET"},
			"headers":          {Type: Map, Doc: "request headers"},
			"url_username":     {Type: String, Doc: "user for HTTP basic authentication (sent with the first request)"},
			"url_password":     {Type: String, Doc: "password for HTTP basic authentication"},
			"force_basic_auth": {Type: Bool, Doc: "accepted: credentials are always sent with the first request"},
			"body":             {Type: Any, Doc: "request body: a string, or a mapping/list sent as JSON"},
			"status":           {Type: Any, Doc: "expected status: an integer or a list (default 200)"},
			"body_contains":    {Type: String, Doc: "text the response body must contain"},
			"json":             {Type: Map, Doc: "dotted path (a.b.0.c) → expected value in the JSON response"},
			"timeout":          {Type: Duration, Doc: "per attempt (default 10s)"},
			"retries":          {Type: Int, Doc: "further attempts after a failed one (default 0)"},
			"delay":            {Type: Duration, Doc: "time from one attempt's start to the next's (default 1s; an attempt that took longer is followed at once)"},
			"validate_certs":   {Type: Bool, Doc: "verify TLS certificates (default true)"},
		},
	}
}

type httpCheck struct {
	url, method, contains string
	headers               map[string]string
	user, password        string
	body                  []byte
	jsonBody              bool
	status                []int
	want                  map[string]any
	timeout               time.Duration
}

func (httpModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("http", args)
	c := &httpCheck{
		url:      a.String("url", ""),
		method:   strings.ToUpper(a.String("method", "GET")),
		contains: a.String("body_contains", ""),
		headers:  a.StringMap("headers"),
		want:     a.Map("json"),
		timeout:  a.Duration("timeout", 10*time.Second),
		user:     a.String("url_username", ""),
		password: a.String("url_password", ""),
	}
	a.Bool("force_basic_auth", false)
	retries := a.Int("retries", 0)
	delay := a.Duration("delay", time.Second)
	validate := a.Bool("validate_certs", true)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if retries < 0 || retries > maxHTTPRetries {
		return Outcome{}, fmt.Errorf("http: retries must be between 0 and %d", maxHTTPRetries)
	}
	var err error
	if c.status, err = statusList(a.Raw("status")); err != nil {
		return Outcome{}, fmt.Errorf("http: status: %w", err)
	}
	switch b := a.Raw("body").(type) {
	case nil:
	case string:
		c.body = []byte(b)
	default:
		if c.body, err = json.Marshal(b); err != nil {
			return Outcome{}, fmt.Errorf("http: body: %w", err)
		}
		c.jsonBody = true
	}
	if h.Check {
		return Outcome{Skipped: true, Msg: fmt.Sprintf("check mode: would request %s %s", c.method, shownURL(c.url))}, nil
	}
	if h.Conn == nil {
		return Outcome{}, errors.New("http: no connection to the host")
	}
	tr := &http.Transport{
		DialContext:       h.Conn.DialContext,
		Proxy:             nil, // the request is made from the host, never through a proxy
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: !validate},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	var result map[string]any
	var reason string
	for attempt := 1; ; attempt++ {
		// delay paces attempts, from start to start: a host that answers is
		// seen within delay of answering, however long a failed attempt took.
		began := time.Now()
		result, reason = c.try(ctx, client)
		result["attempts"] = attempt
		result["url"], reason = shownURL(c.url), hideURL(reason, c.url) // a query may be the credential
		if reason == "" {
			return Outcome{Msg: fmt.Sprintf("%s %s: %v", c.method, shownURL(c.url), result["status"]), Result: result}, nil
		}
		if attempt > retries || ctx.Err() != nil {
			break
		}
		wait := max(delay-time.Since(began), 0)
		if h.Output != nil {
			h.Output(fmt.Sprintf("attempt %d/%d: %s; retrying in %s", attempt, retries+1, reason, wait.Round(time.Millisecond)))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	if err := ctx.Err(); err != nil {
		return Outcome{}, fmt.Errorf("http %s: %w (last: %s)", shownURL(c.url), err, reason)
	}
	return Outcome{Failed: true, Msg: fmt.Sprintf("%s %s: %s", c.method, shownURL(c.url), reason), Result: result}, nil
}

// try makes one request; reason says why it did not pass ("" if it did).
func (c *httpCheck) try(ctx context.Context, client *http.Client) (map[string]any, string) {
	result := map[string]any{"url": c.url, "status": 0}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		return result, err.Error()
	}
	if c.jsonBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" || c.password != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	for k, v := range c.headers {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return result, "request failed: " + err.Error()
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
	result["status"] = resp.StatusCode
	result["content_type"] = resp.Header.Get("Content-Type")
	shown := data
	if len(shown) > maxResultBody {
		shown = shown[:maxResultBody]
	}
	result["body"] = string(shown)
	result["content"] = result["body"] // Ansible uri's name for it (return_content)
	if err != nil {
		return result, "read body: " + err.Error()
	}
	var doc any
	jsonErr := json.Unmarshal(data, &doc)
	if jsonErr == nil {
		result["json"] = doc
	}
	okStatus := false
	for _, s := range c.status {
		okStatus = okStatus || s == resp.StatusCode
	}
	if !okStatus {
		return result, fmt.Sprintf("status %d, want %s%s", resp.StatusCode, statusText(c.status), bodyHint(data))
	}
	if c.contains != "" && !bytes.Contains(data, []byte(c.contains)) {
		return result, fmt.Sprintf("body does not contain %q%s", c.contains, bodyHint(data))
	}
	if len(c.want) > 0 {
		if jsonErr != nil {
			return result, "response is not JSON" + bodyHint(data)
		}
		for _, p := range slices.Sorted(maps.Keys(c.want)) {
			got, ok := JSONPath(doc, p)
			if !ok {
				return result, fmt.Sprintf("json %s: missing", p)
			}
			if !jsonMatch(c.want[p], got) {
				g, _ := json.Marshal(got)
				return result, fmt.Sprintf("json %s is %s, want %v", p, g, c.want[p])
			}
		}
	}
	return result, ""
}

func bodyHint(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return " (body: " + strings.ReplaceAll(s, "\n", " ") + ")"
}

func statusList(v any) ([]int, error) {
	if v == nil {
		return []int{200}, nil
	}
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	var out []int
	for _, it := range items {
		n, ok := value.Int(it)
		if !ok || n < 100 || n > 599 {
			return nil, fmt.Errorf("%v is not an HTTP status", it)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func statusText(s []int) string {
	parts := make([]string, len(s))
	for i, n := range s {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, " or ")
}

// JSONPath follows a dotted path (a.b.0.c) through decoded JSON: keys of
// objects, indexes of arrays.
func JSONPath(doc any, p string) (any, bool) {
	cur := doc
	if p == "" {
		return cur, true
	}
	for _, seg := range strings.Split(p, ".") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// jsonMatch compares an expected value from a playbook with a decoded JSON
// value: scalars by their text ("1.2.3" = "1.2.3", 200 = 200.0, "true" =
// true), lists and mappings deeply after a JSON round trip.
func jsonMatch(want, got any) bool {
	ws, wScalar := jsonText(want)
	gs, gScalar := jsonText(got)
	if wScalar && gScalar {
		return ws == gs
	}
	if wScalar != gScalar {
		return false
	}
	b, err := json.Marshal(want)
	if err != nil {
		return false
	}
	var norm any
	if json.Unmarshal(b, &norm) != nil {
		return false
	}
	return reflect.DeepEqual(norm, got)
}

func jsonText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "null", true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case []any, map[string]any, map[any]any, []string, map[string]string:
		return "", false
	}
	s, ok := scalarString(v)
	return s, ok
}
