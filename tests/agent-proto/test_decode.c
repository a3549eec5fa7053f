/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoders: bad input is -EINVAL with a message naming the member; what
 * the reference accepts (missing members, null, UUID forms, bare-number
 * quantities) is accepted with the right values; the "bad JSON" requests
 * of error-responses.json are rejected.
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

#include "agent_proto.h"
#include "kinds.h"
#include "vectors.h"

static const char agent_id_text[] = "0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30";

static const struct {
	enum kind kind;
	const char *body;
	const char *field; /* must appear in the error message */
} bad[] = {
	{ K_AGENT_DESC, "", "empty body" },
	{ K_AGENT_DESC, "{\"agentID\":", "invalid JSON" },
	{ K_AGENT_DESC, "{} x", "invalid JSON" },
	{ K_AGENT_DESC, "{}{}", "invalid JSON" },
	{ K_AGENT_DESC, "[]", "JSON object" },
	{ K_AGENT_DESC, "{\"agentID\":\"not-a-uuid\"}", "agentID" },
	{ K_AGENT_DESC, "{\"agentID\":5}", "agentID" },
	{ K_AGENT_DESC, "{\"agentID\":\"0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f3g\"}", "agentID" },
	{ K_AGENT_DESC, "{\"agentID\":\"0f8c3b1e5d2a-4c7e-9b61-7a4e2d9c1f30x\"}", "agentID" },
	{ K_AGENT_DESC, "{\"agentServeAddr\":7}", "agentServeAddr" },
	{ K_AGENT_DESC, "{\"minProtoVersion\":\"1\"}", "minProtoVersion" },
	{ K_AGENT_DESC, "{\"minProtoVersion\":-1}", "minProtoVersion" },
	{ K_AGENT_DESC, "{\"maxProtoVersion\":1.5}", "maxProtoVersion" },
	{ K_AGENT_DESC, "{\"maxProtoVersion\":4.0}", "maxProtoVersion" },
	{ K_AGENT_DESC, "{\"maxProtoVersion\":1e2}", "maxProtoVersion" },
	{ K_AGENT_DESC, "{\"maxProtoVersion\":4294967296}", "maxProtoVersion" },
	{ K_AGENT_DESC, "{\"maxProtoVersion\":true}", "maxProtoVersion" },
	{ K_AGENT_IDENT, "{\"agentID\":[\"x\"]}", "agentID" },
	{ K_RESOURCE_MSG, "{\"data\":[]}", "data" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":\"1.5.5\"}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":\"-1\"}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":-1}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":-0.5}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":\"Gi\"}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":\"\"}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":\"16Ei\"}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":true}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"memory\":{}}}", "data.memory" },
	{ K_RESOURCE_MSG, "{\"data\":{\"cpu\":\"abc\",\"memory\":\"1Gi\"}}", "data.cpu" },
	{ K_RESOURCE_MSG, "{\"data\":{\"cpu\":\"18446744073709552\"}}", "data.cpu" },
	{ K_RESOURCE_MSG, "{\"data\":{\"id\":5}}", "data.id" },
	{ K_RESOURCE_MSG, "{\"data\":{\"id\":{\"agentID\":\"x\"}}}", "data.id.agentID" },
	{ K_RESOURCE_MSG, "{\"sequenceNumber\":-1}", "sequenceNumber" },
	{ K_RESOURCE_MSG, "{\"sequenceNumber\":1.5}", "sequenceNumber" },
	{ K_RESOURCE_MSG, "{\"sequenceNumber\":\"1\"}", "sequenceNumber" },
	{ K_AGENT_IDENT_MSG, "{\"data\":{\"agentID\":\"zz\"}}", "data.agentID" },
	{ K_AGENT_IDENT_MSG, "{\"data\":\"x\"}", "data" },
	{ K_AGENT_IDENT_MSG, "{\"sequenceNumber\":-5}", "sequenceNumber" },
	{ K_AGENT_IDENT_MSG, "{\"data\":{}} trailing", "invalid JSON" },
	{ K_INFORMANT_DESC, "{\"protoVersion\":-4}", "protoVersion" },
	{ K_INFORMANT_DESC, "{\"metricsMethod\":5}", "metricsMethod" },
	{ K_INFORMANT_DESC, "{\"metricsMethod\":{\"prometheus\":1}}", "metricsMethod.prometheus" },
	{ K_INFORMANT_DESC, "{\"metricsMethod\":{\"prometheus\":{\"port\":65536}}}",
	  "metricsMethod.prometheus.port" },
	{ K_DOWNSCALE_RESULT, "{\"Ok\":\"true\"}", "Ok" },
	{ K_DOWNSCALE_RESULT, "{\"Ok\":1}", "Ok" },
	{ K_DOWNSCALE_RESULT, "{\"Status\":5}", "Status" },
	{ K_UNREGISTER_RESULT, "{\"wasActive\":1}", "wasActive" },
	{ K_EXPECTED_ID, "{\"expectedID\":\"0f8c3b1e5d2a4c7e9b617a4e2d9c1f3\"}", "expectedID" },
	{ K_EXPECTED_ID, "{\"expectedID\":\"(0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30)\"}",
	  "expectedID" },
	{ K_MORE_RESOURCES, "{\"cpu\":\"no\"}", "cpu" },
	{ K_MORE_RESOURCES, "{\"memory\":0}", "memory" },
	{ K_MORE_RESOURCES, "{\"expectedID\":false}", "expectedID" },
	{ K_EMPTY, "", "empty body" },
	{ K_EMPTY, "[]", "JSON object" },
	{ K_EMPTY, "{", "invalid JSON" },
};

