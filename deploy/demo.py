#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The demo behind deploy/demo.sh: one scaling story, shown live.

  1. A 2 GiB VM starts: Postgres (throw-away), vm-informant, agent-sim.
     agent-sim speaks the websocket monitor protocol of current agents
     (ws://…/monitor) unless --protocol informant picks the HTTP protocol
     of agents before v0.18.0.
  2. The workload grows steadily: the informant predicts memory.high and
     asks agent-sim for more memory before it is reached (UpscaleRequest,
     or /try-upscale); agent-sim grows the VM and announces it
     (UpscaleNotification, or /upscale); limits and the file cache follow.
  3. A sudden burst hits memory.high: freeze (≤ max_upscale_wait), ask,
     thaw, upscale.
  4. agent-sim proposes a downscale while the workload holds its memory:
     refused.  The workload frees its memory; the next proposal is accepted.

Modes: "real cgroup" when a cgroup v2 mount with the memory controller is
writable (a child cgroup, a real allocating process, real memory.events);
"simulated" otherwise (a directory imitating cgroupfs whose memory.current
and memory.events the workload writes).  The VM size is always a meminfo
file that agent-sim rewrites, as a hypervisor would.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ.setdefault("VMI_TESTS_DIR", os.path.join(HERE, "..", "tests"))

MiB = 1 << 20
GiB = 1 << 30


def gib(n):
    return "%.2f GiB" % (n / GiB) if n is not None else "-"


class RealCgroup:
    """A child of a cgroup v2 mount with the memory controller."""

    def __init__(self, mount):
        self.root = mount
        self.name = "vmi-demo-%d" % os.getpid()
        self.dir = os.path.join(mount, self.name)
        with open(os.path.join(mount, "cgroup.subtree_control"), "w") as f:
            f.write("+memory")
        os.mkdir(self.dir)
        self.worker = None

    def read_int(self, fname):
        with open(os.path.join(self.dir, fname)) as f:
            v = f.read().strip()
        return None if v == "max" else int(v)

    def start_workload(self):
        code = ("import sys\nchunks=[]\nfor line in sys.stdin:\n"
                " cmd,n=line.split()\n"
                " if cmd=='grow': chunks.append(bytearray(int(n)))\n"
                " else: chunks.clear()\n")
        self.worker = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                       text=True)
        with open(os.path.join(self.dir, "cgroup.procs"), "w") as f:
            f.write(str(self.worker.pid))

    def grow(self, nbytes):
        self.worker.stdin.write("grow %d\n" % nbytes)
        self.worker.stdin.flush()

    def free(self):
        self.worker.stdin.write("free 0\n")
        self.worker.stdin.flush()

    def close(self):
        if self.worker:
            self.worker.kill()
            self.worker.wait()
        for _ in range(50):
            try:
                os.rmdir(self.dir)
                return
            except OSError:
                time.sleep(0.1)


class SimulatedWorkload:
    """Imitates the kernel on a FakeCgroup: memory.current follows the
    workload, and crossing memory.high counts a memory.high event."""

    def __init__(self, cg):
        self.cg = cg
        self.current = 300 * MiB
        cg.set_current(self.current)

    def grow(self, nbytes):
        self.current += nbytes
        high = self.cg.read_int("memory.high")
        if high is not None and self.current > high:
            self.cg.memory_high_event()
            self.current = high + 1 * MiB  # throttled at the line
        self.cg.set_current(self.current)

    def free(self):
        self.current = 300 * MiB
        self.cg.set_current(self.current)


def readable(line):
    """A daemon JSON log line as "msg key=value …" (sizes in MiB)."""
    import json
    try:
        rec = json.loads(line)
    except ValueError:
        return line.strip()[:160]
    parts = [rec.pop("msg", "")]
    for k in ("ts", "level"):
        rec.pop(k, None)
    for k, v in rec.items():
        if isinstance(v, int) and not isinstance(v, bool) and v >= MiB:
            v = "%.0fMiB" % (v / MiB)
        parts.append("%s=%s" % (k, v))
    return " ".join(str(p) for p in parts)[:200]


