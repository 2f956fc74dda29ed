#!/usr/bin/env bash
# Zero-downtime benchmark, one rollout. Runs inside
#   ferry-lab run -q --aws --hosts N --aws-report OUT/zd-TAG-aws.json -- scripts/bench-zero-downtime.sh OUT TAG SERIAL
# (FERRY_LAB_* and the emulator's AWS_* set): installs v1, then rolls out v2
# with the example deploy (playbooks/examples/deploy.yml, its serial set to
# SERIAL) while `ferry-lab load` drives RATE requests/s (default 200)
# through the emulated ALB and classic ELB. Writes OUT/zd-TAG-load.json (the
# load's report) and OUT/zd-TAG-ferry.txt; scripts/bench-zero-downtime-report.py
# turns them and the emulator's log into a table row.
# FERRY=path/to/ferry measures another build (e.g. one from before a change).
set -euo pipefail
out=$1 tag=$2 serial=$3
root=$PWD
ferry=${FERRY:-$root/bin/ferry}
inv=$FERRY_LAB_AWS_INVENTORY
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$work" "$FERRY_RECORD_DIR"' EXIT
for v in v1 v2; do
	mkdir -p "$work/$v"
	CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$v" -o "$work/$v/app" ./playbooks/examples/app
done
"$ferry" run playbooks/examples/setup.yml -i "$inv" -e dist="$work" -e version=v1 -o plain >/dev/null
sed "s/^  serial: .*/  serial: $serial/" playbooks/examples/deploy.yml >"$work/deploy.yml"
grep -q "^  serial: $serial\$" "$work/deploy.yml"
# Health checks every 1 s, healthy after 2: give every target time to be
# in service before the load starts.
sleep 4
"$root/bin/ferry-lab" load --rate "${RATE:-200}" --every 1h --report "$out/zd-$tag-load.json" -- \
	"$ferry" run "$work/deploy.yml" -i "$inv" -e dist="$work" -e version=v2 -o plain >"$out/zd-$tag-ferry.txt" 2>&1
