#!/usr/bin/env bash
# make demo: a lab of N app hosts behind a bastion, v1 installed on all of
# them, then a rolling deploy of v2 with `ferry run` (the TUI on a terminal,
# plain output otherwise). The lab is torn down at the end, even on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-5}
dist=$(mktemp -d)
trap 'rm -rf "$dist"' EXIT
for v in v1 v2; do
	mkdir -p "$dist/$v"
	CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$v" -o "$dist/$v/app" ./playbooks/examples/app
done
export DEMO_DIST=$dist
exec bin/ferry-lab run --hosts "$hosts" -- bash -c '
	set -e
	export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$FERRY_LAB_DIR/runs
	echo "== lab up: bastion $FERRY_LAB_BASTION, inventory $FERRY_LAB_INVENTORY"
	bin/ferry ping -i "$FERRY_LAB_INVENTORY"
	echo "== installing v1 on every host"
	bin/ferry run playbooks/examples/setup.yml -i "$FERRY_LAB_INVENTORY" -e dist=$DEMO_DIST -e version=v1 --output plain
	echo "== rolling out v2"
	bin/ferry run playbooks/examples/deploy.yml -i "$FERRY_LAB_INVENTORY" -e dist=$DEMO_DIST -e version=v2
	echo "== every host now reports:"
	bin/ferry exec -i "$FERRY_LAB_INVENTORY" -- "curl -s 127.0.0.1:8080/status 2>/dev/null || wget -qO- 127.0.0.1:8080/status"
'
