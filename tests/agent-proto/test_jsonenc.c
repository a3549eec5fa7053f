/* SPDX-License-Identifier: Apache-2.0 */
/* Go's JSON string escaping on top of jansson's output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void expect_escape(const char *in, const char *want)
{
	char *got = ap_json_go_escape(in);

	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("escape(%s): got %s, want %s", in, got, want);
	free(got);
}

static void test_go_escape_pass(void **state)
{
	expect_escape("\"a<b>&c\"", "\"a\\u003cb\\u003e\\u0026c\"");
	expect_escape("\"\\b\\f\"", "\"\\u0008\\u000c\"");
	expect_escape("\"\\u001F\\u000B\"", "\"\\u001f\\u000b\"");
	expect_escape("\"\\n\\r\\t\\\"\\\\\\/\"", "\"\\n\\r\\t\\\"\\\\\\/\"");
	expect_escape("\"\xe2\x80\xa8|\xe2\x80\xa9\"", "\"\\u2028|\\u2029\"");
	expect_escape("\"\xe2\x80\xaa\xc3\xa9\x7f\"", "\"\xe2\x80\xaa\xc3\xa9\x7f\"");
	expect_escape("{\"k\":[1,true,null]}", "{\"k\":[1,true,null]}");
	expect_escape("", "");
	/* Malformed tails never read past the end. */
	expect_escape("\\", "\\");
	expect_escape("\\u12", "\\u12");
	expect_escape("\xe2", "\xe2");
	expect_escape("\xe2\x80", "\xe2\x80");
}

/* Every control character through jansson and the pass: \n \r \t stay
 * short, all others become \u00xx with lowercase hex, as Go writes them. */
static void test_control_characters(void **state)
{
	for (int c = 1; c < 0x20; c++) {
		char in[2] = { (char)c, '\0' }, want[16];
		json_t *s = json_string(in);

		assert_non_null(s);
		char *got = ap_json_finish(json_pack("[o]", s));
		assert_non_null(got);
		if (c == '\n' || c == '\r' || c == '\t')
			snprintf(want, sizeof(want), "[\"\\%c\"]", c == '\n' ? 'n' :
				 c == '\r' ? 'r' : 't');
		else
			snprintf(want, sizeof(want), "[\"\\u%04x\"]", c);
		assert_string_equal(got, want);
		free(got);
	}
}

static void test_finish_keeps_order_and_compacts(void **state)
{
	json_t *o = json_object();

	assert_non_null(o);
	assert_int_equal(json_object_set_new(o, "z", json_integer(1)), 0);
	assert_int_equal(json_object_set_new(o, "a", json_string("<&>")), 0);
	assert_int_equal(json_object_set_new(o, "m", json_object()), 0);
	char *got = ap_json_finish(o);
	assert_non_null(got);
	assert_string_equal(got, "{\"z\":1,\"a\":\"\\u003c\\u0026\\u003e\",\"m\":{}}");
	free(got);
	assert_null(ap_json_finish(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_escape_pass),
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_finish_keeps_order_and_compacts),
	};

	return cmocka_run_group_tests_name("agent-proto-jsonenc", tests, NULL, NULL);
}
