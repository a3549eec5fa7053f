/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_monitor.c — the websocket monitor protocol: its messages (the
 * agent-proto codec) and its frames (ws.c and monitor.c on loop.c, with
 * libwslay, over a socketpair).
 *
 * Input: one mode byte, then the payload.
 *   'a' an agent message for ap_mon_decode_agent: a success encodes back
 *       and decodes to the same message; a failure leaves a reason, and an
 *       id only when it says the id was read;
 *   'b' a version range and a version answer: a success is 1 <= min <= max
 *       and encodes back; negotiation picks a version inside both ranges;
 *   'c' a monitor message for ap_mon_decode_monitor: round trip as in 'a';
 *   'd' raw bytes from a websocket client, then its FIN: the session reads
 *       them (handshake, messages; scaling answered at once by a fake
 *       memory policy).  Everything written back must be well-formed
 *       unmasked server frames whose text messages we can decode, the
 *       session must end, and the socket must be given back exactly once.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_proto.h"
#include "fuzz.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "monitor.h"

#define MAX_TURNS 50

static bool same_msg(const struct ap_mon_msg *a, const struct ap_mon_msg *b)
{
	return a->type == b->type && a->id == b->id && a->mem == b->mem && a->cpu == b->cpu &&
	       a->ok == b->ok && strcmp(a->text, b->text) == 0;
}

static void check_agent(const char *s, size_t n)
{
	struct ap_mon_msg m = { .id = 424242 }, back;
	bool known = false;
	char err[256];
	char *text;

	if (ap_mon_decode_agent(s, n, &m, &known, err, sizeof(err)) < 0) {
		FUZZ_CHECK(fuzz_message_ok(err, sizeof(err)));
		FUZZ_CHECK(known || m.id == 424242);
		return;
	}
	FUZZ_CHECK(known);
	text = ap_mon_encode_agent(&m);
	if (!text) /* text that is not UTF-8 cannot be encoded */
		return;
	FUZZ_CHECK(ap_mon_decode_agent(text, strlen(text), &back, &known, err, sizeof(err)) == 0);
	FUZZ_CHECK(same_msg(&m, &back));
	free(text);
}

static void check_monitor(const char *s, size_t n)
{
	struct ap_mon_msg m, back;
	char err[256];
	char *text;

	if (ap_mon_decode_monitor(s, n, &m, err, sizeof(err)) < 0) {
		FUZZ_CHECK(fuzz_message_ok(err, sizeof(err)));
		return;
	}
	text = ap_mon_encode_monitor(&m);
	if (!text)
		return;
	FUZZ_CHECK(ap_mon_decode_monitor(text, strlen(text), &back, err, sizeof(err)) == 0);
	FUZZ_CHECK(same_msg(&m, &back));
	free(text);
}

static void check_handshake(const char *s, size_t n)
{
	uint32_t min = 7, max = 7, v = 0, chosen = 0;
	char err[256];
	char *text;

	if (ap_mon_decode_range(s, n, &min, &max, err, sizeof(err)) == 0) {
		FUZZ_CHECK(min >= 1 && min <= max);
		text = ap_mon_encode_range(min, max);
		FUZZ_CHECK(text && ap_mon_decode_range(text, strlen(text), &v, &chosen, err,
						       sizeof(err)) == 0);
		FUZZ_CHECK(v == min && chosen == max);
		free(text);
		if (ap_mon_negotiate(min, max, &chosen, err, sizeof(err)) == 0)
			FUZZ_CHECK(chosen >= min && chosen <= max && chosen >= AP_MONITOR_PROTO_MIN &&
				   chosen <= AP_MONITOR_PROTO_MAX);
	} else {
		FUZZ_CHECK(min == 7 && max == 7 && fuzz_message_ok(err, sizeof(err)));
	}
	if (ap_mon_decode_version(s, n, &v, err, sizeof(err)) == 0)
		FUZZ_CHECK(v >= 1);
}

/* ---- frames through the real session ------------------------------------------- */

static struct {
	struct loop *loop;
	struct metrics metrics;
	int released;
	int ups, downs;
	unsigned scaled;
} fx;

static void release(void *arg)
{
	close((int)(intptr_t)arg);
	fx.released++;
}

