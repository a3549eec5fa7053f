/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents_select.c — which agent is current, the switch between agents,
 * the background /id checks and the upscale wish.
 *
 * The switch is one step at a time (s->switching names the agent of the
 * step in flight):
 *   1. candidate = the newest registered agent whose /register 200 has been
 *      sent (D16).  None, or already current: done.
 *   2. A current agent is suspended first.  From the start of that call it
 *      is "leaving" (D6): it still scales (the reference agent holds its
 *      /suspend reply until its own scaling finishes) but is not asked for
 *      memory.  Afterwards there is no current agent; a failed /suspend
 *      drops it (its state is unknown; dropped, its next health check gets
 *      404 and it re-registers cleanly).
 *   3. The candidate is resumed.  Success makes it current and sends it the
 *      pending wish at once; failure drops it and the selection starts over,
 *      so the next newest agent is resumed (D15) — a suspended agent is
 *      never left current.
 *   4. Repeat: a newer registration may have arrived meanwhile.
 */
#include "agents_impl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static int start_call(struct agents *s, struct agent *a, enum agent_slot slot,
		      enum ap_call_kind kind, uint64_t timeout_ms)
{
	uint64_t token = ++s->next_token;
	int r = s->io.call(s->io.ctx, kind, a->addr, &a->id, timeout_ms, token);

	if (r == 0)
		a->token[slot] = token;
	return r;
}

/* The result of a call that could not even start. */
static void start_failure(struct ap_call_result *res, int r)
{
	memset(res, 0, sizeof(*res));
	res->err = r;
	snprintf(res->cause, sizeof(res->cause), "cannot start request: %s", log_strerror(r));
}

static struct agent *newest_candidate(const struct agents *s)
{
	struct agent *best = NULL;

	for (size_t i = 0; i < s->n; i++) {
		struct agent *a = s->v[i];

		if (a->state == AGENT_REGISTERED && a->sent && (!best || a->order > best->order))
			best = a;
	}
	return best;
}

void agents_select(struct agents *s)
{
	struct agent *cand, *a;
	struct ap_call_result res;
	enum ap_call_kind kind;
	uint64_t timeout;
	int r;

	if (s->switching)
		return; /* its completion selects again */
	cand = newest_candidate(s);
	if (!cand || cand == s->current)
		return;
	if (s->current) {
		a = s->current;
		kind = AP_CALL_SUSPEND;
		timeout = s->t.suspend_timeout_ms;
	} else {
		a = cand;
		kind = AP_CALL_RESUME;
		timeout = s->t.resume_timeout_ms;
	}
	log_event(LOG_INFO, kind == AP_CALL_SUSPEND ? "suspending agent" : "resuming agent",
		  LF_STR("agent_id", a->id_str), LF_STR("agent_addr", a->addr),
		  LF_STR("next_agent_id", cand->id_str), LF_END);
	s->switching = a;
	r = start_call(s, a, SLOT_SWITCH, kind, timeout);
	if (r < 0) {
		start_failure(&res, r);
		agents_switch_done(s, a, &res);
	}
}

static void fail_and_drop(struct agents *s, struct agent *a, const char *what,
			  const struct ap_call_result *res)
{
	log_event(LOG_WARN, "agent call failed", LF_STR("agent_id", a->id_str),
		  LF_STR("call", what), LF_STR("cause", res->cause),
		  LF_I64("http_status", res->http_status), LF_END);
	agents_drop(s, a, what);
}

static void send_wish(struct agents *s, bool new_agent);

void agents_switch_done(struct agents *s, struct agent *a, const struct ap_call_result *res)
{
	s->switching = NULL;
	if (s->current == a) {
		/* The leaving agent's /suspend: from now on nobody is current. */
		s->current = NULL;
		s->metrics->agent_current = false;
		if (res->err) {
			fail_and_drop(s, a, "/suspend failed", res); /* selects again */
			return;
		}
		agents_note_success(a, res, "/suspend");
		log_event(LOG_INFO, "agent suspended", LF_STR("agent_id", a->id_str), LF_END);
		agents_select(s);
		return;
	}
	if (res->err) {
		fail_and_drop(s, a, "/resume failed", res); /* D15: next newest */
		return;
	}
	agents_note_success(a, res, "/resume");
	s->current = a;
	s->current_since_ms = s->io.now_ms(s->io.ctx);
	s->metrics->agent_current = true;
	log_event(LOG_INFO, "agent is current", LF_STR("agent_id", a->id_str),
		  LF_STR("agent_addr", a->addr), LF_END);
	send_wish(s, true);
	agents_select(s);
}

