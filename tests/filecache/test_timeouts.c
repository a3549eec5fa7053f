/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_timeouts.c — the connect and query timeouts, against tiny fake
 * servers on loopback (no Postgres needed): a listener that never answers
 * the startup packet, and one that completes the startup (trust
 * authentication) and then never answers a statement.  Both must end the
 * operation with -ETIMEDOUT, close the connection, and keep the password
 * out of the message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pgtest.h"

struct fake {
	int listener, conn;
	bool answer_startup;   /* send AuthenticationOk + ReadyForQuery */
	unsigned char in[1024];
	size_t got;
	bool answered;
	bool saw_eof;          /* the client closed the connection */
};

static int listen_loopback(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 4), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return s;
}

static void fake_answer(struct fake *f)
{
	/* AuthenticationOk, then ReadyForQuery (idle). */
	static const unsigned char reply[] = { 'R', 0, 0, 0, 8, 0, 0, 0, 0,
					       'Z', 0, 0, 0, 5, 'I' };
	assert_int_equal(write(f->conn, reply, sizeof(reply)), (ssize_t)sizeof(reply));
	f->answered = true;
}

static void fake_read(struct fake *f)
{
	ssize_t n = read(f->conn, f->in + f->got, sizeof(f->in) - f->got);
	if (n == 0) {
		f->saw_eof = true;
		return;
	}
	if (n < 0)
		return;
	f->got += (size_t)n;
	if (f->answer_startup && !f->answered && f->got >= 4) {
		size_t len = (size_t)f->in[0] << 24 | (size_t)f->in[1] << 16 |
			     (size_t)f->in[2] << 8 | f->in[3];
		if (f->got >= len)
			fake_answer(f);
	}
	if (f->got == sizeof(f->in))
		f->got = 0; /* only the startup packet matters */
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Serves the fake and drives fc until res is done and the client has
 * closed the connection, at most timeout_ms. */
static void drive_with_fake(struct fc *fc, struct fake *f, struct pgtest_result *res,
			    int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!(res->done && f->saw_eof)) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			fail_msg("bounded wait over: done %d, client closed %d", res->done,
				 f->saw_eof);
		struct pollfd p[2] = {
			{ .fd = fc_fd(fc), .events = POLLIN },
			{ .fd = f->conn >= 0 ? f->conn : f->listener, .events = POLLIN },
		};
		/* The silent listener answers nothing until the client gave up. */
		bool serve = f->conn >= 0 || f->answer_startup || res->done;
		if (poll(p, serve ? 2 : 1, (int)left) < 0)
			continue;
		if (p[0].revents)
			assert_int_equal(fc_process(fc), 0);
		if (!serve || !p[1].revents)
			continue;
		if (f->conn < 0)
			f->conn = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
		else
			fake_read(f);
	}
}

static struct fc *new_fc_port(int port, uint32_t connect_ms, uint32_t query_ms)
{
	char connstr[256], err[512];
	snprintf(connstr, sizeof(connstr),
		 "host=127.0.0.1 port=%d user=u password=hunter2 sslmode=disable "
		 "gssencmode=disable", port);
	struct fc_pg_config cfg = {
		.connstr = connstr,
		.connect_timeout_ms = connect_ms,
		.query_timeout_ms = query_ms,
	};
	struct fc *fc = NULL;
	if (fc_new(&cfg, &fc, err, sizeof(err)) < 0)
		fail_msg("fc_new: %s", err);
	assert_null(strstr(fc_connstr_display(fc), "hunter2"));
	return fc;
}

static void run_case(bool answer_startup, const char *want_text)
{
	struct fake f = { .conn = -1, .answer_startup = answer_startup };
	int port;
	f.listener = listen_loopback(&port);
	struct fc *fc = new_fc_port(port, 300, 300);
	struct pgtest_result res = { 0 };

	assert_int_equal(fc_set_size(fc, 1ull << 30, pgtest_done_cb, &res), 0);
	drive_with_fake(fc, &f, &res, 10000);
	assert_int_equal(res.err, -ETIMEDOUT);
	if (!strstr(res.msg, want_text))
		fail_msg("\"%s\" lacks \"%s\"", res.msg, want_text);
	assert_null(strstr(res.msg, "hunter2"));
	assert_non_null(strstr(res.msg, "password=***"));
	assert_int_equal(f.answered, answer_startup);
	fc_free(fc);
	close(f.conn);
	close(f.listener);
}

static void test_connect_timeout(void **state)
{
	run_case(false, "connecting timed out after 300 ms");
}

static void test_query_timeout(void **state)
{
	run_case(true, "statements did not finish within 300 ms");
}

/* fc_ensure_size keeps trying through timeouts, with growing delays. */
static void test_ensure_retries_after_timeouts(void **state)
{
	int port;
	int listener = listen_loopback(&port);
	struct fc *fc = new_fc_port(port, 50, 50);
	struct pgtest_result res = { 0 };

	assert_int_equal(fc_ensure_size(fc, 1ull << 30, pgtest_done_cb, pgtest_retry_cb, &res), 0);
	int64_t deadline = now_ms() + 10000;
	/* Nothing accepts: each attempt times out (in the handshake, or in
	 * SYN_SENT once the backlog is full). */
	while (res.retries < 3 && now_ms() < deadline) {
		struct pollfd p = { .fd = fc_fd(fc), .events = POLLIN };
		if (poll(&p, 1, 100) > 0)
			assert_int_equal(fc_process(fc), 0);
	}
	assert_true(res.retries >= 3);
	assert_int_equal(res.last_retry_err, -ETIMEDOUT);
	assert_false(res.done);
	fc_free(fc); /* cancels the ensure */
	assert_true(res.done);
	assert_int_equal(res.err, -ECANCELED);
	close(listener);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_query_timeout),
		cmocka_unit_test(test_ensure_retries_after_timeouts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
