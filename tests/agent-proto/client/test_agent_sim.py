#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""agent-sim against a fake informant written here: registration, health
checks, the agent endpoints' answers, try-upscale -> meminfo grown in place
(same inode, before the PUT /upscale) -> exact /upscale body, downscale
proposals via /sim/downscale, re-registration with a new ID after a 404
health check, DELETE /unregister and exit 0 on SIGTERM, and --duration."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AGENT_ID = "0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30"
OTHER_ID = "b2d94e07-31c8-4f5a-8e2b-6c0f9a7d1e54"
GIB_KB = 1024 * 1024
MEMINFO = ("MemTotal:        1048576 kB\n"
           "MemFree:          524288 kB\n"
           "MemAvailable:     786432 kB\n"
           "Buffers:            1000 kB\n")


class Informant:
    """Records every request; answers like the reference informant."""

    def __init__(self, meminfo_path):
        self.lock = threading.Lock()
        self.requests = []
        self.health_status = 200
        self.downscale_reply = {"Ok": True, "Status": "Set cgroup memory.high to 1848 MiB"}
        self.meminfo_path = meminfo_path
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode()
                snapshot = None
                if self.path == "/upscale":
                    with open(outer.meminfo_path) as f:
                        snapshot = f.read()
                with outer.lock:
                    outer.requests.append((self.command, self.path, body, snapshot))
                    status, reply = outer.answer(self.path)
                data = reply.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path):
        if path == "/register":
            return 200, '{"protoVersion":4,"metricsMethod":{"prometheus":{"port":9100}}}'
        if path == "/health-check":
            if self.health_status == 404:
                return 404, "No Agent with ID x registered"
            return 200, "{}"
        if path == "/upscale":
            return 200, "{}"
        if path == "/downscale":
            return 200, json.dumps(self.downscale_reply, separators=(",", ":"))
        if path == "/unregister":
            return 200, '{"wasActive":true}'
        return 404, "404 page not found\n"

    def of(self, path):
        with self.lock:
            return [r for r in self.requests if r[1] == path]


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def wait_for(pred, what, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    check(False, what + " (timed out)")


def http(addr, method, path, body=None):
    req = urllib.request.Request("http://%s%s" % (addr, path), method=method,
                                 data=None if body is None else body.encode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ident(seq, agent=AGENT_ID):
    return '{"data":{"agentID":"%s"},"sequenceNumber":%d}' % (agent, seq)


def expected(agent=AGENT_ID):
    return '{"expectedID":"%s"}' % agent


def kb(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


class Sim:
    def __init__(self, args):
        path = os.path.join(os.environ["VMI_BUILD_DIR"], "agent-proto", "agent-sim")
        self.proc = subprocess.Popen([path, "--json", "--protocol", "informant"] + args,
                                     stdout=subprocess.PIPE, text=True)
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        listening = wait_for(lambda: self.event("listening"), "agent-sim prints its address")
        self.addr = listening["addr"]

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def event(self, name):
        with self.lock:
            return next((e for e in self.events if e["event"] == name), None)

    def count(self, name):
        with self.lock:
            return sum(1 for e in self.events if e["event"] == name)

    def state(self):
        status, body = http(self.addr, "GET", "/sim/state")
        check(status == 200, "GET /sim/state")
        return json.loads(body)

    def wait_exit(self, timeout=5.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def agent_endpoints(sim):
    a = sim.addr
    check(http(a, "GET", "/id", "{}") == (200, ident(1)), "GET /id with {} answers seq 1")
    check(http(a, "GET", "/id") == (400, "bad JSON"), "GET /id without a body: 400 bad JSON")
    check(http(a, "POST", "/id", "{}") == (405, "request method must be GET"), "POST /id: 405")
    check(http(a, "POST", "/try-upscale",
               '{"cpu":false,"memory":true,"expectedID":"%s"}' % AGENT_ID)
          == (400, "Cannot process upscale while suspended"), "try-upscale while suspended")
    check(http(a, "POST", "/suspend", expected())
          == (400, "Cannot suspend agent that is already suspended"), "suspend while suspended")
    check(http(a, "POST", "/resume", expected(OTHER_ID))
          == (404, 'AgentID "%s" not found' % OTHER_ID), "resume with another expectedID: 404")
    check(http(a, "POST", "/resume", "{") == (400, "bad JSON"), "resume with bad JSON: 400")
    check(http(a, "POST", "/resume", expected()) == (200, ident(2)), "resume answers seq 2")
    check(http(a, "POST", "/resume", expected())
          == (400, "Cannot resume agent that is already running"), "resume while running")


def upscales(sim, inf, path, reader):
    inode = os.stat(path).st_ino
    check(http(sim.addr, "POST", "/try-upscale",
               '{"cpu":false,"memory":true,"expectedID":"%s"}' % AGENT_ID)
          == (200, ident(3)), "try-upscale answers at once with seq 3")
    up = wait_for(lambda: inf.of("/upscale"), "PUT /upscale after try-upscale")[0]
    check(up[2] == '{"data":{"cpu":"250m","memory":"2Gi","id":{"agentID":"%s"}},'
                   '"sequenceNumber":4}' % AGENT_ID, "PUT /upscale body is exact")
    check(kb(up[3], "MemTotal") == 2 * GIB_KB, "meminfo grown BEFORE the PUT /upscale")
    check(os.stat(path).st_ino == inode, "meminfo rewritten in place (same inode)")
    text = os.pread(reader, 65536, 0).decode()
    check((kb(text, "MemTotal"), kb(text, "MemFree"), kb(text, "MemAvailable"),
           kb(text, "Buffers")) == (2 * GIB_KB, 524288 + GIB_KB, 786432 + GIB_KB, 1000),
          "an open reader sees MemTotal/MemFree/MemAvailable grown by 1 GiB")
    check(len(text) == len(MEMINFO), "column widths kept")

    http(sim.addr, "POST", "/try-upscale",
         '{"cpu":false,"memory":true,"expectedID":"%s"}' % AGENT_ID)
    wait_for(lambda: len(inf.of("/upscale")) == 2, "second upscale")
    check('"memory":"3Gi"' in inf.of("/upscale")[1][2], "second upscale to --max-memory 3Gi")
    http(sim.addr, "POST", "/try-upscale",
         '{"cpu":false,"memory":true,"expectedID":"%s"}' % AGENT_ID)
    wait_for(lambda: sim.event("upscale-skipped"), "at --max-memory: no upscale, logged")
    check(len(inf.of("/upscale")) == 2, "no third PUT /upscale")


def downscales(sim, inf, reader):
    status, body = http(sim.addr, "POST", "/sim/downscale?memory=2Gi")
    check((status, body) == (200, '{"Ok":true,"Status":"Set cgroup memory.high to 1848 MiB"}'),
          "/sim/downscale relays the informant's DownscaleResult")
    check('"memory":"2Gi"' in inf.of("/downscale")[0][2], "PUT /downscale proposes 2Gi")
    check(kb(os.pread(reader, 65536, 0).decode(), "MemTotal") == 2 * GIB_KB,
          "meminfo shrunk after the accepted downscale")
    inf.downscale_reply = {"Ok": False, "Status": "Calculated memory.high too low"}
    status, body = http(sim.addr, "POST", "/sim/downscale?memory=1Gi")
    check(status == 200 and '"Ok":false' in body, "rejected downscale relayed")
    check(kb(os.pread(reader, 65536, 0).decode(), "MemTotal") == 2 * GIB_KB,
          "meminfo unchanged after a rejected downscale")
    st = sim.state()
    check((st["registered"], st["running"], st["memoryBytes"]) == (True, True, 2 << 30),
          "state: registered, running, 2 GiB")
    check((st["resumes"], st["tryUpscales"], st["upscalesSent"], st["upscalesOk"])
          == (1, 3, 2, 2), "state counters for resume/try-upscale/upscale")
    check((st["downscalesSent"], st["downscalesAccepted"], st["downscalesRejected"],
           st["lastDownscaleStatus"]) == (2, 1, 1, "Calculated memory.high too low"),
          "state counters for downscales")
    check(st["seq"] == 9 and st["healthChecksOk"] >= 2, "one sequence counter; health checks")


def periodic_downscale(inf):
    """--no-register + /sim/register, --ignore-try-upscale, --downscale-every."""
    other = "5a1f0c2e-8b7d-4e3a-9c61-2f4b8d0e7a95"
    inf.downscale_reply = {"Ok": True, "Status": "ok"}
    sim = Sim(["--informant", inf.addr, "--id", other, "--no-register", "--memory", "3Gi",
               "--min-memory", "2Gi", "--downscale-every", "100", "--ignore-try-upscale"])
    try:
        time.sleep(0.2)
        check(not [r for r in inf.of("/register") if other in r[2]], "--no-register waits")
        check(http(sim.addr, "POST", "/sim/register") == (200, '{"registered":true}'),
              "POST /sim/register registers now")
        check(http(sim.addr, "POST", "/resume", expected(other))[0] == 200, "resumed")
        check(http(sim.addr, "POST", "/try-upscale",
                   '{"cpu":false,"memory":true,"expectedID":"%s"}' % other)[0] == 200,
              "--ignore-try-upscale still answers 200")
        mine = lambda: [r for r in inf.of("/downscale") if other in r[2]]
        wait_for(mine, "periodic downscale proposal")
        check('"memory":"2Gi"' in mine()[0][2], "periodic downscale: one step down")
        time.sleep(0.4)
        check(len(mine()) == 1, "no proposal below --min-memory")
        check(not [r for r in inf.of("/upscale") if other in r[2]], "no upscale when ignoring")
        check(http(sim.addr, "POST", "/sim/quit") == (200, '{"quitting":true}'), "/sim/quit")
        check(sim.wait_exit() == 0, "exit 0 after /sim/quit")
    finally:
        if sim.proc.poll() is None:
            sim.proc.kill()


def main():
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "meminfo")
    with open(path, "w") as f:
        f.write(MEMINFO)
    reader = os.open(path, os.O_RDONLY)
    inf = Informant(path)
    sim = Sim(["--informant", inf.addr, "--listen", "127.0.0.1:0", "--id", AGENT_ID,
               "--meminfo", path, "--max-memory", "3Gi", "--cpu", "250m",
               "--upscale-delay", "50", "--health-interval", "100", "--register-retry", "100"])
    try:
        reg = wait_for(lambda: inf.of("/register"), "POST /register")[0]
        check(reg[2] == '{"agentID":"%s","agentServeAddr":"%s","minProtoVersion":1,'
                        '"maxProtoVersion":4}' % (AGENT_ID, sim.addr), "register body is exact")
        wait_for(lambda: sim.event("registered"), "registered event")
        wait_for(lambda: len(inf.of("/health-check")) >= 2, "health checks every 100 ms")
        check(inf.of("/health-check")[0][2] == '{"agentID":"%s"}' % AGENT_ID, "health body")
        agent_endpoints(sim)
        upscales(sim, inf, path, reader)
        downscales(sim, inf, reader)

        inf.health_status = 404
        wait_for(lambda: len(inf.of("/register")) >= 2, "re-registration after a 404")
        new_id = json.loads(inf.of("/register")[1][2])["agentID"]
        check(new_id != AGENT_ID, "re-registered with a new ID")
        check(sim.event("re-registering")["newID"] == new_id, "re-registering event")
        inf.health_status = 200
        wait_for(lambda: sim.state()["registered"], "registered again")
        check(sim.state()["running"] is False, "starts suspended again")

        sim.proc.send_signal(signal.SIGTERM)
        check(sim.wait_exit() == 0, "exit 0 on SIGTERM")
        unreg = inf.of("/unregister")
        check(len(unreg) == 1 and json.loads(unreg[0][2])["agentID"] == new_id,
              "DELETE /unregister with the current ID on the way out")
        periodic_downscale(inf)
    finally:
        if sim.proc.poll() is None:
            sim.proc.kill()
        inf.server.shutdown()
        os.close(reader)

    short = Sim(["--no-register", "--duration", "1"])
    check(short.wait_exit(5.0) == 0 and short.event("duration-over"), "--duration 1 exits 0")


if __name__ == "__main__":
    main()
