/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Go's FormatFloat(x, 'g', -1, 64): shortest round-trip digits, exponent
 * form only below 1e-4 or from 1e6 on (docs/informant-protocol.md §5.4).
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent_proto.h"

static void test_float_g(void **state)
{
	static const struct {
		double x;
		const char *text;
	} cases[] = {
		{ 659, "659" },
		{ 600.25, "600.25" },
		{ 559.0000009536743, "559.0000009536743" },
		{ 1234567, "1.234567e+06" },
		{ 0, "0" },
		{ -0.0, "-0" },
		{ 1, "1" },
		{ 100, "100" },
		{ 100000, "100000" },
		{ 123456, "123456" },
		{ 999999, "999999" },
		{ 1000000, "1e+06" },
		{ 12345678, "1.2345678e+07" },
		{ 123456.7, "123456.7" },
		{ 1234567.8, "1.2345678e+06" },
		{ 1e21, "1e+21" },
		{ 1e100, "1e+100" },
		{ 0.1, "0.1" },
		{ 0.3, "0.3" },
		{ 1.5, "1.5" },
		{ -0.5, "-0.5" },
		{ -0.1, "-0.1" },
		{ 0.0001, "0.0001" },
		{ 0.000123, "0.000123" },
		{ 0.00001, "1e-05" },
		{ 0.000012345, "1.2345e-05" },
		{ 1.0 / 3.0, "0.3333333333333333" },
		{ 2.0 / 3.0, "0.6666666666666666" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 5e-324, "5e-324" },
		{ DBL_MAX, "1.7976931348623157e+308" },
		{ 9007199254740993.0, "9.007199254740992e+15" },
		{ NAN, "NaN" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ap_format_float_g(cases[i].x, buf, sizeof(buf));
		if (strcmp(buf, cases[i].text) != 0)
			fail_msg("case %zu: got %s, want %s", i, buf, cases[i].text);
	}
}

static void test_format_mib(void **state)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} cases[] = {
		{ 691011584, "659" },
		{ 629407744, "600.25" },
		{ 586153985, "559.0000009536743" },
		{ 1887436800, "1800" },
		{ 1234567ull << 20, "1.234567e+06" },
		{ 0, "0" },
		{ 1, "9.5367431640625e-07" },
		{ 104858, "0.10000038146972656" },
		{ UINT64_MAX, "1.7592186044416e+13" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ap_format_mib(cases[i].bytes, buf, sizeof(buf));
		if (strcmp(buf, cases[i].text) != 0)
			fail_msg("%zu bytes: got %s, want %s", (size_t)cases[i].bytes, buf,
				 cases[i].text);
	}
}

static void test_truncation(void **state)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	ap_format_float_g(559.0000009536743, buf, 6);
	assert_string_equal(buf, "559.0");
	assert_int_equal(buf[6], 'x');
	ap_format_float_g(1234567, buf, 4);
	assert_string_equal(buf, "1.2");
	ap_format_float_g(1, buf, 1);
	assert_string_equal(buf, "");
	ap_format_float_g(1, buf, 0); /* writes nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_float_g),
		cmocka_unit_test(test_format_mib),
		cmocka_unit_test(test_truncation),
	};

	return cmocka_run_group_tests_name("agent-proto-gofmt", tests, NULL, NULL);
}
