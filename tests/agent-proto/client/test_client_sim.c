/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The asynchronous client against a real agent-sim over loopback: every call
 * kind, the exact failure causes, timeouts while the caller's loop stays
 * responsive, refused connections, cancellation (also from a callback),
 * calls started from a callback, and many calls at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "agent_proto.h"
#include "helpers.h"

struct fixture {
	struct sim_proc sim;
	struct ap_client *client;
	struct ap_uuid id;
};

static int setup_with(void **state, const char *const *extra)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	assert_int_equal(ap_uuid_parse(TEST_AGENT_ID, &f.id), 0);
	assert_int_equal(sim_start(&f.sim, extra), 0);
	assert_int_equal(ap_client_new(&f.client), 0);
	*state = &f;
	return 0;
}

static int setup_plain(void **state) { return setup_with(state, NULL); }

static int setup_slow_suspend(void **state)
{
	return setup_with(state, (const char *const[]){ "--suspend-delay", "2000", NULL });
}

static int setup_wrong_id(void **state)
{
	return setup_with(state, (const char *const[]){ "--wrong-id", NULL });
}

static int setup_seq_zero(void **state)
{
	return setup_with(state, (const char *const[]){ "--seq-zero", NULL });
}

static int setup_fail_id(void **state)
{
	return setup_with(state, (const char *const[]){ "--fail-id", NULL });
}

static int setup_slow_id(void **state)
{
	return setup_with(state, (const char *const[]){ "--id-delay", "300", NULL });
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ap_client_free(f->client);
	/* agent-sim exits 0 on SIGTERM: a clean shutdown is part of the contract. */
	assert_int_equal(sim_stop(&f->sim), 0);
	return 0;
}

/* One call, run to completion within 3 s. */
static struct ap_call_result call_once(struct fixture *f, enum ap_call_kind kind,
				       uint64_t timeout_ms)
{
	struct waiter w = { 0 };

	assert_int_equal(ap_client_call(f->client, kind, f->sim.addr, &f->id, timeout_ms,
					waiter_cb, &w, NULL), 0);
	assert_int_equal(ap_client_pending(f->client), 1);
	assert_int_equal(loop_until(f->client, &w.calls, 1, 3000, NULL), 0);
	assert_int_equal(w.calls, 1);
	assert_int_equal(ap_client_pending(f->client), 0);
	return w.res;
}

static void test_id_ok(void **state)
{
	struct ap_call_result r = call_once(*state, AP_CALL_ID, 1000);

	assert_int_equal(r.err, 0);
	assert_string_equal(r.cause, "");
	assert_int_equal(r.http_status, 200);
	assert_int_equal(r.seq, 1);
	assert_true(r.elapsed_ms > 0 && r.elapsed_ms < 3000);
}

static void test_resume_try_upscale_suspend(void **state)
{
	struct ap_call_result r;

	r = call_once(*state, AP_CALL_RESUME, 1000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.seq, 1);
	r = call_once(*state, AP_CALL_TRY_UPSCALE, 1000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.seq, 2);
	/* The agent's 400 texts come through as the cause. */
	r = call_once(*state, AP_CALL_RESUME, 1000);
	assert_int_equal(r.err, -EPROTO);
	assert_int_equal(r.http_status, 400);
	assert_string_equal(r.cause, "Unsuccessful response status 400: "
				     "Cannot resume agent that is already running");
	r = call_once(*state, AP_CALL_SUSPEND, 1000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.seq, 3);
	r = call_once(*state, AP_CALL_TRY_UPSCALE, 1000);
	assert_int_equal(r.err, -EPROTO);
	assert_string_equal(r.cause, "Unsuccessful response status 400: "
				     "Cannot process upscale while suspended");
}

