#!/usr/bin/env bash
# Issue 13: wall time and peak RSS of the controller against the number of
# hosts, for the 10-task playbook (one batch: serial 100%) through one
# bastion, ferry -f 200 next to ansible-playbook -f 20 (more forks only
# lose hosts to the bastion's MaxStartups), each on a fresh lab; ferry with
# its deploy lock and release state on, and the lock's share of its run.
# Usage: scripts/bench-scale.sh [HOSTS...]   (default: 20 100 300 1000)
# ANSIBLE_MAX_HOSTS (default 100): the largest fleet Ansible is timed on
# (it takes about 1.4 s per host and batch of 20 forks here).
# Needs root (the lab) and bin/ (make build); Ansible from scripts/deps.sh bench.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench-results}
mkdir -p "$out"
[ -x bin/ferry-lab ] && [ -x bin/ferry ] || make build
sizes=${*:-20 100 300 1000}
table="$out/scale.md"
echo "| hosts | ferry -f 200: wall | ferry peak RSS | ferry's lock: taken + released (share of the run) | ansible -f 20: wall | ansible peak RSS |" >"$table"
echo "|---:|---:|---:|---:|---:|---:|" >>"$table"
for n in $sizes; do
	bin/ferry-lab run -q --hosts "$n" -- scripts/bench-scale-one.sh "$n" "$table"
done
cat "$table"
