/* SPDX-License-Identifier: Apache-2.0 */
/* The pure planner: every row of tests/vectors/memory-limits.json
 * (start-up, /upscale and /downscale limits, cache sizes and exact
 * response bodies), then the rules we add: the hold, the shrink test
 * against the limits in force, the extra downscale checks, the need for
 * memory and the back-off of asks. */
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
	plan_base_limits(cfg, basis, cfg->filecache.enabled ? cache : 0, &max, &high);
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
	struct plan_downscale p;
	struct plan_state st = { .cache.cap = UINT64_MAX };
	struct ap_downscale_result res = { 0 };
	uint64_t vm = u64(row, "agentMemoryBytes");
	json_t *cur = json_object_get(row, "memoryCurrentBytes");
	uint64_t current = cur ? (uint64_t)json_integer_value(cur) : 0;
	char *body;

	plan_downscale(cfg, &st, vm, current, current, &p);
	res.ok = p.ok;
	if (!cfg->cgroup.enabled && !cfg->filecache.enabled) {
		snprintf(res.status, sizeof(res.status),
			 "No action taken (no cgroup or file cache enabled)");
	} else if (p.ok) {
		uint64_t cache = cfg->filecache.enabled ? cache_actual(row, p.cache_target) : 0;
		uint64_t max, high;

		check_cache(row, cfg, cache);
		plan_base_limits(cfg, p.basis, cache, &max, &high);
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
	struct plan_downscale p;
	struct plan_state st = { .cache.cap = UINT64_MAX };

	(void)state;
	config_defaults(&cfg);
	cfg.cgroup.enabled = true;
	plan_downscale(&cfg, &st, 2048 * MiB, UINT64_MAX, UINT64_MAX, &p);
	assert_false(p.ok);
	assert_non_null(strstr(p.status, "Calculated memory.high too low"));
	plan_downscale(&cfg, &st, 0, 0, 0, &p);
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


/* A cgroup-only config with round numbers: oom 100 MiB, buffer 100 MiB,
 * sys 100 MiB. */
static void cgroup_only(struct config *cfg)
{
	config_defaults(cfg);
	cfg->cgroup.enabled = true;
	cfg->filecache.enabled = false;
}

static void test_limits_saturate_and_refuse(void **state)
{
	struct config cfg;
	struct plan_state st = { .cache.cap = UINT64_MAX };
	struct plan_limits p;
	uint64_t max, high;

	(void)state;
	cgroup_only(&cfg);
	plan_base_limits(&cfg, 150 * MiB, 0, &max, &high);
	assert_int_equal(max, 150 * MiB);
	assert_int_equal(high, 50 * MiB);
	plan_base_limits(&cfg, 1024 * MiB, 2048 * MiB, &max, &high); /* cache > basis */
	assert_int_equal(max, 0);
	assert_int_equal(high, 0);
	/* Nothing known: no limits at all (never memory.max = 0). */
	plan_limits(&cfg, &st, &p);
	assert_false(p.ok);
	/* A basis smaller than the buffers is refused with the component. */
	st.mem_total = 150 * MiB;
	plan_limits(&cfg, &st, &p);
	assert_false(p.ok);
	assert_non_null(strstr(p.why, "memory_high_buffer"));
	st.mem_total = 4096 * MiB;
	plan_limits(&cfg, &st, &p);
	assert_true(p.ok);
	assert_int_equal(p.max, 4096 * MiB);
	assert_int_equal(p.high, 3996 * MiB);
	assert_false(p.held);
}

static void test_raise_is_a_floor_capped_at_max(void **state)
{
	struct config cfg;
	struct plan_state st = { .cache.cap = UINT64_MAX, .mem_total = 4096 * MiB };
	struct plan_limits p;

	(void)state;
	cgroup_only(&cfg);
	st.raise_high = 4020 * MiB;
	plan_limits(&cfg, &st, &p);
	assert_int_equal(p.high, 4020 * MiB);
	assert_int_equal(p.base_high, 3996 * MiB);
	st.raise_high = 5000 * MiB; /* never above memory.max */
	plan_limits(&cfg, &st, &p);
	assert_int_equal(p.high, p.max);
	st.raise_high = 1000 * MiB; /* below the computed value: no effect */
	plan_limits(&cfg, &st, &p);
	assert_int_equal(p.high, 3996 * MiB);
}

static void test_hold_never_lowers_into_the_workload(void **state)
{
	struct config cfg;
	struct plan_state st = { .cache.cap = UINT64_MAX, .mem_total = 2048 * MiB };
	struct plan_limits p;

	(void)state;
	cgroup_only(&cfg);
	/* Written for 4 GiB; MemTotal dropped to 2 GiB; the workload uses
	 * 3000 MiB: memory.high stops at 3100 MiB, max 100 MiB above. */
	st.written = true;
	st.written_max = 4096 * MiB;
	st.written_high = 3996 * MiB;
	st.current = 3000 * MiB;
	plan_limits(&cfg, &st, &p);
	assert_true(p.ok && p.held);
	assert_int_equal(p.high, 3100 * MiB);
	assert_int_equal(p.max, 3200 * MiB);
	assert_int_equal(p.base_high, 1948 * MiB);
	/* Usage fell: lower all the way. */
	st.written_max = p.max;
	st.written_high = p.high;
	st.current = 500 * MiB;
	plan_limits(&cfg, &st, &p);
	assert_false(p.held);
	assert_int_equal(p.high, 1948 * MiB);
	assert_int_equal(p.max, 2048 * MiB);
	/* Workload already above what is written: nothing is lowered. */
	st.written_max = 2048 * MiB;
	st.written_high = 1948 * MiB;
	st.mem_total = 1024 * MiB;
	st.current = 1990 * MiB;
	plan_limits(&cfg, &st, &p);
	assert_int_equal(p.high, 1948 * MiB);
	assert_int_equal(p.max, 2048 * MiB);
	assert_true(p.high <= p.max);
}

static void test_upscale_shrink_compares_limits_in_force(void **state)
{
	struct config cfg;
	struct plan_state st = { .cache.cap = UINT64_MAX, .mem_total = 3996 * MiB };

	(void)state;
	cgroup_only(&cfg);
	st.vm_bytes = 4096 * MiB;
	st.planned = true;
	st.planned_max = 3996 * MiB;
	st.planned_high = 3896 * MiB;
	/* memory.high raised to memory.max: a 5 GiB upscale before the
	 * hot-plug is not a shrink (case 1 of the policy issue). */
	st.written = true;
	st.written_max = 3996 * MiB;
	st.written_high = 3996 * MiB;
	st.raise_high = 3996 * MiB;
	assert_false(plan_upscale_shrinks(&cfg, &st, 5120 * MiB));
	assert_false(plan_upscale_shrinks(&cfg, &st, 4096 * MiB));
	assert_true(plan_upscale_shrinks(&cfg, &st, 3072 * MiB));
	/* A bigger cache on its way for a MemTotal that grew before the agent
	 * spoke is superseded by the upscale's own target, not held against it. */
	cfg.filecache.enabled = true;
	st = (struct plan_state){ .mem_total = 6 * 1024 * MiB,
				  .cache = { .known = true, .bytes = 2950 * MiB,
					     .inflight = 4500 * MiB, .cap = UINT64_MAX },
				  .planned = true, .planned_max = 990 * MiB,
				  .planned_high = 890 * MiB };
	assert_false(plan_upscale_shrinks(&cfg, &st, 4096 * MiB));
	cfg.filecache.enabled = false;
	/* First /upscale after a restart: the basis loses the sys buffer. */
	st = (struct plan_state){ .cache.cap = UINT64_MAX, .mem_total = 4096 * MiB };
	assert_true(plan_upscale_shrinks(&cfg, &st, 4096 * MiB));
	assert_false(plan_upscale_shrinks(&cfg, &st, 4196 * MiB));
}

static void test_downscale_refused_when_an_ask_would_follow(void **state)
{
	struct config cfg;
	struct plan_state st = { .cache.cap = UINT64_MAX };
	struct plan_downscale p;

	(void)state;
	cgroup_only(&cfg);
	/* 4 GiB: high = 3896 MiB; 3700 MiB used is 95 %: passes the
	 * original's buffer rule but would be critical at once. */
	plan_downscale(&cfg, &st, 4096 * MiB, 3700 * MiB, 3700 * MiB, &p);
	assert_false(p.ok);
	assert_non_null(strstr(p.status, "too tight"));
	assert_non_null(strstr(p.status, "90%"));
	/* 80 %: fine. */
	plan_downscale(&cfg, &st, 4096 * MiB, 3100 * MiB, 3100 * MiB, &p);
	assert_true(p.ok);
	assert_int_equal(p.new_high, 3896 * MiB);
	/* ... unless it grows into the new high within the horizon. */
	st.growth_bps = 500.0 * MiB;
	plan_downscale(&cfg, &st, 4096 * MiB, 3100 * MiB, 3100 * MiB, &p);
	assert_false(p.ok);
	assert_non_null(strstr(p.status, "within 2000 ms"));
	/* Prediction off: only the original's rule. */
	cfg.predict.enabled = false;
	plan_downscale(&cfg, &st, 4096 * MiB, 3700 * MiB, 3700 * MiB, &p);
	assert_true(p.ok);
}

/* The workload fits the new size but memory.current (page cache
 * included) does not: accepted, with the page cache to reclaim first. */
static void test_downscale_reclaims_page_cache(void **state)
{
	struct config cfg;
	struct plan_state st = { .cache.cap = UINT64_MAX };
	struct plan_downscale p;
	char text[512];

	(void)state;
	cgroup_only(&cfg);
	/* 4 GiB: new high 3896 MiB; 3900 MiB in the cgroup, 1000 of it the
	 * workload's. */
	plan_downscale(&cfg, &st, 4096 * MiB, 3900 * MiB, 1000 * MiB, &p);
	assert_true(p.ok);
	/* The difference, and a quarter of the buffer for what the cgroup
	 * charges until the limits are written. */
	assert_int_equal(p.reclaim, 3900 * MiB + 100 * MiB - 3896 * MiB + 25 * MiB);
	/* Never more than the page cache there is (120 MiB here; prediction
	 * off, or 3780 MiB would be too close to the new high). */
	cfg.predict.enabled = false;
	plan_downscale(&cfg, &st, 4096 * MiB, 3900 * MiB, 3780 * MiB, &p);
	assert_true(p.ok);
	assert_int_equal(p.reclaim, 120 * MiB);
	cfg.predict.enabled = true;
	/* Under the old rule (usage = memory.current) it is refused. */
	plan_downscale(&cfg, &st, 4096 * MiB, 3900 * MiB, 3900 * MiB, &p);
	assert_false(p.ok);
	assert_int_equal(p.reclaim, 0);
	/* Nothing to reclaim when memory.current fits. */
	plan_downscale(&cfg, &st, 4096 * MiB, 2000 * MiB, 1000 * MiB, &p);
	assert_true(p.ok);
	assert_int_equal(p.reclaim, 0);
	plan_reclaim_refusal(&cfg, 3896 * MiB, 3850 * MiB, 50 * MiB, text, sizeof(text));
	assert_string_equal(text, "Page cache not reclaimed: 54 MiB could not be reclaimed (50 MiB "
			    "were); 3850 MiB (memory.current) + 100 MiB (buffer) > 3896 MiB "
			    "(new high)");
}

static void test_cache_reserved(void **state)
{
	struct config cfg;
	struct plan_state st = { .cache.cap = UINT64_MAX, .mem_total = 4096 * MiB };

	(void)state;
	config_defaults(&cfg);
	cfg.cgroup.enabled = cfg.filecache.enabled = true;
	/* Unknown: the target for the basis. */
	assert_int_equal(plan_cache_reserved(&cfg, &st),
			 plan_cache_target(&cfg, 4096 * MiB));
	/* Known and a bigger one on its way: the bigger. */
	st.cache.known = true;
	st.cache.bytes = 1024 * MiB;
	st.cache.inflight = 2048 * MiB;
	assert_int_equal(plan_cache_reserved(&cfg, &st), 2048 * MiB);
	/* ... but Postgres caps it: the cap. */
	st.cache.cap = 1024 * MiB;
	assert_int_equal(plan_cache_reserved(&cfg, &st), 1024 * MiB);
	/* Not in memory: nothing. */
	cfg.filecache.in_memory = false;
	assert_int_equal(plan_cache_reserved(&cfg, &st), 0);
}

static void test_need_memory(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(plan_need_memory(&cfg, 500, 1000, UINT64_MAX), PLAN_NEED_NONE);
	assert_int_equal(plan_need_memory(&cfg, 850, 1000, 2001), PLAN_NEED_NONE);
	assert_int_equal(plan_need_memory(&cfg, 500, 1000, 2000), PLAN_NEED_PREDICTED);
	assert_int_equal(plan_need_memory(&cfg, 900, 1000, UINT64_MAX), PLAN_NEED_CRITICAL);
	assert_int_equal(plan_need_memory(&cfg, 1000, 1000, 0), PLAN_NEED_CRITICAL);
	assert_int_equal(plan_need_memory(&cfg, 899, 1000, UINT64_MAX), PLAN_NEED_NONE);
	cfg.predict.enabled = false;
	assert_int_equal(plan_need_memory(&cfg, 1000, 1000, 0), PLAN_NEED_NONE);
}

static void test_gate_backs_off_and_resets(void **state)
{
	struct config cfg;
	struct plan_gate g = { 0 };
	uint64_t t = 1000, next = 0;
	const uint64_t waits[] = { 2000, 4000, 8000, 8000, 8000 };

	(void)state;
	config_defaults(&cfg);
	plan_gate_reset(&g);
	assert_true(plan_gate_allows(&cfg, &g, t, false, NULL));
	plan_gate_asked(&g, t);
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		assert_false(plan_gate_allows(&cfg, &g, t + waits[i] - 1, false, &next));
		assert_int_equal(next, t + waits[i]);
		t += waits[i];
		assert_true(plan_gate_allows(&cfg, &g, t, false, NULL));
		plan_gate_asked(&g, t);
	}
	/* An applied upscale: an event may ask at once, a prediction only
	 * min_interval after the last ask. */
	plan_gate_reset(&g);
	assert_true(plan_gate_allows(&cfg, &g, t + 1, false, NULL));
	assert_false(plan_gate_allows(&cfg, &g, t + 1, true, &next));
	assert_int_equal(next, t + cfg.predict.min_interval_ms);
	assert_true(plan_gate_allows(&cfg, &g, t + cfg.predict.min_interval_ms, true, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_limits_vectors),
		cmocka_unit_test(test_basis_waits_for_memory),
		cmocka_unit_test(test_downscale_garbage_current_refused),
		cmocka_unit_test(test_buffers_fit),
		cmocka_unit_test(test_limits_saturate_and_refuse),
		cmocka_unit_test(test_raise_is_a_floor_capped_at_max),
		cmocka_unit_test(test_hold_never_lowers_into_the_workload),
		cmocka_unit_test(test_upscale_shrink_compares_limits_in_force),
		cmocka_unit_test(test_downscale_refused_when_an_ask_would_follow),
		cmocka_unit_test(test_downscale_reclaims_page_cache),
		cmocka_unit_test(test_cache_reserved),
		cmocka_unit_test(test_need_memory),
		cmocka_unit_test(test_gate_backs_off_and_resets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
