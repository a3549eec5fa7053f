/* SPDX-License-Identifier: Apache-2.0 */
/*
 * monitor.c — agent-sim as a current autoscaler-agent: it dials
 * ws://<informant>/monitor, sends its version range, health-checks, sends
 * UpscaleNotification and DownscaleRequest (even ids) and waits for the
 * answer with the same id, and answers the informant's UpscaleRequest by
 * upscaling after --upscale-delay, as it answers /try-upscale in the
 * informant protocol.
 *
 * Threads: each session has a reader thread (detached) that runs the
 * websocket and handles what arrives; requests come from the scheduler and
 * the control endpoints and wait on s->wake.  A session is reference
 * counted (its reader, s->mon, each request in progress); the last
 * reference frees it.  State lives under s->lock, as everywhere in
 * agent-sim; the lock is never held across network I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define MS_NS 1000000ull
#define SLOTS 16
#define HANDSHAKE_TIMEOUT_MS 4000 /* the agent's connectionTimeoutSeconds */

struct slot {
	bool used, done;
	uint64_t id;
	struct ap_mon_msg reply;
};

struct sim_mon {
	struct sim *s;
	struct sim_ws *ws;
	int refs;
	enum { MON_HANDSHAKE, MON_UP, MON_DOWN } state;
	uint32_t version;
	char refusal[SIM_TEXT_MAX];
	uint64_t last_id; /* ours are even */
	struct slot slot[SLOTS];
};

static void put(struct sim *s, struct sim_mon *m)
{
	bool last;

	pthread_mutex_lock(&s->lock);
	last = --m->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last) {
		sim_ws_free(m->ws);
		free(m);
	}
}

static void send_msg(struct sim_mon *m, const struct ap_mon_msg *msg)
{
	char *text = ap_mon_encode_agent(msg);

	if (text)
		(void)sim_ws_send_text(m->ws, text);
	free(text);
}

/* An UpscaleRequest: like /try-upscale, an upscale after the delay. */
static void upscale_request_locked(struct sim *s, const struct ap_mon_msg *msg)
{
	s->n.try_upscales++;
	sim_event(s, "upscale-request", "{s:I,s:b}", "id", (json_int_t)msg->id, "ignored",
		  s->cfg.ignore_try_upscale);
	if (!s->cfg.ignore_try_upscale && !s->upscale_at_ns)
		s->upscale_at_ns = sim_now_ns() + s->cfg.upscale_delay_ms * MS_NS + 1;
}

