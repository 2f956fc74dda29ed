package cli

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// closedOutput passes writes on to w until one fails: the reader went away
// (`ferry run ... | head -1`, a tee that died). From then on it drops
// output and calls closed once, outside its lock, so the run can stop as
// on an interrupt instead of dying at once with SIGPIPE in the middle of a
// host, its lock held and its record unfinished.
type closedOutput struct {
	w      io.Writer
	closed func(error)

	mu     sync.Mutex
	broken bool
}

func (o *closedOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	if o.broken {
		o.mu.Unlock()
		return len(p), nil
	}
	_, err := o.w.Write(p)
	if err != nil {
		o.broken = true
	}
	o.mu.Unlock()
	if err != nil && o.closed != nil {
		o.closed(err)
	}
	return len(p), nil
}

// catchSIGPIPE makes a write to a closed stdout or stderr fail with EPIPE,
// which closedOutput handles, instead of killing the process (Go's default
// for those two descriptors). It does not change what child processes get.
func catchSIGPIPE() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGPIPE)
	return func() { signal.Stop(ch) }
}

// outputClosedMsg is the note a run's record gets when its output was cut.
func outputClosedMsg(err error) string {
	return fmt.Sprintf("output closed (%v): stopping as on an interrupt; the rest of the output is dropped, this record has it all", err)
}