static void test_expected_id_mismatch(void **state)
{
	struct fixture *f = *state;
	struct ap_uuid other = f->id;
	struct waiter w = { 0 };

	other.b[0] ^= 0xff;
	assert_int_equal(ap_client_call(f->client, AP_CALL_RESUME, f->sim.addr, &other, 1000,
					waiter_cb, &w, NULL), 0);
	assert_int_equal(loop_until(f->client, &w.calls, 1, 3000, NULL), 0);
	assert_int_equal(w.res.err, -EPROTO);
	assert_string_equal(w.res.cause, "Unsuccessful response status 404: AgentID "
					 "\"f08c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30\" not found");
}

static void test_suspend_timeout_loop_responsive(void **state)
{
	struct fixture *f = *state;
	struct waiter w = { 0 };
	unsigned long ticks = 0;

	assert_int_equal(ap_client_call(f->client, AP_CALL_SUSPEND, f->sim.addr, &f->id, 300,
					waiter_cb, &w, NULL), 0);
	assert_int_equal(loop_until(f->client, &w.calls, 1, 3000, &ticks), 0);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.res.err, -ETIMEDOUT);
	assert_int_equal(w.res.http_status, 0);
	assert_non_null(strstr(w.res.cause, "Post \"http://"));
	/* Generous bounds: the budget was honoured, not a benchmark. */
	assert_true(w.res.elapsed_ms >= 250 && w.res.elapsed_ms <= 1500);
	/* The 5 ms ticker kept running while the call was in flight. */
	assert_true(ticks >= 20);
}

static void test_wrong_id(void **state)
{
	struct ap_call_result r = call_once(*state, AP_CALL_ID, 1000);

	assert_int_equal(r.err, -EPROTO);
	assert_int_equal(r.http_status, 200);
	assert_int_equal(r.seq, 1);
	/* --wrong-id answers with the bitwise complement of the ID. */
	assert_string_equal(r.cause, "Bad agent identification: expected "
				     "\"0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30\" but got "
				     "\"f073c4e1-a2d5-b381-649e-85b1d263e0cf\"");
}

static void test_seq_zero(void **state)
{
	struct ap_call_result r = call_once(*state, AP_CALL_ID, 1000);

	assert_int_equal(r.err, -EPROTO);
	assert_string_equal(r.cause, "Got invalid sequence number 0");
}

static void test_fail_id(void **state)
{
	struct ap_call_result r = call_once(*state, AP_CALL_ID, 1000);

	assert_int_equal(r.err, -EPROTO);
	assert_int_equal(r.http_status, 500);
	assert_string_equal(r.cause, "Unsuccessful response status 500: simulated failure");
}

static void test_connection_refused(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sin);
	struct ap_client *c;
	struct ap_uuid id = { { 1 } };
	struct waiter w = { 0 };
	char addr[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* A port that was just free and is bound by nobody listening. */
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(ap_client_new(&c), 0);
	assert_int_equal(ap_client_call(c, AP_CALL_RESUME, addr, &id, 2000, waiter_cb, &w, NULL),
			 0);
	assert_int_equal(loop_until(c, &w.calls, 1, 3000, NULL), 0);
	assert_int_equal(w.res.err, -ECONNREFUSED);
	assert_int_equal(w.res.http_status, 0);
	assert_true(w.res.elapsed_ms < 1500);
	assert_non_null(strstr(w.res.cause, "/resume\": "));
	ap_client_free(c);
	close(fd);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct waiter w = { 0 };
	uint64_t id;

	assert_int_equal(ap_client_call(f->client, AP_CALL_ID, f->sim.addr, &f->id, 2000,
					waiter_cb, &w, &id), 0);
	/* Let it connect and send, then abort it mid-flight. */
	loop_until(f->client, &w.calls, 1, 50, NULL);
	assert_int_equal(ap_client_cancel(f->client, id), 0);
	assert_int_equal(ap_client_pending(f->client), 0);
	assert_int_equal(ap_client_cancel(f->client, id), -ENOENT);
	assert_int_equal(loop_until(f->client, &w.calls, 1, 600, NULL), -ETIMEDOUT);
	assert_int_equal(w.calls, 0);
}

/* A callback that cancels a slow call and starts a new one. */
struct chain {
	struct fixture *f;
	uint64_t slow_id;
	int cancel_rc;
	struct waiter slow, next;
	int done;
};

