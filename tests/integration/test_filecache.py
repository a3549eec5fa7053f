#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The daemon with a real throw-away Postgres: the file cache is sized at
start, grown on /upscale, shrunk first on /downscale, and Postgres being
down never stops the cgroup from being managed (defect D13).

Exact values come from tests/vectors/memory-limits.json; the cache size is
read back from Postgres itself.
"""
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vmi import (GiB, MiB, AgentSim, Daemon, FakeCgroup, Meminfo, PgCluster,  # noqa: E402
                 Workdir, wait_until)

VECTORS = os.environ.get("VMI_VECTORS_DIR",
                         os.path.join(os.path.dirname(__file__), "..", "vectors"))
SIZE = "neon.file_cache_size_limit"


def rows(event, description_part=""):
    with open(os.path.join(VECTORS, "memory-limits.json")) as f:
        return [r for r in json.load(f) if r["event"] == event and r["cgroupEnabled"]
                and r["fileCacheEnabled"] and description_part in r["description"]]


def pg_max_conf(nbytes):
    return "neon.max_file_cache_size = '%dMB'" % (nbytes // MiB)


class FileCacheTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        self.addCleanup(self.work.close)
        self.cg = FakeCgroup(os.path.join(self.work.path, "cgroup"))

    def start_pg(self, pg_max=1 << 40):
        pg = PgCluster(self.work.path, [pg_max_conf(pg_max), "%s = '0'" % SIZE])
        self.addCleanup(pg.stop)
        return pg

    def start_daemon(self, pg, mem_total):
        self.meminfo = Meminfo(os.path.join(self.work.path, "meminfo"), mem_total)
        d = Daemon(self.work.path, {
            "cgroup": {"enabled": "true", "root": self.cg.root, "name": self.cg.name},
            "filecache": {"enabled": "true", "connstr": pg.connstr,
                          "connect_timeout": "500ms"},
            "system": {"meminfo": self.meminfo.path},
            "sampler": {"interval": "50ms"},
            "predict": {"enabled": "false"},
        })
        self.addCleanup(d.stop)
        return d

    def start_agent(self, daemon, *args):
        agent = AgentSim(self.work.path, daemon.port, ["--meminfo", self.meminfo.path] +
                         list(args))
        self.addCleanup(agent.stop)
        agent.wait_running()
        return agent

    def upscale_to_4gib(self, pg, agent):
        """The agent grows the VM to 4 GiB; cache and limits as the vector."""
        status, _, body = agent.control("/sim/upscale?memory=4Gi")
        self.assertEqual(status, 200, body)
        self.wait_state(pg, rows("upscale", "upscale to 4 GiB, cgroup + file cache")[0])

    def cache_mib(self, pg):
        return int(pg.setting(SIZE))

    def limits(self):
        return self.cg.read_int("memory.max"), self.cg.read_int("memory.high")

    def wait_state(self, pg, row, timeout=10):
        mib = row["expectFileCacheBytes"] // MiB
        wait_until(lambda: self.cache_mib(pg) == mib, timeout=timeout,
                   what="file cache %d MiB (%s)" % (mib, row["description"]))
        wait_until(lambda: self.limits() == (row["expectMemoryMaxBytes"],
                                             row["expectMemoryHighBytes"]),
                   timeout=5, what="limits of " + row["description"])

    def test_startup_upscale_downscale(self):
        start = rows("startup", "max not limiting")[0]
        pg = self.start_pg()
        d = self.start_daemon(pg, start["memTotalBytes"])
        self.wait_state(pg, start)

        agent = self.start_agent(d, "--memory", "2Gi")
        self.upscale_to_4gib(pg, agent)

        down = rows("downscale", "downscale to 2 GiB accepted")[0]
        self.cg.set_current(down["memoryCurrentBytes"])
        status, _, body = agent.control("/sim/downscale?memory=2Gi")
        self.assertEqual(status, 200, body)
        self.assertEqual(body, down["expectResponse"])
        self.assertEqual(self.cache_mib(pg), down["expectFileCacheBytes"] // MiB)
        self.assertEqual(self.limits(), (down["expectMemoryMaxBytes"],
                                         down["expectMemoryHighBytes"]))

        refused = rows("downscale", "rejected")[0]
        self.cg.set_current(refused["memoryCurrentBytes"])
        before = (self.cache_mib(pg), self.limits())
        status, _, body = agent.control("/sim/downscale?memory=2Gi")
        self.assertEqual(body, refused["expectResponse"])
        self.assertEqual((self.cache_mib(pg), self.limits()), before)

    def test_smaller_upscale_shrinks_cache_first_and_never_zeroes_limits(self):
        """A 16 GiB VM restarted, then told "4 GiB" on /upscale: the limits
        must not be computed against the old 12 GiB cache (max would be 0)."""
        pg = self.start_pg()
        d = self.start_daemon(pg, 16 * GiB)
        wait_until(lambda: self.cache_mib(pg) == 12288, timeout=10, what="16 GiB cache")
        self.upscale_to_4gib(pg, self.start_agent(d))
        for rec in d.log_records():
            if rec.get("msg") == "cgroup limits set":
                self.assertGreater(rec["memory_max"], 0, rec)
                self.assertGreater(rec["memory_high"], 0, rec)

    def test_upscale_supersedes_a_downscale_waiting_for_postgres(self):
        pg = self.start_pg()
        start = rows("startup", "max not limiting")[0]
        d = self.start_daemon(pg, start["memTotalBytes"])
        self.wait_state(pg, start)
        agent = self.start_agent(d)
        self.upscale_to_4gib(pg, agent)
        before = self.limits()
        pg.postmaster_signal(signal.SIGSTOP)  # the downscale's cache step hangs
        self.addCleanup(pg.postmaster_signal, signal.SIGCONT)
        answers = {}
        t = threading.Thread(target=lambda: answers.setdefault(
            "down", agent.control("/sim/downscale?memory=2Gi")))
        t.start()
        time.sleep(0.2)
        status, _, body = agent.control("/sim/upscale?memory=5Gi")
        self.assertEqual(status, 200, body)
        # Applied at once (cgroup first), not after Postgres.
        self.assertGreater(self.limits()[0], before[0])
        t.join(10)
        self.assertIn("Superseded", answers["down"][2])
        self.assertIn('"Ok":false', answers["down"][2])
        pg.postmaster_signal(signal.SIGCONT)

    def test_postgres_cap(self):
        row = rows("startup", "capped at 512 MiB")[0]
        pg = self.start_pg(pg_max=row["pgMaxFileCacheBytes"])
        self.start_daemon(pg, row["memTotalBytes"])
        self.wait_state(pg, row)

    def test_postgres_down_at_start_then_back(self):
        row = rows("startup", "max not limiting")[0]
        pg = self.start_pg()
        pg.pause()
        d = self.start_daemon(pg, row["memTotalBytes"])
        # The cgroup is managed at once, with room left for the cache.
        wait_until(lambda: self.limits()[0] is not None, what="limits without Postgres")
        self.assertLessEqual(self.limits()[0], row["expectMemoryMaxBytes"])
        self.assertEqual(d.request("GET", "/status")[0], 200)
        pg.resume()
        self.wait_state(pg, row, timeout=25)  # the retry back-off is at most 10 s
        conns = pg.psql("SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'vm-informant'")
        self.assertLessEqual(int(conns), 1, "at most the one connection in use")


if __name__ == "__main__":
    unittest.main(verbosity=2)
