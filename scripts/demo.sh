#!/usr/bin/env bash
# make demo: a lab of N app hosts behind a bastion that are also EC2
# instances of an emulated AWS account on 127.0.0.1 (behind a target group
# and a classic ELB, in an Auto Scaling group, health-checked for real).
# ferry finds them through an aws_ec2 inventory, installs v1, then rolls out
# v2: Auto Scaling suspended, each host drained from both load balancers,
# stopped, upgraded, started, smoke-tested and put back once healthy. Both
# load balancers carry traffic: a constant load (DEMO_RATE requests/s,
# default 200) runs through them during the rollout, from the moment every
# host is in service in both (as an operator waits before a rollout;
# earlier, the load would count the fleet's first health checks after the
# v1 install as failures). On a terminal ferry's TUI shows the rollout
# (press q to leave its recap) and the load's live counters (requests,
# failed) stay on the terminal's last row under it; without one, plain
# output and the counters every 5 s. After ferry's recap, the load's says
# how many requests failed. The lab and the emulator are torn down at the
# end, even on Ctrl-C, and every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-5}
# BIN: where ferry and ferry-lab are built (make's BIN; a test's own).
export DEMO_BIN=${BIN:-bin}
dist=$(mktemp -d)
trap 'rm -rf "$dist"' EXIT
scripts/build-app.sh "$dist" v1 v2
export DEMO_DIST=$dist DEMO_RATE=${DEMO_RATE:-200}
# On a terminal the TUI owns the screen until the operator leaves it, so
# only non-interactive runs get a deadline on the rollout. --foreground keeps
# each command in the terminal's process group (keys, Ctrl-C).
if [ -t 0 ] && [ -t 1 ]; then export DEMO_LIMIT=0; else export DEMO_LIMIT=600; fi
# Not exec: the trap removes $dist when the lab is gone.
rc=0
"$DEMO_BIN/ferry-lab" run --aws --hosts "$hosts" -- bash -c '
	set -euo pipefail
	export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$FERRY_LAB_DIR/runs
	inv=$FERRY_LAB_AWS_INVENTORY
	echo "== lab up: bastion $FERRY_LAB_BASTION; AWS emulated at $AWS_ENDPOINT_URL ($AWS_REGION)"
	echo "== the aws_ec2 inventory ($inv):"
	timeout --foreground 60 "$DEMO_BIN/ferry" inventory -i "$inv" --graph
	timeout --foreground 60 "$DEMO_BIN/ferry" ping -i "$inv"
	echo "== installing v1 on every host"
	timeout --foreground 300 "$DEMO_BIN/ferry" run playbooks/examples/setup.yml -i "$inv" -e dist="$DEMO_DIST" -e version=v1 --output plain
	echo "== rolling out v2 under $DEMO_RATE requests/s through the ALB and the ELB: drain, stop, upload, start, smoke test, re-register"
	"$DEMO_BIN/ferry-lab" load --rate "$DEMO_RATE" --wait-in-service 60s -- \
		timeout --foreground "$DEMO_LIMIT" "$DEMO_BIN/ferry" run playbooks/examples/deploy.yml -i "$inv" -e dist="$DEMO_DIST" -e version=v2
	echo "== every host now reports:"
	timeout --foreground 60 "$DEMO_BIN/ferry" exec -i "$inv" -- "curl -s 127.0.0.1:8080/status 2>/dev/null || wget -qO- 127.0.0.1:8080/status"
' || rc=$?
exit $rc
