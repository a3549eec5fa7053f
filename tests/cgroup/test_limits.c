/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Limit formulas and the downscale rule against tests/vectors/memory-limits.json.
 *
 * The file cache size is not computed here (that is filecache's formula):
 * rows give it as expectFileCacheBytes.  The downscale check uses the
 * UNcapped cache size, which a rejected or capped row does not carry; it is
 * taken from a row for the same VM size whose cache was not capped.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cgroup.h"

#define MIB (1024ull * 1024ull)
#define BUFFER (100 * MIB)   /* sys, OOM and memory.high buffers (§8) */

static json_t *rows;

static int load_vectors(void **state)
{
	const char *dir = getenv("VMI_VECTORS_DIR");
	char path[4096];
	json_error_t jerr;

	(void)state;
	if (!dir) {
		print_error("VMI_VECTORS_DIR is not set\n");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/memory-limits.json", dir);
	rows = json_load_file(path, 0, &jerr);
	if (!rows || !json_is_array(rows)) {
		print_error("%s: %s\n", path, jerr.text);
		return -1;
	}
	return 0;
}

static int free_vectors(void **state)
{
	(void)state;
	json_decref(rows);
	return 0;
}

static uint64_t num(const json_t *row, const char *key)
{
	const json_t *v = json_object_get(row, key);

	assert_true(json_is_integer(v));
	assert_true(json_integer_value(v) >= 0);
	return (uint64_t)json_integer_value(v);
}

static bool flag(const json_t *row, const char *key)
{
	return json_is_true(json_object_get(row, key));
}

static const char *str(const json_t *row, const char *key)
{
	return json_string_value(json_object_get(row, key));
}

/* The file cache counted against the cgroup for a row with limits. */
static uint64_t row_cache(const json_t *row)
{
	return flag(row, "fileCacheEnabled") ? num(row, "expectFileCacheBytes") : 0;
}

/* Uncapped cache for this agent size, from any row where it was not capped. */
static bool uncapped_cache(uint64_t agent_bytes, uint64_t *out)
{
	size_t i;
	json_t *r;

	json_array_foreach(rows, i, r) {
		if (!flag(r, "fileCacheEnabled") || !json_object_get(r, "agentMemoryBytes") ||
		    !json_object_get(r, "expectFileCacheBytes") ||
		    num(r, "agentMemoryBytes") != agent_bytes)
			continue;
		if (num(r, "expectFileCacheBytes") < num(r, "pgMaxFileCacheBytes")) {
			*out = num(r, "expectFileCacheBytes");
			return true;
		}
	}
	return false;
}

static void test_startup_rows(void **state)
{
	size_t i, seen = 0;
	json_t *row;

	(void)state;
	json_array_foreach(rows, i, row) {
		struct cg_limits lim;
		uint64_t usable;

		if (strcmp(str(row, "event"), "startup") != 0 || !flag(row, "cgroupEnabled"))
			continue;
		/* Before any agent the basis is MemTotal (no sys buffer, §9.3). */
		usable = cg_usable_bytes(0, BUFFER, num(row, "memTotalBytes"));
		cg_limits_compute(usable, row_cache(row), BUFFER, &lim);
		print_message("startup row %zu: max %llu high %llu\n", i,
			      (unsigned long long)lim.max, (unsigned long long)lim.high);
		assert_true(lim.max == num(row, "expectMemoryMaxBytes"));
		assert_true(lim.high == num(row, "expectMemoryHighBytes"));
		seen++;
	}
	assert_true(seen >= 3);
}

static void test_scaling_rows(void **state)
{
	size_t i, seen = 0;
	json_t *row;

	(void)state;
	json_array_foreach(rows, i, row) {
		struct cg_limits lim, via_basis;
		uint64_t agent;

		if (strcmp(str(row, "event"), "startup") == 0 || !flag(row, "cgroupEnabled") ||
		    !json_object_get(row, "expectMemoryMaxBytes"))
			continue;
		agent = num(row, "agentMemoryBytes");
		cg_limits_from_vm(agent, BUFFER, row_cache(row), BUFFER, &lim);
		/* The one-basis helper agrees when MemTotal is unknown or larger. */
		cg_limits_compute(cg_usable_bytes(agent, BUFFER, 0), row_cache(row), BUFFER,
				  &via_basis);
		print_message("%s row %zu: max %llu high %llu\n", str(row, "event"), i,
			      (unsigned long long)lim.max, (unsigned long long)lim.high);
		assert_true(lim.max == num(row, "expectMemoryMaxBytes"));
		assert_true(lim.high == num(row, "expectMemoryHighBytes"));
		assert_true(via_basis.max == lim.max && via_basis.high == lim.high);
		seen++;
	}
	assert_true(seen >= 8);
}

/* "… 659 MiB (new high) …" in a rejection Status: the MiB number. */
static double status_new_high_mib(const char *response)
{
	const char *p = strstr(response, "too low: ");
	double mib = -1;

	if (p && sscanf(p, "too low: %lf MiB (new high)", &mib) == 1)
		return mib;
	return -1;
}

static void test_downscale_rows(void **state)
{
	size_t i, accepted = 0, rejected = 0;
	json_t *row;

	(void)state;
	json_array_foreach(rows, i, row) {
		struct cg_downscale_check chk;
		struct cg_limits lim;
		const char *resp;
		uint64_t cache = 0, agent;
		bool want_ok;

		if (strcmp(str(row, "event"), "downscale") != 0 || !flag(row, "cgroupEnabled"))
			continue;
		agent = num(row, "agentMemoryBytes");
		if (flag(row, "fileCacheEnabled"))
			assert_true(uncapped_cache(agent, &cache));
		cg_limits_from_vm(agent, BUFFER, cache, BUFFER, &lim);
		resp = str(row, "expectResponse");
		want_ok = strstr(resp, "\"Ok\":true") != NULL;
		assert_int_equal(cg_downscale_check(lim.high, num(row, "memoryCurrentBytes"),
						    BUFFER, &chk), want_ok);
		assert_int_equal(chk.ok, want_ok);
		assert_true(chk.new_high == lim.high);
		assert_true(chk.current == num(row, "memoryCurrentBytes"));
		assert_true(chk.buffer == BUFFER);
		if (!want_ok)
			assert_true(status_new_high_mib(resp) * (double)MIB ==
				    (double)chk.new_high);
		accepted += want_ok;
		rejected += !want_ok;
	}
	assert_true(accepted >= 4 && rejected >= 3);
}

struct sat_case {
	uint64_t vm, sys, cache, oom, want_max, want_high;
};

static const struct sat_case sat_cases[] = {
	{ 0, 100 * MIB, 0, 100 * MIB, 0, 0 },
	{ 50 * MIB, 100 * MIB, 0, 100 * MIB, 0, 0 },          /* smaller than the buffer */
	{ 150 * MIB, 100 * MIB, 0, 100 * MIB, 50 * MIB, 0 },  /* high saturates */
	{ 1024 * MIB, 100 * MIB, 2048 * MIB, 100 * MIB, 0, 0 }, /* cache > usable */
	{ UINT64_MAX, 0, 0, 0, UINT64_MAX, UINT64_MAX },
	{ 1024 * MIB, 0, 24 * MIB, 0, 1000 * MIB, 1000 * MIB },
};

static void test_saturation(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sat_cases) / sizeof(sat_cases[0]); i++) {
		const struct sat_case *c = &sat_cases[i];
		struct cg_limits lim;

		cg_limits_from_vm(c->vm, c->sys, c->cache, c->oom, &lim);
		assert_true(lim.max == c->want_max);
		assert_true(lim.high == c->want_high);
	}
}