static void expect_rejected(enum kind kind, const char *body, size_t len, const char *field)
{
	char err[256] = "";
	union msg m;
	int r = kind_decode(kind, body, len, &m, err, sizeof(err));

	if (r != -EINVAL)
		fail_msg("%s: expected -EINVAL, got %d", body, r);
	if (!strstr(err, field))
		fail_msg("%s: message \"%s\" does not name \"%s\"", body, err, field);
}

static void test_rejections(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_rejected(bad[i].kind, bad[i].body, strlen(bad[i].body), bad[i].field);
}

/* The limit a message names is the limit that applies: 2^63 - 1 (jansson's
 * integers are int64), both for negative and for too large numbers. */
static void test_sequence_number_limit(void **state)
{
	struct ap_resource_msg m;
	char err[256];

	assert_int_equal(ap_decode_resource_msg("{\"sequenceNumber\":9223372036854775807}", 38,
						&m, err, sizeof(err)), 0);
	assert_true(m.seq == AP_SEQ_MAX);
	for (int i = 0; i < 2; i++) {
		const char *body = i ? "{\"sequenceNumber\":-1}"
				     : "{\"sequenceNumber\":9223372036854775808}";

		assert_int_equal(ap_decode_resource_msg(body, strlen(body), &m, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, "9223372036854775807") || strstr(err, "18446744073709551615"))
			fail_msg("%s: \"%s\" names another limit", body, err);
	}
}

/* {"<key>":"<n times c>"} */
static char *body_with_long_string(const char *key, size_t n)
{
	size_t size = strlen(key) + n + 16;
	char *body = malloc(size);

	assert_non_null(body);
	int head = snprintf(body, size, "{\"%s\":\"", key);
	memset(body + head, 'a', n);
	snprintf(body + head + n, size - (size_t)head - n, "\"}");
	return body;
}

static void test_length_limits(void **state)
{
	char err[256];
	union msg m;
	char *body;

	body = body_with_long_string("agentServeAddr", AP_ADDR_MAX - 1);
	assert_int_equal(kind_decode(K_AGENT_DESC, body, strlen(body), &m, err, sizeof(err)), 0);
	assert_int_equal(strlen(m.desc.serve_addr), AP_ADDR_MAX - 1);
	free(body);
	body = body_with_long_string("agentServeAddr", AP_ADDR_MAX);
	expect_rejected(K_AGENT_DESC, body, strlen(body), "agentServeAddr");
	free(body);

	body = body_with_long_string("Status", AP_STATUS_MAX - 1);
	assert_int_equal(kind_decode(K_DOWNSCALE_RESULT, body, strlen(body), &m, err,
				     sizeof(err)), 0);
	assert_int_equal(strlen(m.down.status), AP_STATUS_MAX - 1);
	free(body);
	body = body_with_long_string("Status", AP_STATUS_MAX);
	expect_rejected(K_DOWNSCALE_RESULT, body, strlen(body), "Status");
	free(body);
}

static void test_uuid_forms_and_null(void **state)
{
	static const char *const forms[] = {
		"0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30",
		"0F8C3B1E-5D2A-4C7E-9B61-7A4E2D9C1F30",
		"0f8c3b1e5d2a4c7e9b617a4e2d9c1f30",
		"{0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30}",
		"urn:uuid:0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30",
		"URN:UUID:0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30",
	};
	struct ap_uuid want, got;
	char body[128], err[256];

	assert_int_equal(ap_uuid_parse(agent_id_text, &want), 0);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		snprintf(body, sizeof(body), "{\"agentID\":\"%s\"}", forms[i]);
		memset(&got, 0xff, sizeof(got));
		if (ap_decode_agent_ident(body, strlen(body), &got, err, sizeof(err)) != 0)
			fail_msg("%s rejected: %s", forms[i], err);
		assert_true(ap_uuid_equal(&got, &want));
	}
	snprintf(body, sizeof(body), "{\"agentID\":null}");
	assert_int_equal(ap_decode_agent_ident(body, strlen(body), &got, err, sizeof(err)), 0);
	assert_true(ap_uuid_is_zero(&got));
}

