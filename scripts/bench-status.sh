#!/usr/bin/env bash
# Runs inside `ferry-lab run` (FERRY_LAB_* set): `ferry status` (every
# host's release state and locks, one round trip per host) against the
# floor, `ferry exec --become -- cat` of the state file, on every lab host.
# A first run records a release on each host.
set -euo pipefail
out=$1
ferry="$PWD/bin/ferry"
inv=$FERRY_LAB_INVENTORY
n=$(grep -c 'ansible_host:' "$inv")
forks=${FORKS:-50}
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$(mktemp -d)
pb=$(mktemp --suffix=.yml)
printf -- '- hosts: app\n  vars: {app: bench}\n  tasks:\n    - shell: "true"\n' >"$pb"
"$ferry" run "$pb" -i "$inv" -f "$forks" -e version=v1 -o plain >/dev/null

hyperfine -N --warmup 1 --runs ${RUNS:-10} --export-markdown "$out/status-$n.md" --export-json "$out/status-$n.json" \
	-n "ferry status ($n)" "$ferry status -i $inv -f $forks" \
	-n "ferry exec --become -- cat state ($n)" "$ferry exec -i $inv -f $forks --become -- cat /var/lib/ferry/bench.json"
