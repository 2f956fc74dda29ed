package cli

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/playbooks"
)

// The runner calls HostDone from every host's goroutine at once: recording
// releases must not share unguarded state between them (a "concurrent map
// writes" fatal mid-rollout). Run under -race (make test does); the records
// themselves travel with the unlock (TestRoundTripBudget checks they land).
func TestHostDoneConcurrentHosts(t *testing.T) {
	c := &RunCmd{}
	c.Playbook = "deploy.yml"
	opts := &playbooks.Options{RunID: "r1", Version: "1.0", User: "u",
		Extra: map[string]any{"version": "1.0", "token": "s3cret", "region": "eu"}}
	c.runHooks(&playbooks.Playbook{}, &envHosts{}, nil, opts, func() {})
	play := &playbooks.Play{Secrets: []string{"token"}}
	const hosts = 16
	var wg sync.WaitGroup
	errs := make(chan error, hosts)
	for i := range hosts {
		wg.Go(func() {
			errs <- opts.HostDone(context.Background(), playbooks.HostDone{Play: play,
				Host: &inventory.Host{Name: fmt.Sprintf("app%d", i)}, Extra: map[string]any{"region": "eu"},
				Vars: map[string]any{"app": "api"}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
