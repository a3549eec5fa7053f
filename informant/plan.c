/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan.c — the memory planner (see plan.h).  The arithmetic follows the
 * original informant where its vectors fix the numbers (limits, cache
 * sizes, Status texts); the basis, the hold rule, the extra downscale
 * checks and the back-off are where we deliberately do better.
 */
#include "plan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_proto.h"
#include "filecache.h"

static uint64_t satsub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t satadd(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

uint64_t plan_basis(const struct config *cfg, uint64_t vm_bytes, uint64_t mem_total)
{
	uint64_t from_vm;

	if (vm_bytes == 0)
		return mem_total;
	from_vm = satsub(vm_bytes, cfg->system.sys_buffer);
	return mem_total ? min_u64(from_vm, mem_total) : from_vm;
}

uint64_t plan_cache_target(const struct config *cfg, uint64_t basis)
{
	struct fc_config fc = {
		.resource_multiplier = cfg->filecache.resource_multiplier,
		.min_remaining_after_cache = cfg->filecache.min_remaining_after_cache,
		.spread_factor = cfg->filecache.spread_factor,
	};

	if (!cfg->filecache.enabled)
		return 0;
	return fc_cache_size(&fc, basis);
}

static bool cache_in_memory(const struct config *cfg)
{
	return cfg->filecache.enabled && cfg->filecache.in_memory;
}

uint64_t plan_cache_reserved(const struct config *cfg, const struct plan_state *st)
{
	uint64_t held;

	if (!cache_in_memory(cfg))
		return 0;
	/* Not set yet: assume the target for the basis, capped once the cap
	 * is known. */
	held = st->cache.known ? st->cache.bytes
			       : min_u64(plan_cache_target(cfg, plan_basis(cfg, st->vm_bytes,
									  st->mem_total)),
					 st->cache.cap);
	return max_u64(held, min_u64(st->cache.inflight, st->cache.cap));
}

/* The VM's components below memory.high, as memctl bounds: what sits
 * between memory.high and the basis. */
static int components_fit(const struct config *cfg, uint64_t basis, uint64_t reserved,
			  uint64_t *above_high, char *why, size_t whylen)
{
	const struct mc_bound parts[] = {
		{ .name = "file cache", .min = reserved, .firm = reserved },
		{ .name = "[cgroup] oom_buffer", .min = cfg->cgroup.oom_buffer },
		{ .name = "[cgroup] memory_high_buffer", .min = cfg->cgroup.memory_high_buffer },
	};
	const size_t n = sizeof(parts) / sizeof(parts[0]);

	/* The workload needs at least its memory.high buffer of room; the
	 * other two sit between memory.high and the basis. */
	*above_high = mc_bounds_min_sum(parts, n - 1);
	return mc_bounds_verify(parts, n, basis, NULL, why, whylen);
}

void plan_base_limits(const struct config *cfg, uint64_t basis, uint64_t reserved,
		      uint64_t *max, uint64_t *high)
{
	*max = satsub(basis, reserved);
	*high = satsub(*max, cfg->cgroup.oom_buffer);
}

void plan_limits(const struct config *cfg, const struct plan_state *st, struct plan_limits *out)
{
	uint64_t above_high, floor_high, max, high;

	memset(out, 0, sizeof(*out));
	out->basis = plan_basis(cfg, st->vm_bytes, st->mem_total);
	out->reserved = plan_cache_reserved(cfg, st);
	if (out->basis == 0) {
		/* memory.max = 0 would OOM-kill the workload. */
		snprintf(out->why, sizeof(out->why), "no memory size known yet");
		return;
	}
	if (components_fit(cfg, out->basis, out->reserved, &above_high, out->why,
			   sizeof(out->why)) < 0)
		return;
	plan_base_limits(cfg, out->basis, out->reserved, &out->base_max, &out->base_high);
	max = out->base_max;
	high = min_u64(max_u64(out->base_high, st->raise_high), max);
	if (st->written) {
		/* Hold: never lower into the running workload outside the
		 * checked downscale path. */
		floor_high = max_u64(satadd(st->current, cfg->cgroup.memory_high_buffer),
				     st->memory_current);
		if (high < st->written_high && high < floor_high) {
			high = min_u64(st->written_high, floor_high);
			out->held = true;
		}
		if (max < st->written_max && max < satadd(high, cfg->cgroup.oom_buffer)) {
			max = min_u64(st->written_max, satadd(high, cfg->cgroup.oom_buffer));
			out->held = true;
		}
		high = min_u64(high, max);
	}
	out->max = max;
	out->high = high;
	out->ok = true;
}

bool plan_upscale_shrinks(const struct config *cfg, const struct plan_state *st,
			  uint64_t vm_bytes)
{
	struct plan_state next = *st;
	uint64_t old_max, old_high, new_max, new_high;

	if (st->planned) {
		old_max = st->planned_max;
		old_high = st->planned_high;
	} else {
		plan_base_limits(cfg, plan_basis(cfg, st->vm_bytes, st->mem_total),
				 plan_cache_reserved(cfg, st), &old_max, &old_high);
	}
	/* The upscale sets the cache to its own target, superseding any size
	 * still on its way (say one for a MemTotal that grew before the
	 * agent spoke). */
	next.vm_bytes = vm_bytes;
	next.cache.inflight = plan_cache_target(cfg, plan_basis(cfg, vm_bytes, st->mem_total));
	plan_base_limits(cfg, plan_basis(cfg, vm_bytes, st->mem_total),
			 plan_cache_reserved(cfg, &next), &new_max, &new_high);
	return new_max < old_max || new_high < old_high;
}

void plan_level_config(const struct config *cfg, struct mc_level_config *out)
{
	double crit = cfg->predict.critical_ratio;

	/* Smaller gaps for tiny ratios so that the config stays valid. */
	out->critical = crit;
	out->warning = crit > 0.2 ? crit - 0.1 : crit / 2;
	out->hysteresis = out->warning > 0.1 ? 0.05 : out->warning / 2;
}

enum plan_need plan_need_memory(const struct config *cfg, uint64_t current, uint64_t high,
				uint64_t ms_to_high)
{
	struct mc_level_config lc;

	if (!cfg->predict.enabled)
		return PLAN_NEED_NONE;
	plan_level_config(cfg, &lc);
	if (mc_level_next(&lc, MC_LEVEL_NORMAL, current, high) == MC_LEVEL_CRITICAL)
		return PLAN_NEED_CRITICAL;
	if (ms_to_high <= cfg->predict.horizon_ms)
		return PLAN_NEED_PREDICTED;
	return PLAN_NEED_NONE;
}

/* Would the daemon ask for memory right after memory.high became
 * new_high?  The same rule as for a sample, with the growth rate against
 * the new distance. */
static enum plan_need need_after(const struct config *cfg, uint64_t current, uint64_t new_high,
				 double growth_bps)
{
	uint64_t ms = UINT64_MAX;

	if (growth_bps > 0 && new_high > current) {
		double t = (double)(new_high - current) * 1000.0 / growth_bps;

		ms = t < 1.8e19 ? (uint64_t)t : UINT64_MAX;
	} else if (new_high <= current) {
		ms = 0;
	}
	return plan_need_memory(cfg, current, new_high, ms);
}

/* The system, the workload with its buffers, and the file cache the new
 * size asks for must fit in it. */
static bool downscale_bounds_fit(const struct config *cfg, uint64_t vm_bytes, uint64_t current,
				 uint64_t cache_target, char *why, size_t whylen)
{
	uint64_t workload = satadd(satadd(current, cfg->cgroup.memory_high_buffer),
				   cfg->cgroup.oom_buffer);
	const struct mc_bound bounds[] = {
		{ .name = "system", .min = cfg->system.sys_buffer, .firm = cfg->system.sys_buffer },
		{ .name = "postgres", .min = workload, .firm = workload },
		{ .name = "file cache", .min = cache_target, .firm = cache_target },
	};
	char err[256];

	if (mc_bounds_verify(bounds, sizeof(bounds) / sizeof(bounds[0]), vm_bytes, NULL, err,
			     sizeof(err)) == 0)
		return true;
	snprintf(why, whylen, "Memory bounds do not fit in the new size: %s", err);
	return false;
}

void plan_downscale(const struct config *cfg, const struct plan_state *st, uint64_t vm_bytes,
		    uint64_t current, uint64_t usage, struct plan_downscale *out)
{
	char high_s[32], cur_s[32], pct_s[32];
	uint64_t need;
	enum plan_need after;

	memset(out, 0, sizeof(*out));
	out->basis = plan_basis(cfg, vm_bytes, st->mem_total);
	out->cache_target = plan_cache_target(cfg, out->basis);
	plan_base_limits(cfg, out->basis, cache_in_memory(cfg) ? out->cache_target : 0, &out->new_max,
		    &out->new_high);
	out->ok = true;
	if (!cfg->cgroup.enabled)
		return; /* only the file cache: never refused, as the original */

	need = satadd(usage, cfg->cgroup.memory_high_buffer);
	if (out->new_high < need) {
		plan_usage_refusal(cfg, out->new_high, usage, out->status, sizeof(out->status));
		out->ok = false;
		return;
	}
	if (!downscale_bounds_fit(cfg, vm_bytes, usage,
				  cache_in_memory(cfg) ? out->cache_target : 0, out->status,
				  sizeof(out->status))) {
		out->ok = false;
		return;
	}
	after = need_after(cfg, usage, out->new_high, st->growth_bps);
	if (after != PLAN_NEED_NONE) {
		ap_format_mib(out->new_high, high_s, sizeof(high_s));
		ap_format_mib(usage, cur_s, sizeof(cur_s));
		snprintf(pct_s, sizeof(pct_s), "%.0f%%", cfg->predict.critical_ratio * 100);
		if (after == PLAN_NEED_CRITICAL)
			snprintf(out->status, sizeof(out->status),
				 "Calculated memory.high too tight: %s MiB (current usage) is at "
				 "least %s of %s MiB (new high); more memory would be requested "
				 "at once",
				 cur_s, pct_s, high_s);
		else
			snprintf(out->status, sizeof(out->status),
				 "Calculated memory.high too tight: %s MiB (current usage) growing "
				 "at %.0f KiB/s reaches %s MiB (new high) within %llu ms; more "
				 "memory would be requested at once",
				 cur_s, st->growth_bps / 1024, high_s,
				 (unsigned long long)cfg->predict.horizon_ms);
		out->ok = false;
		return;
	}
	/* The workload fits; what memory.current holds beyond it is page
	 * cache the kernel can drop — asked for before the limits go down. */
	if (satadd(current, cfg->cgroup.memory_high_buffer) > out->new_high)
		out->reclaim = satadd(current, cfg->cgroup.memory_high_buffer) - out->new_high;
}

void plan_usage_refusal(const struct config *cfg, uint64_t new_high, uint64_t usage, char *out,
			size_t outlen)
{
	char high_s[32], cur_s[32], buf_s[32];

	/* The original's rule and text (vector downscale-response-rejected). */
	ap_format_mib(new_high, high_s, sizeof(high_s));
	ap_format_mib(usage, cur_s, sizeof(cur_s));
	ap_format_mib(cfg->cgroup.memory_high_buffer, buf_s, sizeof(buf_s));
	snprintf(out, outlen,
		 "Calculated memory.high too low: %s MiB (new high) < %s MiB (current usage) "
		 "+ %s MiB (buffer)",
		 high_s, cur_s, buf_s);
}

void plan_reclaim_refusal(const struct config *cfg, uint64_t new_high, uint64_t current,
			  uint64_t reclaimed, char *out, size_t outlen)
{
	char high_s[32], cur_s[32], buf_s[32], left_s[32], done_s[32];
	uint64_t need = satadd(current, cfg->cgroup.memory_high_buffer);

	ap_format_mib(new_high, high_s, sizeof(high_s));
	ap_format_mib(current, cur_s, sizeof(cur_s));
	ap_format_mib(cfg->cgroup.memory_high_buffer, buf_s, sizeof(buf_s));
	ap_format_mib(satsub(need, new_high), left_s, sizeof(left_s));
	ap_format_mib(reclaimed, done_s, sizeof(done_s));
	snprintf(out, outlen,
		 "Page cache not reclaimed: %s MiB could not be reclaimed (%s MiB were); "
		 "%s MiB (memory.current) + %s MiB (buffer) > %s MiB (new high)",
		 left_s, done_s, cur_s, buf_s, high_s);
}

bool plan_buffers_fit(const struct config *cfg, uint64_t mem_total, char *why, size_t whylen)
{
	const struct mc_bound bounds[] = {
		{ .name = "[system] sys_buffer", .min = cfg->system.sys_buffer },
		{ .name = "[cgroup] oom_buffer", .min = cfg->cgroup.oom_buffer },
		{ .name = "[cgroup] memory_high_buffer", .min = cfg->cgroup.memory_high_buffer },
	};

	return mc_bounds_verify(bounds, sizeof(bounds) / sizeof(bounds[0]), mem_total, NULL, why,
				whylen) == 0;
}

int plan_accept_status(char *out, size_t outlen, bool cache_set, uint64_t cache_bytes,
		       bool cgroup_set, uint64_t high, uint64_t max)
{
	char a[32], b[32], c[32];
	int n = 0, k;

	out[0] = '\0';
	if (cache_set) {
		ap_format_mib(cache_bytes, a, sizeof(a));
		n = snprintf(out, outlen, "Set file cache size to %s MiB", a);
		if (n < 0 || (size_t)n >= outlen)
			return -ENOSPC;
	}
	if (cgroup_set) {
		ap_format_mib(high, b, sizeof(b));
		ap_format_mib(max, c, sizeof(c));
		k = snprintf(out + n, outlen - (size_t)n,
			     "%sSet cgroup memory.high to %s MiB, of new max %s MiB",
			     cache_set ? "; " : "", b, c);
		if (k < 0 || (size_t)k >= outlen - (size_t)n)
			return -ENOSPC;
	}
	return 0;
}

/* ---- the back-off of asks ------------------------------------------------- */

void plan_gate_reset(struct plan_gate *g)
{
	g->asked = false;
	g->step_ms = PLAN_ASK_STEP_FIRST_MS;
}

bool plan_gate_allows(const struct config *cfg, const struct plan_gate *g, uint64_t now,
		      bool predicted, uint64_t *next_ms)
{
	uint64_t at = 0;

	if (g->asked)
		at = satadd(g->last_ask_ms, g->step_ms);
	if (predicted && g->any)
		at = max_u64(at, satadd(g->last_any_ms, cfg->predict.min_interval_ms));
	if (next_ms)
		*next_ms = at;
	return now >= at;
}

void plan_gate_asked(struct plan_gate *g, uint64_t now)
{
	if (g->asked)
		g->step_ms = min_u64(g->step_ms * 2, PLAN_ASK_STEP_MAX_MS);
	else
		g->step_ms = PLAN_ASK_STEP_FIRST_MS;
	g->asked = true;
	g->last_ask_ms = now;
	g->any = true;
	g->last_any_ms = now;
}
