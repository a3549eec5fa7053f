/* SPDX-License-Identifier: Apache-2.0 */
/*
 * monitor.c — monitor protocol sessions over ws.c: the version handshake,
 * the single current session, and the messages (see monitor.h).
 *
 * Lifetimes: a session lives from monitor_accept() until its connection's
 * on_closed().  A scaling request outlives its session if need be (the
 * memory policy answers when it is done): the session unhooks its requests
 * when it ends, and monitor_req_done() then only frees.
 */
#include "monitor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ws.h"

#define CLOSE_NORMAL 1000
#define CLOSE_GOING_AWAY 1001
#define CLOSE_PROTOCOL 1002
#define CLOSE_UNSUPPORTED 1003
#define CLOSE_POLICY 1008

enum session_state { MS_HANDSHAKE, MS_UP, MS_CLOSING };

struct monitor_req {
	struct monitor_session *ms; /* NULL once the session is gone */
	struct monitor_req *next;
	uint64_t id;
	bool upscale;
};

struct monitor_session {
	struct monitor *mon;
	struct monitor_session *next;
	struct ws_conn *ws;
	enum session_state state;
	bool was_up;
	uint32_t version;
	uint64_t next_id;          /* ours are odd */
	struct loop_timer *handshake_timer;
	struct monitor_req *reqs;  /* in flight */
	unsigned nreqs;
	uint64_t msgs_in, msgs_out;
};

struct monitor {
	struct loop *loop;
	struct metrics *metrics;
	uint64_t max_msg;
	struct monitor_ops ops;
	struct monitor_session *sessions;
	struct monitor_session *current;
	bool closing;
};

/* ---- sending ------------------------------------------------------------------ */

static void count(struct monitor *mon, int dir, int type)
{
	mon->metrics->monitor_messages_total[dir][type]++;
}

static void send_text(struct monitor_session *ms, char *text)
{
	int r;

	if (!text) {
		log_event(LOG_ERROR, "cannot encode a monitor message (out of memory?)",
			  LF_STR("peer", ws_conn_peer(ms->ws)), LF_END);
		return;
	}
	r = ws_conn_send_text(ms->ws, text, strlen(text));
	if (r < 0 && r != -EPIPE)
		log_event(LOG_WARN, "cannot queue a monitor message", LF_STR("peer",
			  ws_conn_peer(ms->ws)), LF_ERR(r), LF_END);
	free(text);
}

static void send_msg(struct monitor_session *ms, const struct ap_mon_msg *m)
{
	if (ms->state == MS_CLOSING)
		return;
	count(ms->mon, METRICS_OUT, m->type);
	ms->msgs_out++;
	send_text(ms, ap_mon_encode_monitor(m));
}

static void send_error(struct monitor_session *ms, enum ap_mon_type type, uint64_t id,
		       const char *why)
{
	struct ap_mon_msg m = { .type = type, .id = id };

	snprintf(m.text, sizeof(m.text), "%s", why);
	send_msg(ms, &m);
}

static void close_session(struct monitor_session *ms, uint16_t code, const char *reason)
{
	if (ms->state == MS_CLOSING)
		return;
	ms->state = MS_CLOSING;
	loop_timer_free(ms->handshake_timer);
	ms->handshake_timer = NULL;
	if (ms->mon->current == ms) {
		ms->mon->current = NULL;
		ms->mon->metrics->monitor_session_up = false;
		ms->mon->ops.session_down(ms->mon->ops.arg, ms);
	}
	ws_conn_close(ms->ws, code, reason);
}

/* ---- the handshake ------------------------------------------------------------- */

static void handshake_failed(struct monitor_session *ms, uint16_t code, const char *why)
{
	ms->mon->metrics->monitor_handshake_failures_total++;
	log_event(LOG_WARN, "monitor handshake failed", LF_STR("peer", ws_conn_peer(ms->ws)),
		  LF_STR("reason", why), LF_END);
	send_text(ms, ap_mon_encode_refusal(why));
	close_session(ms, code, "version handshake failed");
}

static void handshake(struct monitor_session *ms, const char *msg, size_t len)
{
	struct monitor *mon = ms->mon;
	struct monitor_session *old = mon->current;
	uint32_t min = 0, max = 0;
	char err[256];

	if (ap_mon_decode_range(msg, len, &min, &max, err, sizeof(err)) < 0 ||
	    ap_mon_negotiate(min, max, &ms->version, err, sizeof(err)) < 0) {
		handshake_failed(ms, CLOSE_PROTOCOL, err);
		return;
	}
	loop_timer_free(ms->handshake_timer);
	ms->handshake_timer = NULL;
	send_text(ms, ap_mon_encode_version(ms->version));
	ms->state = MS_UP;
	ms->was_up = true;
	mon->metrics->monitor_sessions_total++;
	log_event(LOG_INFO, "monitor session up", LF_STR("peer", ws_conn_peer(ms->ws)),
		  LF_U64("version", ms->version), LF_BOOL("replaces", old != NULL), LF_END);
	/* The new one is current before the old one closes, so the agent set
	 * goes straight from one session to the other (no HTTP agent is
	 * resumed in between). */
	mon->current = ms;
	mon->metrics->monitor_session_up = true;
	if (old) {
		/* One session at a time: the newer one wins (the agent behind
		 * the old one restarted, or another took over). */
		mon->metrics->monitor_sessions_replaced_total++;
		log_event(LOG_INFO, "monitor session replaced", LF_STR("peer",
			  ws_conn_peer(old->ws)), LF_STR("by", ws_conn_peer(ms->ws)), LF_END);
		close_session(old, CLOSE_NORMAL, "replaced by a newer session");
	}
	mon->ops.session_up(mon->ops.arg, ms);
}

