#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/run.sh [SECONDS] [TARGET…] — build the libFuzzer targets, replay
# the committed corpus, then fuzz each target for its share of SECONDS.
#
#   SECONDS   total fuzzing budget, divided among the targets (default 20);
#             0 only replays tests/fuzz/corpus/<target>/ (a fast regression run)
#   TARGET    names from the table below (default: all)
#
# Prints one line per target, "fuzz <target>: OK (<runs> runs, <cov> coverage)"
# or the crash with its sanitizer report.  Exit status: 0 all OK, 1 a crash or
# build failure, 2 bad usage, 77 skipped (no clang or no libFuzzer runtime;
# nothing is installed here).  Environment: CLANG (default clang),
# VMI_FUZZ_BUILD_DIR (default <top>/build-fuzz), VMI_FUZZ_SEED (a fixed
# libFuzzer seed: the same inputs are tried first on every run, as CI wants;
# unset = a new random seed each run).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${VMI_FUZZ_BUILD_DIR:-$top/build-fuzz}
cc=${CLANG:-clang}

# Library sources, relative to the top.  Only the pure parts: no target needs
# I/O objects, so none needs libcurl or a cgroup.
agent_proto="agent-proto/uuid.c agent-proto/quantity.c agent-proto/negotiate.c
	agent-proto/gofmt.c agent-proto/jsonenc.c agent-proto/msg_encode.c
	agent-proto/msg_decode.c agent-proto/monitor.c"

config="informant/config.c informant/config_load.c informant/config_print.c
	informant/config_value.c informant/log.c informant/httputil.c filecache/redact.c
	filecache/pq.c"
http="informant/server.c informant/server_upgrade.c informant/server_conns.c
	informant/server_accept.c informant/httputil.c informant/loop.c informant/log.c
	informant/metrics.c informant/ws_handshake.c"
monitor="informant/ws.c informant/monitor.c informant/loop.c informant/log.c
	informant/metrics.c"

# One line per target: name, -max_len, library sources.  The target's own
# source is tests/fuzz/fuzz_<name>.c, its seeds tests/fuzz/corpus/<name>/ and
# its optional dictionary tests/fuzz/dict/<name>.dict.
target_table() {
	cat <<EOF
proto_decode 4096 $(echo $agent_proto)
proto_text 512 $(echo $agent_proto)
cgroup_parse 4200 cgroup/cgparse.c
memctl_parse 4096 memctl/parse.c
config 8192 $(echo $config)
http 4096 $(echo $http $agent_proto)
monitor 4096 $(echo $monitor $agent_proto)
EOF
}

includes="-I$top/agent-proto -I$top/cgroup -I$top/memctl -I$top/filecache -I$top/informant -I$here"
common="-g -O1 -std=c11 -D_GNU_SOURCE -fno-sanitize-recover=all"
warn="-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2"

skip() {
	echo "fuzz: skipped: $*"
	exit 77
}

usage() {
	echo "usage: tests/fuzz/run.sh [SECONDS] [TARGET…]  (targets: $(target_table |
		awk '{printf "%s ", $1}'))" >&2
	exit 2
}

