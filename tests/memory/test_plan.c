/* SPDX-License-Identifier: Apache-2.0 */
/* plan.c over every row of tests/vectors/memory-limits.json: start-up,
 * /upscale and /downscale limits, cache sizes and exact response bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"
#include "config.h"
#include "plan.h"

#define MiB (1ull << 20)

static json_t *load_vectors(void)
{
	const char *dir = getenv("VMI_VECTORS_DIR");
	char path[1024];
	json_error_t e;
	json_t *root;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/memory-limits.json", dir);
	root = json_load_file(path, 0, &e);
	if (!root)
		fail_msg("%s:%d: %s", path, e.line, e.text);
	assert_true(json_is_array(root));
	return root;
}

static uint64_t u64(json_t *row, const char *key)
{
	json_t *v = json_object_get(row, key);

	if (!json_is_integer(v))
		fail_msg("row lacks integer %s", key);
	return (uint64_t)json_integer_value(v);
}

/* What Postgres lets the cache be: capped by its maximum, whole MiB. */
static uint64_t cache_actual(json_t *row, uint64_t target)
{
	uint64_t pg_max = u64(row, "pgMaxFileCacheBytes");

	return (target < pg_max ? target : pg_max) / MiB * MiB;
}

static void row_config(json_t *row, struct config *cfg)
{
	config_defaults(cfg);
	cfg->cgroup.enabled = json_is_true(json_object_get(row, "cgroupEnabled"));
	cfg->filecache.enabled = json_is_true(json_object_get(row, "fileCacheEnabled"));
}

static void check_limits(json_t *row, const struct config *cfg, uint64_t basis, uint64_t cache)
{
	uint64_t max, high;

	if (!cfg->cgroup.enabled)
		return;
	plan_limits(cfg, basis, cache, &max, &high);
	assert_int_equal(max, u64(row, "expectMemoryMaxBytes"));
	assert_int_equal(high, u64(row, "expectMemoryHighBytes"));
}

static void check_cache(json_t *row, const struct config *cfg, uint64_t cache)
{
	char sql[128];

	if (!cfg->filecache.enabled)
		return;
	assert_int_equal(cache, u64(row, "expectFileCacheBytes"));
	snprintf(sql, sizeof(sql), "ALTER SYSTEM SET neon.file_cache_size_limit = %llu;",
		 (unsigned long long)(cache / MiB));
	assert_string_equal(sql, json_string_value(json_object_get(row, "expectAlterSystem")));
}

static void run_startup(json_t *row, const struct config *cfg)
{
	uint64_t basis = plan_basis(cfg, 0, u64(row, "memTotalBytes"));
	uint64_t cache = cfg->filecache.enabled ? cache_actual(row, plan_cache_target(cfg, basis)) : 0;

	assert_int_equal(basis, u64(row, "memTotalBytes"));
	check_cache(row, cfg, cache);
	check_limits(row, cfg, basis, cache);
}

static void run_upscale(json_t *row, const struct config *cfg)
{
	uint64_t vm = 0, cache;

	assert_int_equal(ap_quantity_parse(json_string_value(json_object_get(row, "agentMemory")),
					   &vm), 0);
	assert_int_equal(vm, u64(row, "agentMemoryBytes"));
	/* The hot-plugged memory has arrived: MemTotal shows the whole VM. */
	uint64_t basis = plan_basis(cfg, vm, vm);
	cache = cfg->filecache.enabled ? cache_actual(row, plan_cache_target(cfg, basis)) : 0;
	check_cache(row, cfg, cache);
	check_limits(row, cfg, basis, cache);
}