static void on_handshake_timeout(void *arg)
{
	struct monitor_session *ms = arg;
	char why[64];

	snprintf(why, sizeof(why), "no version range within %d ms", MONITOR_HANDSHAKE_MS);
	handshake_failed(ms, CLOSE_POLICY, why);
}

/* ---- messages ----------------------------------------------------------------------- */

static void scale(struct monitor_session *ms, const struct ap_mon_msg *m)
{
	bool up = m->type == AP_MON_UPSCALE_NOTIFICATION;
	struct monitor_req *req;
	char why[128];

	if (m->mem == 0 || m->mem > MONITOR_MAX_MEMORY_BYTES) {
		snprintf(why, sizeof(why), "content.%s.mem: %llu bytes is out of range",
			 up ? "granted" : "target", (unsigned long long)m->mem);
		send_error(ms, AP_MON_INVALID_MESSAGE, m->id, why);
		return;
	}
	if (ms->nreqs >= MONITOR_MAX_IN_FLIGHT) {
		send_error(ms, AP_MON_INTERNAL_ERROR, m->id, "too many requests in flight");
		return;
	}
	req = calloc(1, sizeof(*req));
	if (!req) {
		send_error(ms, AP_MON_INTERNAL_ERROR, m->id, "out of memory");
		return;
	}
	req->ms = ms;
	req->id = m->id;
	req->upscale = up;
	req->next = ms->reqs;
	ms->reqs = req;
	ms->nreqs++;
	log_event(LOG_INFO, up ? "upscale" : "downscale request", LF_U64("memory_bytes", m->mem),
		  LF_U64("id", m->id), LF_STR("protocol", "monitor"), LF_END);
	ms->mon->ops.scale(ms->mon->ops.arg, up, m->mem, req);
}

static void message(struct monitor_session *ms, const char *msg, size_t len)
{
	struct ap_mon_msg m, reply = { .type = AP_MON_HEALTH_CHECK };
	bool id_known = false;
	char err[256];
	int r = ap_mon_decode_agent(msg, len, &m, &id_known, err, sizeof(err));

	if (r < 0) {
		count(ms->mon, METRICS_IN, METRICS_MON_UNDECODABLE);
		log_event(LOG_INFO, "undecodable monitor message", LF_STR("peer",
			  ws_conn_peer(ms->ws)), LF_STR("detail", err), LF_END);
		send_error(ms, AP_MON_INVALID_MESSAGE, id_known ? m.id : 0, err);
		return;
	}
	count(ms->mon, METRICS_IN, m.type);
	switch (m.type) {
	case AP_MON_HEALTH_CHECK:
		reply.id = m.id;
		send_msg(ms, &reply);
		break;
	case AP_MON_UPSCALE_NOTIFICATION:
	case AP_MON_DOWNSCALE_REQUEST:
		scale(ms, &m);
		break;
	default:
		/* InvalidMessage / InternalError: the agent could not read or
		 * carry out something of ours.  Nothing to answer. */
		log_event(LOG_WARN, "the agent reports a problem", LF_STR("type",
			  ap_mon_type_name(m.type)), LF_U64("id", m.id), LF_STR("error", m.text),
			  LF_END);
	}
}

static void on_text(void *arg, const char *msg, size_t len)
{
	struct monitor_session *ms = arg;

	ms->msgs_in++;
	if (ms->state == MS_HANDSHAKE)
		handshake(ms, msg, len);
	else if (ms->state == MS_UP)
		message(ms, msg, len);
}

static void on_binary(void *arg, size_t len)
{
	struct monitor_session *ms = arg;
	static const char why[] = "binary messages are not part of the protocol: send JSON in "
				  "text messages";

	(void)len;
	ms->msgs_in++;
	if (ms->state == MS_HANDSHAKE) {
		handshake_failed(ms, CLOSE_UNSUPPORTED, why);
	} else if (ms->state == MS_UP) {
		count(ms->mon, METRICS_IN, METRICS_MON_UNDECODABLE);
		send_error(ms, AP_MON_INVALID_MESSAGE, 0, why);
	}
}

/* ---- the end of a session -------------------------------------------------------------- */

static void unlink_session(struct monitor *mon, struct monitor_session *ms)
{
	for (struct monitor_session **p = &mon->sessions; *p; p = &(*p)->next)
		if (*p == ms) {
			*p = ms->next;
			return;
		}
}

