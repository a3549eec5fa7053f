#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# valgrind.sh — the daemon under valgrind memcheck through a representative
# scenario: start-up against a directory imitating cgroupfs, a meminfo file
# and (when PostgreSQL is installed) a throw-away Postgres for the file
# cache; an agent-sim registers, upscales, has a downscale accepted and one
# refused; a memory.high event freezes and thaws the cgroup; health-checks;
# a misbehaving agent is refused; the agent unregisters; SIGTERM.
#
# Passes when valgrind reports 0 errors, nothing definitely or indirectly
# lost, no descriptor left open at exit besides stdin/stdout/stderr, and
# the daemon exited 0.
#
#   tests/integration/valgrind.sh [BUILD_DIR]     (default: $VMI_BUILD_DIR or ./build)
#
# Exit 77 (skip) under an AddressSanitizer build (valgrind and ASan do not
# mix) or when valgrind cannot be installed.  VMI_KEEP_TMP=1 keeps the work
# directory with the valgrind log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${VMI_BUILD_DIR:-$here/../../build}}
daemon=$build/informant/vm-informant

skip() { echo "valgrind.sh: SKIP: $*" >&2; exit 77; }
die() { echo "valgrind.sh: FAIL: $*" >&2; exit 1; }

[ -x "$daemon" ] || die "$daemon not built (run deploy/bootstrap.sh build)"
if ldd "$daemon" 2>/dev/null | grep -q 'libasan\|libubsan' ||
   nm -D "$daemon" 2>/dev/null | grep -q '__asan_init'; then
	skip "$daemon is built with sanitizers; valgrind and ASan do not mix"
fi
if ! command -v valgrind >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		apt-get install -y -q valgrind >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
			  apt-get install -y -q valgrind >/dev/null 2>&1; } ||
			skip "valgrind is not installed and apt-get could not install it"
	else
		skip "valgrind is not installed (apt-get install valgrind)"
	fi
fi

