#!/usr/bin/env bash
# The test suite as CI runs it. Every package's tests run as `go test`
# would, except internal/cli: its lab tests (each starts its own fleet of
# sshd hosts) set process-wide environment variables, so they cannot run in
# parallel in one process; here they run in SHARDS processes at once, each
# with a share of the tests (labs are independent: each has its own
# network). Usage: scripts/test.sh [SHARDS] (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${1:-${SHARDS:-3}}
go=${GO:-go}
timeout=${TEST_TIMEOUT:-30m}
cli=github.com/ferrydeploy/ferry/internal/cli

pids=()
logs=()
tmp=$(mktemp -d)
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

# The race detector, on the packages that run hosts concurrently: all their
# tests, and internal/cli's in-process ones (-short; its lab tests run
# below without -race, which would make them several times slower).
race=(./playbooks ./ssh ./environments ./internal/worker ./output ./tui)
$go test -race -count=1 -timeout "$timeout" "${race[@]}" >"$tmp/race.log" 2>&1 &
pids+=($!)
logs+=("$tmp/race.log")
$go test -race -short -count=1 -timeout "$timeout" ./internal/cli >"$tmp/race-cli.log" 2>&1 &
pids+=($!)
logs+=("$tmp/race-cli.log")

# Every other package but the CLI's, in one go test.
others=$($go list ./... | grep -vx "$cli" | grep -vxF "$(printf 'github.com/ferrydeploy/ferry/%s\n' "${race[@]#./}")")
$go test -count=1 -timeout "$timeout" $others >"$tmp/others.log" 2>&1 &
pids+=($!)
logs+=("$tmp/others.log")

# The CLI's tests, dealt round-robin into shards.
mapfile -t tests < <($go test -list '.*' ./internal/cli | grep -E '^(Test|Example)')
for ((i = 0; i < shards; i++)); do
	names=()
	for ((j = i; j < ${#tests[@]}; j += shards)); do names+=("${tests[j]}"); done
	[ ${#names[@]} -gt 0 ] || continue
	re="^($(IFS='|'; echo "${names[*]}"))\$"
	$go test -count=1 -timeout "$timeout" -run "$re" ./internal/cli >"$tmp/cli$i.log" 2>&1 &
	pids+=($!)
	logs+=("$tmp/cli$i.log")
done

rc=0
for k in "${!pids[@]}"; do
	wait "${pids[k]}" || rc=1
	cat "${logs[k]}"
done
pids=()
exit $rc
