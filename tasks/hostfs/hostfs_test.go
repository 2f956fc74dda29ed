package hostfs

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sh runs Lib and body with /bin/sh (dash on Debian, as on hosts) and
// returns its combined output and exit code.
func sh(t *testing.T, body string) (string, int) {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", Script(body)).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// attackerTree makes dir/app owned by nobody (the attacker) and dir/secret,
// root-only, holding a file; it needs root.
func attackerTree(t *testing.T) (dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	dir = t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"app", "secret"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "secret", "s"), []byte("ROOT ONLY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "app"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "app", "conf")
	if err := os.Symlink(filepath.Join(dir, "secret"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInRefusesLinkAnotherUserPlaced(t *testing.T) {
	dir := attackerTree(t)
	out, code := sh(t, "hf_in "+Q(dir+"/app/conf/x")+" 1; echo walked")
	if code != 2 || strings.Contains(out, "walked") || !strings.Contains(out, dir+"/app/conf is a symlink owned by nobody") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "secret", "x")); err == nil {
		t.Fatal("a directory was made through the link")
	}
	// The same read, write and remove through the link are refused.
	for _, body := range []string{
		"hf_at_file " + Q(dir+"/app/conf/s") + " 0 follow && hf_read \"$hf_b\"",
		"hf_at_file " + Q(dir+"/app/conf") + " 0 follow && hf_read \"$hf_b\"",
		"hf_at_file " + Q(dir+"/app/conf/s") + " 0 && hf_rmtree \"$hf_b\"",
	} {
		out, code := sh(t, body)
		if code != 2 || strings.Contains(out, "ROOT ONLY") {
			t.Errorf("%s: exit %d: %s", body, code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "secret", "s")); err != nil {
		t.Fatal("the root-only file was removed through the link")
	}
}

func TestInFollowsRootsLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Mkdir(filepath.Join(dir, "real"), 0o755)
	os.Symlink("real", filepath.Join(dir, "lib"))
	out, code := sh(t, "hf_in "+Q(dir+"/lib")+" 0 && pwd -P")
	if code != 0 || strings.TrimSpace(out) != filepath.Join(dir, "real") {
		t.Fatalf("exit %d: %s", code, out)
	}
	// A directory anyone may write (without the sticky bit) is refused.
	os.Chmod(filepath.Join(dir, "real"), 0o777)
	if out, code := sh(t, "hf_in "+Q(dir+"/real/x")+" 1"); code != 2 || !strings.Contains(out, "writable by its group or by everyone") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestPrivatePlaceAndLink(t *testing.T) {
	dir := t.TempDir()
	out, code := sh(t, "hf_in "+Q(dir)+" 0 && hf_private f && printf new > ./f && hf_setnew ./f 640 '' && hf_place ./f f && hf_link /etc/hostname l && echo ok")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "new" {
		t.Fatalf("f = %q", b)
	}
	if st, _ := os.Stat(filepath.Join(dir, "f")); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(dir, "l")); l != "/etc/hostname" {
		t.Fatalf("link -> %q", l)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temp left behind: %v", entries)
	}
}

func TestUnpackDropsSetuidAndRefusesNewlines(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (tar keeps owners and modes as root unless told not to)")
	}
	tarOf := func(names map[string]int64) string {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for n, m := range names {
			tw.WriteHeader(&tar.Header{Name: n, Mode: m, Size: 2, Typeflag: tar.TypeReg, Uid: 4242, Gid: 4242})
			tw.Write([]byte("x\n"))
		}
		tw.Close()
		p := filepath.Join(t.TempDir(), "a.tar")
		os.WriteFile(p, buf.Bytes(), 0o644)
		return p
	}
	dest := t.TempDir()
	a := tarOf(map[string]int64{"suid": 0o6755, "plain": 0o644})
	// Options that would keep the archive's owners and modes lose to hostfs's.
	body := "hf_at_file " + Q(a) + " 0 && hf_open \"$hf_b\" && hf_in " + Q(dest) + " 0 && hf_dest=" + Q(dest) + " && hf_private u && hf_unpack a '' --same-owner --same-permissions && hf_sync 1 '' < ../list"
	if out, code := sh(t, body); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	st, err := os.Stat(filepath.Join(dest, "suid"))
	if err != nil || st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || st.Mode().Perm() != 0o755 {
		t.Fatalf("suid: %v %v", st.Mode(), err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != 0 {
		t.Fatalf("owner taken from the archive: %+v", st.Sys())
	}
	a = tarOf(map[string]int64{"a\nb": 0o644})
	out, code := sh(t, "hf_at_file "+Q(a)+" 0 && hf_open \"$hf_b\" && hf_in "+Q(dest)+" 0 && hf_dest="+Q(dest)+" && hf_private u && hf_unpack a '' && hf_sync 1 '' < ../list")
	if code != 2 || !strings.Contains(out, "newline in its name") {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, name := range []string{"/etc/x", "../x", "a/../../x"} {
		a = tarOf(map[string]int64{name: 0o644})
		out, code := sh(t, "hf_at_file "+Q(a)+" 0 && hf_open \"$hf_b\" && hf_in "+Q(dest)+" 0 && hf_dest="+Q(dest)+" && hf_private u && hf_unpack a ''")
		if code != 2 || !strings.Contains(out, "absolute name or '..': refused") {
			t.Errorf("%q: exit %d: %s", name, code, out)
		}
	}
}
