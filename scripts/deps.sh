#!/usr/bin/env bash
# Installs what ferry's tests, demo and benchmarks need on a Debian machine,
# idempotently: a package already present is not touched, so a second run
# costs a few `dpkg -s` calls. Usage: scripts/deps.sh GROUP... with groups
# test, demo, bench (also Debian's full ansible, whose bundled amazon.aws
# and community.aws collections with python3-boto3 are the Ansible side of
# the inventory and zero-downtime benchmarks), containers (podman for the
# docker module's lab test; it also writes /etc/containers/containers.conf
# when there is none),
# ansible (ansible-core: the test that runs one playbook with both tools, and
# the golden comparison with ansible-inventory; Debian's ansible and
# python3-boto3: the test of the Ansible zero-downtime playbook's
# elb_target/elb_instance against the AWS emulator), browser (Debian's chromium:
# the tests that load `ferry report` pages in a headless browser) and sqs
# (node and the npm package local-aws-sqs, the SQS emulator of the worker's
# tests, into the git-ignored .deps/npm of the repo).
set -euo pipefail

want=()
containers=false
sqs=false
need() { # need PACKAGE... : queue packages that are not installed
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || want+=("$p")
	done
}

for group in "$@"; do
	case "$group" in
	test | demo)
		need openssh-server openssh-client iproute2 sudo util-linux tmux procps
		;;
	bench)
		need openssh-server openssh-client iproute2 sudo util-linux ansible-core hyperfine python3 jq
		need ansible python3-boto3
		;;
	ansible)
		need ansible-core python3
		need ansible python3-boto3
		;;
	browser)
		need chromium
		;;
	sqs)
		command -v node >/dev/null 2>&1 || need nodejs
		command -v npm >/dev/null 2>&1 || need npm
		sqs=true
		;;
	containers)
		need podman runc conmon netavark aardvark-dns containernetworking-plugins iptables uidmap slirp4netns fuse-overlayfs catatonit
		containers=true
		;;
	*)
		echo "deps.sh: unknown group $group (test, demo, bench, containers, ansible, browser, sqs)" >&2
		exit 2
		;;
	esac
done

if [ ${#want[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps.sh: missing packages ${want[*]}; run as root or: sudo apt-get install ${want[*]}" >&2
		exit 1
	fi
	echo "deps.sh: installing ${want[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Bounded: a stuck mirror must fail the build, not hang it.
	timeout 600 apt-get update -qq
	timeout 900 apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi

# podman's defaults fail on these machines (hybrid cgroups, no
# CAP_SYS_RESOURCE): crun can neither set RLIMIT_NOFILE nor use hybrid
# cgroups, and runc cannot raise the open-files limit above the hard one.
# Lab hosts read the machine's /etc through their overlays, so this one file
# serves them all. An existing file is the machine owner's: it is left alone.
conf=/etc/containers/containers.conf
if $containers && [ ! -e "$conf" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps.sh: $conf is missing; run as root to write it" >&2
		exit 1
	fi
	nofile=$(ulimit -Hn)
	if [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ]; then
		nofile=65536
	fi
	mkdir -p /etc/containers
	cat >"$conf.tmp" <<CONF
# Written by ferry's scripts/deps.sh: podman settings that work on machines
# with hybrid cgroups and without CAP_SYS_RESOURCE (runc, cgroupfs, open-files
# limits within the hard limit).
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
	mv "$conf.tmp" "$conf"
	echo "deps.sh: wrote $conf" >&2
fi

# The system sshd service is not needed (the lab starts its own sshd
# processes); sshd only needs its privilege-separation directory.
mkdir -p /run/sshd 2>/dev/null || true

# The SQS emulator, pinned; a second run finds it and does nothing.
sqs_version=2.0.2
sqs_dir="$(cd "$(dirname "$0")/.." && pwd)/.deps/npm"
if $sqs && ! grep -qs "\"version\": \"$sqs_version\"" "$sqs_dir/node_modules/local-aws-sqs/package.json"; then
	echo "deps.sh: installing local-aws-sqs@$sqs_version into $sqs_dir" >&2
	mkdir -p "$sqs_dir"
	timeout 600 npm install --prefix "$sqs_dir" --no-audit --no-fund --loglevel=error "local-aws-sqs@$sqs_version" >/dev/null
fi
