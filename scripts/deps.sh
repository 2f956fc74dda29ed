#!/usr/bin/env bash
# Installs what ferry's tests, demo and benchmarks need on a Debian machine,
# idempotently: a package already present is not touched, so a second run
# costs a few `dpkg -s` calls. Usage: scripts/deps.sh test|demo|bench|containers
set -euo pipefail

want=()
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
		need openssh-server openssh-client iproute2 sudo util-linux ansible-core hyperfine python3
		;;
	containers)
		need podman runc conmon netavark aardvark-dns containernetworking-plugins iptables uidmap slirp4netns fuse-overlayfs catatonit
		;;
	*)
		echo "deps.sh: unknown group $group (test, demo, bench, containers)" >&2
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

# The system sshd service is not needed (the lab starts its own sshd
# processes); sshd only needs its privilege-separation directory.
mkdir -p /run/sshd 2>/dev/null || true
