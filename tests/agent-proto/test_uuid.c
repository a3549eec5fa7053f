/* SPDX-License-Identifier: Apache-2.0 */
/* UUIDs: accepted and rejected forms, canonical output, random v4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent_proto.h"

static const char canonical[] = "0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30";

static void test_parse_forms(void **state)
{
	static const char *const good[] = {
		"0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30",
		"0F8C3B1E-5D2A-4C7E-9B61-7A4E2D9C1F30",
		"0f8C3b1E-5d2A-4c7E-9b61-7A4e2D9c1F30",
		"0f8c3b1e5d2a4c7e9b617a4e2d9c1f30",
		"{0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30}",
		"urn:uuid:0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30",
		"Urn:Uuid:0F8C3B1E-5D2A-4C7E-9B61-7A4E2D9C1F30",
	};
	static const char *const bad[] = {
		"",
		"not-a-uuid",
		"0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f3",
		"0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f300",
		"0f8c3b1e-5d2a-4c7e-9b61_7a4e2d9c1f30",
		"0f8c3b1e5-d2a-4c7e-9b61-7a4e2d9c1f30",
		"0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f3g",
		"0f8c3b1e5d2a4c7e9b617a4e2d9c1f3",
		"0f8c3b1e5d2a4c7e9b617a4e2d9c1f3z",
		"{0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30]",
		"{0f8c3b1e5d2a4c7e9b617a4e2d9c1f30}",
		"urn:uid:0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30",
		"urn:uuid:0f8c3b1e5d2a4c7e9b617a4e2d9c1f30",
		" 0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30",
		"+f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30",
	};
	struct ap_uuid want, got;
	char text[AP_UUID_STRLEN + 1];

	assert_int_equal(ap_uuid_parse(canonical, &want), 0);
	assert_int_equal(want.b[0], 0x0f);
	assert_int_equal(want.b[15], 0x30);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (ap_uuid_parse(good[i], &got) != 0)
			fail_msg("rejected %s", good[i]);
		assert_true(ap_uuid_equal(&got, &want));
		ap_uuid_format(&got, text);
		assert_string_equal(text, canonical);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		got = want;
		if (ap_uuid_parse(bad[i], &got) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_true(ap_uuid_equal(&got, &want)); /* untouched on failure */
	}
}

static void test_zero(void **state)
{
	struct ap_uuid u = { { 0 } };
	char text[AP_UUID_STRLEN + 1];

	assert_true(ap_uuid_is_zero(&u));
	ap_uuid_format(&u, text);
	assert_string_equal(text, "00000000-0000-0000-0000-000000000000");
	u.b[15] = 1;
	assert_false(ap_uuid_is_zero(&u));
}

static void test_random_v4(void **state)
{
	struct ap_uuid prev = { { 0 } }, u;
	char text[AP_UUID_STRLEN + 1];

	for (int i = 0; i < 64; i++) {
		assert_int_equal(ap_uuid_random(&u), 0);
		assert_int_equal(u.b[6] >> 4, 4);
		assert_int_equal(u.b[8] >> 6, 2);
		assert_false(ap_uuid_equal(&u, &prev));
		ap_uuid_format(&u, text);
		assert_int_equal(text[14], '4');
		assert_non_null(strchr("89ab", text[19]));
		assert_int_equal(ap_uuid_parse(text, &prev), 0);
		assert_true(ap_uuid_equal(&u, &prev));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_zero),
		cmocka_unit_test(test_random_v4),
	};

	return cmocka_run_group_tests_name("agent-proto-uuid", tests, NULL, NULL);
}
