#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /bin/vmi-start [CONFIG] in the test guest: runs the daemon in the
# background, detached from the command channel's socket, with CONFIG
# (default /etc/vm-informant/vm-informant.conf).  Leaves its PID in
# /run/vmi.pid, its log in /run/vmi.log (appended) and, once it has
# exited, its exit status in /run/vmi.rc.
conf=${1:-/etc/vm-informant/vm-informant.conf}
rm -f /run/vmi.rc /run/vmi.pid
(
	/usr/bin/vm-informant --config "$conf" </dev/null >>/run/vmi.log 2>&1 &
	echo $! >/run/vmi.pid
	wait $!
	echo $? >/run/vmi.rc
) </dev/null >/dev/null 2>&1 &
# Report the PID only once it exists (bounded: 5 s).
i=0
while [ ! -s /run/vmi.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
cat /run/vmi.pid
