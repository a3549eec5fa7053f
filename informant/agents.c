/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents.c — the agent set: who is known, registration, requests from
 * agents, dropping, and the results of calls.  Selection, the wish and the
 * background checks are in agents_select.c.  Everything here runs on the
 * loop thread; no function blocks.
 */
#include "agents_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int agents_new(const struct agents_io *io, const struct agents_timeouts *t, struct metrics *m,
	       struct agents **out)
{
	struct agents *s;

	if (!io || !io->call || !io->cancel || !io->now_ms || !io->schedule || !t || !m)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->io = *io;
	s->t = *t;
	s->metrics = m;
	*out = s;
	return 0;
}

void agents_set_timeouts(struct agents *s, const struct agents_timeouts *t)
{
	s->t = *t;
	agents_reschedule(s);
}

static void reply(struct agents_reply *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply(struct agents_reply *r, unsigned status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	va_start(ap, fmt);
	/* Truncation only shortens a human message; the buffer fits every
	 * bounded input (address, UUID, cause) anyway. */
	(void)vsnprintf(r->body, sizeof(r->body), fmt, ap);
	va_end(ap);
}

struct agent *agents_find(const struct agents *s, const struct ap_uuid *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (ap_uuid_equal(&s->v[i]->id, id))
			return s->v[i];
	return NULL;
}

static struct agent *agent_by_token(const struct agents *s, uint64_t token,
				    enum agent_slot *slot)
{
	for (size_t i = 0; i < s->n; i++)
		for (int k = 0; k < SLOT__COUNT; k++)
			if (s->v[i]->token[k] == token) {
				*slot = (enum agent_slot)k;
				return s->v[i];
			}
	return NULL;
}

void agents_update_current_gauge(struct agents *s)
{
	s->metrics->agent_current = s->current != NULL || s->monitor_up;
}

static void update_gauges(struct agents *s)
{
	uint64_t registered = 0;

	for (size_t i = 0; i < s->n; i++)
		registered += s->v[i]->state != AGENT_REGISTERING;
	s->metrics->agents_registered = registered;
	agents_update_current_gauge(s);
}

/* Forget a; cause goes to a registration still waiting for its /id. */
static void agent_remove(struct agents *s, struct agent *a, const char *cause)
{
	size_t i;

	for (int k = 0; k < SLOT__COUNT; k++)
		if (a->token[k]) {
			s->io.cancel(s->io.ctx, a->token[k]);
			a->token[k] = 0;
		}
	if (s->switching == a)
		s->switching = NULL;
	if (s->current == a)
		s->current = NULL;
	for (i = 0; i < s->n && s->v[i] != a; i++)
		;
	if (i < s->n) {
		memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
		s->n--;
	}
	if (a->reg_done) {
		struct agents_reply r;

		reply(&r, cause ? 400 : 503, "Error checking ID for agent %s/%s: %s", a->addr,
		      a->id_str, cause ? cause : "informant shutting down");
		a->reg_done(a->reg_arg, r.status, r.body);
	}
	free(a);
	update_gauges(s);
}

void agents_drop(struct agents *s, struct agent *a, const char *why)
{
	log_event(LOG_WARN, "agent dropped", LF_STR("agent_id", a->id_str),
		  LF_STR("agent_addr", a->addr), LF_STR("reason", why),
		  LF_BOOL("was_current", s->current == a), LF_END);
	s->metrics->agent_drops_total++;
	/* An agent dropped during its /id probe answers its /register the way
	 * the reference does ("context canceled"). */
	agent_remove(s, a, "context canceled");
	/* If it was current, incoming or leaving, the next newest takes over. */
	agents_select(s);
	agents_reschedule(s);
}

void agents_free(struct agents *s)
{
	if (!s)
		return;
	while (s->n)
		agent_remove(s, s->v[s->n - 1], NULL);
	free(s);
}

/* ---- requests from agents ------------------------------------------------ */

static size_t registering(const struct agents *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->v[i]->state == AGENT_REGISTERING;
	return n;
}

static void register_probe_done(struct agents *s, struct agent *a,
				const struct ap_call_result *res);

void agents_register(struct agents *s, const struct ap_agent_desc *d,
		     agents_register_done_fn done, void *arg)
{
	struct agents_reply r;
	struct ap_call_result res;
	char id[AP_UUID_STRLEN + 1];
	uint32_t proto;
	struct agent *a;
	int r_start;

	ap_uuid_format(&d->agent_id, id);
	/* D5: a duplicate is a duplicate whatever versions it claims. */
	if (agents_find(s, &d->agent_id)) {
		reply(&r, 409, "Agent with ID %s is already registered", id);
		done(arg, r.status, r.body);
		return;
	}
	if (ap_negotiate(d->min_proto, d->max_proto, AP_INFORMANT_PROTO_MIN,
			 AP_INFORMANT_PROTO_MAX, &proto, r.body, sizeof(r.body)) < 0) {
		done(arg, 400, r.body);
		return;
	}
	if (s->n >= AGENTS_MAX_KNOWN) {
		done(arg, 503, "Too many agents registered");
		return;
	}
	if (registering(s) >= AGENTS_MAX_REGISTERING) {
		done(arg, 503, "Too many registrations in progress");
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		done(arg, 500, "Internal error");
		return;
	}
	a->id = d->agent_id;
	memcpy(a->id_str, id, sizeof(a->id_str));
	snprintf(a->addr, sizeof(a->addr), "%s", d->serve_addr);
	a->proto = proto;
	a->state = AGENT_REGISTERING;
	s->v[s->n++] = a;
	r_start = agents_start_call(s, a, SLOT_CHECK, AP_CALL_ID, s->t.register_id_timeout_ms, &res);
	/* Set only now: a call's result never comes before the loop runs. */
	a->reg_done = done;
	a->reg_arg = arg;
	/* A probe that cannot start (libcurl not loadable, no memory) ends
	 * like one that failed: logged, answered 400, forgotten. */
	if (r_start < 0)
		register_probe_done(s, a, &res);
}

void agents_register_sent(struct agents *s, const struct ap_uuid *id)
{
	struct agent *a = agents_find(s, id);

	if (!a || a->state != AGENT_REGISTERED || a->sent)
		return;
	a->sent = true;
	agents_select(s);
	agents_reschedule(s);
}

void agents_health_check(struct agents *s, const struct ap_uuid *id, struct agents_reply *r)
{
	char str[AP_UUID_STRLEN + 1];

	/* No side effects, as in the reference: liveness comes from /id. */
	if (agents_find(s, id)) {
		reply(r, 200, "{}");
		return;
	}
	ap_uuid_format(id, str);
	reply(r, 404, "No Agent with ID %s registered", str);
}

void agents_unregister(struct agents *s, const struct ap_agent_desc *d, struct agents_reply *r)
{
	struct agent *a = agents_find(s, &d->agent_id);
	bool was_current;
	char *body;

	if (!a) {
		char str[AP_UUID_STRLEN + 1];

		ap_uuid_format(&d->agent_id, str);
		reply(r, 404, "No agent with ID \"%s\"", str);
		return;
	}
	if (strcmp(a->addr, d->serve_addr) != 0) {
		/* Go's %q of an address: printable ASCII needs no escaping except
		 * quote and backslash, which are not valid in host:port anyway. */
		reply(r, 400, "Agent serverAddr is incorrect, got \"%s\"", d->serve_addr);
		return;
	}
	/* A leaving agent is still current until its /suspend returns. */
	was_current = s->current == a;
	log_event(LOG_INFO, "agent unregistered", LF_STR("agent_id", a->id_str),
		  LF_STR("agent_addr", a->addr), LF_BOOL("was_current", was_current), LF_END);
	agent_remove(s, a, "context canceled");
	body = ap_encode_unregister_result(was_current);
	if (body)
		reply(r, 200, "%s", body);
	else
		reply(r, 500, "Internal error");
	free(body);
	agents_select(s);
	agents_reschedule(s);
}

static void note_seq(struct agent *a, uint64_t *last, uint64_t seq, const char *what,
		     enum log_level level)
{
	/* D23: noted, never refused — a reordered message is still valid. */
	if (seq <= *last) {
		log_event(level, "stale sequence number", LF_STR("agent_id", a->id_str),
			  LF_STR("message", what), LF_U64("seq", seq), LF_U64("last_seq", *last),
			  LF_END);
		return;
	}
	*last = seq;
}

bool agents_check_scaler(struct agents *s, const struct ap_uuid *id, uint64_t seq,
			 const char *what, struct agents_reply *r)
{
	struct agent *a = agents_find(s, id);
	char str[AP_UUID_STRLEN + 1];

	ap_uuid_format(id, str);
	if (!a) {
		/* D5: unknown agents get 404 so that they re-register at once. */
		reply(r, 404, "No Agent with ID %s registered", str);
		return false;
	}
	note_seq(a, &a->last_req_seq, seq, what, LOG_WARN);
	if (s->current != a) {
		reply(r, 400, "Agent ID %s is not the active Agent", str);
		return false;
	}
	return true;
}

/* ---- calls to agents and their results ------------------------------------ */

int agents_start_call(struct agents *s, struct agent *a, enum agent_slot slot,
		      enum ap_call_kind kind, uint64_t timeout_ms, struct ap_call_result *res)
{
	uint64_t token = ++s->next_token;
	int r = s->io.call(s->io.ctx, kind, a->addr, &a->id, timeout_ms, token);

	if (r == 0) {
		a->token[slot] = token;
		return 0;
	}
	memset(res, 0, sizeof(*res));
	res->err = r;
	snprintf(res->cause, sizeof(res->cause), "cannot start request: %s",
		 r == -ELIBACC ? ap_client_load_error() : log_strerror(r));
	return r;
}

/* A failed call that counts towards AGENTS_MAX_FAILURES (D4). */
void agents_note_failure(struct agents *s, struct agent *a, const char *what,
			 const struct ap_call_result *res)
{
	a->failures++;
	log_event(LOG_WARN, "agent call failed", LF_STR("agent_id", a->id_str),
		  LF_STR("call", what), LF_STR("cause", res->cause),
		  LF_I64("http_status", res->http_status), LF_U64("failures", a->failures),
		  LF_END);
	if (a->failures >= AGENTS_MAX_FAILURES)
		agents_drop(s, a, "too many consecutive failed calls");
}

void agents_note_success(struct agent *a, const struct ap_call_result *res, const char *what)
{
	a->failures = 0;
	note_seq(a, &a->last_resp_seq, res->seq, what, LOG_DEBUG);
}

/* What the /register caller is told about a failed /id probe.  With auth
 * off the caller names any address: the probe may have reached a service
 * that is not an agent, and its answer is not the caller's to read —
 * only its status (the reference relayed the body).  The log keeps a
 * short excerpt for whoever runs the informant. */
static const char *probe_cause(const struct ap_call_result *res, char *buf, size_t len)
{
	if (res->http_status && res->http_status != 200)
		snprintf(buf, len, "Unsuccessful response status %ld", res->http_status);
	else if (res->err == -EBADMSG)
		snprintf(buf, len, "Error reading response as JSON: not an agent's /id answer "
			 "(see the informant's log)");
	else
		return res->cause;
	return buf;
}

static void register_probe_done(struct agents *s, struct agent *a,
				const struct ap_call_result *res)
{
	agents_register_done_fn done = a->reg_done;
	void *arg = a->reg_arg;
	struct ap_informant_desc desc = {
		.proto_version = a->proto,
		.has_prometheus = true,
		.prometheus_port = AP_METRICS_PROMETHEUS_PORT,
	};
	char *body;

	if (res->err) {
		char excerpt[AGENTS_CAUSE_EXCERPT + 1], cause[128];

		snprintf(excerpt, sizeof(excerpt), "%.*s", AGENTS_CAUSE_EXCERPT, res->cause);
		log_event(LOG_WARN, "agent registration failed", LF_STR("agent_id", a->id_str),
			  LF_STR("agent_addr", a->addr), LF_STR("cause", excerpt),
			  LF_I64("http_status", res->http_status), LF_END);
		agent_remove(s, a, probe_cause(res, cause, sizeof(cause)));
		return;
	}
	a->reg_done = NULL;
	a->state = AGENT_REGISTERED;
	a->registered_ms = s->io.now_ms(s->io.ctx);
	a->order = ++s->next_order;
	a->next_check_ms = a->registered_ms + s->t.id_check_interval_ms;
	agents_note_success(a, res, "/id");
	update_gauges(s);
	log_event(LOG_INFO, "agent registered", LF_STR("agent_id", a->id_str),
		  LF_STR("agent_addr", a->addr), LF_U64("proto", a->proto), LF_END);
	body = ap_encode_informant_desc(&desc);
	done(arg, body ? 200 : 500, body ? body : "Internal error");
	free(body);
}

void agents_call_done(struct agents *s, uint64_t token, const struct ap_call_result *res)
{
	enum agent_slot slot;
	struct agent *a = token ? agent_by_token(s, token, &slot) : NULL;

	if (!a)
		return; /* cancelled: the agent is gone */
	a->token[slot] = 0;
	if (slot == SLOT_CHECK && a->state == AGENT_REGISTERING)
		register_probe_done(s, a, res);
	else if (slot == SLOT_CHECK)
		agents_check_done(s, a, res);
	else if (slot == SLOT_SWITCH)
		agents_switch_done(s, a, res);
	else
		agents_upscale_done(s, a, res);
	agents_reschedule(s);
}

/* ---- introspection --------------------------------------------------------- */

size_t agents_count(const struct agents *s)
{
	return s->n;
}

static void fill_info(const struct agents *s, const struct agent *a, struct agents_info *out)
{
	out->protocol = "informant";
	memcpy(out->id, a->id_str, sizeof(out->id));
	snprintf(out->addr, sizeof(out->addr), "%s", a->addr);
	if (a->state == AGENT_REGISTERING)
		out->state = "registering";
	else if (s->current == a)
		out->state = s->switching == a ? "leaving" : "current";
	else if (s->switching == a)
		out->state = "resuming";
	else
		out->state = "registered";
	out->proto = a->proto;
	out->registered_ms = a->registered_ms;
	out->current_since_ms = s->current == a ? s->current_since_ms : 0;
	out->failures = a->failures;
	out->last_seq = a->last_resp_seq > a->last_req_seq ? a->last_resp_seq : a->last_req_seq;
}

bool agents_get(const struct agents *s, size_t i, struct agents_info *out)
{
	if (i >= s->n)
		return false;
	fill_info(s, s->v[i], out);
	return true;
}

bool agents_current(const struct agents *s, struct agents_info *out)
{
	if (s->monitor_up) {
		memset(out, 0, sizeof(*out));
		out->protocol = "monitor";
		out->state = "current";
		snprintf(out->addr, sizeof(out->addr), "%s", s->monitor.peer);
		out->proto = s->monitor.version;
		out->registered_ms = s->monitor_since_ms;
		out->current_since_ms = s->monitor_since_ms;
		return true;
	}
	if (!s->current)
		return false;
	fill_info(s, s->current, out);
	return true;
}

bool agents_wish_pending(const struct agents *s)
{
	return s->wish;
}
