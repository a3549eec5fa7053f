# SPDX-License-Identifier: Apache-2.0
"""Helpers for the integration tests: a directory imitating cgroupfs, a
meminfo file, a throw-away Postgres, the real daemon and agent-sim.

Python 3 standard library only.  Every wait is bounded; every process and
directory is cleaned up by the owning object's stop()/close(), which the
tests call from unittest's addCleanup so a failing test still cleans up.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = os.environ.get("VMI_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
TESTS = os.environ.get("VMI_TESTS_DIR", os.path.join(os.path.dirname(__file__), ".."))
DAEMON = os.path.join(BUILD, "informant", "vm-informant")
AGENT_SIM = os.path.join(BUILD, "agent-proto", "agent-sim")
PG_CLUSTER = os.path.join(TESTS, "lib", "pg-cluster.sh")

MiB = 1 << 20
GiB = 1 << 30
SKIP = 77  # meson's "skipped" exit status


def wait_until(predicate, timeout=5.0, interval=0.01, what="condition"):
    """Poll predicate() until it returns a truthy value; raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def fd_count(pid):
    """How many file descriptors process pid has open now."""
    return len(os.listdir("/proc/%d/fd" % pid))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rewrite_in_place(path, text):
    """Rewrite a file without replacing its inode (readers keep it open);
    created when it does not exist yet."""
    with open(path, "r+b" if os.path.exists(path) else "w+b") as f:
        data = text.encode()
        f.write(data)
        f.truncate(len(data))


class FakeCgroup:
    """A plain directory holding the files of a cgroup v2 memory cgroup."""

    def __init__(self, root, name="neon-postgres"):
        self.root = root
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.events = {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0}
        for fname, text in (("memory.current", "0\n"), ("memory.high", "max\n"),
                            ("memory.max", "max\n"), ("cgroup.freeze", "0\n"),
                            ("cgroup.events", "populated 1\nfrozen 0\n")):
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(text)
        with open(os.path.join(self.dir, "memory.events"), "w") as f:
            f.write(self._events_text())

    def _events_text(self):
        return "".join("%s %d\n" % kv for kv in self.events.items())

    def read(self, fname):
        with open(os.path.join(self.dir, fname)) as f:
            return f.read().strip()

    def read_int(self, fname):
        """The value, None for "max".  A read that caught the daemon between
        truncating and writing the plain file (cgroupfs is atomic) is read
        again; None if it stays empty."""
        for _ in range(100):
            v = self.read(fname)
            if v:
                break
            time.sleep(0.001)
        return None if v in ("max", "") else int(v)

    def write(self, fname, text):
        rewrite_in_place(os.path.join(self.dir, fname), text)

    def set_current(self, nbytes):
        self.write("memory.current", "%d\n" % nbytes)

    def memory_high_event(self, count=1, at_high=True):
        """The kernel counts an event when usage reaches memory.high: with
        at_high, memory.current is raised to memory.high first (when it is
        below); without, the event comes as page cache would make it."""
        if at_high:
            try:
                high, current = self.read_int("memory.high"), self.read_int("memory.current")
                if high is not None and current is not None and 0 <= current < high:
                    self.set_current(high)
            except (ValueError, OSError):
                pass  # a test broke one of them on purpose: the event alone
        self.events["high"] += count
        self.write("memory.events", self._events_text())

    def frozen(self):
        return self.read("cgroup.freeze") == "1"


