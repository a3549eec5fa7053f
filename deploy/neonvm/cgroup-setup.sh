#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# cgroup-setup.sh [NAME [OWNER]]
#
# Prepares the cgroup (v2) that Postgres runs in and vm-informant manages:
# mounts cgroup2 if nothing is mounted yet, enables the memory controller
# on the way down to NAME, creates NAME and gives OWNER the three files the
# informant writes (memory.high, memory.max, cgroup.freeze).  Nothing else
# is handed over: OWNER cannot move processes or create child cgroups.
# Run as root, once per boot, before Postgres and the informant start.
# Running it again changes nothing.
#
#   NAME   cgroup path below the root   (default: neon-postgres)
#   OWNER  user the informant runs as   (default: vm-informant)
#   VMI_CGROUP_ROOT  cgroup2 mount point (default: /sys/fs/cgroup)
set -eu

name=${1:-neon-postgres}
owner=${2:-vm-informant}
root=${VMI_CGROUP_ROOT:-/sys/fs/cgroup}

die() {
	echo "cgroup-setup: $*" >&2
	exit 1
}

case $name in
'' | /* | */ | *//* | *..*)
	die "bad cgroup name '$name': give a relative path below $root, without '..'" ;;
esac
id -u "$owner" >/dev/null 2>&1 || die "no user '$owner': create it first (useradd --system $owner)"

# A cgroup2 mount has cgroup.controllers at its top.  Mount one only over an
# empty directory: a populated one is a cgroup v1 or hybrid layout, which
# this setup does not support (the informant needs the v2 memory controller).
if [ ! -e "$root/cgroup.controllers" ]; then
	[ -d "$root" ] || die "$root does not exist"
	[ -z "$(ls -A "$root")" ] ||
		die "$root is not a cgroup2 mount and not empty (cgroup v1 or hybrid?); boot with systemd.unified_cgroup_hierarchy=1 or set VMI_CGROUP_ROOT"
	mount -t cgroup2 cgroup2 "$root" || die "cannot mount cgroup2 on $root"
fi
grep -qw memory "$root/cgroup.controllers" ||
	die "the memory controller is not available in $root (cgroup.controllers: $(cat "$root/cgroup.controllers"))"

# Each level on the path must pass the memory controller to its children.
# That fails with "Device or resource busy" if a non-root level holds
# processes itself (the cgroup v2 "no internal processes" rule).
dir=$root
rest=$name
while [ -n "$rest" ]; do
	if ! grep -qw memory "$dir/cgroup.subtree_control"; then
		echo +memory >"$dir/cgroup.subtree_control" ||
			die "cannot enable the memory controller in $dir (processes in it?)"
	fi
	case $rest in
	*/*) part=${rest%%/*} rest=${rest#*/} ;;
	*) part=$rest rest= ;;
	esac
	dir=$dir/$part
	[ -d "$dir" ] || mkdir "$dir" || die "cannot create $dir"
done

for f in memory.high memory.max cgroup.freeze; do
	[ -e "$dir/$f" ] || die "$dir/$f is missing: is the memory controller enabled for $dir?"
done
chown "$owner" "$dir/memory.high" "$dir/memory.max" "$dir/cgroup.freeze" ||
	die "cannot give $dir to $owner"
echo "cgroup-setup: $dir ready, managed by $owner"
