/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http.c — the HTTP server on a real loop and socket with test routes:
 * 404/301/405/413/401 handling, answers given later (suspend/resume),
 * completion callbacks, request metrics, garbage on the socket, and the
 * connection limits and deadlines (server_conns.c).
 * A client thread talks raw HTTP/1.1; the main thread runs the loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "loop.h"
#include "server.h"

struct env {
	struct loop *loop;
	struct server *srv;
	struct metrics m;
	struct loop_timer *later;
	struct server_req *pending;
	int done_calls;
};

static void on_echo(void *ctx, struct server_req *r, const char *body, size_t len)
{
	char out[64];

	(void)ctx;
	(void)body;
	snprintf(out, sizeof(out), "{\"len\":%zu}", len);
	server_respond(r, 200, SERVER_CT_JSON, out);
}

static void later_fired(void *arg)
{
	struct env *e = arg;

	server_respond(e->pending, 200, SERVER_CT_JSON, "{\"late\":true}");
	e->pending = NULL;
}

static void later_done(void *ctx, struct server_req *r)
{
	(void)r;
	((struct env *)ctx)->done_calls++;
}

static void on_later(void *ctx, struct server_req *r, const char *body, size_t len)
{
	struct env *e = ctx;

	(void)body;
	(void)len;
	e->pending = r;
	server_req_on_done(r, later_done);
	assert_int_equal(loop_timer_arm(e->later, 50, 0), 0);
}

static const struct server_route routes[] = {
	{ "/echo", "POST", EP_REGISTER, on_echo },
	{ "/later", "PUT", EP_UPSCALE, on_later },
};

/* ---- client thread ----------------------------------------------------------- */

struct exchange {
	uint16_t port;
	const char *request;
	size_t request_len;
	char response[8192];
	atomic_bool finished;
};

static void *client(void *arg)
{
	struct exchange *x = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(x->port) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t n;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, x->request, x->request_len, MSG_NOSIGNAL) >= 0)
		while (got + 1 < sizeof(x->response) &&
		       (n = recv(fd, x->response + got, sizeof(x->response) - 1 - got, 0)) > 0)
			got += (size_t)n;
	x->response[got] = '\0';
	close(fd);
	atomic_store(&x->finished, true);
	return NULL;
}

/* Send raw bytes, run the loop until the server closed or 5 s passed. */
static const char *exchange(struct env *e, struct exchange *x, const char *req, size_t len)
{
	pthread_t t;
	uint64_t deadline = loop_now_ms() + 5000;

	memset(x, 0, sizeof(*x));
	x->port = server_port(e->srv);
	x->request = req;
	x->request_len = len;
	assert_int_equal(pthread_create(&t, NULL, client, x), 0);
	while (!atomic_load(&x->finished) && loop_now_ms() < deadline)
		assert_true(loop_run_once(e->loop, 10) >= 0);
	pthread_join(t, NULL);
	/* Let the completion callbacks run. */
	for (int i = 0; i < 5; i++)
		loop_run_once(e->loop, 1);
	return x->response;
}

static const char *request(struct env *e, struct exchange *x, const char *req)
{
	return exchange(e, x, req, strlen(req));
}

static int setup_with(void **state, const struct server_options *o)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[256] = "";

	assert_non_null(e);
	assert_int_equal(loop_new(&e->loop), 0);
	assert_int_equal(loop_timer_new(e->loop, later_fired, e, &e->later), 0);
	if (server_new(e->loop, o, routes, 2, e, &e->m, &e->srv, err, sizeof(err)) < 0)
		fail_msg("server_new: %s", err);
	*state = e;
	return 0;
}

static int setup_with_token(void **state, const char *token)
{
	struct server_options o = {
		.host = "127.0.0.1", .port = 0, .max_body_bytes = 1024, .token = token,
		.max_connections = 8, .max_connections_per_address = 8, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_s = 5, .connection_memory_limit = 16384,
	};

	return setup_with(state, &o);
}

static int setup(void **state)
{
	return setup_with_token(state, NULL);
}

static int setup_auth(void **state)
{
	return setup_with_token(state, "t0ken");
}

static int teardown(void **state)
{
	struct env *e = *state;

	server_free(e->srv);
	loop_timer_free(e->later);
	loop_free(e->loop);
	free(e);
	return 0;
}

#define CLOSE "Connection: close\r\n"
#define ECHO_EMPTY "POST /echo HTTP/1.1\r\nHost: a\r\n" CLOSE "Content-Length: 0\r\n\r\n"

