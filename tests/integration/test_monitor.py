#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The websocket monitor protocol v1.0 end to end: the real vm-informant on
loopback, driven by raw frames (tests/lib/wsclient.py: what a correct
client sends and what it never would) and by agent-sim --protocol monitor.

Covers the upgrade and its refusals, the version handshake, every message
and its answer with exact limits, InvalidMessage for garbage (the session
lives on), RFC 6455 details (masking, fragments, ping, close codes, UTF-8,
the size limit), a second session replacing the first, a close in the
middle of a request, plain HTTP on the same port, and the coexistence of
a monitor session with agents of the HTTP protocol.  MonitorMemoryTest
runs test_memory.py's scenarios with agent-sim on the monitor protocol.
"""
import json
import os
import signal
import socket
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import test_memory  # noqa: E402
from vmi import GiB, MiB, AgentSim, DaemonTestCase, wait_until  # noqa: E402
from wsclient import (BINARY, CONT, PING, PONG, TEXT, Closed, HandshakeError,  # noqa: E402
                      WSClient, frame, monitor_session)

VECTORS = os.environ.get("VMI_VECTORS_DIR", os.path.join(HERE, "..", "vectors"))
SYS_BUFFER = OOM_BUFFER = HIGH_BUFFER = 100 * MiB  # the defaults


def vectors():
    with open(os.path.join(VECTORS, "monitor-messages.json")) as f:
        return json.load(f)


def msg(type_, id_, **content):
    """An agent message as the agent's Go code lays it out."""
    return json.dumps({"content": content, "type": type_, "id": id_}, separators=(",", ":"))


def allocation(mem, cpu=1):
    return {"cpu": cpu, "mem": mem}


