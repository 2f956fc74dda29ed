package output

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ferrydeploy/ferry/events"
)

// Record writes the run record: every event as a JSON line under dir, so a
// run can be audited (who, what version, each task on each host, outcome)
// and compared later. Output lines are kept too: they are what an operator
// reads when asking why a host failed.
type Record struct {
	mu   sync.Mutex
	path string
	f    *os.File
	w    *bufio.Writer
	enc  *json.Encoder
	err  error
	// NoSync skips fsync on journal events (benchmarks measure its cost).
	NoSync bool
}

// NewRecord creates dir/<runID>.jsonl.
func NewRecord(dir, runID string) (*Record, error) {
	// Private to their owner: records hold who deployed what, command
	// output and hosts' answers.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create record dir: %w (choose another with --record-dir)", err)
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("make record dir %s private: %w (choose another with --record-dir)", dir, err)
		}
	}
	path := filepath.Join(dir, runID+".jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create run record: %w", err)
	}
	w := bufio.NewWriter(f)
	return &Record{path: path, f: f, w: w, enc: json.NewEncoder(w)}, nil
}

// Path is where the record is written.
func (r *Record) Path() string { return r.path }

// Emit implements events.Sink. The file is flushed at every host and batch
// boundary, so a killed run still leaves a useful record; journal events
// (intent, undone) are also synced to disk before Emit returns, since the
// runner changes the host only after that (see Err).
func (r *Record) Emit(e events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if err := r.enc.Encode(e); err != nil {
		r.err = err
		return
	}
	switch e.Kind {
	case events.HostEnd, events.BatchEnd, events.RunEnd, events.RunStart:
		r.err = r.w.Flush()
	case events.Intent, events.Undone:
		if r.err = r.w.Flush(); r.err == nil && !r.NoSync {
			r.err = r.f.Sync()
		}
	}
}

// Err is the first error writing the record: a runner checks it after an
// intent, and changes nothing it could not journal.
func (r *Record) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return fmt.Errorf("write run record %s: %w", r.path, r.err)
	}
	return nil
}

// Close flushes and closes the file.
func (r *Record) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// ReadRecord loads a record's events (history, promote, --resume, the
// worker). A run killed mid-write leaves a torn last line: the events
// before it are the journal, and are returned without an error.
func ReadRecord(path string) ([]events.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []events.Event
	dec := json.NewDecoder(f)
	for dec.More() {
		var e events.Event
		if err := dec.Decode(&e); err != nil {
			if len(out) > 0 {
				return out, nil
			}
			return out, fmt.Errorf("read record %s: %w", path, err)
		}
		out = append(out, e)
	}
	return out, nil
}
