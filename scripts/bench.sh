#!/usr/bin/env bash
# Side-by-side benchmarks on the lab: ferry vs OpenSSH vs Ansible, same fleet,
# same run. Prints markdown tables (hyperfine) for BENCHMARKS.md.
# Usage: scripts/bench.sh [exec|playbook|inventory|status|zero-downtime|all]   (needs root: the lab uses namespaces)
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
if [ "$what" = status ] || [ "$what" = all ]; then
	# The lab's cap is 240 app hosts; past a few hundred neighbours the
	# machine's ARP table needs room (docs: lab notes).
	for i in 1 2 3; do t=$((i * 4096)); echo $t >/proc/sys/net/ipv4/neigh/default/gc_thresh$i; done
	for n in ${STATUS_HOSTS:-20 240}; do
		"$lab" run -q --hosts "$n" --start-timeout 5m -- scripts/bench-status.sh "$out"
	done
fi
if [ "$what" = zero-downtime ] || [ "$what" = all ]; then
	# The example deploy under a constant load through the emulated ALB
	# and classic ELB: serial 1 and serial 25 %, by ferry and then, on the
	# same lab under the same load, by ansible-playbook with the same steps
	# (elb_target / elb_instance: Debian's ansible and python3-boto3,
	# scripts/deps.sh bench; ZD_ANSIBLE=0 skips it).
	n=${ZD_HOSTS:-20}
	tags=()
	for serial in 1 '"25%"'; do
		tag=serial-$(echo "$serial" | tr -dc '0-9')
		"$lab" run -q --aws --hosts "$n" --aws-report "$out/zd-$tag-aws.json" -- scripts/bench-zero-downtime.sh "$out" "$tag" "$serial"
		tags+=("$tag")
	done
	scripts/bench-zero-downtime-report.py "$out" "${tags[@]}" | tee "$out/zero-downtime.md"
	if [ "${ZD_ANSIBLE:-1}" != 0 ] && ! ansible-doc -t module community.aws.elb_target >/dev/null 2>&1; then
		echo "zero-downtime: Ansible's community.aws collection is not installed (scripts/deps.sh bench): ferry measured alone" | tee -a "$out/zero-downtime.md"
	fi
fi
echo "results in $out/"
