package tui_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/tui"
	"github.com/ferrydeploy/ferry/tui/internal/demo"
)

// TestDemoThroughRun plays the simulated rollout (with a canary pause that
// is approved and one failing host) through Run on pipes, as tuidemo does
// in a terminal.
func TestDemoThroughRun(t *testing.T) {
	ctl := demo.NewController()
	ctl.Approve(true) // answers the pause after batch 1 ahead of time
	ch := make(chan events.Event, 64)
	go func() {
		defer close(ch)
		demo.Play(context.Background(), demo.Config{Hosts: 12, PauseAfter: 1, Fail: map[int]bool{4: true}, Step: time.Millisecond}, ctl,
			func(e events.Event) { ch <- e })
	}()
	inR, inW := io.Pipe()
	defer inW.Close()
	var out bytes.Buffer
	err := tui.Run(context.Background(), tui.Options{In: inR, Out: &out, NoColor: true, NoAltScreen: true, ExitOnFinish: true, Width: 100, Height: 30}, ch, ctl)
	if err != nil {
		t.Fatal(err)
	}
	got := ansi.Strip(out.String())
	recap := got[strings.LastIndex(got, "RECAP"):]
	for _, want := range []string{"run FAILED (exit 2)", "12 hosts: 11 ok, 1 rolled back", "api-05.prod.internal", "record: .ferry/runs/"} {
		if !strings.Contains(recap, want) {
			t.Errorf("recap lacks %q:\n%s", want, recap)
		}
	}
}
