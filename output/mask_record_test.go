package output

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/events"
)

// The mask reaches every field a record keeps: an undo's rendered
// arguments and state, the run's -e values, who and where.
func TestMaskReachesUndoAndExtra(t *testing.T) {
	var got []events.Event
	m := NewMask(events.SinkFunc(func(e events.Event) { got = append(got, e) }))
	m.Add("hunter22-secret")
	args := map[string]any{"url": "https://x/?token=hunter22-secret", "list": []any{"a", "hunter22-secret"}}
	m.Emit(events.Event{Kind: events.Intent, Undo: &events.Undo{Module: "uri", Args: args, State: map[string]any{"k": "hunter22-secret"}}})
	m.Emit(events.Event{Kind: events.RunStart, Extra: map[string]any{"pw": "hunter22-secret"}, User: "hunter22-secret", Origin: "x hunter22-secret"})
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "hunter22") {
		t.Errorf("a secret reached the record: %s", b)
	}
	if args["url"] != "https://x/?token=hunter22-secret" {
		t.Error("the mask changed the emitter's own arguments")
	}
}
