/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents_select.c — which agent is current, the switch between agents,
 * the monitor session as the newer kind of agent, the background /id
 * checks and the delivery of the upscale wish.
 *
 * The switch is one step at a time (s->switching names the agent of the
 * step in flight):
 *   1. candidate = none while a monitor session is up (it is the current
 *      agent then), else the newest registered agent whose /register 200
 *      has been sent (D16).  Already current (or none and none): done.
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
#include "agents_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

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

	if (s->switching)
		return; /* its completion selects again */
	cand = s->monitor_up ? NULL : newest_candidate(s);
	if (cand == s->current)
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
		  LF_STR("next_agent_id", cand ? cand->id_str : "the monitor session"), LF_END);
	s->switching = a;
	if (agents_start_call(s, a, SLOT_SWITCH, kind, timeout, &res) < 0)
		agents_switch_done(s, a, &res);
}

static void fail_and_drop(struct agents *s, struct agent *a, const char *what,
			  const struct ap_call_result *res)
{
	log_event(LOG_WARN, "agent call failed", LF_STR("agent_id", a->id_str),
		  LF_STR("call", what), LF_STR("cause", res->cause),
		  LF_I64("http_status", res->http_status), LF_END);
	agents_drop(s, a, what);
}

void agents_switch_done(struct agents *s, struct agent *a, const struct ap_call_result *res)
{
	s->switching = NULL;
	if (s->current == a) {
		/* The leaving agent's /suspend: from now on nobody is current. */
		s->current = NULL;
		agents_update_current_gauge(s);
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
	agents_update_current_gauge(s);
	log_event(LOG_INFO, "agent is current", LF_STR("agent_id", a->id_str),
		  LF_STR("agent_addr", a->addr), LF_END);
	agents_deliver_wish(s);
	agents_select(s);
}

/* ---- background /id checks (docs/informant-protocol.md §7.4, D4) -------- */

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

	while (i < s->n) {
		struct agent *a = s->v[i];

		if (a->state != AGENT_REGISTERED || a->token[SLOT_CHECK] ||
		    now < a->next_check_ms) {
			i++;
			continue;
		}
		if (agents_start_call(s, a, SLOT_CHECK, AP_CALL_ID, s->t.id_check_timeout_ms,
				      &res) < 0) {
			/* May drop a: look at index i again rather than past it. */
			size_t n = s->n;

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

/* ---- the monitor session -------------------------------------------------- */

void agents_monitor_up(struct agents *s, const struct agents_monitor *m)
{
	s->monitor = *m;
	s->monitor_up = true;
	s->monitor_since_ms = s->io.now_ms(s->io.ctx);
	agents_update_current_gauge(s);
	log_event(LOG_INFO, "monitor session is the current agent", LF_STR("peer", m->peer),
		  LF_BOOL("suspends_http_agent", s->current != NULL), LF_END);
	agents_select(s); /* suspends an HTTP agent that was current */
	agents_deliver_wish(s);
}

void agents_monitor_down(struct agents *s, void *session)
{
	if (!s->monitor_up || s->monitor.session != session)
		return; /* already replaced by a newer session */
	s->monitor_up = false;
	agents_update_current_gauge(s);
	log_event(LOG_INFO, "monitor session is no longer the current agent",
		  LF_STR("peer", s->monitor.peer), LF_END);
	agents_select(s); /* the newest registered HTTP agent, if any */
	agents_reschedule(s);
}

/* ---- the upscale wish (docs/informant-protocol.md §7.6, D6, D9) --------- */

/* Ask the current agent now; without one the wish waits for the next.  The
 * memory policy decides how often to ask (its back-off), not this set. */
void agents_deliver_wish(struct agents *s)
{
	struct agent *a = s->current;
	struct ap_call_result res;

	if (!s->wish)
		return;
	if (s->monitor_up) {
		s->metrics->upscale_requests_total++;
		s->metrics->upscale_requests_predicted_total += s->wish_predicted;
		log_event(LOG_INFO, "requesting upscale", LF_STR("peer", s->monitor.peer),
			  LF_STR("protocol", "monitor"), LF_BOOL("predicted", s->wish_predicted),
			  LF_END);
		if (s->monitor.request_upscale(s->monitor.session) < 0)
			s->metrics->upscale_requests_failed_total++;
		return;
	}
	if (!a || s->switching == a || a->token[SLOT_UPSCALE])
		return;
	s->metrics->upscale_requests_total++;
	s->metrics->upscale_requests_predicted_total += s->wish_predicted;
	log_event(LOG_INFO, "requesting upscale", LF_STR("agent_id", a->id_str),
		  LF_BOOL("predicted", s->wish_predicted), LF_END);
	if (agents_start_call(s, a, SLOT_UPSCALE, AP_CALL_TRY_UPSCALE, s->t.upscale_timeout_ms,
			      &res) < 0)
		agents_upscale_done(s, a, &res);
}

void agents_upscale_done(struct agents *s, struct agent *a, const struct ap_call_result *res)
{
	if (res->err) {
		/* Unlike the reference the wish survives (D6, D9): the memory
		 * policy asks again, of whoever is current then. */
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
	agents_deliver_wish(s);
	return 0;
}

void agents_upscale_applied(struct agents *s)
{
	s->wish = false;
}
