/* SPDX-License-Identifier: Apache-2.0 */
/* Table tests of the meminfo, cgroup value and PSI parsers. */
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

struct meminfo_case {
	const char *name, *buf;
	int ret;
	bool total_ok, avail_ok;
	uint64_t total, avail;
};

static const struct meminfo_case meminfo_cases[] = {
	{ "both", "MemTotal: 4 kB\nMemFree: 1 kB\nMemAvailable: 3 kB\n", 0, true, true, 4096,
	  3072 },
	{ "no available", "MemTotal: 4 kB\n", -ENODATA, true, false, 4096, 0 },
	{ "no total", "MemAvailable: 3 kB\n", -ENODATA, false, true, 0, 3072 },
	{ "torn after total", "MemTotal: 4 kB\nMemAvailable: 3", -ENODATA, true, false, 4096, 0 },
	{ "empty", "", -ENODATA, false, false, 0, 0 },
	{ "binary garbage", "\x01\x02\xff\n\n:", -ENODATA, false, false, 0, 0 },
	{ "overflowing total", "MemTotal: 99999999999999999999 kB\nMemAvailable: 3 kB\n", -ENODATA,
	  false, true, 0, 3072 },
};

static void test_meminfo(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(meminfo_cases) / sizeof(meminfo_cases[0]); i++) {
		const struct meminfo_case *c = &meminfo_cases[i];
		struct mc_meminfo m;

		print_message("meminfo: %s\n", c->name);
		assert_int_equal(mc_parse_meminfo(c->buf, strlen(c->buf), &m), c->ret);
		assert_int_equal(m.mem_total_ok, c->total_ok);
		assert_int_equal(m.mem_available_ok, c->avail_ok);
		assert_true(m.mem_total == c->total);
		assert_true(m.mem_available == c->avail);
	}
}

struct value_case {
	const char *name, *buf;
	bool allow_max;
	int ret;
	uint64_t value;
};

static const struct value_case value_cases[] = {
	{ "plain", "123\n", false, 0, 123 },
	{ "no newline", "123", false, 0, 123 },
	{ "zero", "0\n", false, 0, 0 },
	{ "UINT64_MAX", "18446744073709551615\n", false, 0, UINT64_MAX },
	{ "UINT64_MAX + 1", "18446744073709551616\n", false, -ERANGE, 0 },
	{ "max allowed", "max\n", true, 0, 0 },
	{ "max not allowed", "max\n", false, -EINVAL, 0 },
	{ "max truncated", "ma", true, -EINVAL, 0 },
	{ "empty", "", true, -EINVAL, 0 },
	{ "only newline", "\n", true, -EINVAL, 0 },
	{ "two newlines", "12\n\n", false, -EINVAL, 0 },
	{ "leading blank", " 12\n", false, -EINVAL, 0 },
	{ "sign", "+12\n", false, -EINVAL, 0 },
	{ "negative", "-1\n", false, -EINVAL, 0 },
	{ "trailing garbage", "12k\n", false, -EINVAL, 0 },
	{ "two values", "12\n13\n", false, -EINVAL, 0 },
};

static void test_u64_value(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		const struct value_case *c = &value_cases[i];
		uint64_t v = 0xdead;
		int r = mc_parse_u64_value(c->buf, strlen(c->buf), c->allow_max, &v);

		print_message("value: %s\n", c->name);
		assert_int_equal(r, c->ret);
		assert_true(v == (r == 0 ? c->value : 0xdead));
	}
}

#define PSI_ZERO "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" \
		 "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"

struct psi_case {
	const char *name, *buf;
	int ret;
	bool some_ok, full_ok;
	double some_avg10, full_avg10;
	uint64_t some_total, full_total;
};

