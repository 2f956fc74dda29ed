#!/usr/bin/env bash
# Side-by-side benchmarks on the lab: ferry vs OpenSSH vs Ansible, same fleet,
# same run. Prints markdown tables (hyperfine) for BENCHMARKS.md.
# Usage: scripts/bench.sh [exec|playbook|inventory|all]   (needs root: the lab uses namespaces)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=${BENCH_OUT:-bench-results}
mkdir -p "$out"
lab=bin/ferry-lab
[ -x "$lab" ] && [ -x bin/ferry ] || make build

if [ "$what" = exec ] || [ "$what" = all ]; then
	"$lab" run -q --hosts 20 -- scripts/bench-exec.sh "$out"
fi
if [ "$what" = playbook ] || [ "$what" = all ]; then
	[ -x scripts/bench-playbook.sh ] && "$lab" run -q --hosts 20 -- scripts/bench-playbook.sh "$out"
fi
if [ "$what" = inventory ] || [ "$what" = all ]; then
	BENCH_OUT=$out scripts/bench-inventory.sh
fi
echo "results in $out/"
