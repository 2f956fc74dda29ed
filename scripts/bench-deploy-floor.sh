#!/usr/bin/env bash
# The floor of a serial-1 rolling deploy: what a careful hand-written
# OpenSSH script does for playbooks/examples/deploy.yml on each host, one
# host after the other, over ControlMaster connections opened at the start
# (in parallel, as ferry's preflight does; their cost is part of the run):
# read the running release, stop, upload the binary and switch `current`
# atomically (one command), start, smoke test until /status answers the
# new version (polled every 100 ms for up to 3 s, as deploy.yml does).
# No lock, no release state, no journal: the yardstick for what those
# cost ferry (issue 17: within 1.05x).
# Runs inside `ferry-lab run` (FERRY_LAB_SSH_CONFIG set).
# Usage: scripts/bench-deploy-floor.sh DIST VERSION HOST...   (DIST/VERSION/app is the binary)
set -euo pipefail
dist=$1 v=$2
shift 2
cfg=$FERRY_LAB_SSH_CONFIG
cm=$(mktemp -d)
ssh_() { ssh -F "$cfg" -o ControlPath="$cm/%h" -o BatchMode=yes "$@"; }
master() { ssh -F "$cfg" -o ControlMaster=yes -o ControlPath="$cm/%h" -o ControlPersist=600 -o BatchMode=yes -fN "$1"; }
for h in "$@"; do
	master "$h" 2>/dev/null &
done
wait
# 20 ProxyJump connections at once exceed the bastion's default MaxStartups
# (10:30:100): sshd drops some at random ("kex_exchange_identification:
# Connection closed"). Without its master, every command to that host
# would make a whole new connection through the bastion (about 0.3 s each,
# 1.5 s a host), so a careful script starts the missing ones again.
for h in "$@"; do
	for try in 1 2 3 4 5; do
		ssh -F "$cfg" -o ControlPath="$cm/%h" -O check "$h" 2>/dev/null && break
		[ $try = 5 ] && { echo "no master connection to $h after 5 tries: check that the lab and its bastion are up (ssh -F $cfg $h true)" >&2; exit 1; }
		master "$h" || sleep 0.2
	done
done
cleanup() { for h in "$@"; do ssh -F "$cfg" -o ControlPath="$cm/%h" -O exit "$h" 2>/dev/null || true; done; rm -rf "$cm"; }
trap 'cleanup "$@"' EXIT
rel=/opt/app/releases/$v
for h in "$@"; do
	running=$(ssh_ "$h" 'readlink /opt/app/current || true')
	if [ "$running" != "$rel" ]; then
		ssh_ "$h" 'sudo -n systemctl stop app'
	fi
	ssh_ "$h" "sudo -n sh -c 'set -e; mkdir -p $rel; cat >$rel/.app.tmp; chmod 0755 $rel/.app.tmp; mv -f $rel/.app.tmp $rel/app; ln -sfn $rel /opt/app/.current.tmp; mv -T /opt/app/.current.tmp /opt/app/current'" <"$dist/$v/app"
	ssh_ "$h" 'sudo -n systemctl start app'
	ssh_ "$h" "for i in \$(seq 30); do
		if exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /status HTTP/1.0\r\n\r\n' >&3 && grep -q '\"version\":\"$v\"' <&3; then exit 0; fi
		exec 3>&- 3<&-; sleep 0.1
	done; echo 'smoke test failed' >&2; exit 1"
done