static void assert_status(const char *resp, const char *status_line)
{
	if (strncmp(resp, status_line, strlen(status_line)) != 0)
		fail_msg("want \"%s\", got \"%.200s\"", status_line, resp);
}

static const char *body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	assert_non_null(p);
	return p + 4;
}

static void test_not_found(void **state)
{
	struct env *e = *state;
	struct exchange x;
	const char *r;

	r = request(e, &x, "GET /nothing HTTP/1.1\r\nHost: a\r\n" CLOSE "\r\n");
	assert_status(r, "HTTP/1.1 404");
	assert_string_equal(body_of(r), "404 page not found\n");
	assert_non_null(strstr(r, "X-Content-Type-Options: nosniff"));
	assert_non_null(strstr(r, "Content-Type: text/plain; charset=utf-8"));
	r = request(e, &x, "POST /echo/ HTTP/1.1\r\nHost: a\r\n" CLOSE "Content-Length: 0\r\n\r\n");
	assert_status(r, "HTTP/1.1 404");
	assert_int_equal(e->m.requests_total[EP_OTHER][metrics_status_slot(404)], 2);
}

static void test_redirect_unclean(void **state)
{
	struct env *e = *state;
	struct exchange x;
	const char *r;

	r = request(e, &x, "POST //echo HTTP/1.1\r\nHost: a\r\n" CLOSE "Content-Length: 0\r\n\r\n");
	assert_status(r, "HTTP/1.1 301");
	assert_non_null(strstr(r, "Location: /echo\r\n"));
	r = request(e, &x, "POST /x/../echo HTTP/1.1\r\nHost: a\r\n" CLOSE
			   "Content-Length: 0\r\n\r\n");
	assert_status(r, "HTTP/1.1 301");
	assert_non_null(strstr(r, "Location: /echo\r\n"));
}

static void test_wrong_method(void **state)
{
	struct env *e = *state;
	struct exchange x;
	const char *r;

	r = request(e, &x, "GET /echo HTTP/1.1\r\nHost: a\r\n" CLOSE "\r\n");
	assert_status(r, "HTTP/1.1 405");
	assert_string_equal(body_of(r), "request method must be POST");
	assert_null(strstr(r, "Allow:"));
	r = request(e, &x, "POST /later HTTP/1.1\r\nHost: a\r\n" CLOSE
			   "Content-Length: 2\r\n\r\n{}");
	assert_string_equal(body_of(r), "request method must be PUT");
	assert_int_equal(e->m.requests_total[EP_UPSCALE][metrics_status_slot(405)], 1);
}

static void test_body_and_limits(void **state)
{
	struct env *e = *state;
	static char big[4096];
	struct exchange x;
	const char *r;
	int n;

	r = request(e, &x, "POST /echo HTTP/1.1\r\nHost: a\r\n" CLOSE
			   "Content-Length: 5\r\n\r\nhello");
	assert_status(r, "HTTP/1.1 200");
	assert_string_equal(body_of(r), "{\"len\":5}");
	assert_non_null(strstr(r, "Content-Type: application/json"));
	/* Announced too large: refused (the body is read and discarded). */
	n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: a\r\n" CLOSE
			 "Content-Length: 3000\r\n\r\n");
	memset(big + n, 'y', 3000);
	r = exchange(e, &x, big, (size_t)n + 3000);
	assert_status(r, "HTTP/1.1 413");
	assert_non_null(strstr(r, "request body larger than 1024 bytes"));
	/* Chunked, over the limit while accumulating. */
	n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: a\r\n" CLOSE
			 "Transfer-Encoding: chunked\r\n\r\n800\r\n");
	memset(big + n, 'x', 0x800);
	memcpy(big + n + 0x800, "\r\n0\r\n\r\n", 7);
	r = exchange(e, &x, big, (size_t)n + 0x800 + 7);
	assert_status(r, "HTTP/1.1 413");
	assert_int_equal(e->m.requests_total[EP_REGISTER][metrics_status_slot(413)], 2);
}

static void test_answer_later(void **state)
{
	struct env *e = *state;
	struct exchange x;
	const char *r;

	r = request(e, &x, "PUT /later HTTP/1.1\r\nHost: a\r\n" CLOSE
			   "Content-Length: 2\r\n\r\n{}");
	assert_status(r, "HTTP/1.1 200");
	assert_string_equal(body_of(r), "{\"late\":true}");
	assert_int_equal(e->done_calls, 1);
	assert_int_equal(e->m.latency_count[EP_UPSCALE][metrics_status_slot(200)], 1);
	/* It waited for the 50 ms timer. */
	assert_true(e->m.latency_sum_seconds[EP_UPSCALE][metrics_status_slot(200)] >= 0.045);
	assert_int_equal(server_requests_in_flight(e->srv), 0);
}

