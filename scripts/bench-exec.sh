#!/usr/bin/env bash
# Runs inside `ferry-lab run` (FERRY_LAB_* set): `true` on 1 and 20 hosts,
# ferry exec vs an OpenSSH loop (ssh -J, no multiplexing) vs OpenSSH with
# ControlMaster (masters opened beforehand) vs ansible ad-hoc.
set -euo pipefail
out=$1
ferry="$PWD/bin/ferry"
inv=$FERRY_LAB_INVENTORY
cfg=$FERRY_LAB_SSH_CONFIG
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_PIPELINING=True
export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_LOCAL_TEMP=$(mktemp -d) ANSIBLE_SSH_CONTROL_PATH_DIR=$(mktemp -d)
hosts20=$(seq -f 'app%g' 1 20 | tr '\n' ' ')
cm=$(mktemp -d)

# OpenSSH with ControlMaster: masters opened once, outside the measurement.
for h in $hosts20; do
	ssh -F "$cfg" -o ControlMaster=yes -o ControlPath="$cm/%h" -o ControlPersist=600 -fN "$h"
done
cleanup() { for h in $hosts20; do ssh -F "$cfg" -o ControlPath="$cm/%h" -O exit "$h" 2>/dev/null || true; done; }
trap cleanup EXIT

loop_plain() { for h in "$@"; do ssh -F "$cfg" -o ControlMaster=no -o ControlPath=none "$h" true; done; }
loop_cm() { for h in "$@"; do ssh -F "$cfg" -o ControlPath="$cm/%h" "$h" true; done; }
export -f loop_plain loop_cm
export cfg cm

for n in 1 20; do
	if [ $n = 1 ]; then hs=app1; lim=app1; else hs=$hosts20; lim=all; fi
	hyperfine -N --warmup 1 --runs ${RUNS:-10} --export-markdown "$out/exec-$n.md" --export-json "$out/exec-$n.json" \
		-n "ferry exec ($n)" "$ferry exec -i $inv -l $lim -f 20 -- true" \
		-n "ssh -J loop ($n)" "bash -c 'loop_plain $hs'" \
		-n "ssh ControlMaster loop ($n)" "bash -c 'loop_cm $hs'" \
		-n "ansible -m command ($n)" -i "ansible $lim -i $inv -f 20 -m command -a true"
done
