#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Orchestrates the benchmarks (run through run.sh): starts the daemon and
the floor programs on a tmpfs directory imitating cgroupfs, runs the C
drivers, pools their samples and writes a Markdown table.  All timing is
done by the C programs; this script only starts, stops and summarises."""

import argparse
import datetime
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MIB = 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("not serving on port %d after %.0f s" % (port, timeout))


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def keyvals(text):
    out = {}
    for line in text.splitlines():
        for tok in line.split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
    return out


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    rank = max(1, min(len(sorted_vals), int(p / 100.0 * len(sorted_vals) + 0.999999)))
    return sorted_vals[rank - 1]


def pooled(path):
    """p50/p99/max/n of the raw µs samples the C driver appended to path."""
    try:
        with open(path) as f:
            vals = sorted(float(x) for x in f if x.strip())
    except FileNotFoundError:
        vals = []
    return {"p50": pct(vals, 50), "p99": pct(vals, 99), "max": pct(vals, 100), "n": len(vals)}


class Env:
    """A fresh imitation cgroup directory plus meminfo, on tmpfs when possible
    (cgroupfs lives in memory too; ext4 writes would dominate the figures)."""

    def __init__(self, vm_bytes=4096 * MIB, current=300 * MIB, sys_buffer=100 * MIB):
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.root = tempfile.mkdtemp(prefix="vmi-bench-", dir=base)
        self.dir = os.path.join(self.root, "cg")
        os.mkdir(self.dir)
        files = {"memory.current": "%d\n" % current, "memory.high": "max\n",
                 "memory.max": "max\n", "cgroup.freeze": "0\n",
                 "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
                 "cgroup.events": "populated 1\nfrozen 0\n"}
        for name, text in files.items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.meminfo = os.path.join(self.root, "meminfo")
        kb = (vm_bytes - sys_buffer) // 1024
        with open(self.meminfo, "w") as f:
            f.write("MemTotal: %d kB\nMemFree: %d kB\nMemAvailable: %d kB\n" % (kb, kb // 2, kb // 2))

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.daemon_bin = os.path.join(args.build, "informant", "vm-informant")
        self.rows = []       # (benchmark, figure, value, floor, ratio, target, met)
        self.notes = []
        self.sections = []   # (title, Markdown lines) after the main table

    def exe(self, name):
        return os.path.join(self.args.bin, name)

    def have(self, name):
        return os.access(self.exe(name), os.X_OK)

    def row(self, bench, figure, value, floor="", ratio="", target="", met=""):
        self.rows.append((bench, figure, value, floor, ratio, target, met))
        print("  %-28s %-30s %12s  floor %-10s ratio %-6s target %-18s %s"
              % (bench, figure, value, floor, ratio, target, met), flush=True)

    def start_daemon(self, env, port, cgroup=None, predict=None, sampler="100ms"):
        conf = os.path.join(env.root, "vm-informant.conf")
        sections = {
            "server": {"listen": "127.0.0.1:%d" % port},
            "cgroup": dict({"enabled": "true", "root": env.root, "name": "cg"}, **(cgroup or {})),
            "system": {"meminfo": env.meminfo},
            "sampler": {"interval": sampler},
            "predict": dict({"enabled": "true"}, **(predict or {})),
            "log": {"level": "warn"},
        }
        with open(conf, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec + "".join("%s = %s\n" % kv_ for kv_ in kv.items()))
        log = open(os.path.join(env.root, "daemon.log"), "a")
        proc = subprocess.Popen([self.daemon_bin, "--config", conf], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
        log.close()
        try:
            wait_port(port, proc)
        except RuntimeError as e:
            stop(proc)
            raise RuntimeError("daemon: %s; log %s" % (e, os.path.join(env.root, "daemon.log")))
        return proc

    def driver(self, args, raw=None, timeout=600):
        env = dict(os.environ)
        if raw:
            env["VMI_BENCH_RAW"] = raw
        r = subprocess.run([self.exe("event-driver")] + [str(a) for a in args], env=env,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode not in (0, 3):
            raise RuntimeError("event-driver %s failed (%d): %s" % (args[0], r.returncode,
                                                                    r.stderr.strip()))
        if r.stderr.strip():
            self.notes.append("event-driver %s: %s" % (args[0], r.stderr.strip()[:300]))
        return keyvals(r.stdout)

    def floor_freeze(self, env, events, wait_ms, raw):
        """The event driver against floor-freeze on env's directory."""
        floor = subprocess.Popen([self.exe("floor-freeze"), env.dir, str(wait_ms * 1000)])
        time.sleep(0.1)
        try:
            self.driver(["freeze", env.dir, events], raw)
        finally:
            stop(floor)

    # ---- 1. memory.high event -> cgroup.freeze written ----
    def bench_freeze(self):
        blocks, per_block = (2, 500) if self.args.quick else (5, 2000)
        wait_ms = 1
        env = Env()
        raw = os.path.join(env.root, "raw")
        try:
            # Floor and daemon alternate in blocks, so load changes on the
            # machine hit both alike; samples are pooled per side.
            for _ in range(blocks):
                self.floor_freeze(env, per_block, wait_ms, raw + "-floor")
                port = free_port()
                d = self.start_daemon(env, port, {"max_upscale_wait": "%dms" % wait_ms,
                                                  "min_freeze_interval": "0"})
                try:
                    self.driver(["freeze", env.dir, per_block], raw + "-daemon")
                finally:
                    stop(d)
            fl, dm = pooled(raw + "-floor.freeze"), pooled(raw + "-daemon.freeze")
            fz, ffz = pooled(raw + "-daemon.frozen"), pooled(raw + "-floor.frozen")
        finally:
            env.close()
        name = "event → freeze written"
        for key in ("p50", "p99", "max"):
            ratio = dm[key] / fl[key] if fl[key] else float("nan")
            target, met = "", ""
            if key == "p99":
                target = "≤ 2× floor, ≤ 1000 µs"
                met = "yes" if ratio <= 2 and dm[key] <= 1000 else "no"
            self.row(name, "%s µs (n=%d)" % (key, dm["n"]), "%.1f" % dm[key], "%.1f" % fl[key],
                     "%.2f" % ratio, target, met)
        limit = (wait_ms + 2) * 1000
        self.row("frozen per event, no agent", "max µs (p50 %.0f, p99 %.0f)" % (fz["p50"], fz["p99"]),
                 "%.0f" % fz["max"], "%.0f" % ffz["max"], "%.2f" % (fz["max"] / ffz["max"]),
                 "≤ max_upscale_wait+2 ms = %d µs" % limit, "yes" if fz["max"] <= limit else "no")

    # ---- 2. event -> /try-upscale at the agent; frozen time with an agent ----
    def bench_try_upscale(self):
        events = 1000 if self.args.quick else 10000
        wait_ms = 20
        env = Env()
        raw = os.path.join(env.root, "raw")
        try:
            self.floor_freeze(env, events // 2, 1, raw + "-floor")
            port = free_port()
            d = self.start_daemon(env, port, {"max_upscale_wait": "%dms" % wait_ms,
                                              "min_freeze_interval": "0"})
            try:
                kv = self.driver(["agent", env.dir, events, "127.0.0.1:%d" % port, 4096 * MIB],
                                 raw + "-agent")
            finally:
                stop(d)
            fl = pooled(raw + "-floor.freeze")
            tr, fz = pooled(raw + "-agent.try"), pooled(raw + "-agent.frozen")
        finally:
            env.close()
        for key in ("p50", "p99"):
            self.row("event → /try-upscale at agent", "%s µs (n=%d)" % (key, tr["n"]),
                     "%.1f" % tr[key], "%.1f" % fl[key], "%.2f" % (tr[key] / fl[key]),
                     "(floor: inotify→write)", "")
        limit = (wait_ms + 2) * 1000
        self.row("frozen per event, agent grants", "max µs (p50 %.0f, p99 %.0f)"
                 % (fz["p50"], fz["p99"]), "%.0f" % fz["max"], "", "",
                 "≤ max_upscale_wait+2 ms = %d µs" % limit, "yes" if fz["max"] <= limit else "no")
        if kv.get("missed"):
            self.notes.append("try-upscale: %d of %d events incomplete" % (kv["missed"], events))

    # ---- 3. PUT /health-check throughput and latency ----
    def loadgen(self, port, body, raw):
        secs = 3 if self.args.quick else 10
        env = dict(os.environ, VMI_BENCH_RAW=raw)
        r = subprocess.run([self.exe("loadgen"), "127.0.0.1:%d" % port, body, "--conns", "16",
                            "--duration", str(secs), "--warmup", "1"], env=env,
                           capture_output=True, text=True, timeout=secs + 30)
        kv = keyvals(r.stdout)
        if r.returncode != 0 or "rps" not in kv:
            raise RuntimeError("loadgen failed (%d): %s %s" % (r.returncode, r.stdout.strip(),
                                                               r.stderr.strip()))
        return kv["rps"]

    def bench_health(self):
        if not self.have("bare-server"):
            self.notes.append("health-check: skipped, bare-server not built (libmicrohttpd-dev)")
            return
        rounds = 1 if self.args.quick else 2
        env = Env()
        raw = os.path.join(env.root, "raw")
        bare_rps, dm_rps = [], []
        try:
            for _ in range(rounds):
                port = free_port()
                bare = subprocess.Popen([self.exe("bare-server"), str(port)],
                                        stderr=subprocess.DEVNULL)
                try:
                    wait_port(port, bare)
                    bare_rps.append(self.loadgen(port, '{"agentID":"x"}', raw + "-bare"))
                finally:
                    stop(bare)
                port = free_port()
                d = self.start_daemon(env, port)
                agent = subprocess.Popen([self.exe("event-driver"), "serve", env.dir,
                                          "127.0.0.1:%d" % port, "600"], stdout=subprocess.PIPE,
                                         text=True)
                try:
                    line = agent.stdout.readline().strip()
                    if not line.startswith("agent_id="):
                        raise RuntimeError("mini-agent did not register with the daemon")
                    body = '{"agentID":"%s"}' % line.split("=", 1)[1]
                    dm_rps.append(self.loadgen(port, body, raw + "-daemon"))
                finally:
                    stop(agent)
                    stop(d)
            bl, dl = pooled(raw + "-bare.lat"), pooled(raw + "-daemon.lat")
        finally:
            env.close()
        b, d_ = sum(bare_rps) / len(bare_rps), sum(dm_rps) / len(dm_rps)
        self.row("PUT /health-check, 16 conns", "requests/s", "%.0f" % d_, "%.0f" % b,
                 "%.2f" % (d_ / b), "≥ 0.8× bare MHD", "yes" if d_ >= 0.8 * b else "no")
        for key in ("p50", "p99"):
            self.row("PUT /health-check, 16 conns", "latency %s µs" % key, "%.0f" % dl[key],
                     "%.0f" % bl[key], "%.2f" % (dl[key] / bl[key]), "", "")

    # ---- 4. idle RSS and CPU ----
    @staticmethod
    def proc_sample(pid):
        """VmRSS in KiB and CPU time in ns: the threads' schedstat run time
        when the kernel has it (ns precision), else utime+stime (clock ticks)."""
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        try:
            ns = 0
            for tid in os.listdir("/proc/%d/task" % pid):   # every thread, if any
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    ns += int(f.read().split()[0])
            return rss, ns
        except (OSError, ValueError, IndexError):
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return rss, (int(fields[11]) + int(fields[12])) * 10**9 // os.sysconf("SC_CLK_TCK")

    @staticmethod
    def rss_anon(pid):
        with open("/proc/%d/status" % pid) as f:
            return next((int(line.split()[1]) for line in f if line.startswith("RssAnon:")), 0)

    @staticmethod
    def rollup(pid):
        """{field: KiB} of /proc/PID/smaps_rollup.  Pss is the proportional
        set size: each shared page divided by the number of processes that
        map it (what the process costs the machine, where RSS counts a
        shared library page in full); Private_* pages are its alone."""
        out = {}
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
        return out

    def bench_idle(self):
        secs = 10 if self.args.quick else 60
        env = Env()
        port = free_port()
        d = self.start_daemon(env, port, sampler="100ms")
        floor = subprocess.Popen([self.exe("floor-idle"), env.dir, env.meminfo, "100"])
        try:
            time.sleep(1.0)   # start-up is not idle
            start = {p.pid: self.proc_sample(p.pid) for p in (d, floor)}
            peak = {p.pid: 0 for p in (d, floor)}
            t0 = time.monotonic()
            while time.monotonic() - t0 < secs:
                time.sleep(1.0)
                for p in (d, floor):
                    peak[p.pid] = max(peak[p.pid], self.proc_sample(p.pid)[0])
            elapsed = time.monotonic() - t0
            end = {p.pid: self.proc_sample(p.pid) for p in (d, floor)}
            anon = {p.pid: self.rss_anon(p.pid) for p in (d, floor)}
            roll = {p.pid: self.rollup(p.pid) for p in (d, floor)}
            pss = {pid: r.get("Pss", 0) for pid, r in roll.items()}
            private = {pid: r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)
                       for pid, r in roll.items()}
        finally:
            stop(floor)
            stop(d)
            env.close()
        cpu = {pid: 100.0 * (end[pid][1] - start[pid][1]) / 1e9 / elapsed for pid in start}
        name = "idle %d s, sampler 100 ms" % secs
        self.row(name, "PSS KiB", "%d" % pss[d.pid], "%d" % pss[floor.pid],
                 "%.1f" % (pss[d.pid] / max(1, pss[floor.pid])), "≤ 4096 KiB",
                 "yes" if pss[d.pid] <= 4096 else "no")
        self.row(name, "private KiB (mapped by no other process)", "%d" % private[d.pid],
                 "%d" % private[floor.pid], "", "", "")
        self.row(name, "peak RSS KiB", "%d" % peak[d.pid], "%d" % peak[floor.pid],
                 "%.1f" % (peak[d.pid] / max(1, peak[floor.pid])), "", "")
        self.row(name, "RssAnon KiB (rest: shared libraries)", "%d" % anon[d.pid],
                 "%d" % anon[floor.pid], "", "", "")
        self.row(name, "CPU %", "%.3f" % cpu[d.pid],
                 "%.3f" % cpu[floor.pid], "", "≤ 0.1 %", "yes" if cpu[d.pid] <= 0.1 else "no")

    # ---- 5. predictive upscale ----
    def bench_predict(self):
        rounds = 4 if self.args.quick else 8
        res = {}
        for enabled in ("true", "false"):
            env = Env(vm_bytes=1024 * MIB, current=300 * MIB)
            port = free_port()
            d = self.start_daemon(env, port, predict={"enabled": enabled})
            try:
                res[enabled] = self.driver(["predict", env.dir, "127.0.0.1:%d" % port,
                                            env.meminfo, "--rounds", rounds])
            finally:
                stop(d)
                env.close()
        on, off = res["true"], res["false"]
        self.row("predictive upscale", "asked before memory.high, %", "%.0f" %
                 on.get("predicted_share_pct", 0), "off: %.0f" % off.get("predicted_share_pct", 0),
                 "", "≥ 90 %", "yes" if on.get("predicted_share_pct", 0) >= 90 else "no")
        self.row("predictive upscale", "freezes (%d rounds)" % rounds, "%d" % on.get("freezes", 0),
                 "off: %d" % off.get("freezes", 0), "", "", "")
        self.row("predictive upscale", "memory.high events", "%d" % on.get("high_events", 0),
                 "off: %d" % off.get("high_events", 0), "", "", "")
        self.bench_predict_lead()

    def bench_predict_lead(self):
        """Steady growth at 320 MiB/s, horizon 2 s, 1 GiB grants 100 ms after
        the ask: how far ahead of memory.high the first ask of each round
        came.  The floor is the horizon itself (an ideal estimator asks
        exactly 2 s ahead)."""
        rounds = 10 if self.args.quick else 20
        env = Env(vm_bytes=2048 * MIB, current=300 * MIB)
        port = free_port()
        d = self.start_daemon(env, port, predict={"enabled": "true", "horizon": "2s"})
        try:
            r = self.driver(["predict", env.dir, "127.0.0.1:%d" % port, env.meminfo,
                             "--vm-mib", 2048, "--rate-mib-s", 320, "--grant-mib", 1024,
                             "--rounds", rounds])
        finally:
            stop(d)
            env.close()
        leads = sorted(int(x) for x in str(r.get("lead_ms", "")).split(",") if x)
        pct = r.get("lead_ge_1s_pct", 0)
        name = "predictive lead, 320 MiB/s, %d rounds" % len(leads)
        self.row(name, "first ask ≥ 1 s ahead, % of rounds", "%.0f" % pct, "", "",
                 "≥ 90 %", "yes" if pct >= 90 else "no")
        if leads:
            self.row(name, "lead ms min / median / max", "%d / %d / %d" % (
                leads[0], leads[len(leads) // 2], leads[-1]), "2000 (horizon)",
                "%.2f" % (leads[len(leads) // 2] / 2000.0), "", "")

    # ---- 6. the VM workloads: a real Postgres in a QEMU guest ----
    def bench_vm(self):
        import vm_bench
        rounds = 1 if self.args.quick else 3
        vb = vm_bench.VmBench(self.daemon_bin, os.environ.get(
            "VMI_VM_CACHE", os.path.expanduser("~/.cache/vmi-vm")), rounds)
        try:
            vb.run()
        except vm_bench.vmlib.Skip as e:
            self.notes.append("vm: skipped: %s" % e)
            return
        except vm_bench.vmlib.GuestError as e:
            raise RuntimeError("guest: %s" % e)
        lines = vb.table()
        print("\n".join(lines), flush=True)
        self.sections.append((
            "VM workloads (Postgres 15 in a QEMU guest, %s, boot %.1f s; median of %d "
            "round%s; the host grants %d MiB per ask, up to %d MiB)" % (
                vb.accel, vb.boot_s, rounds, "" if rounds == 1 else "s",
                vm_bench.GRANT_STEP >> 20, vm_bench.GRANT_CAP >> 20), lines))

    # ---- report ----
    def machine(self):
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((line.split(":", 1)[1].strip() for line in f
                            if line.startswith("model name")), "?")
        except OSError:
            pass
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        return "%d CPUs (%s), Linux %s, load average %s" % (os.cpu_count(), cpu,
                                                            platform.release(), load)

    def write(self, started, machine_before):
        lines = ["# vm-informant benchmarks", "",
                 "Run: %s UTC, `tests/bench/run.sh%s%s`, %.0f s." % (
                     started.strftime("%Y-%m-%d %H:%M"), " --quick" if self.args.quick else "",
                     " --only " + self.args.only if self.args.only else "",
                     (datetime.datetime.utcnow() - started).total_seconds()),
                 "", "Machine: %s at the start; load average %s at the end." % (
                     machine_before, self.machine().rsplit("load average ", 1)[1]),
                 "", "Floors are measured in the same run on the same machine (see "
                 "tests/bench/README.md for what each floor is)."]
        if self.rows:
            lines += ["", "| benchmark | figure | vm-informant | floor | ratio | target | met? |",
                      "|---|---|---|---|---|---|---|"]
        for r in self.rows:
            lines.append("| " + " | ".join(str(x) for x in r) + " |")
        for title, table in self.sections:
            lines += ["", "## " + title, ""] + table
        if self.notes:
            lines += ["", "Notes:", ""] + ["- " + n.replace("\n", " ") for n in self.notes]
        os.makedirs(os.path.dirname(self.args.out), exist_ok=True)
        with open(self.args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("wrote %s" % self.args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="comma-separated: freeze,try,health,idle,predict,vm")
    args = ap.parse_args()
    b = Bench(args)
    started = datetime.datetime.utcnow()
    machine = b.machine()
    print("machine: " + machine)
    if not os.access(b.daemon_bin, os.X_OK):
        print("bench: %s is missing (deploy/bootstrap.sh build): nothing to measure" %
              b.daemon_bin)
        return 1
    steps = [("freeze", b.bench_freeze, ["floor-freeze", "event-driver"]),
             ("try", b.bench_try_upscale, ["floor-freeze", "event-driver"]),
             ("health", b.bench_health, ["loadgen", "event-driver"]),
             ("idle", b.bench_idle, ["floor-idle"]),
             ("predict", b.bench_predict, ["event-driver"]),
             ("vm", b.bench_vm, [])]
    only = set(args.only.split(",")) if args.only else None
    for name, fn, needs in steps:
        if only and name not in only:
            continue
        missing = [n for n in needs if not b.have(n)]
        if missing:
            msg = "%s: skipped, %s not built" % (name, ", ".join(missing))
            print(msg)
            b.notes.append(msg)
            continue
        print("== %s" % name, flush=True)
        try:
            fn()
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            msg = "%s: failed: %s" % (name, e)
            print(msg)
            b.notes.append(msg)
    b.write(started, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
