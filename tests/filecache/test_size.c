/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_size.c — the file cache formula and configuration checks against
 * the shared vectors (tests/vectors, via VMI_VECTORS_DIR), the worked
 * table of docs/file-cache.md §3, and setting-name validation.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "filecache.h"

static json_t *load_vector(const char *name)
{
	const char *dir = getenv("VMI_VECTORS_DIR");
	char path[1024];
	json_error_t jerr;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	json_t *root = json_load_file(path, 0, &jerr);
	if (!root)
		fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
	assert_true(json_is_array(root));
	assert_true(json_array_size(root) > 0);
	return root;
}

static void config_from_json(const json_t *row, struct fc_config *cfg)
{
	json_t *mult = json_object_get(row, "resourceMultiplier");
	json_t *min = json_object_get(row, "minRemainingAfterCache");
	json_t *spread = json_object_get(row, "spreadFactor");

	assert_true(json_is_number(mult) && json_is_integer(min) && json_is_number(spread));
	cfg->resource_multiplier = json_number_value(mult);
	cfg->min_remaining_after_cache = (uint64_t)json_integer_value(min);
	cfg->spread_factor = json_number_value(spread);
}

static void test_size_vectors(void **state)
{
	json_t *rows = load_vector("filecache-size.json");
	size_t i, noted = 0;
	json_t *row;

	json_array_foreach(rows, i, row) {
		struct fc_config cfg;
		config_from_json(row, &cfg);
		uint64_t total = (uint64_t)json_integer_value(json_object_get(row, "totalBytes"));
		uint64_t want = (uint64_t)json_integer_value(json_object_get(row, "expectBytes"));
		uint64_t got = fc_cache_size(&cfg, total);
		if (got != want)
			fail_msg("row %zu: total %llu: got %llu, want %llu", i,
				 (unsigned long long)total, (unsigned long long)got,
				 (unsigned long long)want);
		assert_int_equal(got % FC_MIB, 0);
		if (json_object_get(row, "note"))
			noted++;
	}
	/* The rows where float64 loses a MiB must be among them. */
	assert_true(noted > 0);
	json_decref(rows);
}

/* docs/file-cache.md §3: total → cache, and the /upscale column (input total − 100 MiB). */
static void test_worked_table(void **state)
{
	static const struct {
		uint64_t total, cache, upscale_mib;
	} rows[] = {
		{ 1ull << 30, 365953024, 258 },
		{ 2ull << 30, 1342177280, 1189 },
		{ 4ull << 30, 3221225472ull, 2997 },
		{ 8ull << 30, 6442450944ull, 6069 },
		{ 16ull << 30, 12884901888ull, 12213 },
	};
	struct fc_config cfg;

	fc_config_default(&cfg);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(fc_cache_size(&cfg, rows[i].total), rows[i].cache);
		assert_int_equal(fc_cache_size(&cfg, rows[i].total - 100 * FC_MIB),
				 rows[i].upscale_mib * FC_MIB);
	}
	/* docs/file-cache.md §2: 750 MiB gives 99 MiB (exact arithmetic would give 100). */
	assert_int_equal(fc_cache_size(&cfg, 750 * FC_MIB), 99 * FC_MIB);
	/* Extremes: nothing available, and the largest total. */
	assert_int_equal(fc_cache_size(&cfg, 640 * FC_MIB), 0);
	uint64_t big = fc_cache_size(&cfg, UINT64_MAX);
	assert_true(big > 0 && big <= UINT64_MAX / 4 * 3 + FC_MIB && big % FC_MIB == 0);
}

static void test_validation_vectors(void **state)
{
	json_t *rows = load_vector("filecache-config-validation.json");
	size_t i;
	json_t *row;

	json_array_foreach(rows, i, row) {
		struct fc_config cfg;
		char err[256] = "";
		config_from_json(row, &cfg);
		int r = fc_config_validate(&cfg, err, sizeof(err));
		if (json_is_true(json_object_get(row, "valid"))) {
			if (r != 0)
				fail_msg("row %zu: unexpectedly invalid: %s", i, err);
		} else {
			const char *want = json_string_value(json_object_get(row, "error"));
			assert_non_null(want);
			assert_int_equal(r, -EINVAL);
			assert_string_equal(err, want);
		}
	}
	json_decref(rows);
}

/* Go's %g formatting of the offending value, beyond the vector rows. */
static void test_validation_number_format(void **state)
{
	static const struct {
		double mult;
		const char *text;
	} rows[] = {
		{ -1e-05, "-1e-05" }, { -0.0001, "-0.0001" }, { 1234567.0, "1.234567e+06" },
		{ 100000.0, "100000" }, { 1.5, "1.5" }, { 0.1 + 0.2 + 1.0, "1.3" },
		{ -0.30000000000000004, "-0.30000000000000004" }, { -0.0, "-0" },
		{ INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { NAN, "NaN" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fc_config cfg;
		char err[256], want[256];
		fc_config_default(&cfg);
		cfg.resource_multiplier = rows[i].mult;
		assert_int_equal(fc_config_validate(&cfg, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want),
			 "ResourceMultiplier must be between 0.0 and 1.0, exclusive. Got %s",
			 rows[i].text);
		assert_string_equal(err, want);
	}
	struct fc_config cfg;
	char err[256];
	fc_config_default(&cfg);
	cfg.spread_factor = NAN;
	assert_int_equal(fc_config_validate(&cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "SpreadFactor must be >= 0, got: NaN");
	fc_config_default(&cfg);
	assert_int_equal(fc_config_validate(&cfg, err, sizeof(err)), 0);
}

static void test_setting_names(void **state)
{
	static const char *const good[] = { "neon.file_cache_size_limit", "a", "_x.y_Z9",
					    "work_mem" };
	static const char *const bad[] = { "", "neon.x; DROP TABLE t", "neon.x'", "9lives",
					   ".neon", "neon x", "neon-x", "néon", "a\"b" };
	char longname[200];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(fc_setting_name_check(good[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fc_setting_name_check(bad[i]), -EINVAL);
	assert_int_equal(fc_setting_name_check(NULL), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(fc_setting_name_check(longname), -EINVAL);
	longname[128] = '\0';
	assert_int_equal(fc_setting_name_check(longname), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_vectors),
		cmocka_unit_test(test_worked_table),
		cmocka_unit_test(test_validation_vectors),
		cmocka_unit_test(test_validation_number_format),
		cmocka_unit_test(test_setting_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
