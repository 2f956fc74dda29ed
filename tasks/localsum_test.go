package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func sumOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// localSum reads a file once for as long as it keeps its inode, size and
// modification time (so many hosts, staging in parallel, share one read),
// and again as soon as one of them changes; a file modified just before
// it was hashed is never remembered.
func TestLocalSumRemembersUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	write := func(content string, mtime time.Time) {
		t.Helper()
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644) // same inode
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(content)
		f.Close()
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want string) {
		t.Helper()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sum, n, err := localSum(p)
				if err != nil || sum != sumOf(want) || n != int64(len(want)) {
					t.Errorf("localSum = %s, %d, %v; want the sum of %q", sum, n, err, want)
				}
			}()
		}
		wg.Wait()
	}
	write("build 1", old)
	check("build 1")
	// Same inode, size and time: the remembered sum (what rsync's quick
	// check would assume too) proves the file was not read again.
	write("build 2", old)
	check("build 1")
	// Any of them changed: read again.
	write("build 3", old.Add(time.Second))
	check("build 3")
	write("build 3 longer", old.Add(time.Second))
	check("build 3 longer")

	// Modified just now: never remembered, whatever follows in the same tick.
	q := filepath.Join(dir, "fresh")
	now := time.Now()
	p = q
	write("fresh 1", now)
	check("fresh 1")
	write("fresh 2", now)
	check("fresh 2")
}
