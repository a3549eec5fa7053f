#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Agent sequences that the memory policy used to get wrong, end to end:
the real daemon and agent-sim over loopback, a directory imitating cgroupfs
and a meminfo file.  Each test names its case of the policy issue; each
failed against the daemon before the planner (see the commit that added
this file).

Every JSON log line of every daemon started here is checked for keys that
appear twice (vmi.Daemon.stop)."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vmi import GiB, MiB, AgentSim, DaemonTestCase, FakeCgroup, wait_until  # noqa: E402


class PolicyTest(DaemonTestCase):
    MEM_TOTAL = 4 * GiB

    def agent(self, d, *args, meminfo=True):
        """agent-sim at 4 GiB; without meminfo it never grows MemTotal (the
        /upscale arrives before the hot-plug)."""
        extra = ["--memory", "4Gi", "--health-interval", "500"] + list(args)
        if meminfo:
            extra += ["--meminfo", self.meminfo.path]
        a = AgentSim(self.work.path, d.port, extra)
        self.addCleanup(a.stop)
        a.wait_running()
        return a

    def upscale(self, agent, q):
        status, _, body = agent.control("/sim/upscale?memory=" + q)
        self.assertEqual((status, body), (200, "{}"))

    def test_case1_upscale_during_raise_is_applied(self):
        # As in a real guest, MemTotal is short of the VM size by more
        # than the sys buffer: the limits follow MemTotal.
        self.meminfo.set_total(4 * GiB - 128 * MiB)
        d = self.start_daemon(cgroup={"max_upscale_wait": "5ms", "min_freeze_interval": "60s"})
        a = self.agent(d, "--ignore-try-upscale", meminfo=False)
        self.upscale(a, "4Gi")
        wait_until(lambda: self.limits() == (3968 * MiB, 3868 * MiB), what="limits for 4 GiB")
        # Pressure: memory.high climbs to memory.max.
        self.cg.set_current(3868 * MiB)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.limits()[1] < self.limits()[0]:
            self.cg.memory_high_event()
            time.sleep(0.03)
        raised = self.limits()[1]
        self.assertEqual(raised, self.limits()[0], "raised to memory.max")
        granted = d.metric("vm_informant_upscales_granted_total")
        # The agent grants 5 GiB before the hot-plug reaches MemTotal.
        self.upscale(a, "5Gi")
        st = d.status()["memory"]
        self.assertEqual(st["vm_bytes"], 5 * GiB, "the new size is recorded")
        self.assertEqual(d.metric("vm_informant_upscales_granted_total"), granted + 1)
        self.assertGreaterEqual(self.limits()[1], raised, "the raise stays meanwhile")
        # The memory arrives: the limits are the new size's, OOM buffer back.
        self.meminfo.set_total(5 * GiB - 128 * MiB)
        wait_until(lambda: self.limits() == (4992 * MiB, 4892 * MiB),
                   what="limits for 5 GiB with the OOM buffer")
        st = d.status()["memory"]
        self.assertFalse(st["memory_high_raised"])
        self.assertFalse(st["limits_held"])

    def test_case2_no_asks_at_zero_growth_after_upscale(self):
        d = self.start_daemon(predict={"enabled": "true"})
        a = self.agent(d, "--ignore-try-upscale")
        self.upscale(a, "4Gi")
        wait_until(lambda: self.limits()[1] == 3896 * MiB, what="limits for 4 GiB")
        # Usage at 95 % of memory.high, flat: critical, the daemon asks.
        self.cg.set_current(3896 * MiB * 95 // 100)
        wait_until(lambda: a.state()["tryUpscales"] >= 1, what="an ask at critical usage")
        # A grant that leaves usage at 88 % of the new memory.high.
        self.upscale(a, "4400Mi")
        wait_until(lambda: self.limits()[1] == 4200 * MiB, what="limits for 4400 MiB")
        asks = a.state()["tryUpscales"]
        time.sleep(5)
        self.assertEqual(a.state()["tryUpscales"], asks, "no ask at 88 % with zero growth")
        recs = [r for r in d.log_records() if r.get("msg") == "more memory needed"]
        self.assertTrue(recs, "the asks were logged")
        for r in recs:
            self.assertEqual(r["level"], "info")  # the pressure has its own key
            self.assertIn(r["pressure"], ("normal", "warning", "critical"))
            self.assertNotEqual(r.get("ms_to_high"), 0, "'never' is not written as 0")

    def test_case3_asks_back_off_at_the_agents_maximum(self):
        d = self.start_daemon(predict={"enabled": "true"})
        a = self.agent(d, "--max-memory", "4Gi")
        self.upscale(a, "4Gi")
        wait_until(lambda: self.limits()[1] == 3896 * MiB, what="limits for 4 GiB")
        self.cg.set_current(3896 * MiB * 95 // 100)
        wait_until(lambda: a.state()["tryUpscales"] >= 1, what="the first ask")
        t0 = time.monotonic()
        # Asks at 0, 2 and 6 s; the next at 14 s.  Every 2 s would be 4.
        time.sleep(7.5 - (time.monotonic() - t0))
        self.assertEqual(a.state()["tryUpscales"], 3)
        self.assertIn("at --max-memory", a.logs())

    def test_case6_recreated_cgroup_gets_its_limits_again(self):
        d = self.start_daemon()
        a = self.agent(d)
        self.upscale(a, "4Gi")
        want = (4 * GiB - 100 * MiB, 4 * GiB - 200 * MiB)
        wait_until(lambda: self.limits() == want, what="limits for 4 GiB")
        shutil.rmtree(self.cg.dir)
        time.sleep(0.1)
        self.cg = FakeCgroup(self.cg.root, self.cg.name)  # "max" in both files
        wait_until(lambda: self.limits() == want, timeout=3,
                   what="the limits written into the new directory")
        st = d.status()["memory"]
        self.assertEqual((st["memory_max_bytes"], st["memory_high_bytes"]), want)
        m = d.metrics()
        self.assertEqual((m["vm_informant_memory_max_bytes"],
                          m["vm_informant_memory_high_bytes"]), want)


class PageCacheTest(DaemonTestCase):
    """The page-cache rule and the PSI fallback on a directory imitating
    cgroupfs: memory.stat and memory.pressure are plain files the test
    writes (a real kernel's are exercised by the VM test)."""
    MEM_TOTAL = 4 * GiB

    def stat(self, anon, file, shmem=0):
        self.cg.write("memory.stat", "anon %d\nfile %d\nkernel 0\nshmem %d\n"
                      % (anon, file, shmem))

    def pressure(self, some_us, full_us=0):
        self.cg.write("memory.pressure",
                      "some avg10=0.00 avg60=0.00 avg300=0.00 total=%d\n"
                      "full avg10=0.00 avg60=0.00 avg300=0.00 total=%d\n" % (some_us, full_us))

    def agent(self, d):
        a = AgentSim(self.work.path, d.port, ["--memory", "4Gi", "--health-interval", "500",
                                              "--ignore-try-upscale"])
        self.addCleanup(a.stop)
        a.wait_running()
        status, _, body = a.control("/sim/upscale?memory=4Gi")
        self.assertEqual((status, body), (200, "{}"))
        wait_until(lambda: self.limits()[1] == 3896 * MiB, what="limits for 4 GiB")
        return a

    def test_page_cache_events_freeze_nothing(self):
        self.stat(300 * MiB, 100 * MiB)
        d = self.start_daemon(cgroup={"min_freeze_interval": "0"})
        a = self.agent(d)
        # A scan: the cgroup fills up with page cache; the kernel counts
        # memory.high events as it reclaims it.
        self.stat(300 * MiB, 3596 * MiB)
        self.cg.set_current(3896 * MiB)
        time.sleep(0.1)
        for _ in range(5):
            self.cg.memory_high_event()
            time.sleep(0.05)
        wait_until(lambda: d.metric("vm_informant_memory_high_cache_events_total") >= 5,
                   what="five cache events")
        self.assertEqual(d.metric("vm_informant_freezes_total"), 0)
        self.assertEqual(a.state()["tryUpscales"], 0)
        self.assertEqual(d.metric("vm_informant_workload_bytes"), 300 * MiB)
        st = d.status()["memory"]
        self.assertTrue(st["usage_is_workload"])
        self.assertEqual(st["usage_bytes"], 300 * MiB)
        # The workload itself grows to memory.high: that is pressure.
        self.stat(3800 * MiB, 96 * MiB)
        time.sleep(0.1)
        self.cg.memory_high_event()
        wait_until(lambda: d.metric("vm_informant_freezes_total") >= 1, what="a freeze")
        wait_until(lambda: a.state()["tryUpscales"] >= 1, what="an ask")

    def test_old_rule_on_request(self):
        self.stat(300 * MiB, 3596 * MiB)
        d = self.start_daemon(cgroup={"min_freeze_interval": "0",
                                      "exclude_page_cache": "false"})
        a = self.agent(d)
        self.cg.set_current(3896 * MiB)
        time.sleep(0.1)
        self.cg.memory_high_event()
        wait_until(lambda: d.metric("vm_informant_freezes_total") >= 1, what="a freeze")
        wait_until(lambda: a.state()["tryUpscales"] >= 1, what="an ask")
        self.assertEqual(d.metric("vm_informant_memory_high_cache_events_total"), 0)
        self.assertEqual(d.metric("vm_informant_workload_bytes"), 0)

    def test_psi_readings_without_a_trigger(self):
        # A plain directory takes no PSI trigger: the daemon reads the file
        # once a second; "some" growing 300 ms in a second is a stall.
        self.stat(1000 * MiB, 100 * MiB)
        self.cg.set_current(1100 * MiB)
        self.pressure(0)
        d = self.start_daemon()
        a = self.agent(d)
        self.assertTrue(any(r.get("msg", "").startswith("no PSI trigger")
                            for r in d.log_records()))
        time.sleep(1.2)
        self.assertEqual(a.state()["tryUpscales"], 0)
        t0 = time.monotonic()
        self.pressure(300000, 100000)
        wait_until(lambda: a.state()["tryUpscales"] >= 1, timeout=3, what="an ask after a stall")
        print("stall -> ask: %.2f s" % (time.monotonic() - t0), file=sys.stderr)
        self.assertGreaterEqual(d.metric("vm_informant_memory_stalls_total"), 1)
        self.assertAlmostEqual(d.metric("vm_informant_memory_pressure_some_seconds_total"), 0.3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