/* Unhook requests, leave the set, free; the connection is gone already
 * or goes right after. */
static void session_free(struct monitor_session *ms)
{
	struct monitor *mon = ms->mon;

	if (mon->current == ms) {
		mon->current = NULL;
		mon->metrics->monitor_session_up = false;
		mon->ops.session_down(mon->ops.arg, ms);
	}
	for (struct monitor_req *q = ms->reqs; q; q = q->next)
		q->ms = NULL;
	loop_timer_free(ms->handshake_timer);
	unlink_session(mon, ms);
	free(ms);
}

static void on_closed(void *arg, const struct ws_close_info *info)
{
	struct monitor_session *ms = arg;

	log_event(ms->was_up ? LOG_INFO : LOG_DEBUG, "monitor session ended",
		  LF_STR("peer", ws_conn_peer(ms->ws)), LF_STR("why", info->why),
		  LF_U64("code_sent", info->sent), LF_U64("code_received", info->received),
		  LF_U64("messages_in", ms->msgs_in), LF_U64("messages_out", ms->msgs_out),
		  LF_U64("requests_in_flight", ms->nreqs), LF_END);
	session_free(ms);
}

static const struct ws_conn_ops conn_ops = { on_text, on_binary, on_closed };

/* ---- the API ----------------------------------------------------------------------------- */

int monitor_new(struct loop *loop, struct metrics *m, uint64_t max_msg,
		const struct monitor_ops *ops, struct monitor **out)
{
	struct monitor *mon;

	if (!ops || !ops->scale || !ops->session_up || !ops->session_down)
		return -EINVAL;
	mon = calloc(1, sizeof(*mon));
	if (!mon)
		return -ENOMEM;
	mon->loop = loop;
	mon->metrics = m;
	mon->max_msg = max_msg;
	mon->ops = *ops;
	*out = mon;
	return 0;
}

void monitor_accept(struct monitor *mon, int fd, const void *extra, size_t extra_len,
		    void (*release)(void *), void *release_arg)
{
	struct monitor_session *ms = calloc(1, sizeof(*ms));
	int r = ms ? 0 : -ENOMEM;

	if (r == 0 && mon->closing)
		r = -ESHUTDOWN;
	if (r == 0) {
		ms->mon = mon;
		ms->next_id = 1;
		r = loop_timer_new(mon->loop, on_handshake_timeout, ms, &ms->handshake_timer);
	}
	if (r == 0)
		r = loop_timer_arm(ms->handshake_timer, MONITOR_HANDSHAKE_MS, 0);
	if (r == 0)
		r = ws_conn_new(mon->loop, fd, extra, extra_len, mon->max_msg, release,
				release_arg, &conn_ops, ms, &ms->ws);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot start a monitor session", LF_ERR(r), LF_END);
		if (ms)
			loop_timer_free(ms->handshake_timer);
		free(ms);
		release(release_arg);
		return;
	}
	ms->next = mon->sessions;
	mon->sessions = ms;
	log_event(LOG_DEBUG, "monitor connection", LF_STR("peer", ws_conn_peer(ms->ws)), LF_END);
}

void monitor_req_done(struct monitor_req *req, const struct monitor_result *res)
{
	struct monitor_session *ms = req->ms;
	struct ap_mon_msg m = { .id = req->id };

	if (ms) {
		for (struct monitor_req **p = &ms->reqs; *p; p = &(*p)->next)
			if (*p == req) {
				*p = req->next;
				break;
			}
		ms->nreqs--;
		if (res->failed)
			m.type = AP_MON_INTERNAL_ERROR;
		else if (req->upscale)
			m.type = AP_MON_UPSCALE_CONFIRMATION;
		else
			m.type = AP_MON_DOWNSCALE_RESULT;
		m.ok = res->ok;
		snprintf(m.text, sizeof(m.text), "%s",
			 m.type == AP_MON_UPSCALE_CONFIRMATION ? "" : res->text);
		send_msg(ms, &m);
	}
	free(req);
}

int monitor_session_request_upscale(struct monitor_session *ms)
{
	struct ap_mon_msg m = { .type = AP_MON_UPSCALE_REQUEST };

	if (ms->state != MS_UP)
		return -ENOTCONN;
	m.id = ms->next_id;
	ms->next_id += 2;
	send_msg(ms, &m);
	return 0;
}

const char *monitor_session_peer(const struct monitor_session *ms)
{
	return ws_conn_peer(ms->ws);
}

void monitor_shutdown(struct monitor *mon)
{
	mon->closing = true;
	for (struct monitor_session *ms = mon->sessions; ms; ms = ms->next)
		close_session(ms, CLOSE_GOING_AWAY, "informant shutting down");
}

void monitor_free(struct monitor *mon)
{
	if (!mon)
		return;
	monitor_shutdown(mon);
	while (mon->sessions) {
		struct monitor_session *ms = mon->sessions;
		struct ws_conn *ws = ms->ws;

		session_free(ms);
		ws_conn_destroy(ws);
	}
	free(mon);
}