def find_memory_cgroup2():
    """A writable cgroup v2 mount offering the memory controller, or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split(" - ")[0].split()[4] for line in f if " - cgroup2 " in line]
    except OSError:
        return None
    for m in mounts:
        try:
            with open(os.path.join(m, "cgroup.controllers")) as f:
                if "memory" in f.read().split() and os.access(m, os.W_OK):
                    return m
        except OSError:
            continue
    return None


class Demo:
    def __init__(self, args):
        import vmi
        self.vmi = vmi
        self.args = args
        self.t0 = time.monotonic()
        self.work = vmi.Workdir(prefix="vmi-demo-")
        self.procs = []
        self.log_pos = {}
        self.pg = self.daemon = self.agent = self.real = None

    def say(self, who, text):
        print("%6.1fs %-7s %s" % (time.monotonic() - self.t0, who, text), flush=True)

    def start(self):
        vmi = self.vmi
        mount = find_memory_cgroup2()
        if mount:
            self.real = RealCgroup(mount)
            cg_root, cg_name = self.real.root, self.real.name
            self.say("demo", "mode: real cgroup v2 (%s) with a real allocating process"
                     % self.real.dir)
        else:
            self.fake = vmi.FakeCgroup(os.path.join(self.work.path, "cgroup"))
            cg_root, cg_name = self.fake.root, self.fake.name
            self.say("demo", "mode: simulated VM (no writable cgroup v2 with the memory "
                     "controller here): cgroupfs imitated in " + self.fake.dir)
        self.meminfo = vmi.Meminfo(os.path.join(self.work.path, "meminfo"), 2 * GiB)
        self.say("demo", "starting a throw-away Postgres")
        self.pg = vmi.PgCluster(self.work.path, ["neon.max_file_cache_size = '8GB'",
                                                 "neon.file_cache_size_limit = '0'"])
        self.daemon = vmi.Daemon(self.work.path, {
            "cgroup": {"enabled": "true", "root": cg_root, "name": cg_name,
                       "min_freeze_interval": "2s"},
            "filecache": {"enabled": "true", "connstr": self.pg.connstr},
            "system": {"meminfo": self.meminfo.path},
            "sampler": {"interval": "100ms"},
            "predict": {"enabled": "true", "horizon": "3s", "min_interval": "2s"},
            "log": {"level": "info"},
        })
        self.say("daemon", "vm-informant serving on 127.0.0.1:%d" % self.daemon.port)
        self.agent = vmi.AgentSim(self.work.path, self.daemon.port, [
            "--meminfo", self.meminfo.path, "--memory", "2Gi", "--max-memory", "8Gi",
            "--step", "1Gi", "--upscale-delay", "200", "--health-interval", "2000"],
            protocol=self.args.protocol)
        self.agent.wait_running()
        if self.args.protocol == "monitor":
            self.say("agent", "agent-sim connected to ws://127.0.0.1:%d/monitor, version "
                     "handshake done, current agent (VM 2 GiB, up to 8 GiB)" % self.daemon.port)
        else:
            self.say("agent", "agent-sim registered over HTTP and resumed (VM 2 GiB, up to "
                     "8 GiB)")
        if self.real:
            self.real.start_workload()
            self.workload = self.real
        else:
            self.workload = SimulatedWorkload(self.fake)

    def cgroup_value(self, fname):
        src = self.real if self.real else self.fake
        try:
            return src.read_int(fname)
        except (OSError, ValueError):
            return None

    def status_line(self):
        try:
            m = self.daemon.metrics()
        except Exception as e:  # the daemon may be between restarts
            return "(no metrics: %s)" % e
        g = lambda k: m.get("vm_informant_" + k, 0)  # noqa: E731
        return ("VM %s | current %s  high %s  max %s | cache %s | freezes %d (last %.1f ms)"
                " | asks %d (%d predicted) | downscales %d ok, %d refused" % (
                    gib(self.meminfo.total()), gib(self.cgroup_value("memory.current")),
                    gib(self.cgroup_value("memory.high")), gib(self.cgroup_value("memory.max")),
                    gib(g("file_cache_bytes")), g("freezes_total"),
                    g("last_freeze_seconds") * 1000, g("upscale_requests_total"),
                    g("upscale_requests_predicted_total"), g("downscales_accepted_total"),
                    g("downscales_rejected_total")))

    def follow(self, name, path, keep):
        """Print new lines of a log that contain one of the keep words."""
        try:
            with open(path) as f:
                f.seek(self.log_pos.get(path, 0))
                data = f.read()
                self.log_pos[path] = f.tell()
        except OSError:
            return
        for line in data.splitlines():
            if any(k in line for k in keep):
                self.say(name, readable(line))

    def tick(self, every=1.0):
        """Show what happened since the last tick, then a status line."""
        end = time.monotonic() + every
        while time.monotonic() < end:
            self.follow("daemon", self.daemon.log_path,
                        ("frozen", "thawed", "predicted", "downscale", "limits set",
                         "file cache size set", "upscale received"))
            self.follow("agent", self.agent.log_path, ("upscale", "downscale", "register",
                                                        "resum", "suspend", "session"))
            time.sleep(0.1)
        self.say("status", self.status_line())

    def story(self, duration):
        phase = duration / 6.0
        self.say("demo", "phase 1: the workload grows steadily")
        end = time.monotonic() + 2 * phase
        while time.monotonic() < end:
            self.workload.grow(60 * MiB)
            self.tick(0.5)
        self.say("demo", "phase 2: a sudden burst hits memory.high")
        high = self.cgroup_value("memory.high") or 0
        cur = self.cgroup_value("memory.current") or 0
        self.workload.grow(max(high - cur, 0) + 50 * MiB)
        for _ in range(int(phase)):
            self.tick()
        self.say("demo", "phase 3: agent-sim proposes a downscale while memory is held")
        self.propose_downscale()
        for _ in range(int(phase)):
            self.tick()
        self.say("demo", "phase 4: the workload frees its memory; the next proposal")
        self.workload.free()
        self.tick()
        self.propose_downscale()
        end = self.t0 + duration
        while time.monotonic() < end:
            self.tick()

    def propose_downscale(self):
        vm = self.meminfo.total()
        target = max(2 * GiB, (vm // GiB - 2) * GiB)
        status, _, body = self.agent.control("/sim/downscale?memory=%dMi" % (target // MiB))
        self.say("agent", "downscale to %s proposed: %s %s" % (gib(target), status, body))

    def summary(self):
        print("\n=== summary after %.0f s ===" % (time.monotonic() - self.t0))
        print(self.status_line())
        try:
            st = self.agent.state()
            print("agent-sim (%s protocol): %d upscale requests received, %d upscales sent, "
                  "downscales %d accepted / %d refused" % (
                      st.get("protocol"), st.get("tryUpscales", 0), st.get("upscalesOk", 0),
                                             st.get("downscalesAccepted", 0),
                                             st.get("downscalesRejected", 0)))
        except Exception as e:
            print("agent-sim state unavailable: %s" % e)
        print("Postgres file cache setting: %s MB" % self.pg.setting("neon.file_cache_size_limit"))

    def stop(self):
        for obj in (self.agent, self.daemon):
            if obj:
                obj.stop()
        if self.real:
            self.real.close()
        if self.pg:
            self.pg.stop()
        self.work.close()


def on_sigterm(signum, frame):
    raise KeyboardInterrupt()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=60, help="seconds (default 60)")
    p.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    p.add_argument("--protocol", choices=("monitor", "informant"), default="monitor",
                   help="what agent-sim speaks: the websocket monitor protocol of current "
                        "agents (default) or the HTTP informant protocol of older ones")
    args = p.parse_args()
    if args.duration < 12:
        p.error("--duration must be at least 12 seconds")
    os.environ["VMI_BUILD_DIR"] = os.path.abspath(args.build)
    # Ctrl-C and SIGTERM end the story early; cleanup runs either way.
    signal.signal(signal.SIGTERM, on_sigterm)
    demo = Demo(args)
    try:
        demo.start()
        demo.story(args.duration)
        demo.summary()
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", flush=True)
    finally:
        demo.stop()


if __name__ == "__main__":
    main()
