package ssh

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// chunkReader returns data in pieces of the given sizes (cycled), so that
// markers arrive split at every possible place.
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)])%64 + 1
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// FuzzFrameStream: whatever a command prints (including pieces of its own
// and earlier markers) comes back exactly, with the status, however the
// stream is cut into reads; what follows stays for the next request.
func FuzzFrameStream(f *testing.F) {
	const tok1, tok2 = "\x1bferry-0123456789abcdef0123456789abcdef", "\x1bferry-fedcba9876543210fedcba9876543210"
	f.Add([]byte("plain output\n"), []byte{3, 1, 7})
	f.Add([]byte(""), []byte{})
	f.Add([]byte("no newline"), []byte{0})
	f.Add([]byte(tok1+"<\n"+tok1+">0\n"+tok1[:5]), []byte{1})
	f.Add([]byte(tok2+"<\n"+tok2[:len(tok2)-1]+"\x1b\x1b"), []byte{2, 5})
	f.Fuzz(func(t *testing.T, out, sizes []byte) {
		if bytes.Contains(out, []byte(tok2+">")) {
			t.Skip("the output names the running request's token (random in real use)")
		}
		stream := "stray" + tok1 + ">0\n" + tok2 + "<\n" + string(out) + tok2 + ">42\n" + "next"
		s := frameStream{r: &chunkReader{data: []byte(stream), sizes: sizes}}
		var w bytes.Buffer
		fr := s.read(tok2, &w)
		if fr.err != nil || !fr.started || fr.status != "42" {
			t.Fatalf("frame %+v", fr)
		}
		if !bytes.Equal(w.Bytes(), out) {
			t.Fatalf("output %q, want %q", w.Bytes(), out)
		}
		if want := int64(len("stray" + tok1 + ">0\n")); fr.stray != want {
			t.Fatalf("stray = %d, want %d", fr.stray, want)
		}
		rest, _ := io.ReadAll(io.MultiReader(bytes.NewReader(s.buf), s.r))
		if string(rest) != "next" {
			t.Fatalf("left %q for the next request", rest)
		}
	})
}

// TestFrameStreamCutShort: a stream that ends inside a command gives its
// output so far (held-back bytes included) and an error.
func TestFrameStreamCutShort(t *testing.T) {
	const tok = "\x1bferry-0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		stream, out string
		started     bool
	}{
		{"", "", false},
		{"login banner", "", false},
		{tok + "<\npartial", "partial", true},
		{tok + "<\npartial\x1bferry-01", "partial\x1bferry-01", true},
		{tok + "<\nout" + tok + ">", "out", true},
	} {
		s := frameStream{r: strings.NewReader(tc.stream)}
		var w bytes.Buffer
		fr := s.read(tok, &w)
		if fr.err == nil || fr.started != tc.started || w.String() != tc.out {
			t.Errorf("%q: frame %+v, output %q; want an error, started=%v, output %q", tc.stream, fr, w.String(), tc.started, tc.out)
		}
	}
}

// TestRequestQuoting: the request line is one line whatever the command,
// and the command text is a single-quoted word.
func TestRequestQuoting(t *testing.T) {
	r := request("\x1bferry-00", "echo 'a'\nb\r\n$(id) `x`", "export A='x\ny'; \n", false)
	if strings.Count(r, "\n") != 1 || !strings.HasSuffix(r, "\n") || strings.Contains(r, "\r") {
		t.Fatalf("request is not one line: %q", r)
	}
	// A command after the prelude: the loop puts the prelude back, and
	// never runs it as a direct line.
	if r := request("T", "exec 'true'", "", true); !strings.Contains(r, "__f_L=1") || strings.Contains(r, "__f_d") {
		t.Fatalf("prelude request %q", r)
	}
	for _, bad := range []string{"", "\x00"} {
		if shellEligible("echo"+bad+"x", RunOptions{}) == (bad == "\x00") {
			t.Fatalf("eligible(%q) is wrong", bad)
		}
	}
	if shellEligible("true", RunOptions{Stdin: strings.NewReader("")}) || shellEligible("true", RunOptions{Become: true, BecomePass: "p"}) {
		t.Fatal("commands that need the session's stdin went to the shell")
	}
	small := func(s string) io.Reader { r, _ := knownStdin(strings.NewReader(s)); return r }
	if !shellEligible("cat", RunOptions{Stdin: small("a\nb\n")}) || shellEligible("cat", RunOptions{Stdin: small("a\x00b")}) ||
		shellEligible("cat", RunOptions{Stdin: small(strings.Repeat("x", maxShellRequest-2))}) {
		t.Fatal("small known stdin: eligible only without NUL and within the request's size")
	}
	if _, ok := small(strings.Repeat("x", maxShellRequest)).(*smallStdin); ok {
		t.Fatal("a stdin the size of a request was read ahead")
	}
	if !shellEligible("true", RunOptions{Become: true, Env: map[string]string{"A": "b"}}) {
		t.Fatal("become with sudo -n and an environment should use the shell")
	}
	// Literal lines run without a login shell of their own (see the loop).
	for line, want := range map[string]string{
		"exec 'true'":                                      "exec 'true'",
		"exec /usr/bin/x -a=b,c:d":                         "exec /usr/bin/x -a=b,c:d",
		"exec 'a b' '$x' '*;|&'":                           "exec 'a b' '$x' '*;|&'",
		"sudo -n -H -u 'root' -- /bin/sh -c 'echo \"$x\"'": "exec sudo -n -H -u 'root' -- /bin/sh -c 'echo \"$x\"'",
		"exec echo $x":                                     "", "exec echo *": "", "exec ~/x": "", "exec a\\ b": "exec a\\ b", "exec a\\": "", "exec 'a'\\''b'": "exec 'a'\\''b'", "exec 'a": "",
		"exec a; b": "", "exec a\nb": "", "A=1 exec b": "", "echo a": "", "execx a": "", "exec \"a\"": "",
		"exec a >f": "", "exec a|b": "", "exec $(x)": "", "exec `x`": "", "exec a{b,c}": "", "exec a[b]": "",
	} {
		got, ok := directLine(line)
		if ok != (want != "") || got != want {
			t.Errorf("directLine(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}
