#!/usr/bin/env bash
# Where each host's window goes in the serial-1 example deploy: runs inside
# `ferry-lab run --hosts N` (FERRY_LAB_* set), deploys RUNS times v2 then v1
# with `-o json` (each run stops, switches and starts every host; from the
# second run on both releases are on the hosts, so the stage finds its
# files in place: the window is the same), once per binary of FERRY_BINS
# (default bin/ferry; several alternate, run by run, for an A/B on the same
# lab), and prints each task's duration over all hosts and runs (min, p25,
# median) and each run's time. Indicative on a shared machine: compare
# binaries within one lab, not across labs.
#   bin/ferry-lab run -q --hosts 20 -- scripts/bench-window.sh
#   FERRY_BINS="/tmp/ferry-before bin/ferry" RUNS=3 bin/ferry-lab run -q --hosts 20 -- scripts/bench-window.sh
set -euo pipefail
root=$PWD
bins=${FERRY_BINS:-$root/bin/ferry}
inv=$FERRY_LAB_INVENTORY
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$work" "$FERRY_RECORD_DIR"' EXIT
scripts/build-app.sh "$work/dist" v1 v2
"$root/bin/ferry" run playbooks/examples/setup.yml -i "$inv" -e dist="$work/dist" -e version=v1 -o plain >/dev/null
export FERRY_CONFIG=$work/ferry.yml
printf 'environments:\n  bench: {inventory: %s}\n' "$inv" >"$FERRY_CONFIG"
sed 's/^  serial: \[1, "50%"\]/  serial: 1/' playbooks/examples/deploy.yml >"$work/serial1.yml"
for r in $(seq 1 "${RUNS:-2}"); do
	i=0
	for b in $bins; do
		i=$((i + 1))
		for v in v2 v1; do
			"$b" run "$work/serial1.yml" --env bench -e dist="$work/dist" -e version=$v -o json >"$work/run-$r-$i-$v.json"
		done
	done
done
python3 - "$work" $bins <<'PY'
import collections, glob, json, statistics, sys
from datetime import datetime
work, bins = sys.argv[1], sys.argv[2:]
def ts(s):  # RFC 3339 with up to nanoseconds, UTC
    sec, _, frac = s.rstrip('Z').partition('.')
    return datetime.fromisoformat(sec + '+00:00').timestamp() + float('0.' + (frac or '0'))
for i, b in enumerate(bins, 1):
    tasks, runs = collections.defaultdict(list), []
    for f in sorted(glob.glob(f'{work}/run-*-{i}-*.json')):
        ev = [json.loads(l) for l in open(f)]
        runs.append(ts(ev[-1]['time']) - ts(ev[0]['time']))
        for e in ev:
            if e['event'] == 'task_end' and e.get('host') and not e.get('stage'):
                tasks[e['task']].append(e['duration_ns'] / 1e6)
    print(f'{b}: runs (s) ' + ' '.join(f'{r:.2f}' for r in runs))
    for t, v in tasks.items():
        v.sort()
        print(f'  {t:<16} n={len(v):3d} min {v[0]:6.1f} p25 {v[len(v)//4]:6.1f} median {statistics.median(v):6.1f} ms')
PY
