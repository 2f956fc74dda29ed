#!/usr/bin/env bash
# Zero-downtime benchmark, one rollout per tool. Runs inside
#   ferry-lab run -q --aws --hosts N --aws-report OUT/zd-TAG-aws.json -- scripts/bench-zero-downtime.sh OUT TAG SERIAL
# (FERRY_LAB_* and the emulator's AWS_* set): installs v1, then rolls out v2
# with the example deploy (playbooks/examples/deploy.yml, its serial set to
# SERIAL) while `ferry-lab load` drives RATE requests/s (default 200)
# through the emulated ALB and classic ELB. Then, on the same lab and under
# the same load, ansible-playbook rolls out v3 with the same steps
# (testdata/bench/zero-downtime.ansible.yml: community.aws's elb_target and
# elb_instance), unless ZD_ANSIBLE=0 or the collections are missing.
# Writes OUT/zd-TAG-load.json and OUT/zd-TAG-ferry.txt (ferry's load report
# and output), OUT/zd-TAG-ansible-load.json and OUT/zd-TAG-ansible.txt;
# scripts/bench-zero-downtime-report.py turns them and the emulator's log
# into table rows (each rollout's calls and out-of-service windows are those
# inside its own load window).
# FERRY=path/to/ferry measures another build (e.g. one from before a change).
set -euo pipefail
out=$1 tag=$2 serial=$3
root=$PWD
ferry=${FERRY:-$root/bin/ferry}
inv=$FERRY_LAB_AWS_INVENTORY
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$work" "$FERRY_RECORD_DIR"' EXIT
scripts/build-app.sh "$work" v1 v2 v3
"$ferry" run playbooks/examples/setup.yml -i "$inv" -e dist="$work" -e version=v1 -o plain >/dev/null
sed "s/^  serial: .*/  serial: $serial/" playbooks/examples/deploy.yml >"$work/deploy.yml"
grep -q "^  serial: $serial\$" "$work/deploy.yml"
# The load starts once every target is in service in both load balancers
# (health checks every 1 s, healthy after 2), not after a guessed pause.
"$root/bin/ferry-lab" load --rate "${RATE:-200}" --wait-in-service 60s --every 1h --report "$out/zd-$tag-load.json" -- \
	"$ferry" run "$work/deploy.yml" -i "$inv" -e dist="$work" -e version=v2 -o plain >"$out/zd-$tag-ferry.txt" 2>&1

if [ "${ZD_ANSIBLE:-1}" = 0 ]; then
	exit 0
fi
if ! ansible-doc -t module community.aws.elb_target >/dev/null 2>&1 || ! python3 -c 'import boto3' 2>/dev/null; then
	echo "bench-zero-downtime: community.aws (Debian's ansible) or boto3 (python3-boto3) missing: Ansible not measured (scripts/deps.sh bench)" >&2
	exit 0
fi
# Ansible's inventory: the lab's static one (connection through the
# bastion) plus each host's instance_id as the aws_ec2 inventory gives it.
# (Debian's amazon.aws 5.5 aws_ec2 plugin cannot be pointed at an endpoint;
# ferry lists the same aws_ec2 file.)
mkdir -p "$work/ansible/host_vars"
cp "$FERRY_LAB_INVENTORY" "$work/ansible/inventory.yml"
"$ferry" inventory --list -i "$inv" |
	jq -r '._meta.hostvars | to_entries[] | select(.value.instance_id != null) | "\(.key) \(.value.instance_id)"' |
	while read -r host id; do
		printf 'instance_id: %s\n' "$id" >"$work/ansible/host_vars/$host.yml"
	done
[ -n "$(ls "$work/ansible/host_vars")" ] || { echo "bench-zero-downtime: no instance_id in the aws_ec2 inventory" >&2; exit 1; }
# Debian's botocore 1.29 reads no AWS_ENDPOINT_URL; amazon.aws takes the
# endpoint from AWS_URL. Empty AWS_PROFILE / AWS_SESSION_TOKEN would be
# taken as a profile and a token.
export AWS_URL=$AWS_ENDPOINT_URL
unset AWS_PROFILE AWS_SESSION_TOKEN
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_PIPELINING=True ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
export ANSIBLE_LOCAL_TEMP=$work/ansible-tmp ANSIBLE_SSH_CONTROL_PATH_DIR=$work/ansible-cp
# 5 forks: through one bastion with OpenSSH's default MaxStartups 10:30:100,
# 20 forks lose hosts as UNREACHABLE while they connect (seen: 4 of 20).
export ANSIBLE_FORKS=${ANSIBLE_FORKS:-5}
# Likewise every host back in service after ferry's rollout.
"$root/bin/ferry-lab" load --rate "${RATE:-200}" --wait-in-service 60s --every 1h --report "$out/zd-$tag-ansible-load.json" -- \
	ansible-playbook -i "$work/ansible/inventory.yml" "$root/testdata/bench/zero-downtime.ansible.yml" \
	-e dist="$work" -e extra_version=v3 -e batch="${serial//\"/}" >"$out/zd-$tag-ansible.txt" 2>&1 ||
	echo "bench-zero-downtime: ansible-playbook failed (exit $?): see $out/zd-$tag-ansible.txt; its figures cover the hosts it reached" >&2
