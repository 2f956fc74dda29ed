package cli

import (
	"bytes"
	"io"
	"sync"
)

// prefixWriter writes whole lines, each prefixed with the host's name, to a
// writer shared by all hosts, so parallel output never interleaves mid-line.
type prefixWriter struct {
	mu     *sync.Mutex
	out    io.Writer
	prefix []byte
	buf    []byte
}

func newPrefixWriter(mu *sync.Mutex, out io.Writer, prefix string) *prefixWriter {
	return &prefixWriter{mu: mu, out: out, prefix: []byte(prefix)}
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i+1])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush writes a last unterminated line.
func (w *prefixWriter) Flush() {
	if len(w.buf) > 0 {
		w.emit(append(w.buf, '\n'))
		w.buf = nil
	}
}

func (w *prefixWriter) emit(line []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out.Write(append(append([]byte{}, w.prefix...), line...))
}
