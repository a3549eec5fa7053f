#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /init of the test guest (busybox sh as PID 1 until the last line).
#
# Mounts the pseudo file systems, loads the virtio modules listed in
# /etc/vmi/modules (in dependency order), configures slirp's fixed
# addresses (the host is 10.0.2.2), mounts cgroup v2 with the memory
# controller enabled for children, creates the managed cgroup, and then
# becomes the command channel (vmtool serve), which also reaps orphans.
# The daemon is started later by the host through that channel
# (/bin/vmi-start), so each test chooses when and with what config.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
say() { echo "vmi-init: $*" >/dev/console; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
say "kernel $(uname -r), $(grep MemTotal /proc/meminfo)"

while read -r mod; do
	[ -n "$mod" ] || continue
	insmod "/lib/modules/$mod" || say "insmod $mod failed"
done </etc/vmi/modules

ip link set lo up
if ! { ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up &&
	ip route add default via 10.0.2.2; }; then
	say "network setup failed"
fi

mount -t cgroup2 cgroup2 /sys/fs/cgroup || say "cgroup2 mount failed"
echo +memory >/sys/fs/cgroup/cgroup.subtree_control || say "memory controller unavailable"
mkdir -p /sys/fs/cgroup/neon-postgres

say "ready: cgroup controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
exec /bin/vmtool serve 10399
