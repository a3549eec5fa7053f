/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agents.c — the agent-set state machine driven with a fake clock and
 * fake call results: registration, selection, switching, fallbacks, drops,
 * the monitor session as the newer kind of agent, the upscale wish.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agents.h"
#include "log.h"

#define A_ID "0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30"
#define B_ID "b2d94e07-31c8-4f5a-8e2b-6c0f9a7d1e54"
#define C_ID "11111111-2222-4333-8444-555555555555"
#define MAX_CALLS 256

struct call {
	enum ap_call_kind kind;
	char id[AP_UUID_STRLEN + 1];
	char addr[AP_ADDR_MAX];
	uint64_t timeout_ms;
	uint64_t token;
	bool done; /* completed or cancelled */
	bool cancelled;
};

struct fake {
	uint64_t now;
	uint64_t due;
	struct call calls[MAX_CALLS];
	size_t ncalls;
	struct metrics m;
	struct agents *s;
	/* last registration answer */
	unsigned reg_status;
	char reg_body[AGENTS_REPLY_MAX];
	int reg_answers;
};

static int fake_call(void *ctx, enum ap_call_kind kind, const char *addr, const struct ap_uuid *id,
		     uint64_t timeout_ms, uint64_t token)
{
	struct fake *f = ctx;
	struct call *c;

	assert_true(f->ncalls < MAX_CALLS);
	c = &f->calls[f->ncalls++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	ap_uuid_format(id, c->id);
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->timeout_ms = timeout_ms;
	c->token = token;
	return 0;
}

static void fake_cancel(void *ctx, uint64_t token)
{
	struct fake *f = ctx;

	for (size_t i = 0; i < f->ncalls; i++)
		if (f->calls[i].token == token && !f->calls[i].done) {
			f->calls[i].done = true;
			f->calls[i].cancelled = true;
			return;
		}
	fail_msg("cancel of unknown or finished call %llu", (unsigned long long)token);
}

static uint64_t fake_now(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static void fake_schedule(void *ctx, uint64_t at)
{
	((struct fake *)ctx)->due = at;
}

static const struct agents_timeouts timeouts = {
	.id_check_interval_ms = 10000, .id_check_timeout_ms = 250,
	.register_id_timeout_ms = 250, .resume_timeout_ms = 100,
	.suspend_timeout_ms = 5000, .upscale_timeout_ms = 400,
};

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct agents_io io = { fake_call, fake_cancel, fake_now, fake_schedule, f };

	assert_non_null(f);
	f->now = 1000;
	assert_int_equal(agents_new(&io, &timeouts, &f->m, &f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	agents_free(f->s);
	free(f);
	return 0;
}

static void reg_done(void *arg, unsigned status, const char *body)
{
	struct fake *f = arg;

	f->reg_status = status;
	snprintf(f->reg_body, sizeof(f->reg_body), "%s", body);
	f->reg_answers++;
}

static struct ap_uuid uuid(const char *s)
{
	struct ap_uuid u;

	assert_int_equal(ap_uuid_parse(s, &u), 0);
	return u;
}

/* A pointer to a parsed UUID (a few live at once). */
static const struct ap_uuid *U(const char *s)
{
	static struct ap_uuid ring[4];
	static unsigned next;
	struct ap_uuid *u = &ring[next++ % 4];

	*u = uuid(s);
	return u;
}

static void do_register(struct fake *f, const char *id, const char *addr, uint32_t lo,
			uint32_t hi)
{
	struct ap_agent_desc d = { .agent_id = uuid(id), .min_proto = lo, .max_proto = hi };

	snprintf(d.serve_addr, sizeof(d.serve_addr), "%s", addr);
	f->reg_answers = 0;
	agents_register(f->s, &d, reg_done, f);
}

/* The only open call, or NULL; fails if there are several. */
static struct call *open_call(struct fake *f, enum ap_call_kind kind, const char *id)
{
	struct call *found = NULL;

	for (size_t i = 0; i < f->ncalls; i++) {
		struct call *c = &f->calls[i];

		if (!c->done && c->kind == kind && strcmp(c->id, id) == 0) {
			assert_null(found);
			found = c;
		}
	}
	return found;
}

static size_t open_calls(struct fake *f)
{
	size_t n = 0;

	for (size_t i = 0; i < f->ncalls; i++)
		n += !f->calls[i].done;
	return n;
}

static void finish(struct fake *f, struct call *c, int err, uint64_t seq)
{
	/* -EPROTO stands for an answer with status 404, other errors for none. */
	struct ap_call_result res = { .err = err, .seq = seq,
				      .http_status = err == -EPROTO ? 404 : err ? 0 : 200 };

	assert_non_null(c);
	assert_false(c->done);
	if (err)
		snprintf(res.cause, sizeof(res.cause), "Unsuccessful response status 404: gone");
	c->done = true;
	agents_call_done(f->s, c->token, &res);
}

static void finish_open(struct fake *f, enum ap_call_kind kind, const char *id, int err)
{
	finish(f, open_call(f, kind, id), err, 7);
}

static bool is_current(struct fake *f, const char *id)
{
	struct agents_info info;

	return agents_current(f->s, &info) && strcmp(info.id, id) == 0 &&
	       strcmp(info.state, "current") == 0;
}

static bool no_current(struct fake *f)
{
	struct agents_info info;

	return !agents_current(f->s, &info);
}

/* Register id and send its reply: it is now a candidate. */
static void add_registered(struct fake *f, const char *id, const char *addr)
{
	do_register(f, id, addr, 1, 4);
	finish_open(f, AP_CALL_ID, id, 0);
	assert_int_equal(f->reg_status, 200);
	agents_register_sent(f->s, U(id));
}

/* Register id fully and let it become current. */
static void register_current(struct fake *f, const char *id, const char *addr)
{
	add_registered(f, id, addr);
	finish_open(f, AP_CALL_RESUME, id, 0);
	assert_true(is_current(f, id));
}

static void test_register_becomes_current(void **state)
{
	struct fake *f = *state;
	struct call *probe;

	do_register(f, A_ID, "127.0.0.1:1000", 1, 4);
	assert_int_equal(f->reg_answers, 0); /* waits for the probe */
	probe = open_call(f, AP_CALL_ID, A_ID);
	assert_non_null(probe);
	assert_int_equal(probe->timeout_ms, 250);
	assert_string_equal(probe->addr, "127.0.0.1:1000");
	finish(f, probe, 0, 1);
	assert_int_equal(f->reg_answers, 1);
	assert_int_equal(f->reg_status, 200);
	assert_string_equal(f->reg_body,
			    "{\"protoVersion\":4,"
			    "\"metricsMethod\":{\"prometheus\":{\"port\":9100}}}");
	/* D16: nothing is resumed before the reply has been sent. */
	assert_null(open_call(f, AP_CALL_RESUME, A_ID));
	assert_true(no_current(f));
	agents_register_sent(f->s, U(A_ID));
	assert_int_equal(open_call(f, AP_CALL_RESUME, A_ID)->timeout_ms, 100);
	assert_true(no_current(f)); /* not before /resume succeeded */
	finish_open(f, AP_CALL_RESUME, A_ID, 0);
	assert_true(is_current(f, A_ID));
	assert_true(f->m.agent_current);
	assert_int_equal(f->m.agents_registered, 1);
	/* The first background check is due one interval after registration. */
	assert_int_equal(f->due, 1000 + 10000);
}

static void test_register_errors(void **state)
{
	struct fake *f = *state;

	do_register(f, A_ID, "10.0.0.1:1", 1, 3);
	assert_int_equal(f->reg_status, 400);
	assert_string_equal(f->reg_body,
			    "Protocol version mismatch: Need v2.0 but got v1.0 to v1.2");
	assert_int_equal(open_calls(f), 0);

	do_register(f, A_ID, "10.0.0.1:1", 1, 4);
	/* D5: a duplicate gets 409 even with versions that cannot match. */
	do_register(f, A_ID, "10.0.0.1:1", 1, 3);
	assert_int_equal(f->reg_status, 409);
	assert_string_equal(f->reg_body, "Agent with ID " A_ID " is already registered");

	f->reg_answers = 0;
	finish_open(f, AP_CALL_ID, A_ID, -EPROTO);
	assert_int_equal(f->reg_answers, 1);
	assert_int_equal(f->reg_status, 400);
	/* The status, never the body of whatever answered at that address. */
	assert_string_equal(f->reg_body, "Error checking ID for agent 10.0.0.1:1/" A_ID
					 ": Unsuccessful response status 404");
	/* Forgotten: the same ID may try again. */
	assert_int_equal(agents_count(f->s), 0);
	do_register(f, A_ID, "10.0.0.1:1", 1, 4);
	assert_non_null(open_call(f, AP_CALL_ID, A_ID));
}

/* /register naming some other HTTP service: its answer is not relayed,
 * whatever its status; a 200 that is not an agent's shows no body either. */
static void test_register_relays_no_third_party_body(void **state)
{
	struct fake *f = *state;
	struct ap_call_result res = { .err = -EPROTO, .http_status = 403 };
	struct call *probe;

	do_register(f, A_ID, "10.0.0.9:80", 1, 4);
	snprintf(res.cause, sizeof(res.cause),
		 "Unsuccessful response status 403: internal-only: db_password=hunter2");
	probe = open_call(f, AP_CALL_ID, A_ID);
	probe->done = true;
	agents_call_done(f->s, probe->token, &res);
	assert_int_equal(f->reg_status, 400);
	assert_string_equal(f->reg_body, "Error checking ID for agent 10.0.0.9:80/" A_ID
					 ": Unsuccessful response status 403");
	do_register(f, A_ID, "10.0.0.9:80", 1, 4);
	res = (struct ap_call_result){ .err = -EBADMSG, .http_status = 200 };
	snprintf(res.cause, sizeof(res.cause), "Error reading response as JSON: invalid JSON "
		 "at byte 0: '[' or '{' expected near 'hunter2'");
	probe = open_call(f, AP_CALL_ID, A_ID);
	probe->done = true;
	agents_call_done(f->s, probe->token, &res);
	assert_int_equal(f->reg_status, 400);
	assert_null(strstr(f->reg_body, "hunter2"));
	assert_non_null(strstr(f->reg_body, ": Error reading response as JSON: "));
}

/* Registrations whose probe never completes cannot take the agents'
 * slots: at most AGENTS_MAX_REGISTERING run at once. */
static void test_registrations_in_progress_bounded(void **state)
{
	struct fake *f = *state;
	char id[AP_UUID_STRLEN + 1];

	for (unsigned i = 0; i < AGENTS_MAX_REGISTERING; i++) {
		snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012u", i);
		do_register(f, id, "10.0.0.1:1", 1, 4);
	}
	assert_int_equal(open_calls(f), AGENTS_MAX_REGISTERING);
	f->reg_answers = 0;
	do_register(f, A_ID, "10.0.0.1:1", 1, 4);
	assert_int_equal(f->reg_answers, 1);
	assert_int_equal(f->reg_status, 503);
	assert_string_equal(f->reg_body, "Too many registrations in progress");
	/* One probe ends (its timeout): the next registration gets through. */
	finish_open(f, AP_CALL_ID, "00000000-0000-4000-8000-000000000000", -ETIMEDOUT);
	do_register(f, A_ID, "10.0.0.1:1", 1, 4);
	finish_open(f, AP_CALL_ID, A_ID, 0);
	assert_int_equal(f->reg_status, 200);
	assert_int_equal(agents_count(f->s), AGENTS_MAX_REGISTERING);
}

static void test_unregister_while_registering(void **state)
{
	struct fake *f = *state;
	struct ap_agent_desc d = { .agent_id = uuid(A_ID), .serve_addr = "10.0.0.1:1" };
	struct agents_reply r;
	struct call *probe;

	do_register(f, A_ID, "10.0.0.1:1", 1, 4);
	probe = open_call(f, AP_CALL_ID, A_ID);
	agents_unregister(f->s, &d, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"wasActive\":false}");
	assert_true(probe->cancelled);
	assert_int_equal(f->reg_status, 400);
	assert_string_equal(f->reg_body,
			    "Error checking ID for agent 10.0.0.1:1/" A_ID ": context canceled");
}

static void test_switch_order_and_wish(void **state)
{
	struct fake *f = *state;
	struct agents_reply r;
	struct call *suspend;

	register_current(f, A_ID, "10.0.0.1:1");
	add_registered(f, B_ID, "10.0.0.2:2");
	suspend = open_call(f, AP_CALL_SUSPEND, A_ID);
	assert_non_null(suspend);
	assert_int_equal(suspend->timeout_ms, 5000);
	/* Suspend first, resume only after it. */
	assert_null(open_call(f, AP_CALL_RESUME, B_ID));
	/* While leaving, A still scales, B does not yet. */
	assert_true(agents_check_scaler(f->s, U(A_ID), 10, "/upscale", &r));
	assert_false(agents_check_scaler(f->s, U(B_ID), 1, "/upscale", &r));
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "Agent ID " B_ID " is not the active Agent");
	/* D6: a wish during the switch does not go to the leaving agent. */
	agents_request_upscale(f->s, true);
	assert_null(open_call(f, AP_CALL_TRY_UPSCALE, A_ID));
	assert_true(agents_wish_pending(f->s));
	finish(f, suspend, 0, 3);
	assert_true(no_current(f));
	assert_null(open_call(f, AP_CALL_TRY_UPSCALE, B_ID)); /* not before /resume */
	finish_open(f, AP_CALL_RESUME, B_ID, 0);
	assert_true(is_current(f, B_ID));
	/* ... but right after it, the kept wish goes to B. */
	assert_int_equal(open_call(f, AP_CALL_TRY_UPSCALE, B_ID)->timeout_ms, 400);
	assert_int_equal(f->m.upscale_requests_total, 1);
	assert_int_equal(f->m.upscale_requests_predicted_total, 1);
	/* A stays registered (suspended) and answers health checks. */
	agents_health_check(f->s, U(A_ID), &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(f->m.agents_registered, 2);
}

static void test_resume_failure_falls_back(void **state)
{
	struct fake *f = *state;
	struct agents_reply r;

	register_current(f, A_ID, "10.0.0.1:1");
	add_registered(f, B_ID, "10.0.0.2:2");
	finish_open(f, AP_CALL_SUSPEND, A_ID, 0);
	finish_open(f, AP_CALL_RESUME, B_ID, -ETIMEDOUT);
	/* D15: B is dropped and the suspended A is resumed, not left current. */
	assert_true(no_current(f));
	agents_health_check(f->s, U(B_ID), &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "No Agent with ID " B_ID " registered");
	finish_open(f, AP_CALL_RESUME, A_ID, 0);
	assert_true(is_current(f, A_ID));
	assert_int_equal(f->m.agent_drops_total, 1);
}

static void test_suspend_failure_drops_old(void **state)
{
	struct fake *f = *state;
	struct agents_reply r;

	register_current(f, A_ID, "10.0.0.1:1");
	add_registered(f, B_ID, "10.0.0.2:2");
	finish_open(f, AP_CALL_SUSPEND, A_ID, -ETIMEDOUT);
	agents_health_check(f->s, U(A_ID), &r);
	assert_int_equal(r.status, 404);
	finish_open(f, AP_CALL_RESUME, B_ID, 0);
	assert_true(is_current(f, B_ID));
}

static void test_newer_registration_during_switch(void **state)
{
	struct fake *f = *state;

	register_current(f, A_ID, "10.0.0.1:1");
	add_registered(f, B_ID, "10.0.0.2:2");
	add_registered(f, C_ID, "10.0.0.3:3");
	/* One step at a time: no second /suspend, no /resume yet. */
	assert_int_equal(open_calls(f), 1);
	finish_open(f, AP_CALL_SUSPEND, A_ID, 0);
	/* The newest wins; B is never resumed. */
	assert_null(open_call(f, AP_CALL_RESUME, B_ID));
	finish_open(f, AP_CALL_RESUME, C_ID, 0);
	assert_true(is_current(f, C_ID));
	assert_int_equal(open_calls(f), 0);
}

static void test_unregister_current_resumes_previous(void **state)
{
	struct fake *f = *state;
	struct ap_agent_desc d = { .agent_id = uuid(B_ID), .serve_addr = "10.0.0.9:9" };
	struct agents_reply r;

	register_current(f, A_ID, "10.0.0.1:1");
	add_registered(f, B_ID, "10.0.0.2:2");
	finish_open(f, AP_CALL_SUSPEND, A_ID, 0);
	finish_open(f, AP_CALL_RESUME, B_ID, 0);

	agents_unregister(f->s, &d, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "Agent serverAddr is incorrect, got \"10.0.0.9:9\"");
	snprintf(d.serve_addr, sizeof(d.serve_addr), "10.0.0.2:2");
	agents_unregister(f->s, &d, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"wasActive\":true}");
	agents_unregister(f->s, &d, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "No agent with ID \"" B_ID "\"");
	/* The previous agent comes back through /resume. */
	assert_true(no_current(f));
	finish_open(f, AP_CALL_RESUME, A_ID, 0);
	assert_true(is_current(f, A_ID));
	assert_int_equal(f->m.agent_drops_total, 0); /* unregister is not a drop */
}

static void test_drop_after_three_failed_checks(void **state)
{
	struct fake *f = *state;
	struct agents_reply r;

	register_current(f, A_ID, "10.0.0.1:1");
	f->now = f->due;
	agents_tick(f->s);
	assert_int_equal(open_call(f, AP_CALL_ID, A_ID)->timeout_ms, 250);
	assert_int_equal(f->due, 0); /* nothing else due while it runs */
	finish_open(f, AP_CALL_ID, A_ID, -ETIMEDOUT);
	/* D4: a quick retry, the agent stays current. */
	assert_int_equal(f->due, f->now + AGENTS_RETRY_MS);
	assert_true(is_current(f, A_ID));
	/* A success in between resets the count. */
	f->now = f->due;
	agents_tick(f->s);
	finish_open(f, AP_CALL_ID, A_ID, 0);
	assert_int_equal(f->due, f->now + 10000);
	for (int i = 0; i < AGENTS_MAX_FAILURES; i++) {
		assert_true(is_current(f, A_ID));
		f->now = f->due;
		agents_tick(f->s);
		finish_open(f, AP_CALL_ID, A_ID, -ETIMEDOUT);
	}
	assert_true(no_current(f));
	agents_health_check(f->s, U(A_ID), &r);
	assert_int_equal(r.status, 404);
	assert_int_equal(f->m.agent_drops_total, 1);
	assert_false(f->m.agent_current);
	assert_int_equal(f->m.agents_registered, 0);
}

static void test_checks_do_not_run_early(void **state)
{
	struct fake *f = *state;

	register_current(f, A_ID, "10.0.0.1:1");
	f->now = f->due - 1;
	agents_tick(f->s);
	assert_null(open_call(f, AP_CALL_ID, A_ID));
}

/* The set delivers every ask at once (the memory policy paces them); an
 * ask while a /try-upscale is in flight is not doubled. */
static void test_wish_delivered_each_time(void **state)
{
	struct fake *f = *state;

	/* Without a current agent the wish waits. */
	assert_int_equal(agents_request_upscale(f->s, false), 0);
	assert_int_equal(f->m.upscale_requests_total, 0);
	register_current(f, A_ID, "10.0.0.1:1");
	/* ... and goes to the next current agent at once. */
	assert_int_equal(f->m.upscale_requests_total, 1);
	agents_request_upscale(f->s, false); /* one in flight: not doubled */
	assert_int_equal(f->m.upscale_requests_total, 1);
	finish_open(f, AP_CALL_TRY_UPSCALE, A_ID, 0);
	/* No rate limit of its own: the next ask goes out at once (D9). */
	agents_request_upscale(f->s, false);
	finish_open(f, AP_CALL_TRY_UPSCALE, A_ID, 0);
	assert_int_equal(f->m.upscale_requests_total, 2);
	assert_int_equal(f->m.upscale_requests_predicted_total, 0);
	assert_true(agents_wish_pending(f->s));
	/* An /upscale fulfils it; a new wish is sent at once. */
	agents_upscale_applied(f->s);
	assert_false(agents_wish_pending(f->s));
	agents_request_upscale(f->s, true);
	assert_non_null(open_call(f, AP_CALL_TRY_UPSCALE, A_ID));
	assert_int_equal(f->m.upscale_requests_predicted_total, 1);
}

static void test_failed_try_upscale_keeps_wish(void **state)
{
	struct fake *f = *state;

	register_current(f, A_ID, "10.0.0.1:1");
	agents_request_upscale(f->s, false);
	finish_open(f, AP_CALL_TRY_UPSCALE, A_ID, -ETIMEDOUT);
	assert_int_equal(f->m.upscale_requests_failed_total, 1);
	assert_true(agents_wish_pending(f->s));
	assert_true(is_current(f, A_ID)); /* one failure is not a drop */
	agents_request_upscale(f->s, false);
	assert_non_null(open_call(f, AP_CALL_TRY_UPSCALE, A_ID));
}

/* ---- the monitor session as the newer kind of agent ---------------------- */

struct fake_session {
	int asks;
	int fail;
};

static int session_ask(void *session)
{
	struct fake_session *fs = session;

	fs->asks++;
	return fs->fail;
}

static void monitor_up(struct fake *f, struct fake_session *fs)
{
	struct agents_monitor m = { .request_upscale = session_ask, .session = fs, .version = 1 };

	snprintf(m.peer, sizeof(m.peer), "10.0.0.9:%d", fs->fail ? 2 : 1);
	agents_monitor_up(f->s, &m);
}

static bool monitor_current(struct fake *f)
{
	struct agents_info info;

	return agents_current(f->s, &info) && strcmp(info.protocol, "monitor") == 0 &&
	       strcmp(info.state, "current") == 0 && info.proto == 1 && info.id[0] == '\0';
}

static void test_monitor_wins_over_http(void **state)
{
	struct fake *f = *state;
	struct fake_session fs = { 0 };
	struct agents_reply r;

	register_current(f, A_ID, "10.0.0.1:1");
	monitor_up(f, &fs);
	/* The HTTP agent is suspended; the session is current at once. */
	assert_true(monitor_current(f));
	assert_true(f->m.agent_current);
	finish_open(f, AP_CALL_SUSPEND, A_ID, 0);
	assert_true(monitor_current(f));
	assert_false(agents_check_scaler(f->s, U(A_ID), 9, "/upscale", &r));
	assert_int_equal(r.status, 400);
	/* A new HTTP registration waits: no /resume while the session is up. */
	add_registered(f, B_ID, "10.0.0.2:2");
	assert_null(open_call(f, AP_CALL_RESUME, B_ID));
	assert_int_equal(open_calls(f), 0);
	/* The session ends: the newest HTTP agent is resumed. */
	agents_monitor_down(f->s, &fs);
	assert_true(no_current(f));
	assert_false(f->m.agent_current);
	finish_open(f, AP_CALL_RESUME, B_ID, 0);
	assert_true(is_current(f, B_ID));
}

static void test_monitor_wish(void **state)
{
	struct fake *f = *state;
	struct fake_session one = { 0 }, two = { 0 };

	/* Kept without an agent, delivered to the session once it is up. */
	agents_request_upscale(f->s, true);
	monitor_up(f, &one);
	assert_int_equal(one.asks, 1);
	assert_int_equal(f->m.upscale_requests_predicted_total, 1);
	/* Every ask goes out (UpscaleRequest has nothing in flight). */
	agents_request_upscale(f->s, false);
	agents_request_upscale(f->s, false);
	assert_int_equal(one.asks, 3);
	assert_int_equal(f->m.upscale_requests_total, 3);
	/* A newer session replaces it and gets the pending wish at once; the
	 * old one's late "down" changes nothing. */
	monitor_up(f, &two);
	assert_int_equal(two.asks, 1);
	agents_monitor_down(f->s, &one);
	assert_true(monitor_current(f));
	/* A failed send is counted; the wish stays for the next agent. */
	two.fail = -EPIPE;
	agents_request_upscale(f->s, false);
	assert_int_equal(f->m.upscale_requests_failed_total, 1);
	agents_monitor_down(f->s, &two);
	assert_true(no_current(f));
	assert_true(agents_wish_pending(f->s));
	register_current(f, A_ID, "10.0.0.1:1");
	assert_non_null(open_call(f, AP_CALL_TRY_UPSCALE, A_ID));
	/* Applied: no more asks anywhere. */
	agents_upscale_applied(f->s);
	finish_open(f, AP_CALL_TRY_UPSCALE, A_ID, 0);
	monitor_up(f, &one);
	assert_int_equal(one.asks, 3);
}

/* A monitor session comes up while an HTTP agent is being resumed: the
 * resume finishes, then that agent is suspended right away. */
static void test_monitor_up_during_resume(void **state)
{
	struct fake *f = *state;
	struct fake_session fs = { 0 };

	add_registered(f, A_ID, "10.0.0.1:1");
	assert_non_null(open_call(f, AP_CALL_RESUME, A_ID));
	agents_request_upscale(f->s, false);
	monitor_up(f, &fs);
	assert_int_equal(fs.asks, 1);
	finish_open(f, AP_CALL_RESUME, A_ID, 0);
	/* The wish went to the session, not to the HTTP agent. */
	assert_null(open_call(f, AP_CALL_TRY_UPSCALE, A_ID));
	assert_non_null(open_call(f, AP_CALL_SUSPEND, A_ID));
	assert_true(monitor_current(f));
}

static void test_check_scaler(void **state)
{
	struct fake *f = *state;
	struct agents_reply r;

	assert_false(agents_check_scaler(f->s, U(B_ID), 5, "/downscale",
					 &r));
	/* D5: unknown agents get 404. */
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "No Agent with ID " B_ID " registered");
	register_current(f, A_ID, "10.0.0.1:1");
	assert_true(agents_check_scaler(f->s, U(A_ID), 5, "/upscale", &r));
	/* D23: a stale number is logged, not refused. */
	assert_true(agents_check_scaler(f->s, U(A_ID), 4, "/upscale", &r));
}

static void test_free_answers_pending_registration(void **state)
{
	struct fake *f = *state;

	do_register(f, A_ID, "10.0.0.1:1", 1, 4);
	agents_free(f->s);
	f->s = NULL;
	assert_int_equal(f->reg_status, 503);
	assert_true(f->calls[0].cancelled);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_register_becomes_current),
		T(test_register_errors),
		T(test_register_relays_no_third_party_body),
		T(test_registrations_in_progress_bounded),
		T(test_unregister_while_registering),
		T(test_switch_order_and_wish),
		T(test_resume_failure_falls_back),
		T(test_suspend_failure_drops_old),
		T(test_newer_registration_during_switch),
		T(test_unregister_current_resumes_previous),
		T(test_drop_after_three_failed_checks),
		T(test_checks_do_not_run_early),
		T(test_wish_delivered_each_time),
		T(test_failed_try_upscale_keeps_wish),
		T(test_monitor_wins_over_http),
		T(test_monitor_wish),
		T(test_monitor_up_during_resume),
		T(test_check_scaler),
		T(test_free_answers_pending_registration),
	};

	log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
