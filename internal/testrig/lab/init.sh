#!/bin/bash
# PID 1 of one ferry lab host (embedded in the lab package, run by Start).
#
# It runs inside the host's own network, UTS, mount and PID namespaces
# (nsenter --net=/run/netns/NS unshare --uts --mount --pid --fork
# --kill-child --mount-proc --propagation private), so everything it mounts
# exists only for this host. (nsenter rather than ip netns exec: the latter
# replaces /sys and loses the cgroup mounts that podman's runc needs.) It gives the host its own /etc, /usr, /var (overlayfs over
# the real ones, with per-host upper layers), /opt, /home, /root, /tmp,
# /var/log, /var/lib/ferry and /var/lib/containers (bind mounts of per-host directories),
# a private /run and /dev/shm, sets the hostname and the network, starts
# sshd, then stays alive to reap orphans. Killing this process ends the host.
#
# Usage: init.sh HOSTDIR NAME ROLE   (ROLE is app or bastion)
set -euo pipefail

H=$1 NAME=$2 ROLE=$3

# Everything below reads its sources through /mnt, so that mounting over
# /tmp (where the lab directory often lives) cannot hide them.
mount --bind "$H" /mnt
M=/mnt

# A /sys that shows this host's network devices, with the machine's cgroup
# hierarchy mounted back under it.
mount --rbind /sys/fs/cgroup "$M/cgroup"
mount -t sysfs lab-sys /sys
mount --rbind "$M/cgroup" /sys/fs/cgroup

for d in etc usr var; do
	mount -t overlay "lab-$d" -o "lowerdir=/$d,upperdir=$M/upper/$d,workdir=$M/work/$d" "/$d"
done
mount --bind "$M/opt" /opt
mount --bind "$M/home" /home
mount --bind "$M/root" /root
mount --bind "$M/tmp" /tmp
mount --bind "$M/log" /var/log
# ferry's own state (deploy locks, release records): the host's alone, not
# the machine's through the /var overlay (a local-connection run on the
# machine would otherwise lock every lab host's environment at once).
mkdir -p /var/lib/ferry
mount --bind "$M/ferry" /var/lib/ferry
# This mount namespace began as a copy of the machine's: drop its copies of
# other network namespaces' mounts, which would keep them alive after their
# own lab deletes them.
umount -l /run/netns 2>/dev/null || true
mount -t tmpfs -o mode=0755,nosuid,nodev lab-run /run
mount -t tmpfs -o mode=1777,nosuid,nodev lab-shm /dev/shm
mkdir -p /run/lock /run/sshd
chmod 1777 /run/lock
if [ "$ROLE" = app ]; then
	mkdir -p /var/lib/containers
	mount --bind "$M/containers" /var/lib/containers
fi

# Identity: hostname, the deploy user, names of the other lab hosts. The
# appends copy the files up into this host's /etc layer only.
hostname "$NAME"
echo "$NAME" >/etc/hostname
cat "$M/add/hosts" >>/etc/hosts
cat "$M/add/passwd" >>/etc/passwd
cat "$M/add/shadow" >>/etc/shadow
cat "$M/add/group" >>/etc/group
if [ -f /etc/gshadow ]; then cat "$M/add/gshadow" >>/etc/gshadow; fi
# The machine's own host keys must not be offered by lab hosts.
rm -f /etc/ssh/ssh_host_rsa_key* /etc/ssh/ssh_host_ecdsa_key*

ip -batch "$M/net.batch"

/usr/sbin/sshd -D -f /etc/ssh/sshd_config -E /var/log/sshd.log </dev/null &
# The network is configured: the lab may now connect (an earlier attempt
# would leave an unanswered ARP entry that delays connections by a second).
: >"$M/ready"

# The overlays and bind mounts keep their sources alive; the host does not
# need to see the lab's scaffolding.
umount -l /mnt

trap 'kill -TERM -1 2>/dev/null || true; exit 0' TERM INT
sleep infinity </dev/null &
# wait reaps every child, orphans of the host included.
while :; do wait || true; done
