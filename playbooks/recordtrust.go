package playbooks

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// A run record is data a resumed run acts on as the user who resumes it:
// whoever could write it could make that user restore what they chose.
// So --resume trusts a record only when the invoking user owns it and
// nobody else can write it or the directory it is in, as OpenSSH's
// StrictModes judges authorized_keys.

// UntrustedRecord says why the invoking user must not act on the record
// at path ("" when they may): the worker's check before it resumes one.
func UntrustedRecord(path string) string { return untrustedRecord(path) }

// untrustedRecord says why the invoking user must not act on the record
// at path ("" when they may).
func untrustedRecord(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return err.Error()
	}
	if !fi.Mode().IsRegular() {
		return "it is not a regular file (" + fi.Mode().Type().String() + ")"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Sprintf("it is owned by %s, not by you (%s)", userName(int(st.Uid)), userName(os.Getuid()))
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("others can write it (mode %04o)", fi.Mode().Perm())
	}
	return ""
}

// untrustedDir says why the records in dir cannot be trusted at all ("":
// they may be, one by one): dir must be the invoking user's or root's, and
// writable by nobody else unless sticky (then others cannot replace the
// user's own records, and theirs are refused one by one).
func untrustedDir(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil {
		return "" // no records: LoadJournal says there is nothing to resume
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if int(st.Uid) != os.Getuid() && st.Uid != 0 {
		return fmt.Sprintf("the directory is owned by %s, not by you (%s) or root", userName(int(st.Uid)), userName(os.Getuid()))
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Sprintf("others can write the directory (mode %04o, not sticky)", fi.Mode().Perm())
	}
	return ""
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}
