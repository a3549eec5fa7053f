#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""GET /metrics of the running daemon, as Prometheus and an operator see it:

- `promtool check metrics` (Prometheus's own linter) has nothing to say
  about a live page taken after a freeze, an ask, an upscale and requests
  of several kinds (skipped, with the reason, only without promtool);
- HEAD /metrics answers like GET without the body;
- the frozen and pressure gauges follow the daemon's state, and the
  process_* families hold the daemon's own figures;
- every metric family served is documented in README.md and in
  vm-informant(8).
"""
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vmi import GiB, MiB, DaemonTestCase, http_request, parse_metrics, wait_until  # noqa: E402

SOURCE = os.environ.get("VMI_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def families(text):
    return re.findall(r"^# TYPE (\S+) \S+$", text, re.M)


class TestMetrics(DaemonTestCase):
    def busy_daemon(self):
        """A daemon that has frozen once, asked, been upscaled and served
        requests of several endpoints and statuses."""
        d = self.start_daemon(cgroup={"max_upscale_wait": "50ms", "min_freeze_interval": "0"})
        agent = self.start_agent(d)
        self.cg.memory_high_event()
        wait_until(lambda: d.metric("vm_informant_freezes_total") >= 1, what="a freeze")
        wait_until(lambda: d.metric("vm_informant_frozen") == 0, what="the thaw")
        d.request("PUT", "/upscale", "garbage")
        d.request("GET", "/nowhere")
        d.status()
        return d, agent

    def test_promtool_is_silent(self):
        d, _ = self.busy_daemon()
        status, _, body = d.request("GET", "/metrics")
        self.assertEqual(status, 200)
        for name in ["vm_informant_build_info", "process_cpu_seconds_total",
                     "process_resident_memory_bytes", "process_open_fds",
                     "process_start_time_seconds", "vm_informant_frozen",
                     "vm_informant_pressure_level", "vm_informant_last_freeze_seconds",
                     "vm_informant_downscales_failed_total"]:
            self.assertIn(name, families(body))
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not installed (Debian package prometheus; "
                          "deploy/bootstrap.sh installs it)")
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), "promtool on:\n" + body)

    def test_head_like_get(self):
        d = self.start_daemon()
        status, headers, body = d.request("HEAD", "/metrics")
        self.assertEqual((status, body), (200, ""))
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        status, _, _ = d.request("HEAD", "/status")
        self.assertEqual(status, 200)
        # The protocol's endpoints keep their one method.
        status, _, _ = d.request("HEAD", "/health-check")
        self.assertEqual(status, 405)

    def test_gauges_follow_state(self):
        d = self.start_daemon(cgroup={"max_upscale_wait": "1s", "min_freeze_interval": "0"},
                              predict={"enabled": "true"})
        m = d.metrics()
        self.assertEqual(m["vm_informant_frozen"], 0)
        self.assertEqual(m["vm_informant_pressure_level"], 0)
        self.assertEqual(m['vm_informant_build_info{version="0.1.0"}'], 1)
        self.assertGreater(m["process_resident_memory_bytes"], 1 * MiB)
        self.assertGreater(m["process_open_fds"], 5)
        self.assertLess(abs(m["process_start_time_seconds"] - time.time()), 60)
        self.cg.memory_high_event()
        wait_until(lambda: d.metric("vm_informant_frozen") == 1, what="frozen gauge 1")
        wait_until(lambda: d.metric("vm_informant_frozen") == 0, timeout=3,
                   what="frozen gauge 0 after max_upscale_wait")
        # Usage at 95 % of memory.high: critical.
        high = self.cg.read_int("memory.high")
        self.cg.set_current(int(high * 0.95))
        wait_until(lambda: d.metric("vm_informant_pressure_level") == 2, what="critical")
        self.cg.set_current(int(high * 0.5))
        wait_until(lambda: d.metric("vm_informant_pressure_level") == 0, what="normal")

    def test_status_numbers_without_float_noise(self):
        d = self.start_daemon()
        time.sleep(0.3)
        for _ in range(20):  # many uptimes: one of them would show noise
            _, _, body = d.request("GET", "/status")
            self.assertIsNone(re.search(r"\d\.\d{10,}", body), body)
            time.sleep(0.011)

    def test_every_family_documented(self):
        d = self.start_daemon()
        _, _, body = d.request("GET", "/metrics")
        with open(os.path.join(SOURCE, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        with open(os.path.join(SOURCE, "deploy", "vm-informant.8"), encoding="utf-8") as f:
            man = f.read().replace("\\-", "-").replace("\\_", "_")
        # Families with no samples yet (labelled ones) are announced too.
        for name in families(body):
            self.assertTrue("`%s" % name in readme, "README.md's Metrics table lists " + name)
            self.assertTrue(name in man, "vm-informant(8) lists " + name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
