#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run-in-cgroup.sh NAME COMMAND [ARG...]
#
# Moves itself into the cgroup NAME (below VMI_CGROUP_ROOT, default
# /sys/fs/cgroup), then replaces itself with COMMAND, so COMMAND and all
# its children are accounted to that cgroup from their first allocation.
# It plays the part of "cgexec -g memory:NAME" without needing cgroup-tools.
# Moving a process needs write access to cgroup.procs of the target and of
# the common ancestor: run it as root and drop privileges inside COMMAND,
# e.g.  run-in-cgroup.sh neon-postgres setpriv --reuid=postgres ... postgres
set -eu

if [ $# -lt 2 ]; then
	echo "usage: run-in-cgroup.sh NAME COMMAND [ARG...]" >&2
	exit 2
fi
name=$1
shift
procs=${VMI_CGROUP_ROOT:-/sys/fs/cgroup}/$name/cgroup.procs

if ! echo $$ 2>/dev/null >"$procs"; then
	echo "run-in-cgroup: cannot join $procs (does the cgroup exist? running as root?)" >&2
	exit 1
fi
exec "$@"
