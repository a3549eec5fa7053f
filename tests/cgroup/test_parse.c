/* SPDX-License-Identifier: Apache-2.0 */
/* Table tests for the strict cgroup file parsers, and the files of a real
 * 6.1 guest (tests/cgroup/fixtures, captured by tests/vm/e2e.py --fixtures
 * after the Postgres scan and thrash scenarios), bytes as the kernel wrote
 * them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- memory.stat, memory.pressure: the real files of a 6.1 guest ---------- */

/* Reads tests/cgroup/fixtures/6.1-<tag>-<file> into buf (NUL-terminated)
 * and its name into name; the length. */
static size_t fixture(const char *tag, const char *file, char *name, size_t namelen, char *buf,
		      size_t size)
{
	const char *dir = getenv("VMI_TESTS_DIR");
	char path[1024];
	size_t n;
	FILE *f;

	snprintf(name, namelen, "6.1-%s-%s", tag, file);
	snprintf(path, sizeof(path), "%s/cgroup/fixtures/%s", dir ? dir : "tests", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("fixture %s: %s", path, strerror(errno));
	n = fread(buf, 1, size - 1, f);
	assert_true(feof(f)); /* it fit */
	fclose(f);
	buf[n] = '\0';
	return n;
}

/* The files' own values; workload = current − (file − shmem). */
struct guest_fixture {
	const char *tag;
	uint64_t anon, file, shmem, refault_file, current, workload;
	uint64_t some_total, full_total;
	double some_avg10, full_avg10;
};

static const struct guest_fixture guest_fixtures[] = {
	/* after a scan twice memory.high: the cgroup is page cache */
	{ "scan", 4182016, 59211776, 3395584, 354, 65179648, 9363456,
	  778010, 777266, 4.59, 4.59 },
	/* after reading a table that does not fit again and again */
	{ "thrash", 4198400, 40153088, 5206016, 31122, 46100480, 11153408,
	  1363234, 1247114, 5.50, 4.59 },
};

static bool near(double a, double b)
{
	return a > b - 1e-9 && a < b + 1e-9;
}

static void test_guest_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(guest_fixtures) / sizeof(guest_fixtures[0]); i++) {
		const struct guest_fixture *fx = &guest_fixtures[i];
		char buf[CG_FILE_MAX + 1], name[64], err[256] = "";
		struct cg_memory_stat st;
		struct cg_pressure pr;
		uint64_t current;
		size_t len;

		len = fixture(fx->tag, "memory.stat", name, sizeof(name), buf, sizeof(buf));
		assert_int_equal(cg_parse_memory_stat(name, buf, len, &st, err, sizeof(err)), 0);
		assert_true(st.anon == fx->anon && st.file == fx->file && st.shmem == fx->shmem);
		assert_true(st.has_refault_file && st.refault_file == fx->refault_file);
		len = fixture(fx->tag, "memory.current", name, sizeof(name), buf, sizeof(buf));
		assert_int_equal(cg_parse_value(name, buf, len, &current, err, sizeof(err)), 0);
		assert_true(current == fx->current);
		assert_true(cg_workload_bytes(current, &st) == fx->workload);
		len = fixture(fx->tag, "memory.pressure", name, sizeof(name), buf, sizeof(buf));
		assert_int_equal(cg_parse_pressure(name, buf, len, &pr, err, sizeof(err)), 0);
		assert_true(pr.some_total_us == fx->some_total && pr.full_total_us == fx->full_total);
		assert_true(near(pr.some_avg10, fx->some_avg10) && near(pr.full_avg10, fx->full_avg10));
	}
}

/* Edits of the real file: what a truncated read, an older kernel or a
 * corrupted file would hand the parser. */
static void test_memory_stat_edits(void **state)
{
	char buf[CG_FILE_MAX + 1], edit[CG_FILE_MAX + 64], err[256], name[64];
	struct cg_memory_stat st;
	size_t len;
	char *line;

	(void)state;
	len = fixture("scan", "memory.stat", name, sizeof(name), buf, sizeof(buf));

	/* Cut right after "shmem": the rest is optional. */
	line = strstr(buf, "\nzswap ");
	assert_non_null(line);
	assert_int_equal(cg_parse_memory_stat("m", buf, (size_t)(line - buf) + 1, &st, err,
					      sizeof(err)), 0);
	assert_false(st.has_refault_file);

	/* Before 5.9 the counter was "workingset_refault" (anon and file). */
	snprintf(edit, sizeof(edit), "%s", buf);
	line = strstr(edit, "workingset_refault_file");
	memcpy(line, "workingset_refault_fil_", 23);
	assert_int_equal(cg_parse_memory_stat("m", edit, len, &st, err, sizeof(err)), 0);
	assert_false(st.has_refault_file);
	assert_true(st.refault_file == 0);

	/* Cut before "shmem": required, so the read is refused. */
	line = strstr(buf, "\nshmem ");
	assert_int_equal(cg_parse_memory_stat("m", buf, (size_t)(line - buf) + 1, &st, err,
					      sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "m: required \"shmem\" is missing"));

	/* A line twice, a cut in the middle of a name, an empty read. */
	snprintf(edit, sizeof(edit), "%sfile 1\n", buf);
	assert_int_equal(cg_parse_memory_stat("m", edit, len + 7, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "\"file\" appears twice"));
	line = strstr(buf, "\npgscan ");
	assert_int_equal(cg_parse_memory_stat("m", buf, (size_t)(line - buf) + 4, &st, err,
					      sizeof(err)), -EINVAL);
	assert_int_equal(cg_parse_memory_stat("m", buf, 0, &st, err, sizeof(err)), -ENODATA);
}

