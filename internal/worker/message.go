// Package worker is `ferry worker`: it consumes an SQS FIFO queue of deploy
// requests (written by `ferry enqueue`) and Auto Scaling launch lifecycle
// notifications, runs each as `ferry run` would, keeps the message hidden
// from other workers while the run lasts, deletes it on success and leaves
// failures to the queue's redrive policy. What a run is, how the queue and
// Auto Scaling are reached, are interfaces the CLI fills in.
package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RequestKind marks a deploy request's JSON, so that a worker can tell it
// from anything else put on its queue.
const RequestKind = "ferry.deploy-request/v1"

// Request is a deploy request: `ferry enqueue PLAYBOOK --env E -e ...`.
type Request struct {
	Kind        string         `json:"kind"`
	Playbook    string         `json:"playbook"`
	Environment string         `json:"environment"`
	ExtraVars   map[string]any `json:"extra_vars,omitempty"`
	Who         string         `json:"who"`
	Origin      string         `json:"origin,omitempty"`  // where it was enqueued: CI job or host
	JobURL      string         `json:"job_url,omitempty"` // the CI job that asked
	DedupID     string         `json:"deduplication_id"`
	Time        time.Time      `json:"requested_at"`
}

// Validate says what is missing from a request.
func (r *Request) Validate() error {
	switch {
	case r.Playbook == "":
		return errors.New("deploy request names no playbook")
	case r.Environment == "":
		return errors.New("deploy request names no environment")
	}
	return nil
}

// Version is the request's version extra variable ("" when none).
func (r *Request) Version() string {
	if v, ok := r.ExtraVars["version"]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

// Launch is an Auto Scaling autoscaling:EC2_INSTANCE_LAUNCHING lifecycle
// notification, in the shape AWS sends it to the hook's SQS target.
type Launch struct {
	Origin               string `json:"Origin"`
	Destination          string `json:"Destination"`
	LifecycleHookName    string `json:"LifecycleHookName"`
	AccountID            string `json:"AccountId"`
	RequestID            string `json:"RequestId"`
	LifecycleTransition  string `json:"LifecycleTransition"`
	AutoScalingGroupName string `json:"AutoScalingGroupName"`
	Service              string `json:"Service"`
	Time                 string `json:"Time"`
	EC2InstanceID        string `json:"EC2InstanceId"`
	LifecycleActionToken string `json:"LifecycleActionToken"`
	// NotificationMetadata is the hook's free-form metadata; ferry reads
	// a JSON object with "environment" and "playbook" from it.
	NotificationMetadata string `json:"NotificationMetadata,omitempty"`
}

// LaunchMetadata is what a hook's NotificationMetadata may tell the worker.
type LaunchMetadata struct {
	Environment string `json:"environment"`
	Playbook    string `json:"playbook"`
}

// Metadata decodes NotificationMetadata ({} when there is none).
func (l *Launch) Metadata() (LaunchMetadata, error) {
	var m LaunchMetadata
	s := strings.TrimSpace(l.NotificationMetadata)
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return m, fmt.Errorf("notification metadata of hook %s is not a JSON object like {\"environment\":\"prod\",\"playbook\":\"deploy.yml\"}: %w", l.LifecycleHookName, err)
	}
	return m, nil
}

// Message kinds Parse tells apart.
const (
	KindRequest = "deploy request"
	KindLaunch  = "launch"
	KindTest    = "test notification"
)

// Parsed is one message body, decoded.
type Parsed struct {
	Kind    string
	Request *Request
	Launch  *Launch
}

// maxBody bounds what Parse decodes (SQS's own limit is 256 KiB).
const maxBody = 256 << 10

// Parse decodes a message body: a deploy request, a launch notification,
// or the test notification Auto Scaling sends when a hook is created.
// Anything else is an error saying what the worker accepts.
func Parse(body string) (*Parsed, error) {
	if len(body) > maxBody {
		return nil, fmt.Errorf("message of %d bytes: larger than SQS allows (%d)", len(body), maxBody)
	}
	var probe struct {
		Kind                string `json:"kind"`
		Event               string `json:"Event"`
		LifecycleTransition string `json:"LifecycleTransition"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return nil, fmt.Errorf("message is not JSON (want a ferry deploy request or an Auto Scaling lifecycle notification): %w", err)
	}
	switch {
	case probe.Kind == RequestKind:
		var r Request
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, fmt.Errorf("deploy request: %w", err)
		}
		if err := r.Validate(); err != nil {
			return nil, err
		}
		return &Parsed{Kind: KindRequest, Request: &r}, nil
	case probe.Event == "autoscaling:TEST_NOTIFICATION":
		return &Parsed{Kind: KindTest}, nil
	case probe.LifecycleTransition == "autoscaling:EC2_INSTANCE_LAUNCHING":
		var l Launch
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			return nil, fmt.Errorf("launch notification: %w", err)
		}
		if l.AutoScalingGroupName == "" || l.LifecycleHookName == "" || l.EC2InstanceID == "" {
			return nil, errors.New("launch notification without AutoScalingGroupName, LifecycleHookName or EC2InstanceId")
		}
		return &Parsed{Kind: KindLaunch, Launch: &l}, nil
	case probe.LifecycleTransition != "":
		return nil, fmt.Errorf("lifecycle transition %s: the worker handles autoscaling:EC2_INSTANCE_LAUNCHING only; point other hooks elsewhere", probe.LifecycleTransition)
	case probe.Kind != "":
		return nil, fmt.Errorf("message kind %q: this worker understands %s", probe.Kind, RequestKind)
	}
	return nil, errors.New("message is neither a ferry deploy request nor an Auto Scaling lifecycle notification")
}
