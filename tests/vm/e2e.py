#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The real-VM end-to-end test: vm-informant inside a QEMU guest (Debian's
kernel, a real cgroup v2 with the memory controller), the host playing the
autoscaler-agent over forwarded TCP and growing/shrinking the guest's
memory through QMP.  The host first registers as an agent of the HTTP
informant protocol, then a websocket monitor session (today's agents)
takes over and the scaling story runs over it; when the session ends the
HTTP agent is current again.  Then a real Postgres 15 runs in the cgroup,
its data on an ext4 virtio disk, for the page cache, PSI and reclaim
scenarios (pgstory.py).  See tests/vm/README.md.

Prints "vm: N passed, N failed"; exit 0 if all passed, 77 if the machine
cannot run a VM at all, 1 otherwise.
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmlib  # noqa: E402
from autoscaler import Autoscaler  # noqa: E402
from hostagent import HostAgent, http_request  # noqa: E402
from monitoragent import MonitorAgent  # noqa: E402
import pglab  # noqa: E402
import pgguest  # noqa: E402
from pgstory import PgStory  # noqa: E402
from vmlib import MIB, GuestError, log  # noqa: E402

CG = "/sys/fs/cgroup/neon-postgres"
BASE_MIB = 512           # -m: what the agent counts as the VM's base size
SYS_BUFFER = 128 * MIB   # ≈ what the kernel keeps of a 512 MiB guest
OOM_BUFFER = 128 * MIB
HIGH_BUFFER = 64 * MIB
MAX_UPSCALE_WAIT_MS = 500
FREEZE_SLACK_MS = 500    # TCG scheduling + cgroup.events notification delay
WORKLOAD_MIB = 288       # above the initial memory.high, below memory.max
VMEM_STEP = 256 * MIB    # what the host plugs on /try-upscale
DIMM_SIZE = 256 * MIB

CONFIG = "# vm-informant in the end-to-end test guest (written by tests/vm/e2e.py)\n" + \
    vmlib.DAEMON_CONFIG_HEAD + f"""\
[cgroup]
name = neon-postgres
root = /sys/fs/cgroup
oom_buffer = {OOM_BUFFER // MIB}MiB
memory_high_buffer = {HIGH_BUFFER // MIB}MiB
max_upscale_wait = {MAX_UPSCALE_WAIT_MS}ms
[filecache]
# the first story runs without Postgres (pgstory.py starts one later)
enabled = false
[system]
meminfo = /proc/meminfo
sys_buffer = {SYS_BUFFER // MIB}MiB
[predict]
# the test wants a real memory.high event, not an early ask
enabled = false
[log]
level = debug
format = text
"""


def limits_for(vm_bytes, mem_total):
    """(memory.max, memory.high) for an agent size: one basis (D11/D20),
    usable = min(vm − sys_buffer, MemTotal)."""
    usable = min(max(vm_bytes - SYS_BUFFER, 0), mem_total)
    return usable, max(usable - OOM_BUFFER, 0)


def mib(v):
    return f"{v / MIB:.2f} MiB"


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        log(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
        return ok

    def equal(self, name, got, want, fmt=str):
        return self.check(name, got == want, f"got {fmt(got)}, want {fmt(want)}")


class Story:
    """The test, phase by phase, on one running guest."""

    def __init__(self, vm, checks):
        self.vm, self.c = vm, checks
        self.agent = self.http_agent = self.scaler = None
        self.phase_t = time.monotonic()

    def phase(self, name):
        now = time.monotonic()
        log(f"--- {name} (previous phase {now - self.phase_t:.1f}s)")
        self.phase_t = now

    def limits(self):
        return (self.vm.read_int(f"{CG}/memory.max"), self.vm.read_int(f"{CG}/memory.high"))

    def check_limits(self, name, want):
        got = self.limits()
        self.c.check(name, got == want, f"memory.max/high {mib(got[0])}/{mib(got[1])}, "
                                        f"want {mib(want[0])}/{mib(want[1])}")

    def wait_limits(self, want, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.limits() != want and time.monotonic() < deadline:
            time.sleep(0.05)

    def wait_calls(self, path, n, timeout=5.0):
        """How many calls to path the HTTP agent got, waiting up to timeout
        for n of them."""
        deadline = time.monotonic() + timeout
        while len(self.http_agent.calls_to(path)) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.http_agent.calls_to(path))

    def frozen(self):
        return re.search(r"^frozen 1$", self.vm.read_file(f"{CG}/cgroup.events"), re.M) is not None

    # ---- phases ---------------------------------------------------------------

    def guest_setup(self):
        self.phase("guest: cgroup v2, watcher, daemon start")
        ctl = self.vm.read_file("/sys/fs/cgroup/cgroup.subtree_control")
        self.c.check("guest has cgroup v2 with the memory controller", "memory" in ctl.split(),
                     f"subtree_control: {ctl.strip()!r}")
        self.vm.sh(f"(vmtool watch /run/watch.log {CG}/memory.events {CG}/cgroup.events "
                   "</dev/null >/dev/null 2>&1 &)")
        # Frozen before the daemon starts: it must thaw at start.
        self.vm.sh(f"echo 1 > {CG}/cgroup.freeze")
        self.pid = int(self.vm.sh("vmi-start").split()[-1])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.vm.run("test -e /run/vmi.rc")[0] == 0:
                break
            try:
                status, _ = http_request(("127.0.0.1", self.vm.informant_port), "GET",
                                         "/status", {}, timeout=2)
                if status == 200 and self.vm.read_file(f"{CG}/memory.max").strip() != "max":
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        up = self.vm.run("test -e /run/vmi.rc")[0] != 0
        self.c.check("daemon is up and serving in the guest", up,
                     "" if up else "exited: " + self.daemon_log_tail())
        return up

    def initial_limits(self):
        self.phase("limits from MemTotal at start")
        self.m0 = self.vm.mem_total()
        log(f"guest MemTotal {mib(self.m0)}")
        self.check_limits("start: memory.max = MemTotal, memory.high = MemTotal - oom_buffer",
                          (self.m0, self.m0 - OOM_BUFFER))
        self.c.check("start: the daemon thawed the cgroup", not self.frozen())

    def register(self):
        self.phase("register (HTTP informant protocol)")
        self.agent = self.http_agent = HostAgent(self.vm.informant_port)
        status, body = self.agent.register()
        self.c.check("/register answers 200 with protoVersion 4",
                     status == 200 and isinstance(body, dict) and body.get("protoVersion") == 4,
                     f"{status} {body}")
        self.c.check("the informant called GET /id during /register",
                     len(self.agent.calls_to("/id")) >= 1)
        self.c.check("the informant sent /resume (agent is current)",
                     self.wait_calls("/resume", 1) == 1)
        status, _ = self.agent.health_check()
        self.c.equal("/health-check answers 200", status, 200)

    def monitor(self):
        self.phase("monitor session (websocket protocol) takes over")
        self.agent = MonitorAgent(self.vm.informant_port)
        self.c.check("GET /monitor upgraded, version handshake answered {\"version\":1}", True)
        self.scaler = Autoscaler(self.vm, self.agent, BASE_MIB * MIB)
        self.c.check("the HTTP agent was sent /suspend (the session is the newer kind)",
                     self.wait_calls("/suspend", 1) == 1)
        status, _ = self.agent.health_check()
        self.c.equal("HealthCheck answered", status, 200)
        status, doc = http_request(("127.0.0.1", self.vm.informant_port), "GET", "/status", {})
        cur = (doc.get("current_agent") or {}) if isinstance(doc, dict) else {}
        self.c.equal("/status: the current agent speaks the monitor protocol",
                     cur.get("protocol"), "monitor")

    def pressure(self):
        self.phase(f"memory.high event: {WORKLOAD_MIB} MiB workload, freeze, UpscaleRequest")
        self.vm.sh(f"(sh -c 'echo $$ > {CG}/cgroup.procs && exec vmtool alloc {WORKLOAD_MIB} "
                   "/run/alloc.state' </dev/null >/run/alloc.log 2>&1 &)")
        # The host's part: plug memory, wait until the guest has it, then
        # (having given the freeze the chance to show) send /upscale.
        call, mem_total, reply = self.scaler.answer_try_upscale(
            VMEM_STEP, before_upscale=self.await_freeze)
        events = self.vm.read_file(f"{CG}/memory.events")
        self.c.check("the workload raised memory.events high",
                     int(re.search(r"^high (\d+)", events, re.M).group(1)) > 0,
                     events.strip().replace("\n", ", "))
        if not self.c.check("the informant sent UpscaleRequest (odd id)", call is not None
                            and call.body.get("type") == "UpscaleRequest"
                            and call.body.get("id", 0) % 2 == 1,
                            str(call.body if call else None)):
            return False
        self.c.equal("virtio-mem grow: MemTotal follows", mem_total,
                     self.m0 + VMEM_STEP, mib)
        self.c.check("UpscaleNotification answered UpscaleConfirmation", reply[0] == 200,
                     str(reply))
        self.check_limits(f"upscale to {mib(self.scaler.vm_bytes)}: limits follow",
                          limits_for(self.scaler.vm_bytes, mem_total))
        self.check_freeze_log()
        state = self.wait_workload("holding", 30)
        self.c.check(f"workload holds {WORKLOAD_MIB} MiB", state == f"holding {WORKLOAD_MIB}",
                     state)
        events = self.vm.read_file(f"{CG}/memory.events")
        self.c.check("no OOM kill in the cgroup", re.search(r"^oom_kill 0$", events, re.M)
                     is not None, events.strip().replace("\n", ", "))
        self.c.check("cgroup not frozen after the upscale", not self.frozen())
        return True

    def await_freeze(self, call):
        """Before answering: wait (bounded by most of max_upscale_wait) until
        the watcher has seen the freeze, so /upscale does not end it unseen."""
        deadline = call.t + MAX_UPSCALE_WAIT_MS / 1000 * 0.8
        while time.monotonic() < deadline and "frozen 1" not in self.vm.read_file("/run/watch.log"):
            time.sleep(0.02)

    def check_freeze_log(self):
        """The watcher's cgroup.events lines: a freeze after the first high
        event, and every freeze ended within max_upscale_wait (+ slack)."""
        time.sleep(0.3)  # let the thaw notification arrive
        frozen_at, spans, first_high = None, [], None
        for line in self.vm.read_file("/run/watch.log").splitlines():
            t, path, content = line.split(" ", 2)
            t = float(t)
            if path.endswith("memory.events") and first_high is None \
                    and not re.search(r"high 0\b", content):
                first_high = t
            if path.endswith("cgroup.events"):
                if "frozen 1" in content and frozen_at is None:
                    frozen_at = t
                elif "frozen 0" in content and frozen_at is not None:
                    spans.append((frozen_at, t - frozen_at))
                    frozen_at = None
        after = [s for s in spans if first_high is not None and s[0] >= first_high]
        self.c.check("a memory.high event froze the cgroup (cgroup.events: frozen 1)",
                     bool(after), f"freezes {[(round(s, 1), round(d, 1)) for s, d in spans]}, "
                                  f"first high event at {first_high}")
        bound = MAX_UPSCALE_WAIT_MS + FREEZE_SLACK_MS
        longest = max((d for _, d in after), default=0.0)
        self.c.check(f"every freeze ended within {bound} ms", after and frozen_at is None
                     and longest <= bound, f"longest {longest:.1f} ms"
                     + (", still frozen" if frozen_at is not None else ""))

    def wait_workload(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.vm.run("cat /run/alloc.state")[1].strip()
            if state.startswith(prefix):
                break
            time.sleep(0.1)
        return state

    def downscale(self):
        self.phase("downscale refused while the workload holds memory")
        before = self.limits()
        target = self.scaler.vm_bytes - VMEM_STEP
        current = self.vm.read_int(f"{CG}/memory.current")
        new_high = limits_for(target, self.vm.mem_total())[1]
        status, body = self.scaler.downscale_vmem(self.scaler.vmem - VMEM_STEP)
        self.c.check(f"downscale to {mib(target)} refused (new high {mib(new_high)} < current "
                     f"{mib(current)} + {mib(HIGH_BUFFER)})",
                     status == 200 and isinstance(body, dict) and body.get("Ok") is False,
                     f"{status} {body}")
        self.check_limits("refused downscale leaves the limits alone", before)

        self.phase("downscale accepted after the workload freed its memory")
        self.vm.sh(f"kill -USR1 $(cat {CG}/cgroup.procs)")  # the workload is alone there
        state = self.wait_workload("freed", 15)
        self.c.check("workload freed its memory", state.startswith("freed"), state)
        current = self.vm.read_int(f"{CG}/memory.current")
        want = limits_for(target, self.vm.mem_total())
        t = time.monotonic()
        status, body = self.scaler.downscale_vmem(self.scaler.vmem - VMEM_STEP)
        self.c.check(f"downscale to {mib(target)} accepted (current now {mib(current)})",
                     status == 200 and isinstance(body, dict) and body.get("Ok") is True,
                     f"{status} {body}")
        log(f"downscale and virtio-mem shrink took {time.monotonic() - t:.2f}s")
        self.c.equal("virtio-mem shrink: MemTotal back to the base", self.vm.mem_total(),
                     self.m0, mib)
        self.check_limits(f"downscale to {mib(target)}: limits follow", want)

    def dimm(self):
        self.phase("DIMM hot-plug")
        announced = self.scaler.vm_bytes + DIMM_SIZE
        status, body = self.agent.upscale(announced)
        self.c.check("upscale before the memory exists is confirmed", status == 200,
                     f"{status} {body}")
        self.check_limits(f"upscale to {mib(announced)} before the DIMM: capped at MemTotal",
                          limits_for(announced, self.m0))
        mem_total, secs = self.scaler.add_dimm(DIMM_SIZE)
        self.c.equal("DIMM hot-plug: MemTotal follows", mem_total, self.m0 + DIMM_SIZE, mib)
        log(f"DIMM +{mib(DIMM_SIZE)} visible after {secs:.2f}s")
        want = limits_for(announced, mem_total)
        # The daemon watches MemTotal (sampler) and applies the agent's
        # size once the memory has arrived (D11), without a new /upscale.
        self.wait_limits(want, timeout=3)
        self.check_limits("limits follow the arrived memory by themselves (MemTotal re-read)",
                          want)
        status, body = self.agent.upscale(self.scaler.vm_bytes)
        self.c.check("upscale after the DIMM arrived is confirmed", status == 200,
                     f"{status} {body}")
        self.check_limits(f"upscale to {mib(announced)} after the DIMM: limits follow", want)

    def handback(self):
        self.phase("the session ends: the HTTP agent is current again")
        code = self.agent.close()
        self.c.equal("the informant answered our close with 1000", (code or (None,))[0], 1000)
        self.c.equal("the HTTP agent was resumed again", self.wait_calls("/resume", 2), 2)
        before = self.limits()
        status, body = self.http_agent.upscale(self.scaler.vm_bytes)
        self.c.check("/upscale of the HTTP agent answers 200", status == 200, f"{status} {body}")
        self.check_limits("the same size over HTTP keeps the limits", before)
        self.agent = self.http_agent

    def sigterm(self):
        self.phase("SIGTERM while frozen")
        self.vm.sh(f"echo 1 > {CG}/cgroup.freeze")
        deadline = time.monotonic() + 5
        while not self.frozen() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.c.check("cgroup frozen before SIGTERM (by the test)", self.frozen())
        self.vm.sh(f"kill -TERM {self.pid}")
        deadline = time.monotonic() + 15
        while self.vm.run("test -e /run/vmi.rc")[0] != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        rc = self.vm.run("cat /run/vmi.rc")[1].strip()
        self.c.equal("daemon exits 0 on SIGTERM", rc, "0")
        self.c.check("SIGTERM left the cgroup thawed", not self.frozen(),
                     self.vm.read_file(f"{CG}/cgroup.events").strip().replace("\n", ", "))
        self.c.equal("cgroup.freeze reads 0", self.vm.read_file(f"{CG}/cgroup.freeze").strip(),
                     "0")
        errors = [ln for ln in self.vm.read_file("/run/vmi.log").splitlines() if " ERROR " in ln]
        self.c.check("the daemon logged no error", not errors, "; ".join(errors[:3]))

    def collect(self, work):
        """Copies the guest's daemon log and watcher log into work."""
        for name in ("vmi.log", "watch.log", "cgmon.log", "pgwatch.log", "pg.log"):
            try:
                rc, out = self.vm.run(f"cat /run/{name}", timeout=5)
            except (OSError, GuestError):
                return
            with open(os.path.join(work, name), "w") as f:
                f.write(out)

    def daemon_log_tail(self, lines=40):
        try:
            return self.vm.run(f"tail -n {lines} /run/vmi.log", timeout=5)[1]
        except (OSError, GuestError):
            return "(guest unreachable)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", required=True, help="path of the vm-informant binary")
    ap.add_argument("--cache", default=os.environ.get(
        "VMI_VM_CACHE", os.path.expanduser("~/.cache/vmi-vm")))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--fixtures", help="write the guest's memory.stat and memory.pressure "
                    "(a cgroup full of page cache) into this directory")
    args = ap.parse_args()
    checks = Checks()
    work = tempfile.mkdtemp(prefix="vmi-vm-")
    t0 = time.monotonic()
    def interrupted(signo, _frame):  # clean up (stop QEMU) on the way out
        raise TimeoutError("170 s elapsed" if signo == signal.SIGALRM else "SIGTERM")

    signal.signal(signal.SIGALRM, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    signal.alarm(170)
    vm = story = None
    try:
        kernel = vmlib.prepare_kernel(args.cache)
        vmtool = vmlib.build_vmtool(os.path.join(args.cache, "vmtool"))
        disks, extra, users = [], {}, []
        if os.path.exists(f"{pgguest.BINDIR}/postgres"):
            disks = [pgguest.build_disk(args.cache)]
            extra, users = pglab.initramfs_extra()
        else:
            log(f"SKIP the Postgres scenarios: {pgguest.BINDIR}/postgres is missing "
                f"(install postgresql-{pgguest.PG_MAJOR})")
        initrd = vmlib.build_initramfs(os.path.join(work, "initrd.gz"), kernel, vmtool,
                                       daemon=args.daemon, daemon_config=CONFIG, extra=extra,
                                       users=users)
        log(f"kernel {kernel.version}, initramfs {os.path.getsize(initrd) / MIB:.1f} MiB "
            f"(prepared in {time.monotonic() - t0:.1f}s)")
        vm = vmlib.VM(kernel.image, initrd, work, mem_mib=BASE_MIB, disks=disks)
        vm.start()  # vm is set first: a failing start is stopped below too
        log(f"guest booted in {vm.boot_seconds:.1f}s (accelerator {vm.accel})")
        story = Story(vm, checks)
        if story.guest_setup():
            story.initial_limits()
            story.register()
            story.monitor()
            if story.pressure():
                story.downscale()
            story.dimm()
            story.handback()
            story.sigterm()
            if disks:
                PgStory(vm, checks, story.phase, fixtures=args.fixtures).run()
    except vmlib.Skip as e:
        print(f"vm: SKIP: {e}", flush=True)
        return 77
    except (GuestError, OSError, TimeoutError, ValueError, AttributeError, IndexError,
            KeyError, http.client.HTTPException, subprocess.SubprocessError) as e:
        checks.check("test ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        if story is not None and vm.proc is not None:
            story.collect(work)
        if checks.failed and vm is not None and vm.proc is not None:
            log("daemon log (tail):\n" + (story.daemon_log_tail() if story else ""))
            log("serial console (tail):\n" + vm.serial_tail(20))
        agents = [] if story is None else [story.agent, story.http_agent]
        for agent in dict.fromkeys(a for a in agents if a is not None):
            agent.close()
        if vm is not None:
            vm.stop()
        if checks.failed or args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    log(f"total {time.monotonic() - t0:.1f}s")
    print(f"vm: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 and checks.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
