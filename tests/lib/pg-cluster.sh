#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pg-cluster.sh — a throw-away PostgreSQL cluster for tests and the demo.
#
#   pg-cluster.sh start DIR [postgresql.conf line...]
#       initdb into DIR/data (trust auth), Unix socket in DIR/sock, TCP on
#       127.0.0.1 at a free port; placeholder neon.* settings unless the
#       caller's lines override them (later lines win).  Waits until the
#       server accepts connections and prints the connection string
#       ("host=DIR/sock port=N user=postgres dbname=postgres") on stdout.
#   pg-cluster.sh stop DIR      stop (fast, then immediate) and remove DIR
#   pg-cluster.sh pause DIR     stop, keep DIR (an outage)
#   pg-cluster.sh resume DIR    start a paused cluster again
#   pg-cluster.sh restart DIR   pause + resume
#   pg-cluster.sh connstr DIR   print the connection string again
#
# Runs as root (the server runs as the postgres user: initdb refuses root)
# or as postgres.  Exits 77 ("skip") when the PostgreSQL server binaries or
# the postgres user are missing.  DIR's parent directories must be
# traversable by postgres (e.g. a mode 0755 directory under /tmp).
set -euo pipefail

readonly WAIT_SECS=20

die() { echo "pg-cluster: $*" >&2; exit 1; }
skip() { echo "pg-cluster: SKIP: $*" >&2; exit 77; }

find_bindir() {
	# The glob sorts 10 before 9: pick the highest version explicitly.
	local d best
	best=$(for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/pg_isready" ] && echo "$d"
	done | sort -V | tail -n 1)
	[ -n "$best" ] || skip "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (install the postgresql package)"
	echo "$best"
}

check_user() {
	id postgres >/dev/null 2>&1 || skip "the postgres user does not exist (install the postgresql package)"
	case $(id -un) in
	root|postgres) ;;
	*) skip "must run as root or as postgres (initdb refuses root; the server runs as postgres)" ;;
	esac
}

# Run a command as postgres (directly when we already are postgres).
as_pg() {
	if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

connstr() { echo "host=$1/sock port=$(cat "$1/port") user=postgres dbname=postgres"; }

# Refuse to act on (and above all rm -rf) a directory this script did not make.
own_dir() {
	[ -f "$1/.pg-cluster" ] || die "$1 is not a cluster made by pg-cluster.sh"
}

wait_ready() {
	local dir=$1 i
	for ((i = 0; i < WAIT_SECS * 10; i++)); do
		if as_pg "$BIN/pg_isready" -q -h "$dir/sock" -p "$(cat "$dir/port")" -t 1; then
			return 0
		fi
		sleep 0.1
	done
	echo "pg-cluster: server in $dir not ready after ${WAIT_SECS}s; log:" >&2
	tail -n 30 "$dir/log" >&2 || true
	return 1
}

server_start() {
	local dir=$1
	as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t "$WAIT_SECS" start >&2 ||
		{ tail -n 30 "$dir/log" >&2 || true; die "pg_ctl start failed in $dir"; }
	wait_ready "$dir" || die "server did not become ready"
}

server_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -t 10 stop >&2 2>/dev/null && return 0
	as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -t 10 stop >&2 2>/dev/null && return 0
	# Last resort: the postmaster's pid is the first line of postmaster.pid.
	local pid
	pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
	case $pid in ''|*[!0-9]*) return 0 ;; esac
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$dir/data/postmaster.pid"
}

cmd_start() {
	local dir=$1; shift
	[ -e "$dir/.pg-cluster" ] && die "$dir already holds a cluster (stop it first)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	# The socket path must fit in sun_path (107 bytes).
	((${#dir} < 80)) || die "$dir is too long for a Unix socket path; use a shorter one"
	touch "$dir/.pg-cluster"
	mkdir -p "$dir/sock"
	free_port >"$dir/port"
	chown -R postgres: "$dir" 2>/dev/null || [ "$(id -un)" = postgres ]
	as_pg test -w "$dir" ||
		die "postgres cannot write $dir: make its parent directories traversable (chmod 0755)"
	as_pg "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C \
		--no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; die "initdb failed in $dir"; }
	{
		echo "# pg-cluster.sh"
		echo "port = $(cat "$dir/port")"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$dir/sock'"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "max_connections = 30"
		echo "shared_buffers = 16MB"
		echo "neon.max_file_cache_size = '1TB'"
		echo "neon.file_cache_size_limit = '0'"
		local line
		for line in "$@"; do echo "$line"; done
	} >>"$dir/data/postgresql.conf"
	server_start "$dir"
	connstr "$dir"
}

cmd_stop() {
	own_dir "$1"
	server_stop "$1"
	rm -rf -- "$1"
}

[ $# -ge 2 ] || die "usage: $0 start|stop|pause|resume|restart|connstr DIR [conf lines...]"
action=$1 dir=$2
shift 2
check_user
BIN=$(find_bindir)

case $action in
start) cmd_start "$dir" "$@" ;;
stop) cmd_stop "$dir" ;;
pause) own_dir "$dir"; server_stop "$dir" ;;
resume) own_dir "$dir"; server_start "$dir" ;;
restart) own_dir "$dir"; server_stop "$dir"; server_start "$dir" ;;
connstr) own_dir "$dir"; connstr "$dir" ;;
*) die "unknown action '$action' (start, stop, pause, resume, restart, connstr)" ;;
esac
