/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes quantities: exact parsing with rounding up, rejection of
 * negative and malformed text, overflow, and the agent's canonical forms.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent_proto.h"
#include "vectors.h"

struct qcase {
	const char *text;
	int ret;
	uint64_t value;
};

static const struct qcase bytes_cases[] = {
	{ "4Gi", 0, 4294967296 },
	{ "1536Mi", 0, 1610612736 },
	{ "250m", 0, 1 },  /* 0.25 rounds up */
	{ "1.5Gi", 0, 1610612736 },
	{ "1e3", 0, 1000 },
	{ "1E3", 0, 1000 },
	{ "1e+3", 0, 1000 },
	{ "0.1", 0, 1 },
	{ "3221225472", 0, 3221225472 },
	{ "0", 0, 0 },
	{ "-0", 0, 0 },
	{ "+5", 0, 5 },
	{ ".5", 0, 1 },
	{ "5.", 0, 5 },
	{ "007", 0, 7 },
	{ "1Ki", 0, 1024 },
	{ "1.25Ki", 0, 1280 },
	{ "1.0005Ki", 0, 1025 }, /* 1024.512 */
	{ "0.5Ki", 0, 512 },
	{ "2k", 0, 2000 },
	{ "1M", 0, 1000000 },
	{ "3G", 0, 3000000000 },
	{ "1T", 0, 1000000000000 },
	{ "1P", 0, 1000000000000000 },
	{ "1E", 0, 1000000000000000000 },
	{ "1Ti", 0, 1099511627776 },
	{ "1Pi", 0, 1125899906842624 },
	{ "1Ei", 0, 1152921504606846976 },
	{ "15Ei", 0, 17293822569102704640u },
	{ "100n", 0, 1 },
	{ "1500u", 0, 1 },
	{ "1e-3", 0, 1 },
	{ "1e19", 0, 10000000000000000000u },
	{ "0e99999", 0, 0 },
	{ "1e-99999999999", 0, 1 },
	{ "0.000000000000000000000000001", 0, 1 },
	{ "123456789012345678901234567890e-20", 0, 1234567891 },
	{ "1000000000000000000000000000000000000000000000000000000000000000000000e-68", 0, 10 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "18446744073709551614.5", 0, UINT64_MAX },
	{ "16Ei", -ERANGE, 0 },
	{ "18446744073709551616", -ERANGE, 0 },
	{ "18446744073709551615.1", -ERANGE, 0 },
	{ "1e20", -ERANGE, 0 },
	{ "1e99999999999", -ERANGE, 0 },
	{ "-1", -EINVAL, 0 },
	{ "-1Gi", -EINVAL, 0 },
	{ "-0.5", -EINVAL, 0 },
	{ "1.5.5", -EINVAL, 0 },
	{ "Gi", -EINVAL, 0 },
	{ "", -EINVAL, 0 },
	{ ".", -EINVAL, 0 },
	{ "-", -EINVAL, 0 },
	{ "+-1", -EINVAL, 0 },
	{ " 1", -EINVAL, 0 },
	{ "1 ", -EINVAL, 0 },
	{ "1Ki ", -EINVAL, 0 },
	{ "1ki", -EINVAL, 0 },
	{ "1KI", -EINVAL, 0 },
	{ "1i", -EINVAL, 0 },
	{ "1e", -EINVAL, 0 },
	{ "1e+", -EINVAL, 0 },
	{ "1e1.5", -EINVAL, 0 },
	{ "1Gib", -EINVAL, 0 },
	{ "0x10", -EINVAL, 0 },
	{ "1,5", -EINVAL, 0 },
	/* 65 significant digits are more than the parser keeps exactly. */
	{ "12345678901234567890123456789012345678901234567890123456789012345e-60", -EINVAL, 0 },
};

static const struct qcase milli_cases[] = {
	{ "250m", 0, 250 },
	{ "1500m", 0, 1500 },
	{ "2", 0, 2000 },
	{ "1.5", 0, 1500 },
	{ "0.25", 0, 250 },
	{ "1n", 0, 1 },
	{ "0.0001", 0, 1 },
	{ "1k", 0, 1000000 },
	{ "18446744073709551", 0, 18446744073709551000u },
	{ "18446744073709552", -ERANGE, 0 },
	{ "-250m", -EINVAL, 0 },
	{ "m", -EINVAL, 0 },
};

static void run_cases(const struct qcase *cases, size_t n, int (*parse)(const char *, uint64_t *))
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 12345;
		int r = parse(cases[i].text, &v);
		if (r != cases[i].ret)
			fail_msg("\"%s\": returned %d, want %d", cases[i].text, r, cases[i].ret);
		if (r == 0 && v != cases[i].value)
			fail_msg("\"%s\": %" PRIu64 ", want %" PRIu64, cases[i].text, v,
				 cases[i].value);
	}
}

static void test_parse_bytes(void **state)
{
	run_cases(bytes_cases, sizeof(bytes_cases) / sizeof(bytes_cases[0]), ap_quantity_parse);
}

static void test_parse_milli(void **state)
{
	run_cases(milli_cases, sizeof(milli_cases) / sizeof(milli_cases[0]),
		  ap_quantity_parse_milli);
}

static void test_format(void **state)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} bytes[] = {
		{ 0, "0" },
		{ 1, "1" },
		{ 1023, "1023" },
		{ 1024, "1Ki" },
		{ 1536, "1536" },
		{ 1610612736, "1536Mi" },
		{ 3221225472, "3Gi" },
		{ 4294967296, "4Gi" },
		{ 1099511627776, "1Ti" },
		{ 1ull << 60, "1Ei" },
		{ 1ull << 63, "8Ei" },
		{ UINT64_MAX, "18446744073709551615" },
	};
	static const struct {
		uint64_t milli;
		const char *text;
	} milli[] = {
		{ 0, "0" }, { 250, "250m" }, { 1000, "1" }, { 1500, "1500m" }, { 2000, "2" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
		uint64_t back;
		ap_quantity_format_bytes(bytes[i].bytes, buf, sizeof(buf));
		assert_string_equal(buf, bytes[i].text);
		assert_int_equal(ap_quantity_parse(buf, &back), 0);
		assert_int_equal(back, bytes[i].bytes);
	}
	for (size_t i = 0; i < sizeof(milli) / sizeof(milli[0]); i++) {
		uint64_t back;
		ap_quantity_format_milli(milli[i].milli, buf, sizeof(buf));
		assert_string_equal(buf, milli[i].text);
		assert_int_equal(ap_quantity_parse_milli(buf, &back), 0);
		assert_int_equal(back, milli[i].milli);
	}
	/* Truncation keeps the buffer a string. */
	ap_quantity_format_bytes(1610612736, buf, 4);
	assert_string_equal(buf, "153");
}

/* Every memory quantity in memory-limits.json parses to its byte count. */
static void test_memory_limits_quantities(void **state)
{
	json_t *rows = vec_json("memory-limits.json"), *row;
	size_t i, checked = 0;

	json_array_foreach(rows, i, row) {
		if (!json_object_get(row, "agentMemory"))
			continue;
		uint64_t v;
		const char *text = vec_str(row, "agentMemory");
		assert_int_equal(ap_quantity_parse(text, &v), 0);
		assert_int_equal(v, (uint64_t)vec_int(row, "agentMemoryBytes"));
		checked++;
	}
	assert_true(checked >= 10);
	json_decref(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bytes),
		cmocka_unit_test(test_parse_milli),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_memory_limits_quantities),
	};

	return cmocka_run_group_tests_name("agent-proto-quantity", tests, NULL, NULL);
}
