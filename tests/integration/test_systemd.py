#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The daemon as systemd and journald see it.

- sd_notify: the test binds the AF_UNIX datagram socket it names in
  NOTIFY_SOCKET (what systemd does for Type=notify) and reads READY=1 once
  the daemon serves and has written the cgroup limits, WATCHDOG=1 at half
  of WATCHDOG_USEC, no WATCHDOG=1 while the process is stopped (a stuck
  loop must let systemd's watchdog fire), RELOADING=1 then READY=1 around
  SIGHUP (also a failed reload), STOPPING=1 on SIGTERM;
- journald: with JOURNAL_STREAM naming the daemon's stderr every line
  starts with its syslog priority; naming another file, nothing changes;
  a config error gets "<3>" too.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vmi import DAEMON, GiB, DaemonTestCase, wait_until  # noqa: E402

WATCHDOG_USEC = 200000  # pings every 100 ms


class NotifySocket:
    """A bound AF_UNIX datagram socket collecting sd_notify messages."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []  # (monotonic time, {key: value})
        self.cursor = 0     # wait_for() looks at messages from here on

    def drain(self, seconds):
        """Collect messages for this long; returns those that arrived."""
        got = []
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return got
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                return got
            fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
            got.append((time.monotonic(), fields))
            self.messages.append(got[-1])

    def wait_for(self, key, timeout=5.0):
        """The next message (after the last one wait_for returned) with key."""
        end = time.monotonic() + timeout
        while True:
            for i in range(self.cursor, len(self.messages)):
                if key in self.messages[i][1]:
                    self.cursor = i + 1
                    return self.messages[i][1]
            if time.monotonic() >= end:
                break
            self.drain(min(0.1, max(0.0, end - time.monotonic())))
        raise AssertionError("no %s within %.1f s; got %s" % (key, timeout, self.messages))

    def close(self):
        self.sock.close()


def pings(msgs):
    return [t for t, m in msgs if m.get("WATCHDOG") == "1"]


class TestNotify(DaemonTestCase):
    def start_notified(self, watchdog=True):
        self.notify = NotifySocket(os.path.join(self.work.path, "notify.sock"))
        self.addCleanup(self.notify.close)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        if watchdog:
            env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        return self.start_daemon(env=env)

    def test_ready_after_limits_then_watchdog_reload_stop(self):
        d = self.start_notified()
        ready = self.notify.wait_for("READY")
        self.assertEqual(ready["READY"], "1")
        self.assertIn("STATUS", ready)
        # READY=1 promises the limits are written: they are there now.
        mx, high = self.limits()
        self.assertGreater(mx, 0)
        self.assertGreater(high, 0)

        got = pings(self.notify.drain(1.0))
        self.assertGreaterEqual(len(got), 7, "a ping every 100 ms: %s" % got)
        gaps = [b - a for a, b in zip(got, got[1:])]
        self.assertLess(max(gaps), 0.2, "pings at least every half period: %s" % gaps)

        # A failing reload still ends with READY=1 (the old settings run on).
        with open(d.config_path, "a") as f:
            f.write("[server]\nno_such_key = 1\n")
        d.send_signal(signal.SIGHUP)
        reloading = self.notify.wait_for("RELOADING")
        self.assertIn("MONOTONIC_USEC", reloading)
        self.notify.wait_for("READY")
        wait_until(lambda: "reload failed" in d.logs(), what="the failed reload logged")

        self.assertEqual(d.stop(), 0)
        msgs = self.notify.drain(0.5)
        self.assertTrue(any(m.get("STOPPING") == "1" for _, m in self.notify.messages),
                        "STOPPING=1 at shutdown: %s" % msgs)

    def test_stuck_loop_stops_the_pings(self):
        d = self.start_notified()
        self.notify.wait_for("READY")
        self.assertGreaterEqual(len(pings(self.notify.drain(0.5))), 3)
        # The loop cannot turn while the process is stopped: no pings, so
        # systemd's watchdog (WatchdogSec=) would fire.
        d.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.05)  # a ping already in the socket's queue
            self.notify.drain(0.05)
            self.assertEqual(pings(self.notify.drain(0.6)), [],
                             "no watchdog ping from a stopped loop")
        finally:
            d.send_signal(signal.SIGCONT)
        self.assertGreaterEqual(len(pings(self.notify.drain(0.5))), 2, "pings resume")

    def test_without_watchdog_no_pings(self):
        self.start_notified(watchdog=False)
        self.notify.wait_for("READY")
        self.assertEqual(pings(self.notify.drain(0.5)), [])


class TestJournalStream(DaemonTestCase):
    def stream_env(self, path):
        st = os.stat(path)
        return dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))

    def test_priority_prefixes_on_the_journal_stream(self):
        # The daemon's stderr is daemon.log (opened "w": the inode stays).
        log = os.path.join(self.work.path, "daemon.log")
        open(log, "w").close()
        d = self.start_daemon(env=self.stream_env(log), log={"level": "debug"})
        d.request("PUT", "/upscale", "not json")  # an info line "bad request body"
        d.send_signal(signal.SIGHUP)              # a reload: info
        wait_until(lambda: "configuration reloaded" in d.logs(), what="reload logged")
        with open(d.config_path, "a") as f:
            f.write("[cgroup]\nname = other\n")    # a restart-only key: warn
        d.send_signal(signal.SIGHUP)
        wait_until(lambda: "takes effect after a restart" in d.logs(), what="warn line")
        self.assertEqual(d.stop(), 0)
        lines = [l for l in d.logs().splitlines() if l]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>\{", "every line starts with a priority")
        seen = {line[:3] for line in lines}
        self.assertTrue({"<6>", "<4>"} <= seen, seen)
        for line in lines:
            level = line.split('"level":"', 1)[1].split('"', 1)[0]
            want = {"debug": "<7>", "info": "<6>", "warn": "<4>", "error": "<3>"}[level]
            self.assertEqual(line[:3], want, line)

    def test_other_stream_no_prefix(self):
        other = os.path.join(self.work.path, "elsewhere")
        open(other, "w").close()
        d = self.start_daemon(env=self.stream_env(other))
        self.assertEqual(d.stop(), 0)
        for line in d.logs().splitlines():
            self.assertTrue(line.startswith("{"), line)

    def test_config_error_prefixed(self):
        bad = os.path.join(self.work.path, "bad.conf")
        with open(bad, "w") as f:
            f.write("[server]\nlisten = nowhere\n")
        errpath = os.path.join(self.work.path, "stderr")
        with open(errpath, "w") as err:
            r = subprocess.run([DAEMON, "--config", bad], stderr=err, timeout=10,
                               env=self.stream_env(errpath))
        self.assertEqual(r.returncode, 2)
        with open(errpath) as f:
            text = f.read()
        self.assertTrue(text.startswith("<3>vm-informant: %s:2: [server] listen" % bad), text)
        # Without the stream the same message is plain.
        r = subprocess.run([DAEMON, "--config", bad], capture_output=True, text=True,
                           timeout=10)
        self.assertTrue(r.stderr.startswith("vm-informant: "), r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
