# SPDX-License-Identifier: Apache-2.0
"""pglab — the daemon, a real Postgres and a monitor agent in one guest,
and the measurement of one workload: shared by the scenarios of the
end-to-end test (pgstory.py) and the VM benchmark (tests/bench/vm_bench.py).

The daemon runs with one of two rules: "workload" decides on the
workload's memory (`exclude_page_cache = true`), "current" on
memory.current as before.  A run of a workload records, from the guest's
own clock: the cgroup's memory.pressure, memory.current, memory.stat and
memory.events every 100 ms and whenever a PSI trigger of the test's own
("some 100000 1000000", the daemon's) fires (`vmtool cgmon`); the
freezes (`vmtool watch` on cgroup.events); the daemon's /metrics before
and after; and, on the host, every UpscaleRequest with its arrival time,
mapped onto the guest's clock.

Python 3 standard library only; every wait is bounded.
"""
import os
import re
import time

import pgguest
from hostagent import http_request
from monitoragent import MonitorAgent
from vmlib import DAEMON_CONFIG_HEAD, MIB, GuestError, log

CG = "/sys/fs/cgroup/neon-postgres"
SYS_BUFFER = 128 * MIB
OOM_BUFFER = 16 * MIB
HIGH_BUFFER = 16 * MIB
RULES = ("workload", "current")
# memory.high of the scenarios (pgstory.py) and of the VM benchmark: the
# scan table is twice HIGH_SCAN; the sort, the thrash and the downscale
# after the scan run at HIGH_SMALL, which leaves the memory.current rule
# its buffer above what Postgres keeps after the page cache is dropped
# (up to 33 MiB after a few workloads: shared memory, mapped binaries).
HIGH_SCAN = 64 * MIB
HIGH_SMALL = 56 * MIB
PSI_TRIGGER = "some 100000 1000000"   # the daemon's (memory_loop.c)
TICK_MS = 100


def config(rule):
    """The daemon's config for the Postgres scenarios: defaults except the
    buffers (a small VM), generous agent budgets (slirp under TCG) and the
    rule; the file cache is sized through libpq in the guest's Postgres
    (its target is 0 at these sizes, so it takes no memory)."""
    return (f'# vm-informant in the test guest, Postgres scenarios, rule "{rule}"\n'
            + DAEMON_CONFIG_HEAD + f"""\
[cgroup]
oom_buffer = {OOM_BUFFER // MIB}MiB
memory_high_buffer = {HIGH_BUFFER // MIB}MiB
exclude_page_cache = {"true" if rule == "workload" else "false"}
[filecache]
connstr = host={pgguest.SOCKDIR} user=postgres dbname=postgres
[system]
sys_buffer = {SYS_BUFFER // MIB}MiB
[log]
level = debug
format = text
""")


def config_path(rule):
    return f"/etc/vm-informant/pg-{rule}.conf"


def initramfs_extra():
    """Guest files for build_initramfs(extra=…, users=…)."""
    uid, gid = pgguest.pg_ids()
    return ({config_path(r): config(r).encode() for r in RULES}, [("postgres", uid, gid)])


def high_for(vm_bytes, mem_total):
    """memory.high for an agent size (the daemon's basis; no file cache)."""
    return min(vm_bytes - SYS_BUFFER, mem_total) - OOM_BUFFER


def vm_for_high(high):
    return high + OOM_BUFFER + SYS_BUFFER


class Tick:
    """One cgmon line."""

    def __init__(self, line):
        parts = line.split()
        self.t, self.kind = float(parts[0]), parts[1]
        kv = dict(p.split("=", 1) for p in parts[2:])
        for k in ("some", "full", "current", "anon", "file", "shmem", "refault", "high",
                  "oom_kill"):
            setattr(self, k, int(kv.get(k, 0)))

    @property
    def workload(self):
        return max(self.current - max(self.file - self.shmem, 0), 0)