class MonitorTest(DaemonTestCase):
    MEM_TOTAL = 4 * GiB

    def setUp(self):
        super().setUp()
        self.d = self.start_daemon()

    def session(self, **kw):
        c = monitor_session(self.d.port, **kw)
        self.addCleanup(c.shutdown)
        return c

    def client(self, **kw):
        c = WSClient(self.d.port, **kw)
        self.addCleanup(c.shutdown)
        return c

    def request(self, c, text):
        c.send_text(text)
        return c.recv_json()

    def alive(self, c, id_=100):
        """The session still answers a HealthCheck."""
        self.assertEqual(self.request(c, msg("HealthCheck", id_)),
                         {"type": "HealthCheck", "id": id_})

    # ---- the upgrade and the handshake ------------------------------------------

    def test_handshake_and_vectors(self):
        v = vectors()
        c = self.client()
        # permessage-deflate was offered (as nhooyr.io/websocket does) and declined.
        self.assertNotIn("sec-websocket-extensions", c.headers)
        self.assertEqual(c.headers.get("upgrade", "").lower(), "websocket")
        c.send_text(v["handshake"]["agentSends"])
        self.assertEqual(c.recv_message()[1].decode(), v["handshake"]["serverAnswers"])
        # Every agent vector, byte for byte as the agent sends it.
        c.send_text(v["agent"]["HealthCheck"])
        self.assertEqual(c.recv_json(), v["server"]["HealthCheck"]["message"])
        self.meminfo.set_total(4 * GiB)
        c.send_text(v["agent"]["UpscaleNotification"])
        self.assertEqual(c.recv_json(), v["server"]["UpscaleConfirmation"]["message"])
        c.send_text(v["agent"]["DownscaleRequest"])
        got = c.recv_json()
        self.assertEqual((got["type"], got["id"], got["Ok"]), ("DownscaleResult", 8, True), got)
        # The agent's own InvalidMessage/InternalError need no answer: the
        # next answer is the health check's.
        c.send_text(v["agent"]["InvalidMessage"])
        c.send_text(v["agent"]["InternalError"])
        self.alive(c, 12)
        st = self.d.status()["current_agent"]
        self.assertEqual((st["protocol"], st["state"], st["protocol_version"], st["id"]),
                         ("monitor", "current", 1, None))
        m = self.d.metrics()
        self.assertEqual(m["vm_informant_monitor_session_up"], 1)
        self.assertEqual(m['vm_informant_monitor_messages_total{direction="in",'
                           'type="HealthCheck"}'], 2)
        self.assertEqual(m['vm_informant_http_requests_total{endpoint="monitor",'
                           'status="101"}'], 1)

    def test_handshake_refusals(self):
        v = vectors()["handshake"]
        for bad in [v["mismatch"]["agentSends"]] + v["malformed"]:
            with self.subTest(bad=bad):
                c = self.client()
                c.send_text(bad)
                answer = c.recv_json()
                self.assertEqual(list(answer), ["error"], answer)
                self.assertTrue(answer["error"])
                self.assertEqual(c.expect_close()[0], 1002)
                self.assertTrue(c.ended())
        self.assertIn("2 to 3", self.d.logs())
        self.assertEqual(self.d.metric("vm_informant_monitor_handshake_failures_total"),
                         len(v["malformed"]) + 1)
        self.assertIsNone(self.d.status()["current_agent"])

    def test_handshake_deadline(self):
        c = self.client(timeout=10)
        t = time.monotonic()
        self.assertIn("error", c.recv_json(timeout=8))
        self.assertEqual(c.expect_close()[0], 1008)
        self.assertGreaterEqual(time.monotonic() - t, 4.5)

    def test_upgrade_refusals(self):
        status, hdrs, body = self.d.request("GET", "/monitor")
        self.assertEqual((status, hdrs.get("upgrade")), (426, "websocket"), body)
        with self.assertRaises(HandshakeError) as e:
            WSClient(self.d.port, headers={"Sec-WebSocket-Version": "8"})
        self.assertEqual(e.exception.status, 426)
        self.assertIn("Sec-WebSocket-Version: 13", e.exception.head)
        with self.assertRaises(HandshakeError) as e:
            WSClient(self.d.port, headers={"Sec-WebSocket-Key": "short"})
        self.assertEqual(e.exception.status, 400)
        status, _, _ = self.d.request("POST", "/monitor", "{}",
                                      {"Upgrade": "websocket", "Connection": "Upgrade"})
        self.assertEqual(status, 405)
        # Plain HTTP keeps working next to the websocket path.
        self.assertEqual(self.d.request("GET", "/status")[0], 200)

    def test_bearer_token_applies_to_the_upgrade(self):
        self.d.stop()
        token = os.path.join(self.work.path, "token")
        with open(token, "w") as f:
            f.write("s3cret\n")
        d = self.start_daemon(server={"auth_token_file": token})
        with self.assertRaises(HandshakeError) as e:
            WSClient(d.port)
        self.assertEqual(e.exception.status, 401)
        c = monitor_session(d.port, headers={"Authorization": "Bearer s3cret"})
        self.addCleanup(c.shutdown)
        self.alive(c)

    # ---- messages -----------------------------------------------------------------

    def test_scaling_with_exact_limits(self):
        c = self.session()
        self.meminfo.set_total(8 * GiB)
        self.assertEqual(self.request(c, msg("UpscaleNotification", 2,
                                             granted=allocation(8 * GiB, 2))),
                         {"type": "UpscaleConfirmation", "id": 2})
        usable = 8 * GiB - SYS_BUFFER
        self.assertEqual(self.limits(), (usable, usable - OOM_BUFFER))
        self.assertEqual(self.d.metric("vm_informant_upscales_granted_total"), 1)
        # Refused while the workload holds its memory; the limits stay.
        target = 4 * GiB
        new_high = target - SYS_BUFFER - OOM_BUFFER
        self.cg.set_current(new_high)
        got = self.request(c, msg("DownscaleRequest", 4, target=allocation(target)))
        self.assertEqual((got["type"], got["id"], got["Ok"]), ("DownscaleResult", 4, False))
        self.assertIn("too low", got["Status"])
        self.assertEqual(self.limits(), (usable, usable - OOM_BUFFER))
        # Accepted once it fits; the limits follow.
        self.cg.set_current(new_high - HIGH_BUFFER - MiB)
        got = self.request(c, msg("DownscaleRequest", 6, target=allocation(target, 0.25)))
        self.assertEqual((got["type"], got["id"], got["Ok"]), ("DownscaleResult", 6, True))
        self.assertEqual(self.limits(), (target - SYS_BUFFER, new_high))

    def test_upscale_request_after_memory_high(self):
        c = self.session()
        self.cg.set_current(self.limits()[1])
        self.cg.memory_high_event()
        got = c.recv_json(timeout=5)
        self.assertEqual(got["type"], "UpscaleRequest")
        self.assertEqual(got["id"] % 2, 1, "our ids are odd")
        self.assertTrue(self.d.status()["upscale_wanted"])
        self.meminfo.set_total(5 * GiB)
        self.assertEqual(self.request(c, msg("UpscaleNotification", 2,
                                             granted=allocation(5 * GiB))),
                         {"type": "UpscaleConfirmation", "id": 2})
        wait_until(lambda: not self.d.status()["upscale_wanted"], what="the wish fulfilled")
        self.assertFalse(self.cg.frozen())

    def test_wish_kept_for_the_next_session(self):
        self.cg.memory_high_event()
        wait_until(lambda: self.d.status()["upscale_wanted"], what="a wish without an agent")
        c = self.session()
        self.assertEqual(c.recv_json()["type"], "UpscaleRequest")

    def test_invalid_messages_keep_the_session(self):
        c = self.session()
        cases = [
            ("not json", 0),
            ("[1,2,3]", 0),
            ('{"type":"HealthCheck","content":{}}', 0),
            (msg("Bogus", 12), 12),
            (msg("UpscaleRequest", 14), 14),
            (msg("UpscaleNotification", 16), 16),
            (msg("DownscaleRequest", 18, target={"cpu": 1, "mem": "2Gi"}), 18),
            (msg("UpscaleNotification", 20, granted=allocation(0)), 20),
        ]
        for text, id_ in cases:
            with self.subTest(text=text):
                got = self.request(c, text)
                self.assertEqual((got["type"], got["id"]), ("InvalidMessage", id_), got)
                self.assertTrue(got["error"])
        c.send(BINARY, b"\x00\x01")
        got = c.recv_json()
        self.assertEqual((got["type"], got["id"]), ("InvalidMessage", 0))
        self.alive(c)
        self.assertEqual(self.d.metric('vm_informant_monitor_messages_total{direction="in",'
                                       'type="undecodable"}'), 8)

    # ---- RFC 6455 --------------------------------------------------------------------

    def test_unmasked_frame_is_a_protocol_error(self):
        c = self.session()
        c.send(TEXT, msg("HealthCheck", 2), mask=False)
        self.assertEqual(c.expect_close()[0], 1002)
        self.assertTrue(c.ended())

    def test_fragments_with_a_ping_between(self):
        c = self.session()
        text = msg("HealthCheck", 4).encode()
        c.send_raw(frame(TEXT, text[:5], fin=False) + frame(CONT, text[5:12], fin=False) +
                   frame(PING, b"p1") + frame(CONT, text[12:]))
        self.assertEqual(c.recv_message(), (PONG, b"p1"))
        self.assertEqual(c.recv_json(), {"type": "HealthCheck", "id": 4})

    def test_ping_during_a_request(self):
        c = self.session()
        c.send_raw(frame(TEXT, msg("DownscaleRequest", 6, target=allocation(3 * GiB))) +
                   frame(PING, b"during"))
        got = [c.recv_message() for _ in range(2)]
        self.assertIn((PONG, b"during"), got)
        answer = [json.loads(p) for op, p in got if op == TEXT]
        self.assertEqual((answer[0]["type"], answer[0]["id"]), ("DownscaleResult", 6))

    def test_close_in_the_middle_of_a_request(self):
        c = self.session()
        self.meminfo.set_total(6 * GiB)
        c.send_raw(frame(TEXT, msg("UpscaleNotification", 2, granted=allocation(6 * GiB))) +
                   struct.pack("!BB", 0x88, 0x82) + b"\0\0\0\0" + struct.pack("!H", 1000))
        code, _ = c.expect_close()
        self.assertEqual(code, 1000)
        self.assertTrue(c.ended())
        # The request was carried out; the daemon serves the next session.
        wait_until(lambda: self.limits()[0] == 6 * GiB - SYS_BUFFER, what="the upscale applied")
        self.alive(self.session())
        # A peer that vanishes mid-request (no close frame at all).
        c = self.session()
        c.send_text(msg("DownscaleRequest", 4, target=allocation(5 * GiB)))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.shutdown()  # RST
        self.alive(self.session())
        wait_until(lambda: self.d.metric("vm_informant_monitor_session_up") == 1,
                   what="the last session up")

    def test_limits_on_size_utf8_and_control_frames(self):
        c = self.session(timeout=10)
        c.send_raw(frame(TEXT, b"x" * (2 << 20)))  # 2 MiB > max_body_bytes (64 KiB)
        self.assertEqual(c.expect_close()[0], 1009)
        self.assertTrue(c.ended())
        c = self.session()
        c.send(TEXT, b'{"id":2,"x":"\xff"}')
        self.assertEqual(c.expect_close()[0], 1007)
        c = self.session()
        c.send(PING, b"x" * 126)  # control frames carry at most 125 bytes
        self.assertIn(c.expect_close()[0], (1002, 1005, None))
        self.assertTrue(c.ended())
        c = self.session()
        c.send(TEXT, msg("HealthCheck", 2), rsv=4)  # RSV1 without permessage-deflate
        self.assertEqual(c.expect_close()[0], 1002)
        self.alive(self.session())

    def test_client_close_is_answered(self):
        c = self.session()
        c.close(1001, "going away")
        self.assertEqual(c.expect_close(), (1001, "going away"))
        self.assertTrue(c.ended())
        wait_until(lambda: self.d.status()["current_agent"] is None, what="no current agent")

    # ---- sessions and the agent set ------------------------------------------------------

    def test_second_session_replaces_the_first(self):
        a = self.session()
        b = self.session()
        self.assertEqual(a.expect_close(), (1000, "replaced by a newer session"))
        self.assertTrue(a.ended())
        self.alive(b)
        m = self.d.metrics()
        self.assertEqual(m["vm_informant_monitor_sessions_replaced_total"], 1)
        self.assertEqual(m["vm_informant_monitor_sessions_total"], 2)
        local = "127.0.0.1:%d" % b.sock.getsockname()[1]
        self.assertEqual(self.d.status()["current_agent"]["addr"], local)

    def test_coexistence_with_http_agents(self):
        http = AgentSim(self.work.path, self.d.port, ["--health-interval", "200"], name="http")
        self.addCleanup(http.stop)
        http.wait_running()
        # A monitor session is the newer kind: the HTTP agent is suspended.
        c = self.session()
        wait_until(lambda: not http.state()["running"], what="/suspend of the HTTP agent")
        status, _, body = http.control("/sim/upscale?memory=5Gi")
        self.assertEqual(status, 400, body)
        self.assertIn("is not the active Agent", body)
        # Plain HTTP on the same port meanwhile: health checks, /status.
        self.assertEqual(http.state()["healthChecksFailed"], 0)
        self.assertEqual(self.d.status()["current_agent"]["protocol"], "monitor")
        # A newer session replaces this one without an HTTP agent being
        # resumed in between.
        def resumes():
            return sum(r.get("msg") == "resuming agent" for r in self.d.log_records())

        before = resumes()
        newer = self.session()
        self.assertEqual(c.expect_close()[0], 1000)
        self.alive(newer)
        time.sleep(0.3)
        self.assertEqual(resumes(), before)
        c = newer
        # The session ends: the HTTP agent is resumed, a kept wish goes to it.
        c.close()
        c.expect_close()
        self.cg.memory_high_event()
        http.wait_running()
        wait_until(lambda: http.state()["tryUpscales"] >= 1, what="the wish via /try-upscale")
        self.assertEqual(self.d.status()["current_agent"]["protocol"], "informant")

    def test_sigterm_closes_sessions_with_1001(self):
        c = self.session()
        self.d.send_signal(signal.SIGTERM)
        self.assertEqual(c.expect_close(), (1001, "informant shutting down"))
        self.assertEqual(self.d.proc.wait(timeout=10), 0)

    # ---- agent-sim on the monitor protocol ------------------------------------------------

    def test_agent_sim_done_when(self):
        """The issue's "Done when" with agent-sim: handshake, health checks,
        an upscale with exact limits, a refused and an accepted downscale,
        an UpscaleRequest after a memory.high event (garbage is
        test_invalid_messages_keep_the_session's)."""
        agent = AgentSim(self.work.path, self.d.port,
                         ["--meminfo", self.meminfo.path, "--health-interval", "100",
                          "--upscale-delay", "50"], protocol="monitor")
        self.addCleanup(agent.stop)
        agent.wait_running()
        wait_until(lambda: agent.state()["healthChecksOk"] >= 3, what="health checks")
        status, _, body = agent.control("/sim/upscale?memory=8Gi")
        self.assertEqual((status, body), (200, "{}"))
        usable = 8 * GiB - SYS_BUFFER
        self.assertEqual(self.limits(), (usable, usable - OOM_BUFFER))
        self.cg.set_current(6 * GiB)
        status, _, body = agent.control("/sim/downscale?memory=6Gi")
        self.assertEqual(status, 200)
        self.assertFalse(json.loads(body)["Ok"], body)
        self.cg.set_current(1 * GiB)
        status, _, body = agent.control("/sim/downscale?memory=6Gi")
        self.assertTrue(json.loads(body)["Ok"], body)
        self.assertEqual(self.limits(), (6 * GiB - SYS_BUFFER, 6 * GiB - SYS_BUFFER - OOM_BUFFER))
        self.cg.set_current(self.limits()[1])
        self.cg.memory_high_event()
        wait_until(lambda: agent.state()["tryUpscales"] >= 1, what="an UpscaleRequest")
        wait_until(lambda: agent.state()["upscalesOk"] >= 2, what="the upscale that follows")
        self.assertEqual(agent.state()["sessions"], 1)
        self.assertIn("session-up", agent.logs())


class MonitorMemoryTest(test_memory.MemoryTest):
    """test_memory.py's scenarios with agent-sim speaking the monitor protocol."""
    PROTOCOL = "monitor"


if __name__ == "__main__":
    unittest.main(verbosity=2)