static void fake_scale(void *arg, bool upscale, uint64_t vm_bytes, struct monitor_req *req)
{
	struct monitor_result res = { .failed = fx.scaled % 3 == 2, .ok = fx.scaled % 2 };

	(void)arg;
	snprintf(res.text, sizeof(res.text), "%s %llu", upscale ? "up" : "down",
		 (unsigned long long)vm_bytes);
	fx.scaled++;
	monitor_req_done(req, &res);
}

static void session_up(void *arg, struct monitor_session *ms)
{
	(void)arg;
	fx.ups++;
	(void)monitor_session_request_upscale(ms); /* an UpscaleRequest goes out too */
}

static void session_down(void *arg, struct monitor_session *ms)
{
	(void)arg;
	(void)ms;
	fx.downs++;
	FUZZ_CHECK(fx.downs <= fx.ups);
}

/* Every server frame is well formed; text messages decode. */
static void check_output(const uint8_t *p, size_t n)
{
	size_t off = 0;
	int texts = 0;

	while (off + 2 <= n) {
		uint8_t op = p[off] & 0x0f;
		uint64_t len = p[off + 1] & 0x7f;
		size_t head = 2;
		char err[256];
		struct ap_mon_msg m;
		uint32_t v;

		FUZZ_CHECK(!(p[off + 1] & 0x80)); /* servers never mask */
		FUZZ_CHECK((p[off] & 0x70) == 0);  /* no extension bits */
		FUZZ_CHECK(op == 0x1 || op == 0x8 || op == 0xa);
		if (len == 126 && off + 4 <= n) {
			len = (uint64_t)p[off + 2] << 8 | p[off + 3];
			head = 4;
		} else if (len == 127) {
			return; /* we never send 64 KiB; a cut read ends here */
		}
		if (off + head + len > n)
			return; /* the rest was not read */
		if (op == 0x1) {
			const char *t = (const char *)p + off + head;

			FUZZ_CHECK(texts++ == 0 ? ap_mon_decode_version(t, len, &v, err,
									sizeof(err)) != -EINVAL
				   : ap_mon_decode_monitor(t, len, &m, err, sizeof(err)) == 0 ||
					     ap_mon_decode_version(t, len, &v, err, sizeof(err)) ==
						     -EPROTO);
		}
		off += head + len;
	}
}

static void check_frames(const uint8_t *p, size_t n)
{
	static const struct monitor_ops ops = { fake_scale, session_up, session_down, NULL };
	static uint8_t out[1 << 17];
	struct monitor *mon;
	size_t got = 0;
	int sv[2];
	ssize_t k;

	if (!fx.loop) {
		log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
		FUZZ_CHECK(loop_new(&fx.loop) == 0);
	}
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_CHECK(monitor_new(fx.loop, &fx.metrics, 1024, &ops, &mon) == 0);
	fx.released = fx.ups = fx.downs = 0;
	monitor_accept(mon, sv[0], NULL, 0, release, (void *)(intptr_t)sv[0]);
	FUZZ_CHECK(write(sv[1], p, n) == (ssize_t)n);
	(void)shutdown(sv[1], SHUT_WR);
	for (int turn = 0; turn < MAX_TURNS && !fx.released; turn++) {
		(void)loop_run_once(fx.loop, 1);
		while ((k = read(sv[1], out + got, sizeof(out) - got)) > 0)
			got += (size_t)k;
	}
	/* The peer's FIN ends every session within the turns. */
	FUZZ_CHECK(fx.released == 1);
	FUZZ_CHECK(fx.downs == fx.ups);
	while ((k = read(sv[1], out + got, sizeof(out) - got)) > 0)
		got += (size_t)k;
	check_output(out, got);
	monitor_free(mon);
	FUZZ_CHECK(fx.released == 1);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode = fuzz_mode(data, size, 4);
	char *s;

	if (mode < 0)
		return 0;
	if (mode == 3) {
		check_frames(data + 1, size - 1);
		return 0;
	}
	s = fuzz_cstr(data + 1, size - 1);
	if (!s)
		return 0;
	if (mode == 0)
		check_agent(s, size - 1);
	else if (mode == 1)
		check_handshake(s, size - 1);
	else
		check_monitor(s, size - 1);
	free(s);
	return 0;
}
