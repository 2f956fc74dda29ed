package output

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/events"
)

// A secret is masked in every form in which it can reach output.
func TestMaskEveryEncodedForm(t *testing.T) {
	var got []events.Event
	m := NewMask(events.SinkFunc(func(e events.Event) { got = append(got, e) }))
	pw := `p&ss<w>'o"rd`
	pem := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\nQyNTUxOQAAACDvZ2V0aGVyLWtleS1\n-----END OPENSSH PRIVATE KEY-----\n"
	m.Add(pw, pem)
	jpw, _ := json.Marshal(pw)
	jpem, _ := json.Marshal(pem)
	lines := []string{
		"json: " + string(jpw),                      // & → \u0026, " → \"
		"json pem: " + string(jpem),                 // newlines as \n
		"one line: b3BlbnNzaC1rZXktdjEAAAAABG5vbmU", // a line of the key on its own
		`shell: exec mysql '-pp&ss<w>'\''o"rd'`,     // single-quoted
		`double: "p&ss<w>'o\"rd"`,                   // double-quoted
		`go: "p&ss<w>'o\"rd"`,                       // %q
	}
	for _, l := range lines {
		m.Emit(events.Event{Kind: events.TaskOutput, Line: l})
	}
	for i, e := range got {
		for _, leak := range []string{"p&ss", `p\u0026ss`, "o\\\"rd", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU", "QyNTUxOQAAACDvZ2V0aGVyLWtleS1"} {
			if strings.Contains(e.Line, leak) {
				t.Errorf("line %d leaks %q: %q", i, leak, e.Line)
			}
		}
		if !strings.Contains(e.Line, "********") {
			t.Errorf("line %d not masked: %q", i, e.Line)
		}
	}
	// Short lines of a multi-line secret are not masked on their own.
	m.Emit(events.Event{Kind: events.TaskOutput, Line: "a -----"})
	if got[len(got)-1].Line != "a -----" {
		t.Errorf("short line garbled: %q", got[len(got)-1].Line)
	}
}

// Records are private: 0600 files in a 0700 directory, even one that
// existed with wider permissions.
func TestRecordPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	rec, err := NewRecord(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	rec.Close()
	st, _ := os.Stat(dir)
	fst, _ := os.Stat(filepath.Join(dir, "r1.jsonl"))
	if st.Mode().Perm() != 0o700 || fst.Mode().Perm() != 0o600 {
		t.Fatalf("record dir %v, record %v; want 0700 and 0600", st.Mode().Perm(), fst.Mode().Perm())
	}
	fresh := filepath.Join(t.TempDir(), "a", "runs")
	rec, err = NewRecord(fresh, "r2")
	if err != nil {
		t.Fatal(err)
	}
	rec.Close()
	if st, _ := os.Stat(fresh); st.Mode().Perm() != 0o700 {
		t.Fatalf("new record dir %v", st.Mode().Perm())
	}
}
