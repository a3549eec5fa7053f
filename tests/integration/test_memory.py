#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The daemon's memory behaviour end to end: the real vm-informant and
agent-sim over loopback, against a directory imitating cgroupfs and a
meminfo file (no Postgres here; see test_filecache.py).

Exact byte values come from tests/vectors/memory-limits.json.
"""
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vmi import MiB, DaemonTestCase, child_pid, wait_until  # noqa: E402

VECTORS = os.environ.get("VMI_VECTORS_DIR",
                         os.path.join(os.path.dirname(__file__), "..", "vectors"))


def vector_rows(event, cgroup=True, filecache=False):
    with open(os.path.join(VECTORS, "memory-limits.json")) as f:
        return [r for r in json.load(f) if r["event"] == event
                and r["cgroupEnabled"] == cgroup and r["fileCacheEnabled"] == filecache]


class MemoryTest(DaemonTestCase):
    MEM_TOTAL = 4125351936  # a 4 GiB VM's MemTotal

    def start_daemon(self, cgroup=None, predict=None, sampler=None, supervisor=None):
        return super().start_daemon(cgroup=cgroup, predict=predict, sampler=sampler,
                                    supervisor=supervisor)

    def test_startup_limits_from_memtotal(self):
        row = vector_rows("startup")[0]
        self.meminfo.set_total(row["memTotalBytes"])
        self.start_daemon()
        wait_until(lambda: self.limits() == (row["expectMemoryMaxBytes"],
                                             row["expectMemoryHighBytes"]),
                   what="start-up limits %s" % row["description"])
        self.assertEqual(self.cg.read("cgroup.freeze"), "0")

    def test_upscale_and_downscale_exact_bytes(self):
        d = self.start_daemon()
        agent = self.start_agent(d)
        up = next(r for r in vector_rows("upscale") if r["agentMemory"] == "8Gi")
        status, body = agent.control("/sim/upscale?memory=8Gi")[0::2]
        self.assertEqual(status, 200, body)
        wait_until(lambda: self.limits() == (up["expectMemoryMaxBytes"],
                                             up["expectMemoryHighBytes"]),
                   what="limits after upscale to 8Gi")

        for row in vector_rows("downscale"):
            with self.subTest(row=row["description"]):
                self.cg.set_current(row["memoryCurrentBytes"])
                before = self.limits()
                status, _, body = agent.control("/sim/downscale?memory=" + row["agentMemory"])
                self.assertEqual(status, 200, body)
                self.assertEqual(body, row["expectResponse"])
                if '"Ok":true' in body:
                    self.assertEqual(self.limits(), (row["expectMemoryMaxBytes"],
                                                     row["expectMemoryHighBytes"]))
                else:
                    self.assertEqual(self.limits(), before, "a refusal changes nothing")
        m = d.metrics()
        self.assertGreaterEqual(m.get("vm_informant_downscales_rejected_total", 0), 1)
        self.assertGreaterEqual(m.get("vm_informant_downscales_accepted_total", 0), 1)

    def test_memory_high_event_freezes_asks_and_thaws(self):
        d = self.start_daemon(cgroup={"max_upscale_wait": "20ms"})
        agent = self.start_agent(d, "--upscale-delay", "300")
        max0, high0 = self.limits()
        self.cg.set_current(high0)
        self.cg.memory_high_event()
        wait_until(lambda: agent.state()["tryUpscales"] >= 1, what="/try-upscale at the agent")
        wait_until(lambda: d.metric("vm_informant_freezes_total") >= 1, what="a freeze")
        wait_until(lambda: self.cg.read("cgroup.freeze") == "0", timeout=1, what="thaw")
        m = d.metrics()
        self.assertEqual(m["vm_informant_freezes_total"], 1)
        # The bound is enforced by a timer armed at the freeze; the upscale
        # comes 300 ms later, so the thaw is the bound's.
        self.assertLess(m["vm_informant_last_freeze_seconds"], 0.1)
        wait_until(lambda: agent.state()["upscalesOk"] >= 1, what="the upscale")
        wait_until(lambda: self.limits()[0] > max0, what="limits raised by the upscale")

    def test_stepwise_raise_capped_at_max(self):
        d = self.start_daemon(cgroup={"max_upscale_wait": "5ms", "min_freeze_interval": "60s",
                                      "memory_high_step": "10MiB",
                                      "memory_high_step_interval": "25ms"})
        agent = self.start_agent(d, "--ignore-try-upscale")
        max0, high0 = self.limits()
        self.assertEqual(max0 - high0, 100 * MiB)
        self.cg.set_current(high0)
        self.cg.memory_high_event()
        wait_until(lambda: d.metric("vm_informant_freezes_total") >= 1, what="first freeze")
        wait_until(lambda: self.cg.read("cgroup.freeze") == "0", timeout=1, what="thaw")
        # Events keep coming: memory.high climbs one step at a time, never
        # past memory.max, and there is no second freeze within the interval.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and self.limits()[1] < max0:
            self.cg.memory_high_event()
            time.sleep(0.03)
        max1, high1 = self.limits()
        self.assertEqual(max1, max0)
        self.assertEqual(high1, max0, "raised up to memory.max and no further")
        for _ in range(5):
            self.cg.memory_high_event()
            time.sleep(0.03)
        self.assertEqual(self.limits()[1], max0)
        m = d.metrics()
        self.assertEqual(m["vm_informant_freezes_total"], 1)
        self.assertGreaterEqual(m["vm_informant_memory_high_raises_total"], 10)
        self.assertGreaterEqual(agent.state()["tryUpscales"], 1)

    def test_wish_remembered_for_the_next_agent(self):
        d = self.start_daemon(cgroup={"max_upscale_wait": "5ms"})
        self.cg.memory_high_event()
        wait_until(lambda: d.metric("vm_informant_freezes_total") >= 1, what="a freeze")
        wait_until(lambda: self.cg.read("cgroup.freeze") == "0", timeout=1, what="thaw")
        agent = self.start_agent(d)
        wait_until(lambda: agent.state()["tryUpscales"] >= 1, timeout=5,
                   what="the remembered wish sent to the new agent")
        wait_until(lambda: agent.state()["upscalesOk"] >= 1, what="the upscale")

    def test_predictive_upscale_before_memory_high(self):
        d = self.start_daemon(predict={"enabled": "true", "horizon": "2s",
                                       "min_interval": "1s"})
        agent = self.start_agent(d, "--ignore-try-upscale")
        _, high = self.limits()
        stop = threading.Event()

        def grow():  # 40 MiB every 50 ms: 800 MiB/s, starting 1.5 GiB below
            current = high - 1536 * MiB
            while not stop.is_set() and current < high - 10 * MiB:
                self.cg.set_current(current)
                current += 40 * MiB
                time.sleep(0.05)

        t = threading.Thread(target=grow)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(stop.set)
        wait_until(lambda: agent.state()["tryUpscales"] >= 1, timeout=5,
                   what="a predictive /try-upscale")
        self.assertLess(self.cg.read_int("memory.current"), high)
        m = d.metrics()
        self.assertEqual(m.get("vm_informant_memory_high_events_total", 0), 0)
        self.assertGreaterEqual(m["vm_informant_upscale_requests_predicted_total"], 1)

    def test_sigterm_while_frozen_leaves_it_thawed(self):
        d = self.start_daemon(cgroup={"max_upscale_wait": "1s"})
        self.start_agent(d, "--ignore-try-upscale")
        self.cg.memory_high_event()
        wait_until(lambda: self.cg.frozen(), timeout=2, what="the freeze")
        self.assertEqual(d.stop(signal.SIGTERM), 0)
        self.assertEqual(self.cg.read("cgroup.freeze"), "0")

    def test_supervisor_thaws_and_restarts_after_sigkill(self):
        d = self.start_daemon(cgroup={"max_upscale_wait": "1s"},
                              supervisor={"auto_restart": "true",
                                          "min_restart_interval": "500ms"})
        child = wait_until(lambda: child_pid(d.proc.pid), what="the supervised child")
        self.start_agent(d, "--ignore-try-upscale")
        self.cg.memory_high_event()
        wait_until(lambda: self.cg.frozen(), timeout=2, what="the freeze")
        os.kill(child, signal.SIGKILL)
        t0 = time.monotonic()
        wait_until(lambda: not self.cg.frozen(), timeout=1, what="the supervisor's thaw")
        self.assertLess(time.monotonic() - t0, 0.5)
        wait_until(lambda: child_pid(d.proc.pid) not in (None, child), timeout=5,
                   what="a new child")
        wait_until(d.serving, timeout=5, what="the new child serving")
        self.assertEqual(d.request("GET", "/status")[0], 200)
        self.assertEqual(d.stop(signal.SIGTERM), 0)
        self.assertEqual(self.cg.read("cgroup.freeze"), "0")


if __name__ == "__main__":
    unittest.main(verbosity=2)
