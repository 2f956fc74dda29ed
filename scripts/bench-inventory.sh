#!/usr/bin/env bash
# Inventory build time and memory: `ferry inventory --list` vs
# `ansible-inventory --list` (amazon.aws.aws_ec2) on the same aws_ec2 file,
# against the AWS emulator running as a process of its own on 127.0.0.1
# (internal/testrig/awsemu/cmd/awsemu-serve), seeded with INSTANCES instances over
# REGIONS. Nothing reaches real AWS.
#
# Wall time comes from hyperfine; peak RSS and the endpoint's own share from
# runs under /usr/bin/time -v, each bracketed by the emulator's counters
# (/__emu/stats: time spent building responses, concurrent requests counted
# once). A curl loop fetching the same pages gives the floor any client pays.
#
# ansible-inventory reaches the emulator through botocore's data path: Debian
# 12's amazon.aws 5.5 has no endpoint_url option and its botocore 1.29 reads
# no AWS_ENDPOINT_URL, but botocore loads the endpoint rule set of a service
# from AWS_DATA_PATH before its own, and a rule set with one rule sends every
# region to the emulator.
#
# Usage: scripts/bench-inventory.sh   (root, or the packages already present)
# Environment: INSTANCES (10000), REGIONS (4), RUNS (10, ferry), ANSIBLE_RUNS
# (3), RSS_RUNS (3), BENCH_OUT (bench-results). Writes $BENCH_OUT/inventory.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${INSTANCES:-10000}
regions=${REGIONS:-us-east-1,us-west-2,eu-west-1,ap-southeast-2}
runs=${RUNS:-10}
aruns=${ANSIBLE_RUNS:-3}
rssruns=${RSS_RUNS:-3}
out=${BENCH_OUT:-bench-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
nregions=$(tr ',' '\n' <<<"$regions" | grep -c .)

# --- packages, idempotently ------------------------------------------------
want=()
need() { for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || want+=("$p"); done; }
need hyperfine time curl python3
need ansible python3-boto3 # ansible (not just ansible-core) bundles amazon.aws
if [ ${#want[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "bench-inventory: missing packages ${want[*]}; run as root or: sudo apt-get install ${want[*]}" >&2
		exit 1
	fi
	echo "bench-inventory: installing ${want[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get update -qq
	timeout 900 apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
py=/usr/bin/python3 # Debian's, the one ansible runs on (not a pyenv shim)

# --- binaries and the emulator ---------------------------------------------
work=$(mktemp -d)
emu_pid=
cleanup() {
	if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
		kill "$emu_pid"
		for _ in $(seq 50); do kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$emu_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

make -s build >/dev/null
ferry=$root/bin/ferry
CGO_ENABLED=0 go build -trimpath -o "$work/awsemu-serve" ./internal/testrig/awsemu/cmd/awsemu-serve

"$work/awsemu-serve" -instances "$n" -regions "$regions" -ready "$work/endpoint" >"$work/emu.log" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do [ -s "$work/endpoint" ] && break; sleep 0.1; done
[ -s "$work/endpoint" ] || { echo "bench-inventory: the emulator did not start in 10 s:" >&2; cat "$work/emu.log" >&2; exit 1; }
endpoint=$(cat "$work/endpoint")

# --- the inventory, and how each tool reaches the emulator -----------------
# One file for both tools: compose uses an expression both Jinja and ferry
# read, and the state filter is explicit (the tools' defaults differ).
inv=$work/bench.aws_ec2.yml
cat >"$inv" <<EOF
plugin: amazon.aws.aws_ec2
regions: [$(sed 's/,/, /g' <<<"$regions")]
filters:
  tag:Env: prod
  instance-state-name: running
hostnames: [tag:Name, private-ip-address]
keyed_groups:
  - {key: tags.Role, prefix: role}
  - {key: placement.availability_zone, prefix: az}
compose:
  ansible_host: private_ip_address
EOF

mkdir -p "$work/botodata/ec2/2016-11-15"
cat >"$work/botodata/ec2/2016-11-15/endpoint-rule-set-1.json" <<EOF
{
  "version": "1.0",
  "parameters": {
    "Region": {"builtIn": "AWS::Region", "required": true, "type": "String"},
    "UseDualStack": {"builtIn": "AWS::UseDualStack", "required": true, "default": false, "type": "Boolean"},
    "UseFIPS": {"builtIn": "AWS::UseFIPS", "required": true, "default": false, "type": "Boolean"},
    "Endpoint": {"builtIn": "SDK::Endpoint", "required": false, "type": "String"}
  },
  "rules": [{"conditions": [], "endpoint": {"url": "$endpoint", "properties": {}, "headers": {}}, "type": "endpoint"}]
}
EOF

# Static credentials (the emulator checks no signature); no profile, no IMDS.
export AWS_ACCESS_KEY_ID=AKIAFERRYBENCH000000 AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_ENDPOINT_URL=$endpoint    # ferry (aws-sdk-go-v2), and botocore >= 1.31
export AWS_DATA_PATH=$work/botodata  # botocore 1.28+ (Debian 12: 1.29)
export ANSIBLE_LOCAL_TEMP=$work/ansible-tmp ANSIBLE_INVENTORY_CACHE=False
cd "$work" # no ansible.cfg of the repo's or the caller's

ferry_cmd="$ferry inventory -i $inv --list"
ansible_cmd="ansible-inventory -i $inv --list"

# --- check both tools see the same inventory -------------------------------
count_hosts() { "$py" -c 'import json,sys; print(len(json.load(sys.stdin)["_meta"]["hostvars"]))'; }
got=$($ferry_cmd | count_hosts)
[ "$got" = "$n" ] || { echo "bench-inventory: ferry listed $got hosts, want $n" >&2; exit 1; }
ansible_ok=true
why=
if ! command -v ansible-inventory >/dev/null; then
	ansible_ok=false why="ansible-inventory is not installed"
elif ! "$py" -c 'import boto3, botocore, ansible_collections.amazon.aws' 2>/dev/null; then
	ansible_ok=false why="amazon.aws or boto3 missing for $py"
elif ! $ansible_cmd >"$work/ansible.json" 2>"$work/ansible.err"; then
	ansible_ok=false why="ansible-inventory failed: $(tail -3 "$work/ansible.err")"
elif [ "$(count_hosts <"$work/ansible.json")" != "$n" ]; then
	ansible_ok=false why="ansible-inventory listed $(count_hosts <"$work/ansible.json") hosts, want $n: $(grep -i -m3 'warn\|error' "$work/ansible.err")"
else
	# Same hosts, groups and members, same ansible_host.
	$ferry_cmd >"$work/ferry.json"
	"$py" - "$work/ferry.json" "$work/ansible.json" <<'PY' || { ansible_ok=false; why="the two inventories differ (see above)"; }
import json, sys
f, a = (json.load(open(p)) for p in sys.argv[1:3])
def groups(d):
    return {k: (sorted(v.get("hosts", [])), sorted(v.get("children", []))) for k, v in d.items() if k != "_meta"}
gf, ga = groups(f), groups(a)
bad = [g for g in set(gf) | set(ga) if gf.get(g) != ga.get(g)]
hf, ha = f["_meta"]["hostvars"], a["_meta"]["hostvars"]
bad += [h for h in ha if hf.get(h, {}).get("ansible_host") != ha[h].get("ansible_host")]
if bad or set(hf) != set(ha):
    print("differs:", sorted(bad)[:10], len(set(hf) ^ set(ha)), "hosts in one only", file=sys.stderr)
    sys.exit(1)
PY
fi
$ansible_ok || echo "bench-inventory: ansible side skipped: $why" >&2

# --- wall time -------------------------------------------------------------
fetch_all() { # every page of the same query, sequentially, with curl
	local r tok body
	for r in ${REGIONS_LIST}; do
		tok=
		while :; do
			body=$(curl -sS --max-time 30 -H "Authorization: AWS4-HMAC-SHA256 Credential=AKIAFERRYBENCH000000/20240101/$r/ec2/aws4_request, SignedHeaders=host, Signature=0" \
				--data-urlencode Action=DescribeInstances --data-urlencode Version=2016-11-15 \
				--data-urlencode Filter.1.Name=tag:Env --data-urlencode Filter.1.Value.1=prod \
				--data-urlencode Filter.2.Name=instance-state-name --data-urlencode Filter.2.Value.1=running \
				--data-urlencode MaxResults=1000 ${tok:+--data-urlencode NextToken=$tok} "$EMU_ENDPOINT/")
			tok=$(sed -n 's:.*<nextToken>\([^<]*\)</nextToken>.*:\1:p' <<<"${body: -200}")
			[ -n "$tok" ] || break
		done
	done
}
export -f fetch_all
export REGIONS_LIST=${regions//,/ } EMU_ENDPOINT=$endpoint

hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$work/h-ferry.json" \
	-n ferry "$ferry_cmd" \
	-n "curl fetch only" "bash -c fetch_all" >&2
if $ansible_ok; then
	hyperfine -N --style basic --warmup 1 --runs "$aruns" --export-json "$work/h-ansible.json" \
		-n ansible-inventory "$ansible_cmd" >&2
fi

# --- peak RSS and the endpoint's share -------------------------------------
# Each run: reset the emulator's counters, run under /usr/bin/time -v, read
# the counters. One line per run: RSS_kB busy_union_s first_to_last_s requests bytes
measure() { # measure NAME CMD...
	local name=$1
	shift
	for _ in $(seq "$rssruns"); do
		curl -sS --max-time 10 -X POST "$endpoint/__emu/reset"
		/usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>>"$work/$name.err"
		rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
		curl -sS --max-time 10 "$endpoint/__emu/stats" |
			"$py" -c 'import json,sys; s=json.load(sys.stdin); print(sys.argv[1], s["busy_union_s"], s["first_to_last_s"], s["requests"], s["bytes"])' "$rss"
	done >"$work/m-$name.txt"
}
measure ferry $ferry_cmd
measure curl bash -c fetch_all
$ansible_ok && measure ansible $ansible_cmd

# --- the table ---------------------------------------------------------------
"$py" - "$work" "$n" "$nregions" "$ansible_ok" "$why" "$ferry_cmd" "$ansible_cmd" >"$out/inventory.md" <<'PY'
import json, os, statistics as st, sys
work, n, nreg, ansible_ok, why, fcmd, acmd = sys.argv[1:8]
res = {r["command"]: r for f in ("h-ferry.json", "h-ansible.json")
       if os.path.exists(os.path.join(work, f))
       for r in json.load(open(os.path.join(work, f)))["results"]}
def m(name):
    rows = [l.split() for l in open(os.path.join(work, f"m-{name}.txt"))]
    return {"rss": st.median(float(r[0]) for r in rows) / 1024,
            "busy": st.median(float(r[1]) for r in rows),
            "span": st.median(float(r[2]) for r in rows),
            "req": rows[0][3], "bytes": int(rows[0][4])}
tools = [("ferry", "ferry", "ferry"), ("curl fetch only", "curl", "curl loop (floor: fetch every page, no parsing)")]
if ansible_ok == "true":
    tools.append(("ansible-inventory", "ansible", "ansible-inventory (amazon.aws.aws_ec2)"))
base = res["ferry"]["mean"]
print(f"Inventory of {n} instances in {nreg} regions, emulator in its own process on 127.0.0.1.\n")
print("| tool | instances | regions | wall time (mean ± σ) | client CPU user+sys | peak RSS | endpoint busy | wall − endpoint | ratio to ferry |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for key, mname, label in tools:
    r, x = res[key], m(mname)
    cpu = r["user"] + r["system"]
    own = r["mean"] - x["busy"]
    sd = r["stddev"] or 0.0  # None after a single run
    print(f"| {label} | {n} | {nreg} | {r['mean']:.3f} s ± {sd:.3f} s ({len(r['times'])} runs) | {cpu:.2f} s"
          f" | {x['rss']:.0f} MiB | {x['busy']:.3f} s | {own:.3f} s | {r['mean']/base:.2f}× |")
x = m("ferry")
print(f"\nEach run: {x['req']} DescribeInstances requests, {x['bytes']/1e6:.1f} MB of XML. "
      "Endpoint busy = wall time during which the emulator was building a response (concurrent requests counted once), "
      "median of the /usr/bin/time runs; peak RSS is the client process alone (median). "
      "For the curl row, CPU and RSS are those of bash and curl, not meaningful.")
spans = ", ".join(f"{label.split(' (')[0]} {m(mname)['span']:.2f} s" for _, mname, label in tools)
print(f"\nFrom the first request to the last response (median): {spans}; "
      "the rest of a run is the client's own start-up and building the inventory.")
if ansible_ok != "true":
    print(f"\nansible-inventory: not measured — {why}")
print(f"\nLoad average when the table was written: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs.")
print("\nCommands (output to /dev/null):\n")
print(f"    {fcmd}")
if ansible_ok == "true":
    print(f"    {acmd}")
PY
cat "$out/inventory.md"
cp "$inv" "$out/inventory.aws_ec2.yml"
