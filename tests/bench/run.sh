#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Benchmarks of vm-informant against floors measured in the same run.
# Not part of the test suite's pass/fail.  Usage: tests/bench/run.sh [--quick]
#   --quick   short run (< 2 minutes): fewer events, 10 s idle window
# Writes tests/bench/results/latest.md (use --out FILE to write elsewhere).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${VMI_BUILD_DIR:-$src/build}
bin=$build/bench-bin

if [ ! -x "$build/informant/vm-informant" ] || [ "${VMI_BENCH_NO_BUILD:-0}" != 1 ]; then
	(cd "$src" && deploy/bootstrap.sh build) >/dev/null || {
		echo "run.sh: deploy/bootstrap.sh build failed; benchmarks need the daemon" >&2
		exit 1
	}
fi

# Benchmark programs: always -O2, whatever buildtype the project uses.
mkdir -p "$bin"
cflags="-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Wformat=2 -Wno-unused-parameter"
cc=${CC:-cc}
b() { out=$1; shift; $cc $cflags -o "$bin/$out" "$@"; }
cd "$here"
b floor-freeze floor_freeze.c bench_util.c
b floor-idle floor_idle.c bench_util.c
b loadgen loadgen.c minihttp.c bench_util.c
b event-driver event_driver.c predict.c agent.c minihttp.c bench_util.c
if pkg-config --exists libmicrohttpd; then
	b bare-server bare_server.c bench_util.c $(pkg-config --cflags --libs libmicrohttpd)
else
	echo "run.sh: libmicrohttpd development files missing: no bare-server floor" >&2
fi

exec python3 "$here/bench.py" --build "$build" --bin "$bin" \
	--out "$here/results/latest.md" "$@"
