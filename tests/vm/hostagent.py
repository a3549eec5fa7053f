# SPDX-License-Identifier: Apache-2.0
"""hostagent — the host side of the real-VM test and demo, playing the
autoscaler-agent (protocol v2.0, docs/informant-protocol.md §5–§7):

- serves GET /id, POST /resume, /suspend, /try-upscale on 127.0.0.1 (the
  guest reaches it as 10.0.2.2), answering AgentMessage bodies with one
  sequence counter; every call is recorded, /try-upscale calls that name
  this agent are also queued for the caller, who decides how to grow the VM;
- calls the informant's /register, /health-check, /upscale, /downscale,
  /unregister through the port QEMU forwards.

Python 3 standard library only.  Every request has a timeout.
"""
import http.client
import http.server
import json
import queue
import threading
import time
import uuid

MIB = 1024 * 1024


def quantity(nbytes):
    """Binary-SI canonical Kubernetes quantity, as the reference agent sends."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = 1024 ** ("KMGTPE".index(suffix[0]) + 1)
        if nbytes >= unit and nbytes % unit == 0:
            return f"{nbytes // unit}{suffix}"
    return str(nbytes)


def http_request(addr, method, path, body, timeout=10.0):
    """(status, decoded JSON body or text) of one request to addr (host, port)."""
    conn = http.client.HTTPConnection(*addr, timeout=timeout)
    try:
        conn.request(method, path, body=json.dumps(body, separators=(",", ":")))
        resp = conn.getresponse()
        data = resp.read().decode(errors="replace")
    finally:
        conn.close()
    if resp.status == 200:
        try:
            return resp.status, json.loads(data)
        except ValueError:
            pass
    return resp.status, data


class Call:
    def __init__(self, method, path, body):
        self.method, self.path, self.body = method, path, body
        self.t = time.monotonic()


class HostAgent:
    def __init__(self, informant_port, informant_host="127.0.0.1", advertise_host="10.0.2.2"):
        self.id = str(uuid.uuid4())
        self.informant = (informant_host, informant_port)
        self.calls, self.try_upscales = [], queue.Queue()
        self._seq, self._lock = 0, threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.advertise = f"{advertise_host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def next_seq(self):
        with self._lock:
            self._seq += 1
            return self._seq

    def calls_to(self, path):
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def _record(self, call):
        with self._lock:
            self.calls.append(call)

    # ---- requests to the informant ----------------------------------------

    def request(self, method, path, body, timeout=10.0):
        return http_request(self.informant, method, path, body, timeout)

    def desc(self):
        return {"agentID": self.id, "agentServeAddr": self.advertise,
                "minProtoVersion": 1, "maxProtoVersion": 4}

    def register(self):
        return self.request("POST", "/register", self.desc())

    def unregister(self):
        return self.request("DELETE", "/unregister", self.desc())

    def health_check(self):
        return self.request("PUT", "/health-check", {"agentID": self.id})

    def _resources(self, nbytes, cpu="1"):
        return {"data": {"cpu": cpu, "memory": quantity(nbytes), "id": {"agentID": self.id}},
                "sequenceNumber": self.next_seq()}

    def upscale(self, nbytes):
        return self.request("PUT", "/upscale", self._resources(nbytes))

    def downscale(self, nbytes):
        return self.request("PUT", "/downscale", self._resources(nbytes))


def _handler(agent):
    expects_id = {"/resume", "/suspend", "/try-upscale"}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _reply(self, status, body):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method, path):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 65536)) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            call = Call(method, self.path, body)
            agent._record(call)
            if self.path != path or body is None:
                return self._reply(400, "bad JSON")
            if path in expects_id and body.get("expectedID") != agent.id:
                return self._reply(404, f'AgentID "{body.get("expectedID")}" not found')
            msg = {"data": {"agentID": agent.id}, "sequenceNumber": agent.next_seq()}
            self._reply(200, json.dumps(msg, separators=(",", ":")))
            if path == "/try-upscale":
                agent.try_upscales.put(call)

        def do_GET(self):
            if self.path != "/id":
                return self._reply(405, "request method must be POST")
            self._serve("GET", "/id")

        def do_POST(self):
            if self.path not in expects_id:
                return self._reply(404 if self.path != "/id" else 405, "404 page not found\n")
            self._serve("POST", self.path)

    return Handler
