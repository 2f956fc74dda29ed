package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// localSums remembers the SHA-256 of controller files a run copies, so
// that a file going to many hosts (a release staged on all of them, then
// activated host by host, inside each host's window) is read once, not
// once per host and task. An entry holds for the same file (device and
// inode), size and modification time. A file modified within racyWindow
// of its hashing is not remembered: a change made in the same tick of a
// coarse clock could keep the size and time it had (git's "racy clean").
var localSums = struct {
	sync.Mutex
	m map[sumKey]*sumEntry
}{m: map[sumKey]*sumEntry{}}

const (
	racyWindow = 2 * time.Second
	maxSums    = 4096 // a long-lived worker forgets them all past this
)

type sumKey struct {
	path     string
	dev, ino uint64
	size     int64
	mtime    int64
}

type sumEntry struct {
	mu   sync.Mutex // held while the first caller hashes
	done bool
	sum  string
}

// localSum returns the hex SHA-256 of the controller file at p and its size.
func localSum(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return hashFile(f, p)
	}
	key := sumKey{p, uint64(st.Dev), uint64(st.Ino), fi.Size(), fi.ModTime().UnixNano()}
	localSums.Lock()
	e := localSums.m[key]
	if e == nil {
		if len(localSums.m) >= maxSums {
			clear(localSums.m)
		}
		e = &sumEntry{}
		localSums.m[key] = e
	}
	localSums.Unlock()
	// Hosts staging in parallel wait for the first to hash, not all read.
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return e.sum, key.size, nil
	}
	start := time.Now()
	sum, n, err := hashFile(f, p)
	if err != nil || n != key.size || !fi.ModTime().Before(start.Add(-racyWindow)) {
		localSums.Lock()
		delete(localSums.m, key)
		localSums.Unlock()
		return sum, n, err
	}
	e.sum, e.done = sum, true
	return sum, n, nil
}

func hashFile(f *os.File, p string) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
