#!/usr/bin/env bash
# Runs inside `ferry-lab run --hosts N` for scripts/bench-scale.sh: one row
# of the table (ferry, then Ansible up to ANSIBLE_MAX_HOSTS). ferry runs on
# an environment of ferry.yml, so the deploy lock and the release state are
# on; its JSON events give the lock's share of the run (taking it, and
# releasing it with the release records).
set -euo pipefail
n=$1 table=$2
inv=$FERRY_LAB_INVENTORY
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$(mktemp -d)
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_PIPELINING=True ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
export ANSIBLE_LOCAL_TEMP=$(mktemp -d) ANSIBLE_SSH_CONTROL_PATH_DIR=$(mktemp -d)
m=$(mktemp)
measure() { # prints "wall s | peak MB"; "(N hosts failed)" when some did
	local failed=""
	if ! /usr/bin/time -o "$m" -f '%e %M' "$@" >"$m.out" 2>&1; then
		failed=" ($(grep -cE '(unreachable|failed)=[1-9]' "$m.out" || true) hosts failed)"
	fi
	tail -n 1 "$m" | awk -v f="$failed" '{printf "%.1f s%s | %.0f MB", $1, f, $2/1024}'
}
export FERRY_CONFIG=$(mktemp --suffix=.yml)
printf 'environments:\n  bench: {inventory: %s}\n' "$inv" >"$FERRY_CONFIG"
f=$(measure bin/ferry run testdata/bench/ten-tasks.yml --env bench -f 200 -o json)
cp "$m.out" "$(dirname "$table")/scale-$n-ferry.jsonl" # the run's events, to read a failure
# lock_share: "taken X s + released Y s = Z% of the run" from the events.
lock=$(jq -rs '
	(map(select(.event == "run_end"))[0].duration_ns // 0) as $run
	| (map(select(.event == "lock" and .status == "ok"))[0].duration_ns // 0) as $take
	| (map(select(.event == "lock" and .status == "skipped"))[0].duration_ns // 0) as $rel
	| if $run > 0 then "\($take / 1e9 * 100 | round / 100) s + \($rel / 1e9 * 100 | round / 100) s (\(($take + $rel) / $run * 1000 | round / 10)%)" else "n/a" end
' <(grep '^{' "$m.out") 2>/dev/null || echo n/a)
a="not run | "
if [ "$n" -le "${ANSIBLE_MAX_HOSTS:-100}" ] && command -v ansible-playbook >/dev/null; then
	a=$(measure ansible-playbook -i "$inv" -f 20 testdata/bench/ten-tasks.ansible.yml)
fi
echo "| $n | $f | $lock | $a |" | tee -a "$table"
