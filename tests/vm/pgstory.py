# SPDX-License-Identifier: Apache-2.0
"""pgstory — the page cache, PSI and reclaim scenarios of the real-VM test
(issue 18), on a real Postgres 15 in the guest's cgroup with its data on
an ext4 virtio disk (pglab.py, pgguest.py).  See tests/vm/README.md.

(a) a sequential scan of a table twice memory.high: with the workload
    rule no freeze and no ask; with the memory.current rule freezes/asks;
(c) then a downscale the memory.current rule refuses is accepted after
    reclaim, and the page cache is gone from memory.current;
(b) a sort with a large work_mem grows anonymous memory: the ask comes
    before the workload reaches memory.high;
(d) a working set that does not fit (a table read again and again):
    the PSI trigger fires and an ask follows within 2 s;
(e) no OOM kill anywhere.
"""
import os
import re
import time

import pglab
import pgguest
from autoscaler import Autoscaler
from pglab import CG, HIGH_BUFFER, HIGH_SCAN, HIGH_SMALL, Lab, vm_for_high
from vmlib import MIB, log

GRANT = 128 * MIB        # what the host plugs for (b)'s ask
SORT_SQL = ("SET work_mem = '512MB'; SELECT sum(octet_length(pad)) FROM "
            "(SELECT pad FROM sortme ORDER BY id DESC OFFSET 0) s")
THRASH_PASSES = 4
STALL_ASK_BOUND_MS = 2000
CLOCK_SLACK_MS = 100     # host/guest clock mapping and delivery jitter


def mib(v):
    return f"{v / MIB:.1f} MiB"


def rows(table):
    return dict(pgguest.TABLES)[table] * pgguest.ROWS_PER_MIB