seconds=${1:-20}
[ $# -gt 0 ] && shift
case $seconds in
'' | *[!0-9]*) usage ;;
esac
if [ $# -gt 0 ]; then
	targets=("$@")
	for t in "${targets[@]}"; do
		target_table | awk -v t="$t" '$1 == t {found = 1} END {exit !found}' || usage
	done
else
	mapfile -t targets < <(target_table | awk '{print $1}')
fi

# ---- prerequisites: report, never install ----
command -v "$cc" >/dev/null 2>&1 || skip "$cc not found"
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config not found"
jansson=$(pkg-config --cflags --libs jansson 2>/dev/null) || skip "jansson (pkg-config) not found"
inih=$(pkg-config --cflags --libs inih 2>/dev/null) || skip "inih (pkg-config) not found"
mhd=$(pkg-config --cflags --libs libmicrohttpd 2>/dev/null) ||
	skip "libmicrohttpd (pkg-config) not found"
pq=$(pkg-config --cflags --libs libpq 2>/dev/null) || skip "libpq (pkg-config) not found"
crypto=$(pkg-config --cflags --libs nettle 2>/dev/null) || skip "nettle (pkg-config) not found"
[ -f /usr/include/wslay/wslay.h ] || skip "libwslay-dev not installed"
mkdir -p "$out/obj" || exit 1
cat >"$out/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOF
"$cc" -fsanitize=fuzzer,address,undefined "$out/probe.c" -o "$out/probe" >"$out/probe.log" 2>&1 ||
	skip "$cc cannot link -fsanitize=fuzzer,address,undefined (libFuzzer runtime missing?" \
		"On Debian: libclang-rt-dev or clang's compiler-rt)"

# ---- build: each library source once, then one link per target ----

# The object of a library source; rebuilt when the source, a header it may
# include or this script is newer.
object_of() {
	echo "$out/obj/$(echo "$1" | tr '/' '_' | sed 's/\.c$/.o/')"
}

build_objects() {
	local src obj pids=() failed=0
	for src in $(target_table | awk '{for (i = 3; i <= NF; i++) print $i}' | sort -u); do
		obj=$(object_of "$src")
		if [ -f "$obj" ] && [ -z "$(find "$top/$src" "$(dirname "$top/$src")" "$0" \
			-maxdepth 1 \( -name '*.c' -o -name '*.h' -o -name run.sh \) \
			-newer "$obj" -print -quit)" ]; then
			continue
		fi
		"$cc" $common -fsanitize=fuzzer-no-link,address,undefined $includes \
			$(pkg-config --cflags jansson libmicrohttpd libpq) -c "$top/$src" -o "$obj" \
			>"$obj.log" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || failed=1
	done
	if [ $failed = 1 ]; then
		cat "$out"/obj/*.log >&2
		echo "fuzz: build of library objects failed" >&2
		return 1
	fi
}

# link_target NAME SOURCES…
link_target() {
	local name=$1 objs=() src
	shift
	for src in "$@"; do
		objs+=("$(object_of "$src")")
	done
	"$cc" $common $warn -fsanitize=fuzzer,address,undefined $includes \
		"$here/fuzz_$name.c" "${objs[@]}" $jansson $inih $mhd $pq $crypto -lwslay -lm \
		-o "$out/fuzz_$name" \
		>"$out/fuzz_$name.build.log" 2>&1 || {
		cat "$out/fuzz_$name.build.log" >&2
		echo "fuzz $name: build failed" >&2
		return 1
	}
}

build_objects || exit 1
for t in "${targets[@]}"; do
	read -r -a row < <(target_table | awk -v t="$t" '$1 == t')
	link_target "$t" "${row[@]:2}" || exit 1
done

# ---- run ----
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# report_crash NAME LOG INPUT: the sanitizer's (or invariant's) words without
# the fuzzer's own stack frames, and the input that caused them.
report_crash() {
	local name=$1 log=$2 input=$3
	echo "fuzz $name: CRASH on ${input:-an unsaved input}"
	grep -E 'ERROR:|SUMMARY:|invariant broken|runtime error|^ *#[0-9]+ 0x' "$log" |
		grep -Ev 'fuzzer::|libc_start|in _start|in main |in malloc|operator new' |
		grep -Ev '__sanitizer_print|pthread_kill|in raise|in abort|libc\.so' |
		head -n 30 | sed 's/^/    /'
}

# replay NAME: every committed seed once, no mutation.
replay() {
	local name=$1 dir=$here/corpus/$1 log=$out/work/$1/replay.log
	[ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] || return 0
	if ! "$out/fuzz_$name" -runs=1 -timeout=10 -artifact_prefix="$out/work/$name/" \
		"$dir"/* >"$log" 2>&1; then
		report_crash "$name" "$log" "$(sed -n 's/^Running: //p' "$log" | tail -n 1)"
		return 1
	fi
}

# fuzz NAME MAXLEN SECONDS: a fresh working corpus seeded from the committed one.
fuzz() {
	local name=$1 maxlen=$2 secs=$3 work=$out/work/$1 dict=() log runs cov input
	log=$work/fuzz.log
	mkdir -p "$work/corpus"
	[ -d "$here/corpus/$name" ] && cp -- "$here/corpus/$name"/* "$work/corpus/" 2>/dev/null
	[ -f "$here/dict/$name.dict" ] && dict=(-dict="$here/dict/$name.dict")
	[ -n "${VMI_FUZZ_SEED:-}" ] && dict+=(-seed="$VMI_FUZZ_SEED")
	if ! "$out/fuzz_$name" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" "${dict[@]}" \
		"$work/corpus" >"$log" 2>&1; then
		input=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o \
			-name 'timeout-*' -o -name 'oom-*' \) -print -quit)
		report_crash "$name" "$log" "$input"
		[ -n "$input" ] && echo "    keep it: cp $input $here/corpus/$name/ (replayed on every run)"
		return 1
	fi
	runs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
	echo "fuzz $name: OK (${runs:-?} runs, ${cov:-?} coverage)"
}

status=0
per=$((seconds / ${#targets[@]}))
[ "$seconds" -gt 0 ] && [ "$per" -lt 1 ] && per=1
for t in "${targets[@]}"; do
	rm -rf "$out/work/$t"
	mkdir -p "$out/work/$t"
	if ! replay "$t"; then
		status=1
		continue
	fi
	if [ "$seconds" = 0 ]; then
		echo "fuzz $t: OK (corpus replayed: $(ls -A "$here/corpus/$t" 2>/dev/null | wc -l) inputs)"
		continue
	fi
	maxlen=$(target_table | awk -v t="$t" '$1 == t {print $2}')
	fuzz "$t" "$maxlen" "$per" || status=1
done
exit $status
