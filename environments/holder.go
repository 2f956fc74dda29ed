package environments

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// thisProcess names this run's process for its lock files: the machine
// (hostname and boot id) and the PID with its start time, so that a later
// run on the same machine can tell that the holder is gone.
func thisProcess() (machine, bootID string, pid int, start string) {
	machine, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		bootID = strings.TrimSpace(string(b))
	}
	pid = os.Getpid()
	_, start = procStat(pid)
	return machine, bootID, pid, start
}

// procStat returns the process's state letter and its start time in clock
// ticks since boot (fields 3 and 22 of /proc/PID/stat): with the PID, the
// start time names one process even after the PID is reused. "" when unknown.
func procStat(pid int) (state, start string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return "", ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", ""
	}
	return f[0], f[19] // after the name, fields count from 3
}

// deadHere reports whether holder is a run of this machine (same hostname
// and boot) whose process is gone. A holder elsewhere, or one this machine
// cannot judge, is never dead here: it is waited out or released by hand.
func deadHere(holder LockInfo) bool {
	machine, bootID, _, _ := thisProcess()
	if holder.PID <= 0 || holder.BootID == "" || holder.BootID != bootID || holder.Machine != machine {
		return false
	}
	return !processAlive(holder.PID, holder.PIDStart)
}

// processAlive reports whether pid runs and, when start is known, is
// still the process that started then.
func processAlive(pid int, start string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	state, now := procStat(pid)
	if state == "Z" || state == "X" {
		return false // killed, not yet reaped
	}
	return start == "" || now == "" || now == start // else the PID was reused
}
