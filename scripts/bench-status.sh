#!/usr/bin/env bash
# Runs inside `ferry-lab run` (FERRY_LAB_* set): `ferry status` (every
# host's release state and locks, one round trip per host) against the
# floor, `ferry exec --become -- cat` of the state file, on every lab host.
# A first run records a release on each host. The two commands alternate,
# run by run, so that the neighbours' load on a shared machine falls on
# both alike (hyperfine would run all of one, then all of the other).
set -euo pipefail
out=$1
ferry="$PWD/bin/ferry"
inv=$FERRY_LAB_INVENTORY
n=$(grep -c 'ansible_host:' "$inv")
forks=${FORKS:-50}
runs=${RUNS:-10}
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$(mktemp -d)
pb=$(mktemp --suffix=.yml)
printf -- '- hosts: app\n  vars: {app: bench}\n  tasks:\n    - shell: "true"\n' >"$pb"
"$ferry" run "$pb" -i "$inv" -f "$forks" -e version=v1 -o plain >/dev/null

status=("$ferry" status -i "$inv" -f "$forks")
floor=("$ferry" exec -i "$inv" -f "$forks" --become -- cat /var/lib/ferry/bench.json)
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
ms "${status[@]}" >/dev/null; ms "${floor[@]}" >/dev/null   # warm-up
s=() f=()
for _ in $(seq "$runs"); do
	s+=("$(ms "${status[@]}")")
	f+=("$(ms "${floor[@]}")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
minimum() { printf '%s\n' "$@" | sort -n | head -1; }
ms_=$(median "${s[@]}") mf=$(median "${f[@]}")
{
	echo "| $n hosts, $runs alternating runs | median | min |"
	echo "|---|---:|---:|"
	echo "| \`ferry status -f $forks\` | $ms_ ms | $(minimum "${s[@]}") ms |"
	echo "| \`ferry exec -f $forks --become -- cat STATE\` (floor) | $mf ms | $(minimum "${f[@]}") ms |"
	echo "| ratio of medians | $(awk "BEGIN {printf \"%.2f\", $ms_/$mf}")× | |"
} | tee "$out/status-$n.md"
