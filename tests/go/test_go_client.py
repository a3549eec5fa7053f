#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The monitor protocol against the autoscaler-agent's own websocket
library: tests/go/monitorclient (nhooyr.io/websocket from Debian's
golang-nhooyr-websocket-dev, default dial options) built offline in GOPATH
mode and run against the real daemon.  Skips (77) only when Go or the
library is not installed."""
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from vmi import BUILD, GiB, DaemonTestCase  # noqa: E402

GOCODE = "/usr/share/gocode"


class GoClientTest(DaemonTestCase):
    MEM_TOTAL = 4 * GiB

    @classmethod
    def setUpClass(cls):
        go = shutil.which("go")
        if not go:
            raise unittest.SkipTest("go not installed (Debian: golang-go)")
        if not os.path.isdir(os.path.join(GOCODE, "src", "nhooyr.io", "websocket")):
            raise unittest.SkipTest("nhooyr.io/websocket not installed "
                                    "(Debian: golang-nhooyr-websocket-dev)")
        # GOPATH mode: our package plus Debian's source tree, no network.
        gopath = os.path.join(BUILD, "go")
        src = os.path.join(gopath, "src", "monitorclient")
        os.makedirs(src, exist_ok=True)
        shutil.copy(os.path.join(HERE, "monitorclient", "main.go"), src)
        cls.binary = os.path.join(BUILD, "go", "monitorclient")
        env = dict(os.environ, GO111MODULE="off", GOPATH=gopath + ":" + GOCODE,
                   GOCACHE=os.path.join(gopath, "cache"), GOFLAGS="", GOPROXY="off")
        r = subprocess.run([go, "build", "-o", cls.binary, "."], cwd=src, env=env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("go build failed:\n" + r.stdout + r.stderr)

    def test_done_when_with_nhooyr_websocket(self):
        d = self.start_daemon()
        r = subprocess.run([self.binary, "-addr", "127.0.0.1:%d" % d.port,
                            "-cgroup", self.cg.dir, "-meminfo", self.meminfo.path],
                           capture_output=True, text=True, timeout=60)
        sys.stdout.write(r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.logs()[-3000:])
        self.assertIn("monitorclient: 0 failed", r.stdout)
        # The daemon saw a clean close from the library.
        self.assertIn("code_received=1000", d.logs().replace('"code_received":1000',
                                                            "code_received=1000"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
