#!/usr/bin/env bash
# tests/run.sh — build and run every test; ends with "N passed, N failed".
#
# Suites: the meson test suite in build/ (unit, integration against a real
# Postgres, agent-sim over loopback, real cgroup v2 where the machine has
# it) and the same suite under ASan+UBSan in build-asan/.
# Environment: VMI_SKIP_ASAN=1 skips the sanitizer build.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

passed=0 failed=0 skipped=0

# run_suite DIR LABEL [meson setup args…]
run_suite() {
	local dir=$1 label=$2
	shift 2
	if ! deploy/bootstrap.sh "$dir" "$@"; then
		echo "tests/run.sh: $label: build failed" >&2
		failed=$((failed + 1))
		return
	fi
	meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 2 \
		>"$dir/test-output.txt" 2>&1
	local ok fail skip
	# meson's summary lines: "Ok: N", "Fail: N", "Skipped: N", "Timeout: N", …
	ok=$(awk '/^Ok:/{print $2}' "$dir/test-output.txt")
	fail=$(awk '/^(Fail|Unexpected Pass|Timeout):/{s+=$NF} END{print s+0}' "$dir/test-output.txt")
	skip=$(awk '/^(Skipped|Expected Fail):/{s+=$NF} END{print s+0}' "$dir/test-output.txt")
	grep -E '^ *[0-9]+/[0-9]+ ' "$dir/test-output.txt" | sed "s/^/[$label] /"
	if [ -z "$ok" ]; then
		sed -n '1,200p' "$dir/test-output.txt" >&2
		echo "tests/run.sh: $label: meson test printed no summary" >&2
		failed=$((failed + 1))
		return
	fi
	if [ "$fail" != 0 ]; then
		# meson --print-errorlogs already put the failing logs in the file.
		sed -n '/^Summary of Failures:/,$p;/^=* [0-9]*\/[0-9]* =*$/,/^==*$/p' \
			"$dir/test-output.txt" | head -n 400 >&2
	fi
	passed=$((passed + ok))
	failed=$((failed + fail))
	skipped=$((skipped + skip))
}

run_suite build main
if [ "${VMI_SKIP_ASAN:-0}" != 1 ]; then
	run_suite build-asan asan -Db_sanitize=address,undefined -Db_lundef=false
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
