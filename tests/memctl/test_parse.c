/* SPDX-License-Identifier: Apache-2.0 */
/* Table tests of the meminfo parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memctl.h"
#include "testutil.h"

#define U64MAX_KB "18014398509481983" /* UINT64_MAX / 1024 */

struct kb_case {
	const char *name, *buf, *key;
	int ret;
	uint64_t bytes;
};

static const struct kb_case kb_cases[] = {
	{ "plain", "MemTotal:       24684092 kB\n", "MemTotal", 0, 24684092ull * 1024 },
	{ "tab and no final newline", "VmRSS:\t    2092 kB", "VmRSS", 0, 2092 * 1024 },
	{ "among others", "A: 1 kB\nVmRSS:\t 7 kB\nB: 2 kB\n", "VmRSS", 0, 7 * 1024 },
	{ "zero", "MemTotal: 0 kB\n", "MemTotal", 0, 0 },
	{ "largest", "MemTotal: " U64MAX_KB " kB\n", "MemTotal", 0, 18014398509481983ull * 1024 },
	{ "kB overflow", "MemTotal: 18014398509481984 kB\n", "MemTotal", -ERANGE, 0 },
	{ "digits overflow", "MemTotal: 99999999999999999999999 kB\n", "MemTotal", -ERANGE, 0 },
	{ "missing", "MemFree: 1 kB\n", "MemTotal", -ENOENT, 0 },
	{ "empty buffer", "", "MemTotal", -ENOENT, 0 },
	{ "prefix of another key", "MemTotalX: 5 kB\n", "MemTotal", -ENOENT, 0 },
	{ "key not at line start", "xMemTotal: 5 kB\n", "MemTotal", -ENOENT, 0 },
	{ "truncated number", "MemTotal:  123", "MemTotal", -EINVAL, 0 },
	{ "truncated unit", "MemTotal:  123 k", "MemTotal", -EINVAL, 0 },
	{ "no value", "MemTotal:\n", "MemTotal", -EINVAL, 0 },
	{ "no blank before unit", "MemTotal: 12kB\n", "MemTotal", -EINVAL, 0 },
	{ "wrong unit", "MemTotal: 12 MB\n", "MemTotal", -EINVAL, 0 },
	{ "trailing garbage", "MemTotal: 12 kB x\n", "MemTotal", -EINVAL, 0 },
	{ "negative", "MemTotal: -12 kB\n", "MemTotal", -EINVAL, 0 },
	{ "garbage", "MemTotal: abc kB\n", "MemTotal", -EINVAL, 0 },
	{ "repeated", "MemTotal: 1 kB\nMemTotal: 1 kB\n", "MemTotal", -EINVAL, 0 },
};

static void test_kb_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(kb_cases) / sizeof(kb_cases[0]); i++) {
		const struct kb_case *c = &kb_cases[i];
		uint64_t bytes = 0xdead;
		int r = mc_parse_kb_field(c->buf, strlen(c->buf), c->key, &bytes);

		print_message("kb: %s\n", c->name);
		assert_int_equal(r, c->ret);
		if (r == 0)
			assert_true(bytes == c->bytes);
		else
			assert_true(bytes == 0xdead); /* untouched on failure */
	}
}

static void test_kb_field_bounded_by_len(void **state)
{
	const char buf[] = "MemTotal: 12 kB\n";
	uint64_t bytes;

	(void)state;
	/* The length, not a NUL, ends the buffer: cutting "kB" must fail. */
	assert_int_equal(mc_parse_kb_field(buf, 14, "MemTotal", &bytes), -EINVAL);
	assert_int_equal(mc_parse_kb_field(buf, 15, "MemTotal", &bytes), 0);
	assert_true(bytes == 12 * 1024);
	assert_int_equal(mc_parse_kb_field(buf, 15, "", &bytes), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kb_field),
		cmocka_unit_test(test_kb_field_bounded_by_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
