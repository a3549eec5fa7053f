/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Version negotiation and names: every row of version-negotiation.json and
 * every version-mismatch row of error-responses.json.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent_proto.h"
#include "vectors.h"

static void test_version_names(void **state)
{
	static const char *const names[] = {
		"<invalid: zero>", "v1.0", "v1.1", "v1.2", "v2.0",
		"<unknown = v2.0 + 1>", "<unknown = v2.0 + 2>",
	};
	char buf[64];

	for (uint32_t v = 0; v < sizeof(names) / sizeof(names[0]); v++) {
		ap_version_name(v, buf, sizeof(buf));
		assert_string_equal(buf, names[v]);
	}
	ap_version_name(UINT32_MAX, buf, sizeof(buf));
	assert_string_equal(buf, "<unknown = v2.0 + 4294967291>");
}

static void test_negotiation_table(void **state)
{
	json_t *rows = vec_json("version-negotiation.json"), *row;
	size_t i;

	json_array_foreach(rows, i, row) {
		uint32_t chosen = 0;
		char err[256] = "";
		int r = ap_negotiate((uint32_t)vec_int(row, "agentMin"),
				     (uint32_t)vec_int(row, "agentMax"),
				     (uint32_t)vec_int(row, "informantMin"),
				     (uint32_t)vec_int(row, "informantMax"), &chosen, err,
				     sizeof(err));
		json_t *expect = json_object_get(row, "expect");

		if (json_is_integer(expect)) {
			if (r != 0)
				fail_msg("row %zu: failed: %s", i, err);
			assert_int_equal(vec_int(row, "status"), 200);
			assert_int_equal(chosen, json_integer_value(expect));
		} else {
			assert_string_equal(json_string_value(expect), "error");
			assert_int_equal(vec_int(row, "status"), 400);
			if (r != -EPROTO)
				fail_msg("row %zu: returned %d, want -EPROTO", i, r);
			assert_string_equal(err, vec_str(row, "errorBody"));
		}
	}
	assert_true(i >= 20);
	json_decref(rows);
}

/* /register rows answered with a mismatch: decode the request, negotiate
 * with the informant's own range, compare the body. */
static void test_error_response_mismatches(void **state)
{
	json_t *rows = vec_json("error-responses.json"), *row;
	size_t i, checked = 0;

	json_array_foreach(rows, i, row) {
		json_t *want = json_object_get(row, "body");
		if (!json_is_string(want) ||
		    strncmp(json_string_value(want), "Protocol version mismatch", 25) != 0)
			continue;
		const char *body = vec_str(row, "requestBody");
		struct ap_agent_desc d;
		uint32_t chosen;
		char err[256];

		if (ap_decode_agent_desc(body, strlen(body), &d, err, sizeof(err)) != 0)
			fail_msg("%s: %s", body, err);
		int r = ap_negotiate(d.min_proto, d.max_proto, AP_INFORMANT_PROTO_MIN,
				     AP_INFORMANT_PROTO_MAX, &chosen, err, sizeof(err));
		assert_int_equal(r, -EPROTO);
		assert_int_equal(vec_int(row, "status"), 400);
		assert_string_equal(err, json_string_value(want));
		checked++;
	}
	assert_int_equal(checked, 4);
	json_decref(rows);
}

static void test_small_error_buffer(void **state)
{
	uint32_t chosen = 99;
	char err[10];

	assert_int_equal(ap_negotiate(1, 3, 4, 4, &chosen, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "Protocol ");
	assert_int_equal(chosen, 99);
	assert_int_equal(ap_negotiate(1, 3, 4, 4, &chosen, NULL, 0), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_names),
		cmocka_unit_test(test_negotiation_table),
		cmocka_unit_test(test_error_response_mismatches),
		cmocka_unit_test(test_small_error_buffer),
	};

	return cmocka_run_group_tests_name("agent-proto-negotiate", tests, NULL, NULL);
}
