#!/usr/bin/env bash
# The test suite as CI runs it (make test, after make lint), in several go
# test processes at once:
#   race    the packages that run hosts concurrently, under -race, and
#           internal/cli's in-process tests (-short) under -race too;
#   cli     internal/cli with its lab tests: each starts its own fleet of
#           sshd hosts (its own network) and gives its ferry commands their
#           own environment, so they run in parallel in one process
#           (-parallel, default 6: they mostly wait on sshd, not the CPU);
#           those that set process-wide variables run one at a time, in
#           SERIAL_SHARDS (default 2) processes of their own;
#   others  every other package.
# The 100- and 1,000-host scale runs are make scale; here TestScale is a
# 20-host smoke of the same path.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
timeout=${TEST_TIMEOUT:-30m}
parallel=${TEST_PARALLEL:-6}
mod=github.com/ferrydeploy/ferry
race=(playbooks ssh environments internal/worker output tui)

tmp=$(mktemp -d)
pids=()
logs=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

start() { # start NAME COMMAND...: run it in the background, output to a log
	local name=$1
	shift
	"$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	logs+=("$tmp/$name.log")
}

start race $go test -race -count=1 -timeout "$timeout" "${race[@]/#/./}"
start race-cli $go test -race -short -count=1 -timeout "$timeout" ./internal/cli
# internal/cli: the tests that call t.Parallel() run together in one
# process; the others (they set process-wide variables such as AWS_*, so
# they run one at a time) are dealt into SERIAL_SHARDS more processes, so
# that they do not wait for each other nor for the parallel ones.
mapfile -t par < <(awk '
/^func Test[A-Za-z0-9_]*\(t \*testing\.T\)/ { match($0, /Test[A-Za-z0-9_]*/); name = substr($0, RSTART, RLENGTH); n = 0; next }
name != "" { n++; if ($0 ~ /t\.Parallel\(\)/) { print name; name = "" } else if (n > 8 || $0 ~ /^}/) name = "" }
' internal/cli/*_test.go | sort -u)
mapfile -t all < <($go test -list '.*' ./internal/cli | grep -E '^(Test|Example)')
ser=()
for t in "${all[@]}"; do
	[[ " ${par[*]} " == *" $t "* ]] || ser+=("$t")
done
runre() { local IFS='|'; echo "^($*)\$"; }
start cli $go test -count=1 -timeout "$timeout" -parallel "$parallel" -run "$(runre "${par[@]}")" ./internal/cli
shards=${SERIAL_SHARDS:-2}
for ((i = 0; i < shards; i++)); do
	names=()
	for ((j = i; j < ${#ser[@]}; j += shards)); do names+=("${ser[j]}"); done
	[ ${#names[@]} -gt 0 ] && start "cli-serial$i" $go test -count=1 -timeout "$timeout" -run "$(runre "${names[@]}")" ./internal/cli
done
others=$($go list ./... | grep -vxF -e "$mod/internal/cli" $(printf -- "-e $mod/%s " "${race[@]}"))
start others $go test -count=1 -timeout "$timeout" $others

rc=0
for k in "${!pids[@]}"; do
	wait "${pids[k]}" || rc=1
	cat "${logs[k]}"
done
pids=()
exit $rc
