#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The VM workloads as a benchmark: the daemon in a QEMU guest (TCG where
KVM cannot run Debian's kernel) managing a real Postgres 15 whose data is
on an ext4 virtio disk (tests/vm/pglab.py), each workload run under both
rules — "workload" (decide on memory.current − (file − shmem)) and
"current" (memory.current, the old rule) — from the same state: page
cache dropped, the daemon restarted with the rule, memory.high set by a
downscale, hot-plugged memory given back, page cache dropped again.  The
host plays an agent with room for two more 64 MiB steps: each ask is
answered by plugging 64 MiB (virtio-mem) and an UpscaleNotification,
until 128 MiB have been granted.

Per workload and rule (median of the rounds; OOM kills and failed runs
summed): asks (UpscaleRequest messages), freezes (the daemon's counter),
memory granted, OOM kills (memory.events), PSI "some" stall time during
the run, and the workload's throughput (MiB of table read per second).
After the scan, the downscale that needs the page cache gone: accepted or
not, and what memory.reclaim took.

Standalone: tests/bench/vm_bench.py --build build [--rounds N]; bench.py
runs it as its "vm" step and puts the table in results/latest.md.
"""
import argparse
import os
import statistics
import sys
import tempfile
import shutil
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vm"))
import pgguest  # noqa: E402
import pglab  # noqa: E402
import vmlib  # noqa: E402
from autoscaler import Autoscaler  # noqa: E402
from pglab import HIGH_SCAN, HIGH_SMALL, Lab, vm_for_high  # noqa: E402
from vmlib import MIB  # noqa: E402

THRASH_PASSES = 4
GRANT_STEP, GRANT_CAP = 64 * MIB, 128 * MIB


def table_mib(name):
    return dict(pgguest.TABLES)[name]


# name, memory.high, SQL, MiB of table read, a warm-up query or None
WORKLOADS = (
    ("scan", "sequential scan of a table twice memory.high", HIGH_SCAN,
     "SELECT count(*) FROM scan", table_mib("scan"), None),
    ("sort", "sort, work_mem 512MB (anonymous growth)", HIGH_SMALL,
     "SET work_mem = '512MB'; SELECT sum(octet_length(pad)) FROM "
     "(SELECT pad FROM sortme ORDER BY id DESC OFFSET 0) s", table_mib("sortme"), None),
    ("thrash", f"a table larger than the room for cache, read {THRASH_PASSES}×", HIGH_SMALL,
     "; ".join(["SELECT count(*) FROM hot"] * THRASH_PASSES),
     table_mib("hot") * THRASH_PASSES, "SELECT count(*) FROM hot"),
)


class VmBench:
    def __init__(self, daemon, cache, rounds, log=print, workloads=None, show_log=False):
        self.daemon, self.cache, self.rounds, self.log = daemon, cache, rounds, log
        self.workloads = [w for w in WORKLOADS if not workloads or w[0] in workloads]
        self.show_log = show_log
        self.runs = {}        # (workload, rule) -> [Result]
        self.failed = {}      # (workload, rule) -> runs whose query failed
        self.downscales = {}  # rule -> [(ok, reclaimed bytes, seconds)]
        self.boot_s = None
        self.scaler = None

    def run(self):
        kernel = vmlib.prepare_kernel(self.cache)
        vmtool = vmlib.build_vmtool(os.path.join(self.cache, "vmtool"))
        disk = pgguest.build_disk(self.cache)
        extra, users = pglab.initramfs_extra()
        work = tempfile.mkdtemp(prefix="vmi-vmbench-")
        try:
            initrd = vmlib.build_initramfs(os.path.join(work, "initrd.gz"), kernel, vmtool,
                                           daemon=self.daemon, extra=extra, users=users)
            with vmlib.VM(kernel.image, initrd, work, disks=[disk]) as vm:
                vm.start()
                self.boot_s, self.accel = vm.boot_seconds, vm.accel
                lab = Lab(vm)
                lab.setup()
                self.scaler = Autoscaler(vm, None, 0)
                for r in range(self.rounds):
                    for name, _, high, sql, _, warm in self.workloads:
                        for rule in pglab.RULES:
                            self.one(lab, r, name, high, sql, warm, rule)
                lab.pg.stop()
                lab.stop_daemon()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def reset(self, lab, rule, high):
        """The daemon anew with the rule, memory.high at high, no memory
        hot-plugged, no page cache."""
        lab.drop_caches()
        lab.start_daemon(rule)
        # What drop_caches leaves (pages mapped by Postgres) would make the
        # memory.current rule refuse the downscale below: the test reclaims
        # it itself (EAGAIN for what cannot go), then drops the page cache
        # again, which also drops the traces reclaim leaves for refaults.
        lab.vm.run(f"echo 1G > {pglab.CG}/memory.reclaim")
        lab.drop_caches()
        self.scaler.agent, self.scaler.base = lab.agent, vm_for_high(high)
        status, body = self.scaler.downscale_vmem_settled(0)
        if not (status == 200 and isinstance(body, dict) and body.get("Ok")):
            st = lab.read_stat()
            raise RuntimeError(f"downscale to memory.high {high // MIB} MiB refused: {status} "
                               f"{body}; " + ", ".join(f"{k} {st[k] / MIB:.1f} MiB" for k in (
                                   "current", "anon", "file", "shmem", "kernel", "file_mapped")))
        lab.drop_caches()
        lab.wait_quiet()

    def grant(self, msg):
        """The agent's answer to an ask: 64 MiB more, while it has room."""
        if self.scaler.vmem < GRANT_CAP:
            self.scaler.resize_vmem(self.scaler.vmem + GRANT_STEP)
            self.scaler.agent.upscale(self.scaler.vm_bytes)

    def one(self, lab, r, name, high, sql, warm, rule):
        self.reset(lab, rule, high)
        if warm:
            lab.pg.query(warm)
            lab.wait_quiet()  # also closes the warm-up's PSI window (1 s)
        lab.sync_clock()
        res = lab.measure(f"{name}-{rule}", sql, timeout=240, on_ask=self.grant)
        res.granted = self.scaler.vmem
        self.runs.setdefault((name, rule), []).append(res)
        if res.status != 0:  # e.g. a backend OOM-killed: Postgres restarts them
            self.failed[(name, rule)] = self.failed.get((name, rule), 0) + 1
            lab.pg.wait_ready()
        self.log(f"  round {r + 1} {name:6} {rule:8}: {len(res.asks)} asks, "
                 f"{int(res.delta('freezes_total'))} freezes, {res.granted // MIB} MiB "
                 f"granted, {res.oom_kills} OOM kills, stall {res.stall_s:.2f}s, "
                 f"{res.seconds:.2f}s" + ("" if res.status == 0 else
                                          f", FAILED: {res.output[:120]!r}"))
        if self.show_log:
            self.log("\n".join("    | " + ln for ln in lab.log_since().splitlines()))
        if name == "scan":
            self.downscale_after(lab, rule)

    def downscale_after(self, lab, rule):
        """The downscale that fits the workload but not the page cache
        (from the size the scan ended with, grants included)."""
        m0 = lab.metrics()
        t = time.monotonic()
        self.scaler.base = vm_for_high(HIGH_SMALL)
        status, body = self.scaler.downscale_vmem(0)
        secs = time.monotonic() - t
        m1 = lab.metrics()
        ok = status == 200 and isinstance(body, dict) and body.get("Ok") is True
        reclaimed = m1.get("reclaimed_bytes_total", 0) - m0.get("reclaimed_bytes_total", 0)
        self.downscales.setdefault(rule, []).append((ok, reclaimed, secs))

    # ---- the table -------------------------------------------------------------

    def table(self):
        """Markdown lines."""
        out = ["| workload | rule | asks | freezes | granted MiB | OOM kills | PSI stall s | "
               "MiB/s | failed runs |",
               "|---|---|---|---|---|---|---|---|---|"]
        for name, desc, high, _, mib, _ in self.workloads:
            for rule in pglab.RULES:
                runs = self.runs.get((name, rule), [])
                if not runs:
                    continue

                def med(f, fmt="%g"):
                    return fmt % statistics.median(f(x) for x in runs)
                out.append(f"| {name}: {desc}, memory.high {high // MIB} MiB | {rule} | "
                           f"{med(lambda x: len(x.asks))} | "
                           f"{med(lambda x: x.delta('freezes_total'))} | "
                           f"{med(lambda x: x.granted / MIB)} | "
                           f"{sum(x.oom_kills for x in runs)} | "
                           f"{med(lambda x: x.stall_s, '%.2f')} | "
                           f"{med(lambda x: mib / x.seconds, '%.0f')} | "
                           f"{self.failed.get((name, rule), 0)} of {len(runs)} |")
        for rule in pglab.RULES:
            ds = self.downscales.get(rule, [])
            if ds:
                accepted = sum(1 for ok, _, _ in ds if ok)
                out.append(f"| downscale after the scan to memory.high {HIGH_SMALL // MIB} MiB | "
                           f"{rule} | accepted {accepted} of {len(ds)}, page cache reclaimed "
                           f"{statistics.median(r for _, r, _ in ds) / MIB:.0f} MiB, "
                           f"{statistics.median(s for _, _, s in ds):.2f} s |  |  |  |  |  |  |")
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--cache", default=os.environ.get(
        "VMI_VM_CACHE", os.path.expanduser("~/.cache/vmi-vm")))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="",
                    help="comma-separated subset of " + ",".join(w[0] for w in WORKLOADS))
    ap.add_argument("--show-log", action="store_true",
                    help="print the daemon's log of each run (from its start)")
    args = ap.parse_args()
    b = VmBench(os.path.join(args.build, "informant", "vm-informant"), args.cache, args.rounds,
                workloads=[w for w in args.workloads.split(",") if w], show_log=args.show_log)
    try:
        b.run()
    except vmlib.Skip as e:
        print(f"vm bench: skipped: {e}")
        return 77
    print("\n".join(b.table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
