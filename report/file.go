package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferrydeploy/ferry/output"
)

// PathFor is where the page of a record goes by default: next to it,
// RUN_ID.html beside RUN_ID.jsonl.
func PathFor(record string) string {
	return strings.TrimSuffix(record, ".jsonl") + ".html"
}

// WriteFile renders the record at record into dest. The page is as private
// as the record (it holds the same output), and appears whole or not at
// all: it is written to a temporary file in dest's directory and renamed.
func WriteFile(record, dest string) error {
	evs, err := output.ReadRecord(record)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("run record %s is empty", record)
	}
	f, err := os.CreateTemp(filepath.Dir(dest), ".report-*.html")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer os.Remove(f.Name())
	if err := Write(f, Build(evs, record)); err != nil {
		f.Close()
		return fmt.Errorf("write report %s: %w", dest, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", dest, err)
	}
	if err := os.Rename(f.Name(), dest); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