work=$(mktemp -d /tmp/vmi-valgrind-XXXXXX)
chmod 755 "$work" # pg-cluster.sh runs Postgres as the postgres user
cleanup() {
	if [ "${VMI_KEEP_TMP:-}" = 1 ]; then
		echo "valgrind.sh: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
vglog=$work/valgrind.log

VMI_BUILD_DIR=$build VMI_WORK=$work VMI_VGLOG=$vglog \
	PYTHONPATH=$here/../lib python3 - <<'EOF'
"""The scenario; the daemon runs under valgrind through Daemon(wrapper=...)."""
import json
import os
import signal
import sys
import time
import unittest

from vmi import (GiB, MiB, AgentSim, Daemon, FakeCgroup, Meminfo, PgCluster, wait_until)
from wsclient import BINARY, monitor_session

work, vglog = os.environ["VMI_WORK"], os.environ["VMI_VGLOG"]
cg = FakeCgroup(os.path.join(work, "cgroup"))
meminfo = Meminfo(os.path.join(work, "meminfo"), 2 * GiB)
cleanups = []


def step(what):
    sys.stderr.write("valgrind.sh: %s\n" % what)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    sections = {
        "cgroup": {"enabled": "true", "root": cg.root, "name": cg.name,
                   "max_upscale_wait": "500ms", "min_freeze_interval": "0"},
        "system": {"meminfo": meminfo.path},
        # Everything is ~20x slower under valgrind: generous agent timeouts.
        "agent": {"register_id_timeout": "5s", "resume_timeout": "5s",
                  "upscale_timeout": "5s", "id_check_timeout": "5s",
                  "id_check_interval": "1s"},
        "sampler": {"interval": "50ms"},
    }
    try:
        pg = PgCluster(work, ["neon.max_file_cache_size = '1TB'"])
        cleanups.append(pg.stop)
        sections["filecache"] = {"enabled": "true", "connstr": pg.connstr,
                                 "connect_timeout": "5s"}
        step("with Postgres (file cache on)")
    except unittest.SkipTest as e:
        step("without Postgres: %s" % e)
    wrapper = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
               "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
               "--track-fds=yes", "--num-callers=30", "--log-file=" + vglog]
    d = Daemon(work, sections, wrapper=wrapper, start_timeout=60)
    cleanups.append(lambda: d.stop(signal.SIGKILL))

    agent = AgentSim(work, d.port, ["--meminfo", meminfo.path, "--health-interval", "200",
                                    "--upscale-delay", "100"])
    cleanups.append(agent.stop)
    agent.wait_running(timeout=60)
    step("agent registered and current")

    max0 = cg.read_int("memory.max")
    status, _, body = agent.control("/sim/upscale?memory=4Gi")
    check(status == 200, "upscale: %s %s" % (status, body))
    wait_until(lambda: (cg.read_int("memory.max") or 0) > max0, timeout=30,
               what="limits raised")
    if "filecache" in sections:
        wait_until(lambda: d.metric("vm_informant_file_cache_bytes") > 0, timeout=60,
                   what="file cache sized")

    def downscale_settled(sim, memory):
        """A downscale after usage jumped is refused as "too tight" while
        the growth estimate still sees the jump (longer under valgrind):
        asked again each second for up to 15 s, as an agent would."""
        for _ in range(15):
            status, _, body = sim.control("/sim/downscale?memory=" + memory)
            if not (status == 200 and "too tight" in body):
                break
            time.sleep(1)
        return status, body

    cg.set_current(256 * MiB)
    status, body = downscale_settled(agent, "3Gi")
    check(status == 200 and '"Ok":true' in body, "downscale accepted: %s %s" % (status, body))
    cg.set_current(3 * GiB)
    status, _, body = agent.control("/sim/downscale?memory=2Gi")
    check(status == 200 and '"Ok":false' in body, "downscale refused: %s %s" % (status, body))
    step("downscale accepted and refused")

    cg.memory_high_event()
    wait_until(lambda: d.metric("vm_informant_freezes_total") >= 1, timeout=30,
               what="a freeze")
    wait_until(lambda: not cg.frozen(), timeout=30, what="the thaw")
    wait_until(lambda: agent.state()["tryUpscales"] >= 1, timeout=30, what="/try-upscale")
    wait_until(lambda: agent.state()["upscalesOk"] >= 2, timeout=30, what="the upscale")
    step("memory.high event: frozen, asked, upscaled, thawed")

    conn = d.keepalive()
    body = json.dumps({"agentID": agent.state()["agentID"]})
    for _ in range(200):
        check(conn.exchange("PUT", "/health-check", body)[0] == 200, "health-check")
    for path, data in (("/register", "{"), ("/upscale", '{"data":{}}'),
                       ("/register", json.dumps({"agentID": "00000000-0000-0000-0000-000000000001",
                                                 "agentServeAddr": "127.0.0.1:1",
                                                 "minProtoVersion": 1,
                                                 "maxProtoVersion": 4}))):
        check(conn.exchange("POST" if path == "/register" else "PUT", path, data)[0] >= 400,
              "bad request to %s refused" % path)
    conn.close()
    check(d.request("GET", "/status")[0] == 200 and d.request("GET", "/metrics")[0] == 200,
          "/status and /metrics")
    step("health-checks, bad requests, /status, /metrics")

    # The monitor protocol: agent-sim's session takes over from the HTTP
    # agent; a raw session replaces it (agent-sim does not dial again soon),
    # sends garbage, and is still open at SIGTERM.
    mon = AgentSim(work, d.port, ["--meminfo", meminfo.path, "--health-interval", "200",
                                  "--register-retry", "600000"], name="monitor-agent",
                   protocol="monitor")
    cleanups.append(mon.stop)
    mon.wait_running(timeout=60)
    status, _, body = mon.control("/sim/upscale?memory=5Gi")
    check(status == 200, "monitor upscale: %s %s" % (status, body))
    cg.set_current(256 * MiB)
    status, body = downscale_settled(mon, "4Gi")
    check(status == 200 and '"Ok":true' in body, "monitor downscale: %s %s" % (status, body))
    raw = monitor_session(d.port, timeout=30)
    cleanups.append(raw.shutdown)
    raw.send_text("garbage")
    check(raw.recv_json()["type"] == "InvalidMessage", "InvalidMessage for garbage")
    raw.send(BINARY, b"\x01")
    check(raw.recv_json()["type"] == "InvalidMessage", "InvalidMessage for binary")
    raw.send_text('{"content":{},"type":"HealthCheck","id":2}')
    check(raw.recv_json()["id"] == 2, "health check on the raw session")
    wait_until(lambda: not mon.state()["running"], timeout=30, what="agent-sim replaced")
    step("monitor protocol: agent-sim session, scaling, a raw session replacing it")

    # Straight to the daemon: agent-sim's /sim/unregister crashes (its
    # "unregistered" event lacks a key; reported).
    desc = json.dumps({"agentID": agent.state()["agentID"], "agentServeAddr": agent.addr,
                       "minProtoVersion": 1, "maxProtoVersion": 4})
    status, _, body = d.request("DELETE", "/unregister", desc, timeout=30)
    check(status == 200, "unregister: %s %s" % (status, body))
    wait_until(lambda: d.metric("vm_informant_agents_registered") == 0, timeout=30,
               what="no agent left")
    rc = d.stop(signal.SIGTERM, timeout=60)
    check(rc in (0, 99), "daemon exit status %s" % rc)
    check(raw.expect_close(timeout=5)[0] == 1001, "the open session closed with 1001")
    check(cg.read("cgroup.freeze") == "0", "thawed at exit")
    step("SIGTERM: exit status %d" % rc)


try:
    main()
finally:
    for fn in reversed(cleanups):
        try:
            fn()
        except Exception:  # noqa: BLE001 — clean up as much as possible
            pass
EOF

[ -s "$vglog" ] || die "no valgrind log"
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|FILE DESCRIPTORS|All heap' "$vglog" |
	sed 's/^==[0-9]*== */valgrind: /' >&2
fail=0
grep -q 'ERROR SUMMARY: 0 errors' "$vglog" || fail=1
if grep -q 'definitely lost:\|indirectly lost:' "$vglog"; then
	grep -q 'definitely lost: 0 bytes' "$vglog" && grep -q 'indirectly lost: 0 bytes' "$vglog" ||
		fail=1
fi
# Descriptors open at exit, besides 0-2 and valgrind's own log (which the
# daemon inherits from valgrind's launcher).
leaked_fds=$(grep -E 'Open (file descriptor [0-9]+|.*socket [0-9]+)' "$vglog" |
	grep -vE 'descriptor [012]:' | grep -vF "$vglog" || true)
if [ -n "$leaked_fds" ]; then
	echo "$leaked_fds" >&2
	fail=1
fi
if [ "$fail" != 0 ]; then
	cat "$vglog" >&2
	die "valgrind found errors, leaks or open descriptors (log above)"
fi
echo "valgrind.sh: OK: 0 errors, nothing definitely/indirectly lost, no descriptor left open"