static void test_usable_basis(void **state)
{
	(void)state;
	/* min(agent − sys, MemTotal), with 0 as "unknown" on either side. */
	assert_true(cg_usable_bytes(4096 * MIB, 100 * MIB, 3000 * MIB) == 3000 * MIB);
	assert_true(cg_usable_bytes(2048 * MIB, 100 * MIB, 3000 * MIB) == 1948 * MIB);
	assert_true(cg_usable_bytes(0, 100 * MIB, 3000 * MIB) == 3000 * MIB);
	assert_true(cg_usable_bytes(2048 * MIB, 100 * MIB, 0) == 1948 * MIB);
	assert_true(cg_usable_bytes(0, 100 * MIB, 0) == 0);
}

static void test_downscale_edges(void **state)
{
	struct cg_downscale_check chk;
	char msg[256];

	(void)state;
	assert_true(cg_downscale_check(200, 100, 100, &chk));       /* equality accepted */
	assert_false(cg_downscale_check(200, 101, 100, &chk));
	assert_false(cg_downscale_check(UINT64_MAX - 1, UINT64_MAX - 5, 100, &chk));
	assert_true(cg_downscale_check(UINT64_MAX, UINT64_MAX, 100, &chk)); /* saturates */
	cg_downscale_check(691011584, 629407744, 104857600, &chk);
	assert_true(cg_downscale_describe(&chk, msg, sizeof(msg)) > 0);
	assert_string_equal(msg, "new memory.high 691011584 B < memory.current 629407744 B + "
			    "buffer 104857600 B: downscale rejected");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup_rows),
		cmocka_unit_test(test_scaling_rows),
		cmocka_unit_test(test_downscale_rows),
		cmocka_unit_test(test_saturation),
		cmocka_unit_test(test_usable_basis),
		cmocka_unit_test(test_downscale_edges),
	};

	return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
