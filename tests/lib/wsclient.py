# SPDX-License-Identifier: Apache-2.0
"""A small RFC 6455 client for tests: the opening handshake, frames built
byte by byte (so tests can also send what a correct client never would:
unmasked frames, fragments, oversized messages), and reading frames back.

Python 3 standard library only.  Every read is bounded by a timeout.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    def __init__(self, status, head):
        super().__init__("websocket handshake answered %s" % status)
        self.status = status
        self.head = head


class Closed(Exception):
    """The server closed: code (None: no close frame, just the TCP end)."""

    def __init__(self, code, reason):
        super().__init__("closed with %s %r" % (code, reason))
        self.code = code
        self.reason = reason


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One frame's bytes; length overrides the announced payload length."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 1 << 16:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WSClient:
    def __init__(self, port, path="/monitor", headers=None, timeout=5.0, host="127.0.0.1",
                 deflate=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Host": "%s:%d" % (host, port), "Upgrade": "websocket",
                "Connection": "Upgrade", "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13"}
        if deflate:  # what nhooyr.io/websocket offers by default
            hdrs["Sec-WebSocket-Extensions"] = "permessage-deflate; client_max_window_bits"
        hdrs.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path + "".join(
            "%s: %s\r\n" % kv for kv in hdrs.items() if kv[1] is not None) + "\r\n"
        self.sock.sendall(req.encode())
        head = self._read_head()
        status = int(head.split(b" ", 2)[1])
        self.headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if status != 101:
            self.sock.close()
            raise HandshakeError(status, head.decode("latin-1"))
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            raise AssertionError("bad Sec-WebSocket-Accept: %r" % self.headers)

    def _read_head(self):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("nothing from the server in time")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise Closed(None, "")
        self.buf += data

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # ---- sending ----------------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, opcode, payload=b"", **kw):
        self.sock.sendall(frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send(TEXT, text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj, separators=(",", ":")))

    def close(self, code=1000, reason=""):
        self.send(CLOSE, struct.pack("!H", code) + reason.encode())

    # ---- receiving --------------------------------------------------------------

    def recv_frame(self, timeout=None):
        """(fin, opcode, payload); the server's frames must be unmasked."""
        deadline = time.monotonic() + (timeout or self.timeout)
        b0, b1 = self._take(2, deadline)
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n, deadline)

    def recv_message(self, timeout=None):
        """The next data message (opcode, bytes); pongs are returned as
        (PONG, payload); a close frame raises Closed."""
        deadline = time.monotonic() + (timeout or self.timeout)
        parts, first = [], None
        while True:
            fin, op, payload = self.recv_frame(max(deadline - time.monotonic(), 0.001))
            if op == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise Closed(code, payload[2:].decode(errors="replace"))
            if op in (PING, PONG):
                return op, payload
            if first is None:
                first = op
            parts.append(payload)
            if fin:
                return first, b"".join(parts)

    def recv_json(self, timeout=None):
        """The next text message as JSON, skipping pongs."""
        while True:
            op, payload = self.recv_message(timeout)
            if op == TEXT:
                return json.loads(payload)
            if op != PONG:
                raise AssertionError("expected a text message, got opcode %d" % op)

    def expect_close(self, timeout=None):
        """Read until the server's close frame; (code, reason).  code None
        means the connection ended without one."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self.recv_message(max(deadline - time.monotonic(), 0.001))
        except Closed as c:
            return c.code, c.reason
        except (ConnectionResetError, BrokenPipeError):
            return None, "reset"

    def ended(self, timeout=2.0):
        """True once the server has closed the TCP connection."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._fill(deadline)
        except Closed:
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (TimeoutError, socket.timeout):
            return False
        return False

    def shutdown(self):
        try:
            self.sock.close()
        except OSError:
            pass


def monitor_session(port, timeout=5.0, **kw):
    """A client that has completed the monitor handshake (version 1)."""
    c = WSClient(port, timeout=timeout, **kw)
    c.send_json({"min": 1, "max": 1})
    answer = c.recv_json()
    if answer != {"version": 1}:
        raise AssertionError("handshake answered %r" % answer)
    return c
