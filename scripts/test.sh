#!/usr/bin/env bash
# The test suite as CI runs it (make test, after make lint), in three go
# test processes at once:
#   race    the packages that run hosts concurrently, under -race, and
#           internal/cli's in-process tests (-short) under -race too;
#   cli     internal/cli with its lab tests: each starts its own fleet of
#           sshd hosts (its own network) and gives its ferry commands their
#           own environment, so they run in parallel in one process
#           (-parallel, default 6: they mostly wait on sshd, not the CPU);
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
start cli $go test -count=1 -timeout "$timeout" -parallel "$parallel" ./internal/cli
others=$($go list ./... | grep -vxF -e "$mod/internal/cli" $(printf -- "-e $mod/%s " "${race[@]}"))
start others $go test -count=1 -timeout "$timeout" $others

rc=0
for k in "${!pids[@]}"; do
	wait "${pids[k]}" || rc=1
	cat "${logs[k]}"
done
pids=()
exit $rc