class PgStory:
    def __init__(self, vm, checks, phase, fixtures=None):
        self.vm, self.c, self.phase = vm, checks, phase
        self.lab = Lab(vm)
        self.fixtures = fixtures
        self.results = []

    def run(self):
        self.setup()
        old = self.scan("current")
        self.refused_by_old_rule()
        new = self.scan("workload")
        self.print_scans(new, old)
        self.downscale_after_scan()
        self.sort()
        self.stall()
        self.finish()

    # ---- set-up --------------------------------------------------------------

    def setup(self):
        self.phase("Postgres 15 in the cgroup, data on an ext4 virtio disk")
        self.lab.setup()
        pg = self.lab.pg
        pid = self.vm.sh(f"head -n 1 {pgguest.MOUNT}/data/postmaster.pid").strip()
        self.c.equal("the postmaster runs in the managed cgroup",
                     self.vm.read_file(f"/proc/{pid}/cgroup").strip(), "0::/neon-postgres")
        self.c.equal("it runs as the postgres user",
                     self.vm.sh(f"stat -c %u /proc/{pid}").strip(), str(pg.uid))
        mounts = self.vm.read_file("/proc/mounts")
        self.c.check("its data directory is on ext4 on the virtio disk",
                     f"/dev/vda {pgguest.MOUNT} ext4" in mounts)
        self.c.check("the server is Postgres 15",
                     pg.query("SHOW server_version").startswith("15."))
        size = int(pg.query("SELECT pg_relation_size('scan')"))
        self.c.equal("the scan table is twice memory.high", size, 2 * HIGH_SCAN, mib)

    def resize(self, high, what):
        """Tells the daemon the VM size whose memory.high is high."""
        t = time.monotonic()
        status, body = self.lab.agent.downscale(vm_for_high(high))
        ok = status == 200 and isinstance(body, dict) and body.get("Ok") is True
        self.c.check(f"{what}: downscale to memory.high {mib(high)} accepted", ok,
                     f"{status} {body} in {time.monotonic() - t:.2f}s")
        return body

    # ---- (a) the scan, under each rule ---------------------------------------

    def scan(self, rule):
        self.phase(f"(a) sequential scan of {mib(2 * HIGH_SCAN)}, rule '{rule}'")
        self.lab.start_daemon(rule)
        self.resize(HIGH_SCAN, rule)
        self.lab.drop_caches()
        res = self.lab.measure(f"scan-{rule}", "SELECT count(*) FROM scan")
        self.results.append(res)
        self.c.check(f"[{rule}] the scan read every row", res.status == 0 and
                     res.output == str(rows("scan")), f"{res.output!r} in {res.seconds:.2f}s")
        events = res.grew("high")
        self.c.check(f"[{rule}] the page cache filled the cgroup up to memory.high",
                     events > 0 and res.peak("file") >= HIGH_SCAN // 2,
                     f"memory.events high +{events}, page cache up to {mib(res.peak('file'))}")
        freezes, asks = int(res.delta("freezes_total")), len(res.asks)
        summary = (f"{asks} asks, {freezes} freezes, {int(res.delta('memory_high_events_total'))} "
                   f"memory.high events ({int(res.delta('memory_high_cache_events_total'))} "
                   f"page cache), PSI stall {res.stall_s:.2f}s")
        if rule == "current":
            self.c.check("[current] the old rule freezes or asks for a scan", freezes + asks > 0,
                         summary)
        else:
            self.c.check("[workload] no freeze", freezes == 0 and not res.freezes_seen, summary)
            self.c.check("[workload] no ask", asks == 0 and
                         res.delta("upscale_requests_total") == 0, summary)
            self.c.check("[workload] the memory.high events were counted as page cache",
                         res.delta("memory_high_cache_events_total") > 0, summary)
            self.capture_fixtures("scan")
        self.check_no_oom(res)
        return res

    def refused_by_old_rule(self):
        self.phase("(c) downscale after the scan, rule 'current'")
        cur = self.lab.read_stat()["current"]
        status, body = self.lab.agent.downscale(vm_for_high(HIGH_SMALL))
        self.c.check(f"[current] downscale to memory.high {mib(HIGH_SMALL)} refused "
                     f"(memory.current {mib(cur)} is mostly page cache)",
                     status == 200 and isinstance(body, dict) and body.get("Ok") is False
                     and "too low" in str(body.get("Status")), f"{status} {body}")

    def print_scans(self, new, old):
        for res in (new, old):
            log(f"scan {mib(2 * HIGH_SCAN)}, rule {res.rule:8}: {len(res.asks)} asks, "
                f"{int(res.delta('freezes_total'))} freezes, {res.oom_kills} OOM kills, "
                f"PSI stall {res.stall_s:.2f}s, {2 * HIGH_SCAN / MIB / res.seconds:.0f} MiB/s")

    def capture_fixtures(self, tag):
        """The cgroup's real files at this moment, for tests/cgroup/fixtures
        (--fixtures DIR): bytes as the kernel wrote them."""
        if not self.fixtures:
            return
        os.makedirs(self.fixtures, exist_ok=True)
        for name in ("memory.stat", "memory.pressure", "memory.current"):
            with open(os.path.join(self.fixtures, f"6.1-{tag}-{name}"), "w") as f:
                f.write(self.vm.read_file(f"{CG}/{name}"))
        log(f"fixtures ({tag}) written to {self.fixtures}")

    # ---- (c) downscale after reclaim -------------------------------------------

    def downscale_after_scan(self):
        self.phase("(c) downscale after the scan, rule 'workload'")
        before = self.lab.read_stat()
        m0 = self.lab.metrics()
        need = before["current"] + HIGH_BUFFER - HIGH_SMALL
        self.c.check("memory.current + buffer is above the new memory.high (the old rule "
                     "refuses)", need > 0, f"memory.current {mib(before['current'])}, "
                     f"page cache {mib(before['file'])}")
        body = self.resize(HIGH_SMALL, "[workload] after reclaim")
        after = self.lab.read_stat()
        m1 = self.lab.metrics()
        reclaimed = m1.get("reclaimed_bytes_total", 0) - m0.get("reclaimed_bytes_total", 0)
        self.c.check("memory.reclaim was written for it",
                     m1.get("reclaims_total", 0) - m0.get("reclaims_total", 0) == 1
                     and reclaimed >= need, f"reclaimed {mib(reclaimed)}, needed {mib(need)}")
        # Slack: what Postgres may have read or written in between.
        self.c.check("the page cache is gone from memory.current",
                     after["current"] + HIGH_BUFFER <= HIGH_SMALL
                     and after["file"] <= before["file"] - need + 2 * MIB,
                     f"memory.current {mib(before['current'])} -> {mib(after['current'])}, "
                     f"page cache {mib(before['file'])} -> {mib(after['file'])}; {body}")
        self.c.equal("limits follow the downscale", self.lab.limits(),
                     (HIGH_SMALL + pglab.OOM_BUFFER, HIGH_SMALL))

    # ---- (b) anonymous growth ----------------------------------------------------

    def sort(self):
        self.phase(f"(b) sort with work_mem 512MB at memory.high {mib(HIGH_SMALL)}")
        scaler = Autoscaler(self.vm, self.lab.agent, vm_for_high(HIGH_SMALL))
        granted = []

        def grant(msg):
            if not granted:
                mem_total, secs = scaler.resize_vmem(GRANT)
                granted.append((self.lab.agent.upscale(scaler.vm_bytes), secs))

        self.lab.drop_caches()
        res = self.lab.measure("sort", SORT_SQL, on_ask=grant)
        self.results.append(res)
        self.c.check("the sort completed", res.status == 0 and
                     res.output == str(rows("sortme") * pgguest.ROW_PAD),
                     f"{res.output!r} in {res.seconds:.2f}s")
        self.c.check("the sort grew the workload past memory.high",
                     res.peak("workload") >= HIGH_SMALL,
                     f"workload up to {mib(res.peak('workload'))}, anon up to "
                     f"{mib(res.peak('anon'))}")
        if not self.c.check("it asked for memory", bool(res.asks)):
            return
        ask = res.asks[0]
        tick = res.tick_after(ask)  # the workload had at most this when asked
        # Fast growth is asked for by the prediction; slow growth (the
        # sort waits for the kernel to reclaim page cache for it) by the
        # memory.high event once the workload is within memory_high_buffer
        # of memory.high.  Either way, well before memory.high: a rule
        # that waited for memory.high would ask with the workload at it.
        why = re.search(r'asking for upscale reason=("[^"]*"|\S+)', self.lab.log_since())
        self.c.check("the ask came before the workload reached memory.high",
                     tick is not None and tick.workload + HIGH_BUFFER // 2 <= HIGH_SMALL,
                     f"{(ask - res.start) / 1000:.2f}s into the sort, workload "
                     f"{mib(tick.workload) if tick else '?'} of {mib(HIGH_SMALL)}, reason "
                     f"{why.group(1) if why else '?'}, "
                     f"{len([t for t in res.freezes_seen if t <= ask])} freezes before it")
        self.c.check("the host's upscale was confirmed", granted and granted[0][0][0] == 200,
                     str(granted))
        self.check_no_oom(res)
        status, body = scaler.downscale_vmem_settled(0)
        self.c.check(f"back to memory.high {mib(HIGH_SMALL)} after the sort", status == 200 and
                     isinstance(body, dict) and body.get("Ok") is True, f"{status} {body}")

    # ---- (d) PSI -------------------------------------------------------------------

    def stall(self):
        self.phase(f"(d) PSI: a {mib(dict(pgguest.TABLES)['hot'] * MIB)} table read "
                   f"{THRASH_PASSES} times at memory.high {mib(HIGH_SMALL)}")
        # Page cache dropped first: the reclaim of the last downscale left
        # traces of Postgres's own pages, whose refaults would count too
        # (the daemon asked during the first pass in some runs).  Then one
        # pass: from then on every pass reads again what the previous one
        # had to give back, from the first trigger on.
        self.lab.drop_caches()
        self.lab.pg.query("SELECT count(*) FROM hot")
        time.sleep(1.5)  # the PSI window of the warm-up pass closes
        self.lab.sync_clock()
        sql = "; ".join(["SELECT count(*) FROM hot"] * THRASH_PASSES)
        res = self.lab.measure("thrash", sql, settle=0.5, cancel_after_ask=1.0)
        self.results.append(res)
        triggers = res.triggers()
        refaulted = res.grew("refault")
        self.capture_fixtures("thrash")
        self.c.check("the passes stalled on memory (PSI trigger of the test's own)",
                     bool(triggers), f"stall {res.stall_s:.2f}s in {res.seconds:.2f}s, "
                     f"{refaulted} pages refaulted")
        if not triggers or not self.c.check("an ask followed", bool(res.asks)):
            return
        lag = res.asks[0] - triggers[0]
        self.c.check(f"the ask followed the first stall within {STALL_ASK_BOUND_MS} ms",
                     -CLOCK_SLACK_MS <= lag <= STALL_ASK_BOUND_MS, f"{lag:.0f} ms")
        self.c.check("it was PSI's ask (no freeze, no prediction)",
                     res.delta("memory_stalls_total") >= 1 and res.delta("freezes_total") == 0
                     and res.delta("upscale_requests_predicted_total") == 0,
                     f"stalls {int(res.delta('memory_stalls_total'))}, freezes "
                     f"{int(res.delta('freezes_total'))}")
        self.check_no_oom(res)

    # ---- (e) and the end -----------------------------------------------------------

    def check_no_oom(self, res):
        self.c.check(f"[{res.name}] no OOM kill in the cgroup", bool(res.ticks) and
                     res.oom_kill_total == 0, f"oom_kill {res.oom_kill_total}")

    def finish(self):
        self.phase("(e) no OOM kill anywhere; Postgres and the daemon stop")
        events = self.vm.read_file(f"{CG}/memory.events")
        self.c.check("memory.events: oom_kill 0", "\noom_kill 0\n" in "\n" + events,
                     events.strip().replace("\n", ", "))
        killed = self.vm.run("dmesg | grep -c 'Killed process'")[1].strip()
        self.c.equal("the kernel killed no process (dmesg)", killed, "0")
        self.lab.pg.stop()
        self.c.equal("the daemon exits 0 on SIGTERM", self.lab.stop_daemon(), "0")
        self.c.check("the daemons of these scenarios logged no error", not self.lab.errors,
                     "; ".join(self.lab.errors[:3]))