static void test_auth_required(void **state)
{
	struct env *e = *state;
	struct exchange x;
	const char *r;

	r = request(e, &x, ECHO_EMPTY);
	assert_status(r, "HTTP/1.1 401");
	assert_non_null(strstr(r, "WWW-Authenticate: Bearer"));
	/* Unknown paths are not revealed either. */
	r = request(e, &x, "GET /nothing HTTP/1.1\r\nHost: a\r\n" CLOSE "\r\n");
	assert_status(r, "HTTP/1.1 401");
	r = request(e, &x, "POST /echo HTTP/1.1\r\nHost: a\r\n" CLOSE
			   "Authorization: Bearer wrong\r\nContent-Length: 0\r\n\r\n");
	assert_status(r, "HTTP/1.1 401");
	r = request(e, &x, "POST /echo HTTP/1.1\r\nHost: a\r\n" CLOSE
			   "Authorization: Bearer t0ken\r\nContent-Length: 0\r\n\r\n");
	assert_status(r, "HTTP/1.1 200");
	assert_int_equal(server_set_token(e->srv, NULL), 0);
	r = request(e, &x, ECHO_EMPTY);
	assert_status(r, "HTTP/1.1 200");
}

static void test_quiesce(void **state)
{
	struct env *e = *state;
	struct exchange x;
	const char *r;

	server_quiesce(e->srv);
	r = request(e, &x, ECHO_EMPTY);
	assert_string_equal(r, ""); /* no longer accepting */
}

/* ---- connection handling: the gate, limits, deadlines ----------------------- */

/* Small limits so the tests see them: 4 connections, 3 per address,
 * 150 ms for a head or a body, 1 s of keep-alive. */
static int setup_tight(void **state)
{
	struct server_options o = {
		.host = "127.0.0.1", .port = 0, .max_body_bytes = 1024,
		.max_connections = 4, .max_connections_per_address = 3, .head_timeout_ms = 150,
		.body_timeout_ms = 150, .idle_timeout_s = 1, .connection_memory_limit = 16384,
	};

	return setup_with(state, &o);
}

/* A connection from src (127.0.0.x), connected and accepted. */
static int open_from(struct env *e, const char *src)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(server_port(e->srv)) };
	struct sockaddr_in from = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, src, &from.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
	assert_true(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);
	for (int i = 0; i < 5; i++)
		loop_run_once(e->loop, 2);
	return fd;
}

static bool closed(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN);
}

static void run_ms(struct env *e, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms;

	while (loop_now_ms() < end)
		loop_run_once(e->loop, 5);
}

/* Garbage gets 400 from the gate; the next client is served. */
static void test_garbage_gets_400_at_once(void **state)
{
	struct env *e = *state;
	struct exchange x;
	const char *r;

	r = exchange(e, &x, "\0\0\0\0\r\n\r\n", 8);
	assert_status(r, "HTTP/1.1 400 Bad Request\r\n");
	assert_string_equal(body_of(r), "400 Bad Request");
	assert_int_equal(e->m.http_connections_dropped_total[METRICS_DROP_GARBAGE], 1);
	assert_int_equal(e->m.requests_total[EP_OTHER][metrics_status_slot(400)], 1);
	r = request(e, &x, ECHO_EMPTY);
	assert_status(r, "HTTP/1.1 200");
}

/* Refused from the head, with Expect: the answer, not "100 Continue". */
static void test_refusal_instead_of_continue(void **state)
{
	struct env *e = *state;
	struct exchange x;
	const char *r;

	r = request(e, &x, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n"
			   "Expect: 100-continue\r\n\r\n");
	assert_status(r, "HTTP/1.1 413");
	assert_null(strstr(r, "100 Continue"));
	r = request(e, &x, "PUT /nothing HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
			   "Expect: 100-continue\r\n\r\n");
	assert_status(r, "HTTP/1.1 404");
}

/* A head that does not complete in time ends the connection, however
 * often a byte arrives; so does a body. */