static void test_missing_members_are_zero(void **state)
{
	char err[256];
	union msg m;

	memset(&m, 0xff, sizeof(m));
	assert_int_equal(kind_decode(K_AGENT_DESC, "{}", 2, &m, err, sizeof(err)), 0);
	assert_true(ap_uuid_is_zero(&m.desc.agent_id));
	assert_string_equal(m.desc.serve_addr, "");
	assert_int_equal(m.desc.min_proto, 0);
	assert_int_equal(m.desc.max_proto, 0);

	memset(&m, 0xff, sizeof(m));
	const char *b = "{\"data\":null,\"sequenceNumber\":null,\"unknown\":[1,2]}";
	assert_int_equal(kind_decode(K_RESOURCE_MSG, b, strlen(b), &m, err, sizeof(err)), 0);
	assert_false(m.res.has_cpu);
	assert_false(m.res.has_memory);
	assert_true(ap_uuid_is_zero(&m.res.agent_id));
	assert_int_equal(m.res.seq, 0);

	memset(&m, 0xff, sizeof(m));
	assert_int_equal(kind_decode(K_INFORMANT_DESC, "{}", 2, &m, err, sizeof(err)), 0);
	assert_int_equal(m.inf.proto_version, 0);
	assert_false(m.inf.has_prometheus);

	memset(&m, 0xff, sizeof(m));
	assert_int_equal(kind_decode(K_MORE_RESOURCES, " {} \n", 5, &m, err, sizeof(err)), 0);
	assert_false(m.more.cpu);
	assert_false(m.more.memory);
	assert_true(ap_uuid_is_zero(&m.more.expected));
}

static const struct {
	const char *data; /* members of "data" */
	bool has_cpu;
	uint64_t cpu_milli;
	bool has_memory;
	uint64_t memory_bytes;
} resources[] = {
	{ "\"cpu\":\"2\",\"memory\":\"4Gi\"", true, 2000, true, 4294967296 },
	{ "\"cpu\":\"250m\",\"memory\":\"1536Mi\"", true, 250, true, 1610612736 },
	{ "\"cpu\":0.25,\"memory\":4294967296", true, 250, true, 4294967296 },
	{ "\"cpu\":1,\"memory\":1.5e9", true, 1000, true, 1500000000 },
	{ "\"memory\":0.1", false, 0, true, 1 },
	{ "\"memory\":\"1.5Gi\"", false, 0, true, 1610612736 },
	{ "\"memory\":\"3221225472\"", false, 0, true, 3221225472 },
	{ "\"cpu\":\"1500m\"", true, 1500, false, 0 },
	{ "\"cpu\":null,\"memory\":null", false, 0, false, 0 },
};

static void test_resource_quantities(void **state)
{
	char body[256], err[256];
	struct ap_resource_msg m;

	for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
		snprintf(body, sizeof(body), "{\"data\":{%s,\"id\":{\"agentID\":\"%s\"}},"
			 "\"sequenceNumber\":9223372036854775807}", resources[i].data,
			 agent_id_text);
		if (ap_decode_resource_msg(body, strlen(body), &m, err, sizeof(err)) != 0)
			fail_msg("%s rejected: %s", body, err);
		assert_int_equal(m.has_cpu, resources[i].has_cpu);
		assert_int_equal(m.cpu_milli, resources[i].cpu_milli);
		assert_int_equal(m.has_memory, resources[i].has_memory);
		assert_int_equal(m.memory_bytes, resources[i].memory_bytes);
		assert_int_equal(m.seq, INT64_MAX);
		assert_false(ap_uuid_is_zero(&m.agent_id));
	}
}

/* Kind of the informant's request body for a path of error-responses.json. */
static bool request_kind(const char *path, enum kind *kind)
{
	if (strcmp(path, "/register") == 0 || strcmp(path, "/unregister") == 0)
		*kind = K_AGENT_DESC;
	else if (strcmp(path, "/health-check") == 0)
		*kind = K_AGENT_IDENT;
	else if (strcmp(path, "/upscale") == 0 || strcmp(path, "/downscale") == 0)
		*kind = K_RESOURCE_MSG;
	else
		return false;
	return true;
}

/* Requests the reference answers "bad JSON" must be rejected; requests it
 * gets past decoding with must decode. */
static void test_error_response_requests(void **state)
{
	json_t *rows = vec_json("error-responses.json"), *row;
	size_t i, rejected = 0;

	json_array_foreach(rows, i, row) {
		const char *method = vec_str(row, "method"), *path = vec_str(row, "path");
		const char *body = vec_str(row, "requestBody");
		json_t *expect = json_object_get(row, "body");
		enum kind kind;
		char err[256];
		union msg m;

		if (vec_int(row, "status") == 405 || !request_kind(path, &kind))
			continue;
		int r = kind_decode(kind, body, strlen(body), &m, err, sizeof(err));
		if (json_is_string(expect) && strcmp(json_string_value(expect), "bad JSON") == 0) {
			if (r != -EINVAL)
				fail_msg("%s %s %s: accepted", method, path, body);
			rejected++;
		} else if (r != 0) {
			fail_msg("%s %s %s: rejected: %s", method, path, body, err);
		}
	}
	assert_int_equal(rejected, 5);
	json_decref(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_sequence_number_limit),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_uuid_forms_and_null),
		cmocka_unit_test(test_missing_members_are_zero),
		cmocka_unit_test(test_resource_quantities),
		cmocka_unit_test(test_error_response_requests),
	};

	return cmocka_run_group_tests_name("agent-proto-decode", tests, NULL, NULL);
}