/* Page cache larger than memory.current (read at another moment) or
 * shmem above file: the workload is floored, never wraps. */
static void test_workload_bytes_bounds(void **state)
{
	struct cg_memory_stat st = { .anon = 1, .file = 100, .shmem = 10 };

	(void)state;
	assert_true(cg_workload_bytes(1000, &st) == 910);
	assert_true(cg_workload_bytes(90, &st) == 0);
	assert_true(cg_workload_bytes(50, &st) == 0);
	st.shmem = 200; /* tmpfs beyond the file count: nothing to take off */
	assert_true(cg_workload_bytes(1000, &st) == 1000);
	st = (struct cg_memory_stat){ .file = UINT64_MAX };
	assert_true(cg_workload_bytes(UINT64_MAX, &st) == 0);
}

struct pressure_case {
	const char *buf;
	size_t len;
	int want_rc;
	uint64_t some, full;
};

#define SOME "some avg10=4.59 avg60=1.09 avg300=0.24 total=778010\n"
#define FULL_LINE "full avg10=4.59 avg60=1.09 avg300=0.24 total=777266\n"

static const struct pressure_case pressure_cases[] = {
	{ S(SOME FULL_LINE), 0, 778010, 777266 },
	{ S(FULL_LINE SOME), 0, 778010, 777266 },            /* either order */
	{ S(SOME "full avg10=4.59 avg60=1.09 avg300=0.24 total=777266"), 0, 778010, 777266 },
	{ S("some avg10=0.00 avg60=0.00 avg300=0.00 total=0 avg600=1.00\n" FULL_LINE), 0, 0,
	  777266 },                                           /* a newer kernel's token */
	{ S("some avg10=100.00 avg60=0.00 avg300=0.00 total=1\n" FULL_LINE), 0, 1, 777266 },
	{ S(SOME), -EINVAL, 0, 0 },                          /* truncated */
	{ S(SOME SOME FULL_LINE), -EINVAL, 0, 0 },
	{ S("some avg10=100.01 avg60=0 avg300=0 total=1\n" FULL_LINE), -EINVAL, 0, 0 },
	{ S("some avg10=4.59 avg60=1.09 avg300=0.24\n" FULL_LINE), -EINVAL, 0, 0 },
	{ S("some avg10=4.59 total=-1\n" FULL_LINE), -EINVAL, 0, 0 },
	{ S("some avg10=4.59 total=778010 \n" FULL_LINE), -EINVAL, 0, 0 },
	{ S("some  avg10=4.59 total=778010\n" FULL_LINE), -EINVAL, 0, 0 },
	{ S("SOME avg10=4.59 total=778010\n" FULL_LINE), -EINVAL, 0, 0 },
	{ S(SOME "\n" FULL_LINE), -EINVAL, 0, 0 },
	{ S(""), -ENODATA, 0, 0 },
};

static void test_pressure_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pressure_cases) / sizeof(pressure_cases[0]); i++) {
		const struct pressure_case *c = &pressure_cases[i];
		struct cg_pressure pr = { 7, 7, 7, 7 };
		char err[256] = "";
		int rc = cg_parse_pressure("memory.pressure", c->buf, c->len, &pr, err, sizeof(err));

		print_message("case %zu: rc %d err '%s'\n", i, rc, err);
		assert_int_equal(rc, c->want_rc);
		if (rc == 0) {
			assert_true(pr.some_total_us == c->some && pr.full_total_us == c->full);
		} else {
			assert_non_null(strstr(err, "memory.pressure: "));
			assert_true(pr.some_total_us == 7); /* untouched on error */
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
		cmocka_unit_test(test_guest_fixtures),
		cmocka_unit_test(test_memory_stat_edits),
		cmocka_unit_test(test_workload_bytes_bounds),
		cmocka_unit_test(test_pressure_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