static const struct psi_case psi_cases[] = {
	{ "idle", PSI_ZERO, 0, true, true, 0, 0, 0, 0 },
	{ "busy", "some avg10=12.34 avg60=1.00 avg300=0.10 total=987654321\n"
		  "full avg10=100.00 avg60=5.5 avg300=0 total=18446744073709551615\n",
	  0, true, true, 12.34, 100, 987654321, UINT64_MAX },
	{ "no final newline", "some avg10=1.50 avg60=0.00 avg300=0.00 total=7\n"
			      "full avg10=0.25 avg60=0.00 avg300=0.00 total=3",
	  0, true, true, 1.5, 0.25, 7, 3 },
	{ "some only (system cpu style)", "some avg10=2.00 avg60=0.00 avg300=0.00 total=9\n",
	  -ENODATA, true, false, 2, 0, 9, 0 },
	{ "unknown key ignored", "some avg10=1 avg60=0 avg300=0 total=1 avg1=3\n"
				 "full avg10=2 total=2\n",
	  0, true, true, 1, 2, 1, 2 },
	{ "total overflow", "some avg10=1 total=18446744073709551616\nfull avg10=2 total=2\n",
	  -ENODATA, false, true, 0, 2, 0, 2 },
	{ "avg above 100", "some avg10=100.01 total=1\nfull avg10=2 total=2\n",
	  -ENODATA, false, true, 0, 2, 0, 2 },
	{ "avg too many digits", "some avg10=1000 total=1\nfull avg10=2 total=2\n",
	  -ENODATA, false, true, 0, 2, 0, 2 },
	{ "avg bad fraction", "some avg10=1. total=1\nfull avg10=2.x total=2\n",
	  -ENODATA, false, false, 0, 0, 0, 0 },
	{ "torn mid-token", "some avg10=1.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.0",
	  -ENODATA, true, false, 1, 0, 5, 0 },
	{ "torn after blank", "some avg10=1.00 total=5 \nfull avg10=1 total=1\n",
	  -ENODATA, false, true, 0, 1, 0, 1 },
	{ "missing total", "some avg10=1.00 avg60=0.00\nfull avg10=1 total=1\n",
	  -ENODATA, false, true, 0, 1, 0, 1 },
	{ "repeated key", "some avg10=1 avg10=2 total=1\nfull avg10=1 total=1\n",
	  -ENODATA, false, true, 0, 1, 0, 1 },
	{ "repeated line", "some avg10=1 total=1\nsome avg10=1 total=1\nfull avg10=1 total=1\n",
	  -ENODATA, false, true, 0, 1, 0, 1 },
	{ "token without =", "some avg10=1 total=1 junk\nfull avg10=1 total=1\n",
	  -ENODATA, false, true, 0, 1, 0, 1 },
	{ "double blank", "some avg10=1  total=1\nfull avg10=1 total=1\n",
	  -ENODATA, false, true, 0, 1, 0, 1 },
	{ "empty", "", -ENODATA, false, false, 0, 0, 0, 0 },
	{ "garbage", "hello world\n\x01\x02\n", -ENODATA, false, false, 0, 0, 0, 0 },
};

static void test_psi(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(psi_cases) / sizeof(psi_cases[0]); i++) {
		const struct psi_case *c = &psi_cases[i];
		struct mc_psi p;

		print_message("psi: %s\n", c->name);
		assert_int_equal(mc_parse_psi(c->buf, strlen(c->buf), &p), c->ret);
		assert_int_equal(p.some_avg10_ok, c->some_ok);
		assert_int_equal(p.some_total_ok, c->some_ok);
		assert_int_equal(p.full_avg10_ok, c->full_ok);
		assert_int_equal(p.full_total_ok, c->full_ok);
		assert_near(p.some_avg10, c->some_avg10, 1e-9);
		assert_near(p.full_avg10, c->full_avg10, 1e-9);
		assert_true(p.some_total == c->some_total);
		assert_true(p.full_total == c->full_total);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kb_field),
		cmocka_unit_test(test_kb_field_bounded_by_len),
		cmocka_unit_test(test_meminfo),
		cmocka_unit_test(test_u64_value),
		cmocka_unit_test(test_psi),
	};

	return cmocka_run_group_tests_name("memctl-parse", tests, NULL, NULL);
}
