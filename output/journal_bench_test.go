package output

import (
	"os"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
)

// BenchmarkJournalTask measures what the record costs one task that must
// be journaled (systemd stop, elb drain): task_start, the intent (flushed
// and, unless nosync, fsynced), task_end. "plain" is a task that changes
// nothing to undo. FERRY_BENCH_DIR chooses the filesystem (default: the
// system's temporary directory; on tmpfs fsync costs nothing).
func BenchmarkJournalTask(b *testing.B) {
	for _, c := range []struct {
		name           string
		intent, noSync bool
	}{{"plain", false, false}, {"intent-fsync", true, false}, {"intent-nosync", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			dir, err := os.MkdirTemp(os.Getenv("FERRY_BENCH_DIR"), "journal-bench")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(dir)
			rec, err := NewRecord(dir, "bench")
			if err != nil {
				b.Fatal(err)
			}
			defer rec.Close()
			rec.NoSync = c.noSync
			undo := &events.Undo{Module: "systemd", Args: map[string]any{"name": "app", "state": "started"}, Become: true}
			now := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rec.Emit(events.Event{Time: now, Kind: events.TaskStart, RunID: "bench", Host: "app1", Task: "Stop", Module: "systemd"})
				if c.intent {
					rec.Emit(events.Event{Time: now, Kind: events.Intent, RunID: "bench", Host: "app1", Change: "unit:app", Msg: "unit app stopped", Undo: undo})
				}
				rec.Emit(events.Event{Time: now, Kind: events.TaskEnd, RunID: "bench", Host: "app1", Task: "Stop", Module: "systemd", Status: events.StatusChanged, Duration: time.Millisecond})
			}
			b.StopTimer()
			if err := rec.Err(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
