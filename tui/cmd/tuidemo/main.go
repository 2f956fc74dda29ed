// Command tuidemo plays a simulated rolling deploy in ferry's TUI, to try
// the screen in a real terminal (tmux) without SSH or AWS.
//
//	go run ./tui/cmd/tuidemo -hosts 20 -pause-after 1 -fail 6
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/tui"
	"github.com/ferrydeploy/ferry/tui/internal/demo"
)

func main() {
	hosts := flag.Int("hosts", 20, "number of simulated hosts")
	pause := flag.Int("pause-after", 1, "pause for approval after this batch (0: never)")
	fail := flag.Int("fail", 7, "1-based host whose smoke test fails (0: none)")
	step := flag.Duration("step", 600*time.Millisecond, "base duration of a task")
	forks := flag.Int("forks", 5, "parallel hosts per batch")
	exit := flag.Bool("exit", false, "exit as soon as the run ends")
	ascii := flag.Bool("ascii", false, "ASCII marks")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGHUP)
	defer stop()
	ctl := demo.NewController()
	// SIGTERM/SIGINT from outside mean a graceful abort, as in ferry itself.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for range sig {
			ctl.Abort()
		}
	}()

	cfg := demo.Config{Hosts: *hosts, PauseAfter: *pause, Step: *step, Forks: *forks, Fail: map[int]bool{}}
	if *fail > 0 {
		cfg.Fail[*fail-1] = true
	}
	ch := make(chan events.Event, 256)
	go func() {
		defer close(ch)
		demo.Play(ctx, cfg, ctl, func(e events.Event) { ch <- e })
	}()
	err := tui.Run(ctx, tui.Options{ExitOnFinish: *exit, ASCII: *ascii}, ch, ctl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tuidemo:", err)
		if errors.Is(err, tui.ErrStreamOpen) {
			for range ch { // keep the simulation from blocking
			}
		}
		os.Exit(1)
	}
}
