/* SPDX-License-Identifier: Apache-2.0 */
/* Table tests for the strict cgroup file parsers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"

#define S(lit) lit, sizeof(lit) - 1

struct value_case {
	const char *buf;
	size_t len;
	int want_rc;
	uint64_t want;
	const char *want_msg;  /* substring of the message on error */
};

static const struct value_case value_cases[] = {
	{ S("0\n"), 0, 0, NULL },
	{ S("123456789\n"), 0, 123456789, NULL },
	{ S("4096"), 0, 4096, NULL },                 /* our own writes have no newline */
	{ S("max\n"), 0, CG_UNLIMITED, NULL },
	{ S("max"), 0, CG_UNLIMITED, NULL },
	{ S("18446744073709551615\n"), 0, UINT64_MAX, NULL },
	{ S("18446744073709551616\n"), -ERANGE, 0, "does not fit in 64 bits" },
	{ S("99999999999999999999999\n"), -ERANGE, 0, "does not fit" },
	{ S(""), -ENODATA, 0, "empty" },
	{ S("\n"), -EINVAL, 0, "not an unsigned decimal" },
	{ S("-1\n"), -EINVAL, 0, "\"-1\" is not an unsigned decimal" },
	{ S("+5\n"), -EINVAL, 0, "not an unsigned" },
	{ S(" 5\n"), -EINVAL, 0, "not an unsigned" },
	{ S("5 \n"), -EINVAL, 0, "not an unsigned" },
	{ S("12abc\n"), -EINVAL, 0, "\"12abc\"" },
	{ S("5\n\n"), -EINVAL, 0, "not an unsigned" },
	{ S("5\n6\n"), -EINVAL, 0, "not an unsigned" },
	{ S("maximum\n"), -EINVAL, 0, "not an unsigned" },
	{ S("MAX\n"), -EINVAL, 0, "not an unsigned" },
	{ S("1\0002\n"), -EINVAL, 0, "\"1?2\"" },
	{ S("0x10\n"), -EINVAL, 0, "not an unsigned" },
};

static void test_value_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		const struct value_case *c = &value_cases[i];
		uint64_t v = 42;
		char err[256] = "";
		int rc = cg_parse_value("memory.high", c->buf, c->len, &v, err, sizeof(err));

		print_message("case %zu: rc %d err '%s'\n", i, rc, err);
		assert_int_equal(rc, c->want_rc);
		if (rc == 0) {
			assert_true(v == c->want);
		} else {
			assert_non_null(strstr(err, "memory.high: "));
			assert_non_null(strstr(err, c->want_msg));
		}
	}
}

static void test_value_overlong(void **state)
{
	static char big[CG_FILE_MAX + 2];
	char err[256];
	uint64_t v;

	(void)state;
	memset(big, '1', sizeof(big));
	assert_int_equal(cg_parse_value("memory.max", big, sizeof(big), &v, err, sizeof(err)),
			 -EFBIG);
	assert_non_null(strstr(err, "longer than 4096"));
}

#define FULL "low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\n"

struct events_case {
	const char *buf;
	size_t len;
	int want_rc;
	struct cg_memory_events want;
	const char *want_msg;
};

static const struct events_case events_cases[] = {
	{ S(FULL), 0, { 1, 2, 3, 4, 5, 0, false }, NULL },
	{ S(FULL "oom_group_kill 6\n"), 0, { 1, 2, 3, 4, 5, 6, true }, NULL },
	/* Order does not matter; unknown names are skipped; no final newline. */
	{ S("oom_kill 5\nfuture_counter 9\noom 4\nmax 3\nhigh 2\nlow 1"), 0,
	  { 1, 2, 3, 4, 5, 0, false }, NULL },
	/* Tabs and several blanks separate fields. */
	{ S("low\t1\nhigh   2\nmax 3\noom 4\noom_kill 5\n"), 0, { 1, 2, 3, 4, 5, 0, false }, NULL },
	{ S("low 0\nhigh 18446744073709551615\nmax 0\noom 0\noom_kill 0\n"), 0,
	  { 0, UINT64_MAX, 0, 0, 0, 0, false }, NULL },
	{ S(""), -ENODATA, { 0 }, "empty" },
	{ S("low 1\nhigh 2\nmax 3\n"), -EINVAL, { 0 }, "required \"oom\" is missing" },
	{ S("low 1\nhigh 2\nmax 3\noom 4\noom"), -EINVAL, { 0 }, "line 5: \"oom\" is not" },
	{ S("low 1\nhigh 2\nhigh 3\nmax 3\noom 4\noom_kill 5\n"), -EINVAL, { 0 },
	  "line 3: \"high\" appears twice" },
	{ S("low 1\nhigh 2 7\nmax 3\noom 4\noom_kill 5\n"), -EINVAL, { 0 }, "line 2" },
	{ S("low 1\n\nhigh 2\nmax 3\noom 4\noom_kill 5\n"), -EINVAL, { 0 }, "line 2" },
	{ S("low 1\nhigh -2\nmax 3\noom 4\noom_kill 5\n"), -EINVAL, { 0 },
	  "line 2: value \"-2\" is not an unsigned decimal" },
	{ S("low 1\nhigh 2x\nmax 3\noom 4\noom_kill 5\n"), -EINVAL, { 0 }, "\"2x\"" },
	{ S("low 1\nhigh 99999999999999999999\nmax 3\noom 4\noom_kill 5\n"), -ERANGE, { 0 },
	  "larger than 64 bits" },
	/* Unknown names still need a valid value. */
	{ S(FULL "weird abc\n"), -EINVAL, { 0 }, "line 6" },
	{ S("low 1\r\nhigh 2\nmax 3\noom 4\noom_kill 5\n"), -EINVAL, { 0 }, "line 1" },
};