class Result:
    """What one run of a workload did."""

    def __init__(self, name, rule):
        self.name, self.rule = name, rule
        self.asks = []          # guest ms of each UpscaleRequest's arrival
        self.ticks = []         # cgmon lines during the run
        self.freezes_seen = []  # guest ms of each "frozen 1"
        self.metrics = {}       # /metrics deltas
        self.start = self.end = self.status = None
        self.granted = 0

    @property
    def seconds(self):
        return (self.end - self.start) / 1000 if self.end else None

    def delta(self, name):
        return self.metrics.get(name, 0)

    def grew(self, attr):
        """How much a cgmon counter grew during the run."""
        return getattr(self.ticks[-1], attr) - getattr(self.ticks[0], attr) if self.ticks else 0

    @property
    def stall_s(self):
        return self.grew("some") / 1e6

    @property
    def oom_kills(self):
        return self.grew("oom_kill")

    @property
    def oom_kill_total(self):
        return self.ticks[-1].oom_kill if self.ticks else 0

    def tick_after(self, t):
        """The first reading at or after t (the last one if none)."""
        return next((k for k in self.ticks if k.t >= t), self.ticks[-1] if self.ticks else None)

    def triggers(self):
        return [k.t for k in self.ticks if k.kind == "trigger"]

    def peak(self, attr):
        return max((getattr(k, attr) for k in self.ticks), default=0)