static void test_deadlines_do_not_move(void **state)
{
	struct env *e = *state;
	static const char *const starts[] = {
		"", "GET / HTTP/1.1\r\nX: ", "POST /echo HTTP/1.1\r\nContent-Length: 9\r\n\r\n{",
	};

	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		int fd = open_from(e, "127.0.0.1");
		uint64_t t0 = loop_now_ms();

		assert_int_equal(send(fd, starts[i], strlen(starts[i]), 0), (ssize_t)strlen(starts[i]));
		while (!closed(fd) && loop_now_ms() - t0 < 2000) {
			(void)!send(fd, "a", i == 2 ? 0 : 1, MSG_NOSIGNAL); /* a byte every 10 ms */
			run_ms(e, 10);
		}
		assert_true(closed(fd));
		assert_in_range(loop_now_ms() - t0, 140, 1000);
		close(fd);
	}
	assert_int_equal(e->m.http_connections_dropped_total[METRICS_DROP_DEADLINE], 3);
	run_ms(e, 20);
	assert_int_equal(server_connections(e->srv), 0);
}

/* Past 3 from one address, its oldest idle connection makes room; past 4
 * in all, the oldest of all. */
static void test_limits_make_room(void **state)
{
	struct env *e = *state;
	struct exchange x;
	int fd[4];
	const char *r;

	for (int i = 0; i < 3; i++)
		fd[i] = open_from(e, "127.0.0.1");
	assert_int_equal(server_connections(e->srv), 3);
	r = request(e, &x, ECHO_EMPTY);
	assert_status(r, "HTTP/1.1 200");
	assert_true(closed(fd[0]));
	assert_false(closed(fd[1]) || closed(fd[2]));
	assert_int_equal(e->m.http_connections_dropped_total[METRICS_DROP_EVICTED], 1);
	fd[3] = open_from(e, "127.0.0.2");
	fd[0] = open_from(e, "127.0.0.3"); /* the 4th: fd[1] .. fd[3] and this one */
	assert_int_equal(server_connections(e->srv), 4);
	r = request(e, &x, ECHO_EMPTY);
	assert_status(r, "HTTP/1.1 200");
	assert_true(closed(fd[1]));
	assert_false(closed(fd[2]) || closed(fd[3]) || closed(fd[0]));
	assert_int_equal(e->m.http_connections_dropped_total[METRICS_DROP_EVICTED], 2);
	for (int i = 0; i < 4; i++)
		close(fd[i]);
	assert_int_equal(server_max_connections(1024), 1024 - 256);
	assert_int_equal(server_max_connections(300), 150);
	assert_int_equal(server_max_connections(1 << 20), 4096);
}

/* One connection per address: each newcomer replaces the one before (the
 * address's record must outlive the drop of its only connection). */
static int setup_one_per_address(void **state)
{
	struct server_options o = {
		.host = "127.0.0.1", .port = 0, .max_body_bytes = 1024,
		.max_connections = 2, .max_connections_per_address = 1, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_s = 5, .connection_memory_limit = 16384,
	};

	return setup_with(state, &o);
}

static void test_one_per_address(void **state)
{
	struct env *e = *state;
	int a = open_from(e, "127.0.0.9"), b = open_from(e, "127.0.0.9");
	int c = open_from(e, "127.0.0.10"), d = open_from(e, "127.0.0.11");

	assert_true(closed(a));        /* b took its place */
	assert_true(closed(b));        /* the oldest of all when d came */
	assert_false(closed(c) || closed(d));
	assert_int_equal(server_connections(e->srv), 2);
	assert_int_equal(e->m.http_connections_dropped_total[METRICS_DROP_EVICTED], 2);
	close(a);
	close(b);
	close(c);
	close(d);
}

static void test_bind_failure(void **state)
{
	struct env *e = *state;
	struct server_options o = {
		.host = "127.0.0.1", .port = server_port(e->srv), .max_body_bytes = 1024,
		.max_connections = 8, .max_connections_per_address = 8, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_s = 5, .connection_memory_limit = 16384,
	};
	struct server *second = NULL;
	char err[256] = "";

	assert_true(server_new(e->loop, &o, routes, 2, e, &e->m, &second, err, sizeof(err)) < 0);
	assert_null(second);
	assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
	assert_non_null(strstr(err, "Address already in use"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redirect_unclean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_required, setup_auth, teardown),
		cmocka_unit_test_setup_teardown(test_quiesce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_gets_400_at_once, setup_tight,
						teardown),
		cmocka_unit_test_setup_teardown(test_refusal_instead_of_continue, setup_tight,
						teardown),
		cmocka_unit_test_setup_teardown(test_deadlines_do_not_move, setup_tight, teardown),
		cmocka_unit_test_setup_teardown(test_limits_make_room, setup_tight, teardown),
		cmocka_unit_test_setup_teardown(test_one_per_address, setup_one_per_address,
						teardown),
	};

	log_setup(getenv("VMI_DEBUG") ? LOG_DEBUG : LOG_ERROR, LOG_FORMAT_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