static void test_memory_events_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(events_cases) / sizeof(events_cases[0]); i++) {
		const struct events_case *c = &events_cases[i];
		struct cg_memory_events ev;
		char err[256] = "";
		int rc;

		memset(&ev, 0xa5, sizeof(ev));
		rc = cg_parse_memory_events("memory.events", c->buf, c->len, &ev, err, sizeof(err));
		print_message("case %zu: rc %d err '%s'\n", i, rc, err);
		assert_int_equal(rc, c->want_rc);
		if (rc != 0) {
			assert_non_null(strstr(err, "memory.events: "));
			assert_non_null(strstr(err, c->want_msg));
			continue;
		}
		assert_true(ev.low == c->want.low && ev.high == c->want.high);
		assert_true(ev.max == c->want.max && ev.oom == c->want.oom);
		assert_true(ev.oom_kill == c->want.oom_kill);
		assert_true(ev.oom_group_kill == c->want.oom_group_kill);
		assert_int_equal(ev.has_oom_group_kill, c->want.has_oom_group_kill);
	}
}

static void test_memory_events_overlong(void **state)
{
	static char big[CG_FILE_MAX + 64];
	size_t len = 0;
	struct cg_memory_events ev;
	char err[256];

	(void)state;
	while (len + 16 < sizeof(big))
		len += (size_t)snprintf(big + len, sizeof(big) - len, "x%06zu 1\n", len);
	assert_int_equal(cg_parse_memory_events("memory.events", big, len, &ev, err, sizeof(err)),
			 -EFBIG);
}

struct cgev_case {
	const char *buf;
	size_t len;
	int want_rc;
	bool populated, frozen;
};

static const struct cgev_case cgev_cases[] = {
	{ S("populated 1\nfrozen 0\n"), 0, true, false },
	{ S("populated 0\nfrozen 1\n"), 0, false, true },
	{ S("frozen 1\npopulated 1\nnew_key 3\n"), 0, true, true },
	{ S("populated 1\n"), -EINVAL, false, false },
	{ S("populated 1\nfrozen 2\n"), -EINVAL, false, false },
	{ S("populated 1\nfrozen 0\nfrozen 1\n"), -EINVAL, false, false },
	{ S(""), -ENODATA, false, false },
	{ S("populated\nfrozen 0\n"), -EINVAL, false, false },
};

static void test_cgroup_events_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cgev_cases) / sizeof(cgev_cases[0]); i++) {
		const struct cgev_case *c = &cgev_cases[i];
		struct cg_cgroup_events ev = { true, true };
		char err[256] = "";
		int rc = cg_parse_cgroup_events("cgroup.events", c->buf, c->len, &ev, err,
						sizeof(err));

		print_message("case %zu: rc %d err '%s'\n", i, rc, err);
		assert_int_equal(rc, c->want_rc);
		if (rc == 0) {
			assert_int_equal(ev.populated, c->populated);
			assert_int_equal(ev.frozen, c->frozen);
		} else {
			assert_non_null(strstr(err, "cgroup.events: "));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_table),
		cmocka_unit_test(test_value_overlong),
		cmocka_unit_test(test_memory_events_table),
		cmocka_unit_test(test_memory_events_overlong),
		cmocka_unit_test(test_cgroup_events_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
