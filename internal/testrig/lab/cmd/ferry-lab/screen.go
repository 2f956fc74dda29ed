package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// Why the demo arranges the screen itself rather than ferry's TUI growing a
// footer: the counters are the load generator's, a lab tool that no
// operator runs in production, so teaching ferry to show them would be a
// demo hook in the product. Instead `ferry-lab load` owns the terminal: the
// command runs on a pseudo-terminal one row shorter than the real one (its
// TUI sizes itself to the rows above, as it would in any smaller window)
// and the last row is ours. ferry's TUI is unchanged and does not know.

// splitScreen runs a command above a status line that it keeps on the
// terminal's last row.
type splitScreen struct {
	out  io.Writer // the real terminal
	ptmx *os.File  // the command's terminal (master side)
	line func() string

	mu         sync.Mutex
	rows, cols int
	esc        escState
	stale      bool // the line is to be redrawn once the output allows it
}

// startSplit starts cmd on a pty of rows-1 × cols and reserves the last row
// of the terminal (out) for line. The caller restores the terminal (raw
// mode) and calls finish.
func startSplit(cmd *exec.Cmd, out io.Writer, rows, cols int, line func() string) (*splitScreen, error) {
	s := &splitScreen{out: out, rows: rows, cols: cols, line: line}
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: uint16(rows - 1), Cols: uint16(cols)})
	if err != nil {
		return nil, err
	}
	s.ptmx = ptmx
	// Free the last row before the command writes: a line feed scrolls the
	// screen if the cursor is on it, and the cursor goes back up one row.
	fmt.Fprint(out, "\n\x1b[1A")
	s.mu.Lock()
	s.region()
	s.draw()
	s.mu.Unlock()
	return s, nil
}

// region confines scrolling to the command's rows, so that its plain
// output scrolls above the status line instead of over it. DECSTBM moves
// the cursor home, hence the save and restore around it.
func (s *splitScreen) region() {
	fmt.Fprintf(s.out, "\x1b7\x1b[1;%dr\x1b8", s.rows-1)
}

// draw writes the status line on the last row, reverse video, cut to the
// width, and puts the cursor (and its attributes) back where the command
// left them. Callers hold mu and have checked that the command's output is
// not in the middle of an escape sequence or a UTF-8 character.
func (s *splitScreen) draw() {
	text := []rune(" " + s.line() + " ")
	if len(text) > s.cols {
		text = text[:s.cols]
	}
	fmt.Fprintf(s.out, "\x1b7\x1b[%d;1H\x1b[0m\x1b[2K\x1b[7m%s\x1b[0m\x1b8", s.rows, string(text))
	s.stale = false
}

// resetters are the sequences after which the status line or the scrolling
// region may be gone: clear screen, alternate screen on/off, margins reset,
// full reset. A sequence split between two reads is caught by the next
// tick (the line) but not for the region, which only plain output needs.
var resetters = [][]byte{[]byte("\x1b[2J"), []byte("\x1b[J"), []byte("\x1b[0J"), []byte("\x1b[?1049"), []byte("\x1b[?47"), []byte("\x1b[r"), []byte("\x1bc")}

// copyOut copies the command's output to the terminal until the pty closes
// (EIO once the command and everything holding its terminal are gone).
func (s *splitScreen) copyOut() {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.ptmx.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			s.mu.Lock()
			_, _ = s.out.Write(chunk)
			s.esc.feed(chunk)
			reset := false
			for _, r := range resetters {
				if bytes.Contains(chunk, r) {
					reset = true
					break
				}
			}
			if s.esc.safe() && (reset || s.stale) {
				if reset {
					s.region()
				}
				s.draw()
			} else if reset {
				s.stale = true
			}
			s.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// tick redraws the line now, or as soon as the command's output reaches a
// point where a sequence of ours cannot split one of its own.
func (s *splitScreen) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.esc.safe() {
		s.draw()
	} else {
		s.stale = true
	}
}

