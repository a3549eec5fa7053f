# SPDX-License-Identifier: Apache-2.0
"""monitoragent — the host playing a current autoscaler-agent (v0.18.0 and
later): one websocket session to ws://<guest>/monitor through the port
QEMU forwards, the version handshake, then HealthCheck,
UpscaleNotification and DownscaleRequest with even ids, each waiting for
the answer with its id.  The informant's UpscaleRequest messages are
queued for the caller (like HostAgent's /try-upscale calls), so
autoscaler.Autoscaler drives either agent the same way: upscale() and
downscale() answer (status, body) as the HTTP protocol would (200 with {}
or a DownscaleResult, 500 for InternalError).

Python 3 standard library only (tests/lib/wsclient.py); every wait is
bounded.
"""
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from wsclient import TEXT, Closed, monitor_session  # noqa: E402


class Message:
    def __init__(self, body):
        self.body, self.t = body, time.monotonic()


class MonitorAgent:
    def __init__(self, informant_port, informant_host="127.0.0.1", timeout=10.0):
        self.ws = monitor_session(informant_port, timeout=timeout, host=informant_host)
        self.timeout = timeout
        self.try_upscales = queue.Queue()  # UpscaleRequest messages
        self.received = []
        self.closed = None                 # (code, reason) once over
        self._next_id, self._answers = 0, {}
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        import json
        try:
            while True:
                op, payload = self.ws.recv_message(timeout=3600)
                if op != TEXT:
                    continue
                msg = json.loads(payload)
                with self._cond:
                    self.received.append(msg)
                    if msg.get("type") == "UpscaleRequest":
                        self.try_upscales.put(Message(msg))
                    else:
                        self._answers[msg.get("id")] = msg
                    self._cond.notify_all()
        except Closed as c:
            result = (c.code, c.reason)
        except (OSError, ValueError, TimeoutError) as e:
            result = (None, str(e))
        with self._cond:
            self.closed = result
            self._cond.notify_all()

    def request(self, type_, content):
        """Send one message; the answer with its id (a dict), or None."""
        with self._cond:
            self._next_id += 2
            id_ = self._next_id
        with self._send_lock:
            self.ws.send_json({"content": content, "type": type_, "id": id_})
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while id_ not in self._answers and self.closed is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._answers.pop(id_, None)

    @staticmethod
    def _as_http(answer, ok_type):
        if answer is None:
            return 0, "no answer"
        if answer.get("type") == ok_type == "DownscaleResult":
            return 200, {"Ok": answer.get("Ok"), "Status": answer.get("Status")}
        if answer.get("type") == ok_type:
            return 200, {}
        return 500, answer.get("error", str(answer))

    def health_check(self):
        return self._as_http(self.request("HealthCheck", {}), "HealthCheck")

    def upscale(self, nbytes, cpu=1.0):
        return self._as_http(self.request("UpscaleNotification",
                                          {"granted": {"cpu": cpu, "mem": nbytes}}),
                             "UpscaleConfirmation")

    def downscale(self, nbytes, cpu=1.0):
        return self._as_http(self.request("DownscaleRequest",
                                          {"target": {"cpu": cpu, "mem": nbytes}}),
                             "DownscaleResult")

    def close(self, code=1000, reason="host agent done"):
        """The close handshake; returns the informant's (code, reason)."""
        if self.closed is None:
            try:
                with self._send_lock:
                    self.ws.close(code, reason)
            except OSError:
                pass
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while self.closed is None and time.monotonic() < deadline:
                self._cond.wait(0.1)
        self.ws.shutdown()
        return self.closed
