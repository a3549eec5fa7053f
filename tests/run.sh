#!/usr/bin/env bash
# tests/run.sh — build and run every test; ends with "N passed, N failed".
#
# Suites: the meson test suite in build/ (unit, integration against a real
# Postgres, agent-sim over loopback, real cgroup v2 where the machine has
# it), the same suite under ASan+UBSan in build-asan/, and the libFuzzer
# targets (corpus replay, then a short run) when clang is present, and
# the real-VM end-to-end test under QEMU.
# Environment: VMI_SKIP_ASAN=1 skips the sanitizer build; VMI_FUZZ_SECONDS
# sets the fuzzing time (default 20, 0 = replay the corpus only);
# VMI_SKIP_VM=1 skips the real-VM end-to-end test (tests/vm).
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

# run_script LABEL COMMAND…: one more test, judged by its exit status
# (77 = skipped, as for meson).
run_script() {
	local label=$1 rc
	shift
	"$@" >"$top/build/$label.txt" 2>&1
	rc=$?
	case $rc in
	0) passed=$((passed + 1)); echo "[$label] OK" ;;
	77) skipped=$((skipped + 1)); echo "[$label] SKIP: $(tail -n 1 "$top/build/$label.txt")" ;;
	*) failed=$((failed + 1)); echo "[$label] FAIL (exit $rc)"; tail -n 40 "$top/build/$label.txt" >&2 ;;
	esac
}

# A fixed seed: CI tries the same inputs every time (new random findings
# come from running tests/fuzz/run.sh by hand, and then join the corpus).
VMI_FUZZ_SEED=${VMI_FUZZ_SEED:-20261123} run_script fuzz tests/fuzz/run.sh "${VMI_FUZZ_SECONDS:-20}"

# The real-VM end-to-end test counts each of its own checks.
run_vm() {
	local out=$top/build/vm.txt rc line
	tests/vm/run.sh >"$out" 2>&1
	rc=$?
	line=$(grep -E '^vm: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [ "$rc" = 77 ]; then
		skipped=$((skipped + 1))
		echo "[vm] SKIP: $(tail -n 1 "$out")"
	elif [ -n "$line" ]; then
		passed=$((passed + $(echo "$line" | awk '{print $2}')))
		failed=$((failed + $(echo "$line" | awk '{print $4}')))
		[ "$rc" != 0 ] && [ "$(echo "$line" | awk '{print $4}')" = 0 ] && failed=$((failed + 1))
		echo "[vm] $line (exit $rc)"
	else
		failed=$((failed + 1))
		echo "[vm] FAIL (exit $rc, no summary line)"
	fi
	[ "$rc" = 0 ] || [ "$rc" = 77 ] || tail -n 60 "$out" >&2
}
[ "${VMI_SKIP_VM:-0}" = 1 ] || run_vm

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