class Meminfo:
    """A /proc/meminfo-format file whose MemTotal the test (or agent-sim) sets."""

    def __init__(self, path, total_bytes):
        self.path = path
        with open(path, "w") as f:
            f.write(self._text(total_bytes))

    @staticmethod
    def _text(total):
        kb = total // 1024
        return ("MemTotal:       %8d kB\nMemFree:        %8d kB\n"
                "MemAvailable:   %8d kB\nBuffers:               0 kB\n"
                "Cached:                0 kB\n" % (kb, kb * 3 // 4, kb * 3 // 4))

    def set_total(self, total_bytes):
        rewrite_in_place(self.path, self._text(total_bytes))

    def total(self):
        with open(self.path) as f:
            m = re.search(r"^MemTotal:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) * 1024


class PgCluster:
    """A throw-away Postgres started by tests/lib/pg-cluster.sh."""

    def __init__(self, workdir, extra_conf=()):
        self.dir = os.path.join(workdir, "pg")
        r = subprocess.run([PG_CLUSTER, "start", self.dir] + list(extra_conf),
                           capture_output=True, text=True, timeout=120)
        if r.returncode == SKIP:
            raise unittest_skip("Postgres not available: " + r.stderr.strip())
        if r.returncode != 0:
            raise RuntimeError("pg-cluster.sh start failed: " + r.stderr)
        self.connstr = r.stdout.strip().splitlines()[-1]

    def psql(self, sql):
        """Run one statement through psql (as a separate client)."""
        r = subprocess.run(["psql", "-XAtq", "-d", self.connstr, "-c", sql],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("psql failed: " + r.stderr)
        return r.stdout.strip()

    def setting(self, name):
        return self.psql("SELECT current_setting('%s')" % name)

    def pause(self):
        subprocess.run([PG_CLUSTER, "pause", self.dir], check=True, timeout=60,
                       capture_output=True)

    def resume(self):
        subprocess.run([PG_CLUSTER, "resume", self.dir], check=True, timeout=60,
                       capture_output=True)

    def postmaster_signal(self, sig):
        """SIGSTOP makes Postgres hang (connections wait); SIGCONT resumes."""
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            os.kill(int(f.readline()), sig)

    def stop(self):
        subprocess.run([PG_CLUSTER, "stop", self.dir], timeout=60, capture_output=True)


def unittest_skip(msg):
    return unittest.SkipTest(msg)


def http_request(port, method, path, body=None, headers=None, timeout=5.0):
    """One HTTP exchange; returns (status, headers dict (lowercase), body str)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body.encode() if isinstance(body, str) else body
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


class KeepAlive:
    """One keep-alive HTTP/1.1 connection on a raw socket: many small
    exchanges quickly (http.client costs more per request than the daemon)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def _read_more(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.buf += data

    def exchange(self, method, path, body=""):
        """Send one request, return (status, body str); needs Content-Length."""
        data = body.encode() if isinstance(body, str) else body
        self.sock.sendall(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
                          % (method.encode(), path.encode(), len(data), data))
        while b"\r\n\r\n" not in self.buf:
            self._read_more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(self.buf) < length:
            self._read_more()
        text, self.buf = self.buf[:length], self.buf[length:]
        return int(lines[0].split()[1]), text.decode()

    def close(self):
        self.sock.close()


def child_pid(parent):
    """The first child of a process (the supervised daemon), or None."""
    try:
        with open("/proc/%d/task/%d/children" % (parent, parent)) as f:
            pids = f.read().split()
    except OSError:
        return None
    return int(pids[0]) if pids else None


def proc_fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1))


def proc_has_asan(pid):
    """True if the process runs with AddressSanitizer (RSS means little then)."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def parse_metrics(text):
    """Prometheus text to {'name{labels}': float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError("duplicate keys %s" % dup)
    return dict(pairs)


def check_unique_log_keys(text):
    """Raise AssertionError naming the first JSON log line with a key twice."""
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            json.loads(line, object_pairs_hook=_no_duplicates)
        except ValueError as e:
            if "duplicate keys" in str(e):
                raise AssertionError("log line with %s: %s" % (e, line))


class Daemon:
    """The real vm-informant with a generated config file."""

    def __init__(self, workdir, sections, args=(), supervised=False, env=None, wrapper=(),
                 start_timeout=10):
        self.workdir = workdir
        self.port = free_port()
        sections = {k: dict(v) for k, v in sections.items()}
        sections.setdefault("server", {}).setdefault("listen", "127.0.0.1:%d" % self.port)
        sections.setdefault("log", {}).setdefault("level", "debug")
        self.config_path = os.path.join(workdir, "vm-informant.conf")
        with open(self.config_path, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
        self.log_path = os.path.join(workdir, "daemon.log")
        self.log = open(self.log_path, "w")
        # wrapper: a command prefix such as valgrind.
        cmd = list(wrapper) + [DAEMON, "--config", self.config_path] + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(self.serving, timeout=start_timeout,
                       what="daemon to serve on %d" % self.port)
        except AssertionError:
            text = self.logs()  # before stop() closes the log
            self.stop()
            raise AssertionError("daemon did not start; log:\n" + text)

    def serving(self):
        if self.proc.poll() is not None:
            raise AssertionError("daemon exited with %s; log:\n%s" % (self.proc.returncode,
                                                                     self.logs()))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, timeout=5.0):
        return http_request(self.port, method, path, body, headers, timeout)

    def keepalive(self):
        return KeepAlive(self.port)

    def metrics(self):
        status, _, body = self.request("GET", "/metrics")
        assert status == 200, (status, body)
        return parse_metrics(body)

    def metric(self, name, default=0.0):
        return self.metrics().get(name, default)

    def status(self):
        status, _, body = self.request("GET", "/status")
        assert status == 200, (status, body)
        return json.loads(body)

    def logs(self):
        if not self.log.closed:  # also readable after stop()
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def log_records(self):
        recs = []
        for line in self.logs().splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
        return recs

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal the daemon and return its exit status.  Every JSON log
        line must be one object with unique keys (a duplicate makes JSON
        consumers read one of the two, e.g. a "level" that is not the
        severity)."""
        first_stop = not self.log.closed
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if first_stop:
            check_unique_log_keys(self.logs())
        return self.proc.returncode


class AgentSim:
    """build/agent-proto/agent-sim registered with a daemon on loopback,
    speaking protocol "informant" (HTTP; the default here, as most tests
    exercise it) or "monitor" (the websocket protocol of current agents)."""

    def __init__(self, workdir, informant_port, args=(), name="agent", protocol="informant"):
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.log = open(self.log_path, "w")
        self.protocol = protocol
        cmd = [AGENT_SIM, "--protocol", protocol, "--informant", "127.0.0.1:%d" % informant_port,
               "--listen", "127.0.0.1:0"] + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.addr = wait_until(self._listen_addr, timeout=10, what="agent-sim address")
        self.port = int(self.addr.rsplit(":", 1)[1])

    def _listen_addr(self):
        if self.proc.poll() is not None:
            raise AssertionError("agent-sim exited: " + self.logs())
        m = re.search(r"(127\.0\.0\.1:\d+)", self.logs())
        return m.group(1) if m and not m.group(1).endswith(":0") else None

    def logs(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def state(self):
        status, _, body = http_request(self.port, "GET", "/sim/state")
        assert status == 200, (status, body)
        return json.loads(body)

    def control(self, path):
        return http_request(self.port, "POST", path, body="", timeout=10)

    def wait_running(self, timeout=10):
        return wait_until(lambda: self.state().get("running"), timeout=timeout,
                          what="agent-sim to be resumed")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class DaemonTestCase(unittest.TestCase):
    """Per test: a work dir, a FakeCgroup and a Meminfo of MEM_TOTAL;
    start_daemon() and start_agent() are cleaned up after the test.
    PROTOCOL is the agent-sim protocol start_agent() uses."""
    MEM_TOTAL = 4 * GiB
    PROTOCOL = "informant"

    def setUp(self):
        self.work = Workdir()
        self.addCleanup(self.work.close)
        self.cg = FakeCgroup(os.path.join(self.work.path, "cgroup"))
        self.meminfo = Meminfo(os.path.join(self.work.path, "meminfo"), self.MEM_TOTAL)

    def start_daemon(self, env=None, **sections):
        """The daemon on the fake cgroup and meminfo; each keyword is a config
        section whose keys are added to (or override) these defaults; env,
        when given, is the daemon's whole environment."""
        config = {
            "cgroup": {"enabled": "true", "root": self.cg.root, "name": self.cg.name},
            "system": {"meminfo": self.meminfo.path},
            "agent": {"id_check_interval": "1s"},
            "predict": {"enabled": "false"},
            "sampler": {"interval": "20ms"},
        }
        for name, keys in sections.items():
            config.setdefault(name, {}).update(keys or {})
        d = Daemon(self.work.path, config, env=env)
        self.addCleanup(d.stop)
        return d

    def start_agent(self, daemon, *args, name="agent"):
        """agent-sim growing our meminfo, health-checking every 500 ms, resumed."""
        a = AgentSim(self.work.path, daemon.port,
                     ["--meminfo", self.meminfo.path, "--health-interval", "500"] + list(args),
                     name=name, protocol=self.PROTOCOL)
        self.addCleanup(a.stop)
        a.wait_running()
        return a

    def limits(self):
        return self.cg.read_int("memory.max"), self.cg.read_int("memory.high")


class Workdir:
    """A temp dir removed at close (kept with VMI_KEEP_TMP=1 for debugging)."""

    def __init__(self, prefix="vmi-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o755)

    def close(self):
        if os.environ.get("VMI_KEEP_TMP") == "1":
            sys.stderr.write("kept %s\n" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)