/* ---- background /id checks (spec §7.4, D4) ------------------------------- */

void agents_reschedule(struct agents *s)
{
	uint64_t due = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct agent *a = s->v[i];

		if (a->state != AGENT_REGISTERED || a->token[SLOT_CHECK])
			continue;
		if (!due || a->next_check_ms < due)
			due = a->next_check_ms;
	}
	s->io.schedule(s->io.ctx, due);
}

void agents_tick(struct agents *s)
{
	uint64_t now = s->io.now_ms(s->io.ctx);
	struct ap_call_result res;
	size_t i = 0;
	int r;

	while (i < s->n) {
		struct agent *a = s->v[i];

		if (a->state != AGENT_REGISTERED || a->token[SLOT_CHECK] ||
		    now < a->next_check_ms) {
			i++;
			continue;
		}
		r = start_call(s, a, SLOT_CHECK, AP_CALL_ID, s->t.id_check_timeout_ms);
		if (r < 0) {
			/* May drop a: look at index i again rather than past it. */
			size_t n = s->n;

			start_failure(&res, r);
			agents_check_done(s, a, &res);
			if (s->n < n)
				continue;
		}
		i++;
	}
	agents_reschedule(s);
}

void agents_check_done(struct agents *s, struct agent *a, const struct ap_call_result *res)
{
	uint64_t now = s->io.now_ms(s->io.ctx);
	uint64_t retry = s->t.id_check_interval_ms < AGENTS_RETRY_MS ? s->t.id_check_interval_ms
								     : AGENTS_RETRY_MS;

	if (res->err) {
		/* D4: one lost packet must not cost the agent its registration;
		 * check again soon and drop only after repeated failures. */
		a->next_check_ms = now + retry;
		agents_note_failure(s, a, "/id", res); /* may drop a */
		return;
	}
	agents_note_success(a, res, "/id");
	a->next_check_ms = now + s->t.id_check_interval_ms;
}

/* ---- the upscale wish (spec §7.6, D6, D9) -------------------------------- */

/* Send /try-upscale to the current agent if the wish is pending.  A new
 * current agent is asked at once; otherwise the ask is repeated at most
 * every AGENTS_WISH_REASK_MS while the memory side still wants it. */
static void send_wish(struct agents *s, bool new_agent)
{
	struct agent *a = s->current;
	uint64_t now = s->io.now_ms(s->io.ctx);
	struct ap_call_result res;
	int r;

	if (!s->wish || !a || s->switching == a || a->token[SLOT_UPSCALE])
		return;
	if (!new_agent && s->wish_sent && now - s->wish_sent_ms < AGENTS_WISH_REASK_MS)
		return;
	s->wish_sent = true;
	s->wish_sent_ms = now;
	s->metrics->upscale_requests_total++;
	if (s->wish_predicted)
		s->metrics->upscale_requests_predicted_total++;
	log_event(LOG_INFO, "requesting upscale", LF_STR("agent_id", a->id_str),
		  LF_BOOL("predicted", s->wish_predicted), LF_END);
	r = start_call(s, a, SLOT_UPSCALE, AP_CALL_TRY_UPSCALE, s->t.upscale_timeout_ms);
	if (r < 0) {
		start_failure(&res, r);
		agents_upscale_done(s, a, &res);
	}
}

void agents_upscale_done(struct agents *s, struct agent *a, const struct ap_call_result *res)
{
	if (res->err) {
		/* Unlike the reference the wish survives (D6, D9): it is asked for
		 * again after the re-ask interval, of whoever is current then. */
		s->metrics->upscale_requests_failed_total++;
		agents_note_failure(s, a, "/try-upscale", res); /* may drop a */
		return;
	}
	agents_note_success(a, res, "/try-upscale");
}

int agents_request_upscale(void *agents, bool predicted)
{
	struct agents *s = agents;

	s->wish = true;
	s->wish_predicted = predicted;
	send_wish(s, false);
	return 0;
}

void agents_upscale_applied(struct agents *s)
{
	s->wish = false;
	s->wish_sent = false;
}