class Lab:
    """The guest's Postgres, the daemon under one rule, one monitor session."""

    def __init__(self, vm):
        self.vm = vm
        self.pg = pgguest.PgGuest(vm, CG)
        self.agent = None
        self.pid = None
        self.rule = None
        self.offset = 0.0   # guest ms − host ms
        self.log_mark = 0
        self.errors = []    # ERROR lines of every daemon this lab ran

    # ---- set-up --------------------------------------------------------------

    def setup(self):
        t = time.monotonic()
        self.pg.mount()
        self.pg.start()
        self.vm.sh(f"(vmtool watch /run/pgwatch.log {CG}/cgroup.events </dev/null "
                   ">/dev/null 2>&1 &)")
        self.vm.sh(f"(vmtool cgmon /run/cgmon.log {CG} '{PSI_TRIGGER}' {TICK_MS} </dev/null "
                   ">/dev/null 2>&1 &)")
        self.sync_clock()
        log(f"Postgres up in the guest's cgroup in {time.monotonic() - t:.1f}s")

    def sync_clock(self):
        """guest CLOCK_MONOTONIC − host monotonic, in ms, from the quickest of
        five round trips (error ≤ half of it)."""
        best = None
        for _ in range(5):
            t1 = time.monotonic()
            g = float(self.vm.sh("vmtool now"))
            t2 = time.monotonic()
            if best is None or t2 - t1 < best[0]:
                best = (t2 - t1, g - (t1 + t2) / 2 * 1000)
        self.offset = best[1]
        return best[0] * 1000

    def guest_ms(self, host_t):
        return host_t * 1000 + self.offset

    def now(self):
        return self.guest_ms(time.monotonic())

    # ---- the daemon ----------------------------------------------------------

    def stop_daemon(self):
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        if self.pid is not None:
            self.vm.sh(f"kill -TERM {self.pid}")
            deadline = time.monotonic() + 15
            while self.vm.run("test -e /run/vmi.rc")[0] != 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            self.pid = None
            self.errors += [ln for ln in self.log_since().splitlines() if " ERROR " in ln]
        return self.vm.run("cat /run/vmi.rc")[1].strip()

    def start_daemon(self, rule):
        """(Re)starts the daemon with the rule and opens a monitor session."""
        self.stop_daemon()
        self.rule = rule
        self.log_mark = int(self.vm.sh("wc -c < /run/vmi.log 2>/dev/null || echo 0").split()[-1])
        self.pid = int(self.vm.sh(f"vmi-start {config_path(rule)}").split()[-1])
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _ = http_request(("127.0.0.1", self.vm.informant_port), "GET",
                                         "/status", {}, timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.vm.run("test -e /run/vmi.rc")[0] == 0:
                raise GuestError("the daemon did not come up: " + self.log_since()[-2000:])
            time.sleep(0.2)
        self.agent = MonitorAgent(self.vm.informant_port)

    def log_since(self):
        return self.vm.run(f"tail -c +{self.log_mark + 1} /run/vmi.log")[1]

    def metrics(self):
        status, text = http_request(("127.0.0.1", self.vm.informant_port), "GET", "/metrics", {})
        out = {}
        for line in str(text).splitlines():
            m = re.match(r"^vm_informant_([a-z_]+) ([0-9.e+-]+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def limits(self):
        return (self.vm.read_int(f"{CG}/memory.max"), self.vm.read_int(f"{CG}/memory.high"))

    def read_stat(self):
        out = {}
        for line in self.vm.read_file(f"{CG}/memory.stat").splitlines():
            k, v = line.split()
            out[k] = int(v)
        out["current"] = self.vm.read_int(f"{CG}/memory.current")
        return out

    def drain_asks(self):
        while self.agent and not self.agent.try_upscales.empty():
            self.agent.try_upscales.get()

    def wait_quiet(self, gap=2.2, limit=12.0):
        """Waits (at most `limit` s) until the daemon has asked nothing for
        `gap` seconds, dropping what it asks meanwhile.  A set-up moves
        usage (Postgres refaults what was dropped) and the prediction may
        ask for it; such an ask goes unanswered, and the daemon's back-off
        (2 s after an ask that brought nothing) would then hold back the
        measured run's first ask — a handicap of the set-up, not of the
        rule."""
        t_end, last = time.monotonic() + limit, time.monotonic()
        while time.monotonic() < t_end and time.monotonic() - last < gap:
            if self.agent and not self.agent.try_upscales.empty():
                self.drain_asks()
                last = time.monotonic()
            time.sleep(0.05)

    # ---- one run of a workload -----------------------------------------------

    def drop_caches(self):
        """Cold page cache: every run reads its table from the disk."""
        self.vm.sh("sync; echo 3 > /proc/sys/vm/drop_caches")

    def measure(self, name, sql, timeout=90, on_ask=None, settle=1.0, cancel_after_ask=None):
        """Runs sql as one background psql; records the result.  on_ask(msg)
        is called (on this thread) for each UpscaleRequest while it runs;
        cancel_after_ask: seconds after the first ask to cancel the query
        (the scenario has what it came for)."""
        res = Result(name, self.rule)
        self.drain_asks()
        before = self.metrics()
        cg_mark = int(self.vm.sh("wc -l < /run/cgmon.log").split()[-1])
        watch_mark = int(self.vm.sh("wc -l < /run/pgwatch.log").split()[-1])
        self.pg.background(name, sql)
        deadline = time.monotonic() + timeout
        done, next_poll = None, 0.0
        while time.monotonic() < deadline:
            self._take_asks(res, on_ask)
            # Each look into the guest is a shell there: under TCG that
            # costs the workload CPU, so asks are taken every 50 ms but the
            # guest is asked only every 250 ms.
            if time.monotonic() >= next_poll:
                done = self.pg.finished(name)
                if done:
                    break
                next_poll = time.monotonic() + 0.25
            if cancel_after_ask is not None and res.asks and \
                    self.now() - res.asks[0] >= cancel_after_ask * 1000:
                self.pg.cancel_all()
                cancel_after_ask = None
            time.sleep(0.05)
        if done is None:
            raise GuestError(f"{name}: the query did not end within {timeout}s")
        res.start, res.end, res.status = done
        settle_end = time.monotonic() + settle  # asks that follow the end count too
        while time.monotonic() < settle_end:
            self._take_asks(res, on_ask)
            time.sleep(0.05)
        after = self.metrics()
        res.metrics = {k: after[k] - before.get(k, 0) for k in after}
        lines = self.vm.sh(f"tail -n +{cg_mark + 1} /run/cgmon.log").splitlines()
        res.ticks = [Tick(line) for line in lines if line.strip()]
        res.ticks = [k for k in res.ticks if k.t >= res.start - TICK_MS] or res.ticks
        for line in self.vm.sh(f"tail -n +{watch_mark + 1} /run/pgwatch.log").splitlines():
            if "frozen 1" in line:
                res.freezes_seen.append(float(line.split()[0]))
        res.output = self.vm.run(f"cat /run/{name}.out")[1].strip()
        return res

    def _take_asks(self, res, on_ask):
        while not self.agent.try_upscales.empty():
            msg = self.agent.try_upscales.get()
            res.asks.append(self.guest_ms(msg.t))
            if on_ask is not None:
                on_ask(msg)