// resize follows the terminal's new size.
func (s *splitScreen) resize(rows, cols int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rows < 3 || cols < 1 {
		return
	}
	if rows > s.rows && s.esc.safe() {
		// Grown: the old status row is now the command's; blank it (a TUI
		// repaints it anyway, plain output would keep the stale line).
		fmt.Fprintf(s.out, "\x1b7\x1b[%d;1H\x1b[2K\x1b8", s.rows)
	}
	s.rows, s.cols = rows, cols
	_ = pty.Setsize(s.ptmx, &pty.Winsize{Rows: uint16(rows - 1), Cols: uint16(cols)})
	if s.esc.safe() {
		s.region()
		s.draw()
	} else {
		s.stale = true
	}
}

// finish gives the whole terminal back: margins reset, status line cleared.
func (s *splitScreen) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.ptmx.Close()
	fmt.Fprintf(s.out, "\x1b[0m\x1b7\x1b[r\x1b8\x1b7\x1b[%d;1H\x1b[2K\x1b8", s.rows)
}

// runSplit runs cmd under the status line: the terminal in raw mode passes
// every key to the command's pty (its own line discipline makes Ctrl-C a
// SIGINT or a key for a TUI, as on a terminal), the line is redrawn every
// 250 ms, and the terminal is restored when the command ends. Signals sent
// to ferry-lab are passed on. It returns cmd.Wait's error.
func runSplit(cmd *exec.Cmd, stdin, stdout *os.File, line func() string, sigs <-chan os.Signal) error {
	rows, cols, err := pty.Getsize(stdout)
	if err != nil || rows < 3 {
		return errNoSplit
	}
	old, err := term.MakeRaw(int(stdin.Fd()))
	if err != nil {
		return errNoSplit
	}
	defer func() { _ = term.Restore(int(stdin.Fd()), old) }()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)

	s, err := startSplit(cmd, stdout, rows, cols, line)
	if err != nil {
		return err
	}
	copied := make(chan struct{})
	go func() { s.copyOut(); close(copied) }()
	// The keys: this goroutine stays blocked on the terminal after the
	// command ends, until ferry-lab exits right after.
	go func() { _, _ = io.Copy(s.ptmx, stdin) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-done:
			break loop
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig)
		case <-winch:
			if r, c, err := pty.Getsize(stdout); err == nil {
				s.resize(r, c)
			}
		case <-tick.C:
			s.tick()
		}
	}
	// The command's last output is still in the pty: wait for it, bounded,
	// since a process it left behind may hold the terminal open.
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	s.finish()
	return waitErr
}

// errNoSplit: the terminal cannot be split (too small, or not a terminal);
// the command runs on it directly.
var errNoSplit = errors.New("terminal cannot be split")

// escState follows a terminal output stream just enough to say whether a
// point between two writes is outside any escape sequence and any UTF-8
// character, where a sequence of ours can go in without garbling.
type escState struct {
	state byte // 0 ground, 'e' after ESC, 'i' ESC intermediates, '[' CSI, ']' string (OSC, DCS, APC, PM, SOS), '\\' ESC inside a string
	utf8  int  // continuation bytes still expected
}

func (e *escState) feed(b []byte) {
	for _, c := range b {
		switch e.state {
		case 0:
			switch {
			case c == 0x1b:
				e.state, e.utf8 = 'e', 0
			case c >= 0xc0 && c < 0xe0:
				e.utf8 = 1
			case c >= 0xe0 && c < 0xf0:
				e.utf8 = 2
			case c >= 0xf0 && c < 0xf8:
				e.utf8 = 3
			case c >= 0x80 && c < 0xc0 && e.utf8 > 0:
				e.utf8--
			default:
				e.utf8 = 0
			}
		case 'e':
			switch {
			case c == '[':
				e.state = '['
			case c == ']' || c == 'P' || c == '_' || c == '^' || c == 'X':
				e.state = ']'
			case c >= 0x20 && c <= 0x2f:
				e.state = 'i'
			default:
				e.state = 0
			}
		case 'i':
			if c < 0x20 || c > 0x2f {
				e.state = 0
			}
		case '[':
			if c >= 0x40 && c <= 0x7e {
				e.state = 0
			}
		case ']':
			switch c {
			case 0x07:
				e.state = 0
			case 0x1b:
				e.state = '\\'
			}
		case '\\':
			if c == '\\' {
				e.state = 0
			} else {
				e.state = ']'
			}
		}
	}
}

func (e *escState) safe() bool { return e.state == 0 && e.utf8 == 0 }
