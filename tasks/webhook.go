package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func init() { Register(webhookModule{}) }

// webhookModule posts a Slack-compatible message ({"text": ...}) from the
// controller. The webhook URL is a secret (it is the credential), so it never
// appears in messages or results: only its scheme and host do.
type webhookModule struct{}

const webhookTimeout = 10 * time.Second

func (webhookModule) Spec() Spec {
	return Spec{
		Name:       "webhook",
		Doc:        "Post a message to a chat webhook (Slack, Mattermost, Teams) from the controller",
		Controller: true,
		Params: map[string]Param{
			"url":      {Type: String, Required: true, Doc: "incoming-webhook URL (Slack, Mattermost, Teams-compatible)"},
			"text":     {Type: String, Required: true, Doc: "message text"},
			"channel":  {Type: String, Doc: "channel override, where the service allows it"},
			"username": {Type: String, Doc: "sender name override"},
		},
	}
}

// maskURL keeps what identifies the service, never the path or query that
// hold the token.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<webhook>"
	}
	return u.Scheme + "://" + u.Host + "/***"
}

func (webhookModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("webhook", args)
	hook, text := a.String("url", ""), a.String("text", "")
	channel, user := a.String("channel", ""), a.String("username", "")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	masked := maskURL(hook)
	u, err := url.Parse(hook)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Outcome{}, errors.New("webhook: url is not an http(s) URL: check the variable that holds it")
	}
	if h.Check {
		return Outcome{Msg: fmt.Sprintf("check mode: would post to %s: %s", masked, text)}, nil
	}
	payload := map[string]string{"text": text}
	if channel != "" {
		payload["channel"] = channel
	}
	if user != "" {
		payload["username"] = user
	}
	body, _ := json.Marshal(payload)
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return Outcome{}, fmt.Errorf("webhook %s: cannot build the request", masked)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error would print the whole URL
		}
		return Outcome{Failed: true, Msg: fmt.Sprintf("webhook %s: %s", masked, strings.ReplaceAll(err.Error(), hook, masked))}, nil
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	result := map[string]any{"status": resp.StatusCode, "webhook": masked}
	if resp.StatusCode/100 != 2 {
		return Outcome{Failed: true, Msg: fmt.Sprintf("webhook %s: status %d%s", masked, resp.StatusCode, bodyHint(reply)), Result: result}, nil
	}
	return Outcome{Msg: "notified " + masked, Result: result}, nil
}
