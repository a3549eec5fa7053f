/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's judgement of replies (table-driven, pure) and its wire
 * behaviour against a canned HTTP server: exact request lines and bodies,
 * no Content-Type, redirects refused, oversized bodies refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "agent_proto.h"
#include "client_internal.h"
#include "helpers.h"

#define VECTOR_ID "0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30"
#define OTHER_ID "b2d94e07-31c8-4f5a-8e2b-6c0f9a7d1e54"

static char *read_vector(const char *name)
{
	const char *dir = getenv("VMI_VECTORS_DIR");
	char path[512];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	buf = calloc(1, 65536);
	assert_non_null(buf);
	len = fread(buf, 1, 65535, f);
	fclose(f);
	/* The vectors have no trailing newline; be tolerant of an editor's one. */
	while (len && (buf[len - 1] == '\n'))
		buf[--len] = '\0';
	return buf;
}

struct judge_case {
	const char *what;
	const char *expected_id;
	long status;
	const char *body; /* NULL: the agent-id-response.json vector */
	int err;
	uint64_t seq;
	const char *cause;  /* exact, or a prefix when cause_prefix */
	bool cause_prefix;
};

static const struct judge_case judge_cases[] = {
	{ "vector reply", VECTOR_ID, 200, NULL, 0, 1, "", false },
	{ "another agent's ID", OTHER_ID, 200, NULL, -EPROTO, 1,
	  "Bad agent identification: expected \"" OTHER_ID "\" but got \"" VECTOR_ID "\"", false },
	{ "sequence number 0", VECTOR_ID, 200,
	  "{\"data\":{\"agentID\":\"" VECTOR_ID "\"},\"sequenceNumber\":0}", -EPROTO, 0,
	  "Got invalid sequence number 0", false },
	{ "sequence checked before the ID", OTHER_ID, 200,
	  "{\"data\":{\"agentID\":\"" VECTOR_ID "\"},\"sequenceNumber\":0}", -EPROTO, 0,
	  "Got invalid sequence number 0", false },
	{ "missing sequence number", VECTOR_ID, 200, "{\"data\":{\"agentID\":\"" VECTOR_ID "\"}}",
	  -EPROTO, 0, "Got invalid sequence number 0", false },
	{ "not JSON", VECTOR_ID, 200, "hello", -EBADMSG, 0, "Error reading response as JSON: ",
	  true },
	{ "trailing data", VECTOR_ID, 200,
	  "{\"data\":{\"agentID\":\"" VECTOR_ID "\"},\"sequenceNumber\":1}x", -EBADMSG, 0,
	  "Error reading response as JSON: ", true },
	{ "empty body", VECTOR_ID, 200, "", -EBADMSG, 0, "Error reading response as JSON: ", true },
	{ "ID not a UUID", VECTOR_ID, 200, "{\"data\":{\"agentID\":\"x\"},\"sequenceNumber\":1}",
	  -EBADMSG, 0, "Error reading response as JSON: ", true },
	{ "agent gone", VECTOR_ID, 404, "Server has already exited", -EPROTO, 0,
	  "Unsuccessful response status 404: Server has already exited", false },
	{ "redirect", VECTOR_ID, 301, "", -EPROTO, 0, "Unsuccessful response status 301: ",
	  false },
	{ "200 body on another status", VECTOR_ID, 201, NULL, -EPROTO, 0,
	  "Unsuccessful response status 201: {\"data\":{\"agentID\":\"" VECTOR_ID
	  "\"},\"sequenceNumber\":1}", false },
};

static void test_judge_table(void **state)
{
	char *vector = read_vector("agent-id-response.json");

	for (size_t i = 0; i < sizeof(judge_cases) / sizeof(judge_cases[0]); i++) {
		const struct judge_case *jc = &judge_cases[i];
		const char *body = jc->body ? jc->body : vector;
		struct ap_call_result res;
		struct ap_uuid expected;

		memset(&res, 0x55, sizeof(res));
		print_message("case: %s\n", jc->what);
		assert_int_equal(ap_uuid_parse(jc->expected_id, &expected), 0);
		ap_client_judge(&expected, jc->status, body, strlen(body), &res);
		assert_int_equal(res.err, jc->err);
		assert_int_equal(res.http_status, jc->status);
		assert_int_equal(res.seq, jc->seq);
		if (jc->cause_prefix) {
			assert_true(strncmp(res.cause, jc->cause, strlen(jc->cause)) == 0);
			assert_true(strlen(res.cause) > strlen(jc->cause));
		} else {
			assert_string_equal(res.cause, jc->cause);
		}
	}
	free(vector);
}

/* A cause never overflows, however long the agent's error text is. */
static void test_judge_long_body(void **state)
{
	struct ap_call_result res;
	struct ap_uuid id = { { 0 } };
	char *body = malloc(AP_CLIENT_MAX_BODY);

	assert_non_null(body);
	memset(body, 'x', AP_CLIENT_MAX_BODY);
	ap_client_judge(&id, 500, body, AP_CLIENT_MAX_BODY, &res);
	assert_int_equal(res.err, -EPROTO);
	assert_int_equal(strlen(res.cause), sizeof(res.cause) - 1);
	free(body);
}