static void chain_first_done(void *arg, const struct ap_call_result *res)
{
	struct chain *ch = arg;

	assert_int_equal(res->err, 0);
	ch->cancel_rc = ap_client_cancel(ch->f->client, ch->slow_id);
	assert_int_equal(ap_client_call(ch->f->client, AP_CALL_ID, ch->f->sim.addr, &ch->f->id,
					2000, waiter_cb, &ch->next, NULL), 0);
	ch->done++;
}

static void test_reentrant_callbacks(void **state)
{
	struct fixture *f = *state;
	struct chain ch = { .f = f };

	/* agent-sim delays /id by 300 ms: only the cancel can end the first call early. */
	assert_int_equal(ap_client_call(f->client, AP_CALL_ID, f->sim.addr, &f->id, 2000,
					waiter_cb, &ch.slow, &ch.slow_id), 0);
	assert_int_equal(ap_client_call(f->client, AP_CALL_RESUME, f->sim.addr, &f->id, 2000,
					chain_first_done, &ch, NULL), 0);
	assert_int_equal(loop_until(f->client, &ch.next.calls, 1, 3000, NULL), 0);
	assert_int_equal(ch.done, 1);
	assert_int_equal(ch.next.res.err, 0);
	/* The slow /id was still in flight when the callback cancelled it. */
	assert_int_equal(ch.cancel_rc, 0);
	assert_int_equal(loop_until(f->client, &ch.slow.calls, 1, 600, NULL), -ETIMEDOUT);
	assert_int_equal(ch.slow.calls, 0);
}

#define MANY 40

static void test_many_concurrent(void **state)
{
	struct fixture *f = *state;
	struct waiter w[MANY] = { 0 };
	bool seen[MANY + 1] = { false };
	int done = 0;

	for (int i = 0; i < MANY; i++)
		assert_int_equal(ap_client_call(f->client, AP_CALL_ID, f->sim.addr, &f->id, 5000,
						waiter_cb, &w[i], NULL), 0);
	assert_int_equal(ap_client_pending(f->client), MANY);
	for (int tries = 0; tries < 200 && done < MANY; tries++) {
		int one = 0;

		loop_until(f->client, &one, 1, 50, NULL);
		done = 0;
		for (int i = 0; i < MANY; i++)
			done += w[i].calls;
	}
	assert_int_equal(done, MANY);
	/* Every reply carried its own sequence number 1..MANY. */
	for (int i = 0; i < MANY; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].res.err, 0);
		assert_true(w[i].res.seq >= 1 && w[i].res.seq <= MANY);
		assert_false(seen[w[i].res.seq]);
		seen[w[i].res.seq] = true;
	}
	assert_int_equal(ap_client_pending(f->client), 0);
}

static void test_free_with_calls_in_flight(void **state)
{
	struct fixture *f = *state;
	struct ap_client *c;
	struct waiter w = { 0 };

	assert_int_equal(ap_client_new(&c), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ap_client_call(c, AP_CALL_ID, f->sim.addr, &f->id, 2000,
						waiter_cb, &w, NULL), 0);
	loop_until(c, &w.calls, 1, 20, NULL);
	ap_client_free(c); /* no callbacks, no leaks (ASan) */
	assert_int_equal(w.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_id_ok, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_resume_try_upscale_suspend, setup_plain,
						teardown),
		cmocka_unit_test_setup_teardown(test_expected_id_mismatch, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_suspend_timeout_loop_responsive,
						setup_slow_suspend, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_id, setup_wrong_id, teardown),
		cmocka_unit_test_setup_teardown(test_seq_zero, setup_seq_zero, teardown),
		cmocka_unit_test_setup_teardown(test_fail_id, setup_fail_id, teardown),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test_setup_teardown(test_cancel, setup_slow_id, teardown),
		cmocka_unit_test_setup_teardown(test_reentrant_callbacks, setup_slow_id, teardown),
		cmocka_unit_test_setup_teardown(test_many_concurrent, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_calls_in_flight, setup_slow_id,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