static void run_downscale(json_t *row, const struct config *cfg)
{
	struct downscale_plan p;
	struct ap_downscale_result res = { 0 };
	uint64_t vm = u64(row, "agentMemoryBytes");
	json_t *cur = json_object_get(row, "memoryCurrentBytes");
	char *body;

	plan_downscale(cfg, vm, cur ? (uint64_t)json_integer_value(cur) : 0, 0, &p);
	res.ok = p.ok;
	if (!cfg->cgroup.enabled && !cfg->filecache.enabled) {
		snprintf(res.status, sizeof(res.status),
			 "No action taken (no cgroup or file cache enabled)");
	} else if (p.ok) {
		uint64_t cache = cfg->filecache.enabled ? cache_actual(row, p.cache_target) : 0;
		uint64_t max, high;

		check_cache(row, cfg, cache);
		plan_limits(cfg, p.basis, cache, &max, &high);
		check_limits(row, cfg, p.basis, cache);
		assert_int_equal(plan_accept_status(res.status, sizeof(res.status),
						    cfg->filecache.enabled, cache,
						    cfg->cgroup.enabled, high, max), 0);
	} else {
		memcpy(res.status, p.status, sizeof(res.status));
	}
	body = ap_encode_downscale_result(&res);
	assert_non_null(body);
	assert_string_equal(body, json_string_value(json_object_get(row, "expectResponse")));
	free(body);
}

static void test_memory_limits_vectors(void **state)
{
	json_t *rows = load_vectors(), *row;
	size_t i, seen[3] = { 0 };

	(void)state;
	json_array_foreach(rows, i, row) {
		const char *event = json_string_value(json_object_get(row, "event"));
		struct config cfg;

		row_config(row, &cfg);
		print_message("row %zu: %s\n", i,
			      json_string_value(json_object_get(row, "description")));
		if (strcmp(event, "startup") == 0) {
			run_startup(row, &cfg);
			seen[0]++;
		} else if (strcmp(event, "upscale") == 0) {
			run_upscale(row, &cfg);
			seen[1]++;
		} else if (strcmp(event, "downscale") == 0) {
			run_downscale(row, &cfg);
			seen[2]++;
		} else {
			fail_msg("unknown event %s", event);
		}
	}
	assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
	json_decref(rows);
}

static void test_basis_waits_for_memory(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	/* Agent says 4 GiB but only 2 GiB arrived: limits follow MemTotal. */
	assert_int_equal(plan_basis(&cfg, 4096 * MiB, 2048 * MiB), 2048 * MiB);
	/* Memory arrived: agent's size minus the sys buffer. */
	assert_int_equal(plan_basis(&cfg, 4096 * MiB, 4096 * MiB), 3996 * MiB);
	/* MemTotal unreadable: trust the agent. */
	assert_int_equal(plan_basis(&cfg, 4096 * MiB, 0), 3996 * MiB);
	/* Smaller than the sys buffer: nothing usable, never a wrap. */
	assert_int_equal(plan_basis(&cfg, 50 * MiB, 4096 * MiB), 0);
}

static void test_downscale_garbage_current_refused(void **state)
{
	struct config cfg;
	struct downscale_plan p;

	(void)state;
	config_defaults(&cfg);
	cfg.cgroup.enabled = true;
	plan_downscale(&cfg, 2048 * MiB, UINT64_MAX, 0, &p);
	assert_false(p.ok);
	assert_non_null(strstr(p.status, "Calculated memory.high too low"));
	plan_downscale(&cfg, 0, 0, 0, &p);
	assert_false(p.ok);
}

static void test_buffers_fit(void **state)
{
	struct config cfg;
	char why[256] = "";

	(void)state;
	config_defaults(&cfg);
	/* 100 + 100 + 100 MiB of buffers: fit in 300 MiB exactly, not in less. */
	assert_true(plan_buffers_fit(&cfg, 300 * MiB, why, sizeof(why)));
	assert_false(plan_buffers_fit(&cfg, 300 * MiB - 1, why, sizeof(why)));
	assert_non_null(strstr(why, "memory_high_buffer"));
	cfg.system.sys_buffer = 1024 * MiB;
	assert_false(plan_buffers_fit(&cfg, 512 * MiB, why, sizeof(why)));
	assert_non_null(strstr(why, "sys_buffer"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_limits_vectors),
		cmocka_unit_test(test_basis_waits_for_memory),
		cmocka_unit_test(test_downscale_garbage_current_refused),
		cmocka_unit_test(test_buffers_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