/* Run one call against a canned response; returns the result. */
static struct ap_call_result canned_call(struct canned_server *srv, const char *response,
					 size_t len, enum ap_call_kind kind)
{
	struct ap_client *c;
	struct ap_uuid id;
	struct waiter w = { 0 };

	assert_int_equal(ap_uuid_parse(VECTOR_ID, &id), 0);
	assert_int_equal(canned_start(srv, response, len), 0);
	assert_int_equal(ap_client_new(&c), 0);
	assert_int_equal(ap_client_call(c, kind, srv->addr, &id, 3000, waiter_cb, &w, NULL), 0);
	assert_int_equal(loop_until(c, &w.calls, 1, 5000, NULL), 0);
	ap_client_free(c);
	canned_stop(srv);
	return w.res;
}

static char *http_ok(const char *body)
{
	size_t cap = strlen(body) + 128;
	char *resp = malloc(cap);

	assert_non_null(resp);
	snprintf(resp, cap, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		strlen(body), body);
	return resp;
}

struct request_case {
	enum ap_call_kind kind;
	const char *request_line;
	const char *body;
};

static void test_requests_on_the_wire(void **state)
{
	static const struct request_case cases[] = {
		{ AP_CALL_ID, "GET /id HTTP/1.1\r\n", "{}" },
		{ AP_CALL_SUSPEND, "POST /suspend HTTP/1.1\r\n",
		  "{\"expectedID\":\"" VECTOR_ID "\"}" },
		{ AP_CALL_RESUME, "POST /resume HTTP/1.1\r\n",
		  "{\"expectedID\":\"" VECTOR_ID "\"}" },
		{ AP_CALL_TRY_UPSCALE, "POST /try-upscale HTTP/1.1\r\n",
		  "{\"cpu\":false,\"memory\":true,\"expectedID\":\"" VECTOR_ID "\"}" },
	};
	char *vector = read_vector("agent-id-response.json");
	char *resp = http_ok(vector);
	struct canned_server srv;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ap_call_result r = canned_call(&srv, resp, strlen(resp), cases[i].kind);
		const char *body = strstr(srv.last_request, "\r\n\r\n");

		assert_int_equal(r.err, 0);
		assert_int_equal(r.seq, 1);
		assert_int_equal(srv.requests, 1);
		assert_true(strncmp(srv.last_request, cases[i].request_line,
				    strlen(cases[i].request_line)) == 0);
		assert_null(strcasestr(srv.last_request, "Content-Type"));
		assert_non_null(body);
		assert_string_equal(body + 4, cases[i].body);
	}
	free(resp);
	free(vector);
}

static void test_redirect_refused(void **state)
{
	static const char resp[] = "HTTP/1.1 301 Moved Permanently\r\n"
				   "Location: /elsewhere\r\nContent-Length: 5\r\n"
				   "Connection: close\r\n\r\nmoved";
	struct canned_server srv;
	struct ap_call_result r = canned_call(&srv, resp, sizeof(resp) - 1, AP_CALL_RESUME);

	assert_int_equal(r.err, -EPROTO);
	assert_int_equal(r.http_status, 301);
	assert_string_equal(r.cause, "Unsuccessful response status 301: moved");
	assert_int_equal(srv.requests, 1); /* not followed */
}

static void test_body_too_large(void **state)
{
	size_t n = AP_CLIENT_MAX_BODY + 1000;
	char *body = malloc(n + 1);
	char *resp;
	struct canned_server srv;
	struct ap_call_result r;

	assert_non_null(body);
	memset(body, ' ', n);
	body[n] = '\0';
	resp = http_ok(body);
	r = canned_call(&srv, resp, strlen(resp), AP_CALL_ID);
	assert_int_equal(r.err, -EMSGSIZE);
	assert_int_equal(r.http_status, 200);
	assert_non_null(strstr(r.cause, "larger than 65536 bytes"));
	free(resp);
	free(body);
}

static void test_bad_arguments(void **state)
{
	struct ap_client *c;
	struct ap_uuid id = { { 1 } };
	struct waiter w = { 0 };

	assert_int_equal(ap_client_new(&c), 0);
	assert_true(ap_client_fd(c) >= 0);
	assert_int_equal(ap_client_call(c, AP_CALL_ID, "127.0.0.1:1/x?", &id, 100, waiter_cb, &w,
					NULL), -EINVAL);
	assert_int_equal(ap_client_call(c, AP_CALL_ID, "", &id, 100, waiter_cb, &w, NULL),
			 -EINVAL);
	assert_int_equal(ap_client_call(c, AP_CALL_ID, "user@host:1", &id, 100, waiter_cb, &w,
					NULL), -EINVAL);
	assert_int_equal(ap_client_call(c, AP_CALL_ID, "127.0.0.1:1", &id, 0, waiter_cb, &w,
					NULL), -EINVAL);
	assert_int_equal(ap_client_call(c, (enum ap_call_kind)9, "127.0.0.1:1", &id, 100,
					waiter_cb, &w, NULL), -EINVAL);
	assert_int_equal(ap_client_call(c, AP_CALL_ID, "127.0.0.1:1", &id, 100, NULL, &w, NULL),
			 -EINVAL);
	assert_int_equal(ap_client_pending(c), 0);
	assert_int_equal(ap_client_cancel(c, 12345), -ENOENT);
	assert_int_equal(ap_client_process(c), 0); /* nothing to do, no blocking */
	ap_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_judge_table),
		cmocka_unit_test(test_judge_long_body),
		cmocka_unit_test(test_requests_on_the_wire),
		cmocka_unit_test(test_redirect_refused),
		cmocka_unit_test(test_body_too_large),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