/* The reader thread's handling of one text message (s->lock not held). */
static void on_text(void *arg, const char *text, size_t len)
{
	struct sim_mon *m = arg;
	struct sim *s = m->s;
	struct ap_mon_msg msg;
	char err[256];
	bool matched = false;

	pthread_mutex_lock(&s->lock);
	if (m->state == MON_HANDSHAKE) {
		int r = ap_mon_decode_version(text, len, &m->version, err, sizeof(err));

		m->state = r == 0 ? MON_UP : MON_DOWN;
		if (r < 0)
			snprintf(m->refusal, sizeof(m->refusal), "%s", err);
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (ap_mon_decode_monitor(text, len, &msg, err, sizeof(err)) < 0) {
		/* What the agent does: InvalidMessage back, and carry on. */
		struct ap_mon_msg inv = { .type = AP_MON_INVALID_MESSAGE };

		s->n.invalid_messages++;
		sim_event(s, "undecodable-message", "{s:s}", "error", err);
		pthread_mutex_unlock(&s->lock);
		snprintf(inv.text, sizeof(inv.text), "%s", err);
		send_msg(m, &inv);
		return;
	}
	if (msg.type == AP_MON_UPSCALE_REQUEST) {
		upscale_request_locked(s, &msg);
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	for (int i = 0; i < SLOTS; i++)
		if (m->slot[i].used && !m->slot[i].done && m->slot[i].id == msg.id) {
			m->slot[i].reply = msg;
			m->slot[i].done = true;
			matched = true;
		}
	if (!matched)
		sim_event(s, "unmatched-message", "{s:s,s:I,s:s}", "type",
			  ap_mon_type_name(msg.type), "id", (json_int_t)msg.id, "error", msg.text);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static void *reader(void *arg)
{
	struct sim_mon *m = arg;
	struct sim *s = m->s;
	const char *reason;
	uint16_t code;
	bool was_up;

	sim_ws_run(m->ws);
	code = sim_ws_close_code(m->ws, &reason);
	pthread_mutex_lock(&s->lock);
	was_up = m->state == MON_UP;
	m->state = MON_DOWN;
	if (s->mon == m) {
		s->mon = NULL;
		m->refs--; /* s->mon's reference */
		if (was_up && s->registered) {
			s->registered = false;
			s->running = false;
			s->want_register = !s->quit;
			s->register_at_ns = sim_now_ns() + s->cfg.register_retry_ms * MS_NS;
		}
	}
	if (was_up)
		sim_event(s, "session-closed", "{s:I,s:s}", "code", (json_int_t)code, "reason",
			  reason);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	put(s, m);
	return NULL;
}

/* Wait (lock held) until cond or the deadline (or quitting, if asked);
 * false on timeout. */
static bool wait_until_locked(struct sim *s, uint64_t deadline_ns, bool stop_on_quit,
			      bool (*cond)(void *), void *arg)
{
	while (!cond(arg)) {
		struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000ull),
				       .tv_nsec = (long)(deadline_ns % 1000000000ull) };

		if (sim_now_ns() >= deadline_ns || (stop_on_quit && s->quit))
			return cond(arg);
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	return true;
}

static bool handshake_over(void *arg)
{
	return ((struct sim_mon *)arg)->state != MON_HANDSHAKE;
}

static int session_failed(struct sim *s, const char *why)
{
	pthread_mutex_lock(&s->lock);
	s->registering = false;
	s->register_at_ns = sim_now_ns() + s->cfg.register_retry_ms * MS_NS;
	sim_event(s, "register-failed", "{s:s,s:s}", "informant", s->cfg.informant, "error", why);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return -EPROTO;
}

int sim_monitor_register(struct sim *s)
{
	struct sim_mon *m = calloc(1, sizeof(*m));
	char err[SIM_TEXT_MAX], *range = ap_mon_encode_range(AP_MONITOR_PROTO_MIN,
							    AP_MONITOR_PROTO_MAX);
	pthread_t t;
	bool up;

	pthread_mutex_lock(&s->lock);
	s->registering = true;
	pthread_mutex_unlock(&s->lock);
	if (!m || !range) {
		free(m);
		free(range);
		return session_failed(s, "out of memory");
	}
	m->s = s;
	m->refs = 2; /* the reader and s->mon */
	if (sim_ws_connect(s->cfg.informant, "/monitor", HANDSHAKE_TIMEOUT_MS, on_text, m, &m->ws,
			   err, sizeof(err)) < 0) {
		free(m);
		free(range);
		return session_failed(s, err);
	}
	if (pthread_create(&t, NULL, reader, m) != 0) {
		sim_ws_free(m->ws);
		free(m);
		free(range);
		return session_failed(s, "cannot start the reader thread");
	}
	pthread_detach(t);
	pthread_mutex_lock(&s->lock);
	if (s->mon) /* a failed session still closing: let it go */
		s->mon->refs--;
	s->mon = m;
	pthread_mutex_unlock(&s->lock);
	(void)sim_ws_send_text(m->ws, range);
	free(range);

	pthread_mutex_lock(&s->lock);
	up = wait_until_locked(s, sim_now_ns() + HANDSHAKE_TIMEOUT_MS * MS_NS, true,
			       handshake_over, m) && m->state == MON_UP;
	if (!up) {
		snprintf(err, sizeof(err), "%s",
			 m->refusal[0] ? m->refusal : "no version answer in time");
		if (s->mon == m) {
			s->mon = NULL;
			m->refs--; /* the reader keeps it until the close is through */
		}
		pthread_mutex_unlock(&s->lock);
		sim_ws_close(m->ws, 1002, "version handshake failed");
		return session_failed(s, err);
	}
	s->registering = false;
	s->registered = true;
	s->running = true;
	s->want_register = false;
	s->n.sessions++;
	s->health_at_ns = sim_now_ns() + s->cfg.health_interval_ms * MS_NS;
	if (s->cfg.downscale_every_ms)
		s->downscale_at_ns = sim_now_ns() + s->cfg.downscale_every_ms * MS_NS;
	sim_event(s, "session-up", "{s:s,s:I}", "informant", s->cfg.informant, "version",
		  (json_int_t)m->version);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static bool session_gone(void *arg)
{
	struct sim *s = arg;

	return s->mon == NULL;
}

void sim_monitor_unregister(struct sim *s)
{
	struct sim_mon *m;

	pthread_mutex_lock(&s->lock);
	s->want_register = false;
	m = s->mon;
	if (m)
		m->refs++;
	pthread_mutex_unlock(&s->lock);
	if (!m)
		return;
	sim_ws_close(m->ws, 1000, "agent-sim stopping");
	pthread_mutex_lock(&s->lock);
	/* The close handshake ends the reader, which lets go of the session. */
	(void)wait_until_locked(s, sim_now_ns() + 2000 * MS_NS, false, session_gone, s);
	s->registered = false;
	s->running = false;
	sim_event(s, "unregistered", "{s:s}", "protocol", "monitor");
	pthread_mutex_unlock(&s->lock);
	put(s, m);
}

struct waiting {
	struct sim_mon *m;
	struct slot *slot;
};

static bool answered(void *arg)
{
	struct waiting *w = arg;

	return w->slot->done || w->m->state == MON_DOWN;
}

/* The answer as the informant protocol would have given it. */
static void as_reply(const struct ap_mon_msg *a, struct sim_reply *rep)
{
	struct ap_downscale_result d = { .ok = a->ok };

	switch (a->type) {
	case AP_MON_DOWNSCALE_RESULT:
		snprintf(d.status, sizeof(d.status), "%s", a->text);
		rep->status = 200;
		rep->body = ap_encode_downscale_result(&d);
		break;
	case AP_MON_INTERNAL_ERROR:
		rep->status = 500;
		rep->body = strdup(a->text);
		break;
	case AP_MON_INVALID_MESSAGE:
		rep->status = 400;
		rep->body = strdup(a->text);
		break;
	default:
		rep->status = 200;
		rep->body = strdup("{}");
	}
}

int sim_monitor_request(struct sim *s, enum ap_mon_type type, uint64_t mem, long timeout_ms,
			struct sim_reply *rep)
{
	struct ap_mon_msg msg = { .type = type, .mem = mem };
	struct waiting w = { NULL, NULL };
	bool ok;

	memset(rep, 0, sizeof(*rep));
	pthread_mutex_lock(&s->lock);
	w.m = s->mon;
	for (int i = 0; w.m && w.m->state == MON_UP && i < SLOTS && !w.slot; i++)
		if (!w.m->slot[i].used)
			w.slot = &w.m->slot[i];
	if (!w.slot) {
		snprintf(rep->err, sizeof(rep->err), "%s", w.m && w.m->state == MON_UP
			 ? "too many requests in flight" : "no monitor session");
		pthread_mutex_unlock(&s->lock);
		return -EIO;
	}
	w.m->refs++;
	w.m->last_id += 2;
	*w.slot = (struct slot){ .used = true, .id = w.m->last_id };
	msg.id = w.slot->id;
	msg.cpu = (double)s->cfg.cpu_milli / 1000.0;
	pthread_mutex_unlock(&s->lock);

	send_msg(w.m, &msg);

	pthread_mutex_lock(&s->lock);
	ok = wait_until_locked(s, sim_now_ns() + (uint64_t)timeout_ms * MS_NS, true, answered, &w) &&
	     w.slot->done;
	if (ok)
		as_reply(&w.slot->reply, rep);
	else
		snprintf(rep->err, sizeof(rep->err), "%s id %llu: %s", ap_mon_type_name(type),
			 (unsigned long long)msg.id, w.m->state == MON_DOWN
			 ? "session closed" : "no answer in time");
	w.slot->used = false;
	pthread_mutex_unlock(&s->lock);
	put(s, w.m);
	return ok ? 0 : -EIO;
}
