/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan.c — pure memory planning (see plan.h).  The arithmetic follows the
 * original informant so that the limits and texts match its vectors; the
 * basis and the bounds check are where we deliberately do better.
 */
#include "plan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_proto.h"
#include "cgroup.h"
#include "filecache.h"
#include "memctl.h"

uint64_t plan_basis(const struct config *cfg, uint64_t vm_bytes, uint64_t mem_total)
{
	return cg_usable_bytes(vm_bytes, cfg->system.sys_buffer, mem_total);
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

void plan_limits(const struct config *cfg, uint64_t basis, uint64_t cache_bytes, uint64_t *max,
		 uint64_t *high)
{
	struct cg_limits lim;

	cg_limits_compute(basis, cfg->filecache.enabled && cfg->filecache.in_memory ? cache_bytes : 0,
			  cfg->cgroup.oom_buffer, &lim);
	*max = lim.max;
	*high = lim.high;
}

/* Declared minimums of what must fit in the VM: the kernel's share, the
 * running workload with its buffers, and the file cache the VM size asks
 * for.  Reports the component that does not fit. */
static bool plan_bounds_fit(const struct config *cfg, uint64_t vm_bytes, uint64_t current,
			    uint64_t cache_target, char *why, size_t whylen)
{
	struct mc_bound bounds[] = {
		{ .name = "system", .min = cfg->system.sys_buffer, .firm = cfg->system.sys_buffer },
		{ .name = "postgres",
		  .min = current + cfg->cgroup.memory_high_buffer + cfg->cgroup.oom_buffer,
		  .firm = current + cfg->cgroup.memory_high_buffer + cfg->cgroup.oom_buffer },
		{ .name = "file cache", .min = cache_target, .firm = cache_target },
	};
	size_t bad = 0;
	char err[256];

	if (mc_bounds_verify(bounds, sizeof(bounds) / sizeof(bounds[0]), vm_bytes, &bad, err,
			     sizeof(err)) == 0)
		return true;
	snprintf(why, whylen, "Memory bounds do not fit in the new size: %s", err);
	return false;
}

bool plan_buffers_fit(const struct config *cfg, uint64_t mem_total, char *why, size_t whylen)
{
	struct mc_bound bounds[] = {
		{ .name = "[system] sys_buffer", .min = cfg->system.sys_buffer },
		{ .name = "[cgroup] oom_buffer", .min = cfg->cgroup.oom_buffer },
		{ .name = "[cgroup] memory_high_buffer", .min = cfg->cgroup.memory_high_buffer },
	};
	size_t bad = 0;

	return mc_bounds_verify(bounds, sizeof(bounds) / sizeof(bounds[0]), mem_total, &bad, why,
				whylen) == 0;
}

void plan_downscale(const struct config *cfg, uint64_t vm_bytes, uint64_t current,
		    uint64_t mem_total, struct downscale_plan *out)
{
	struct cg_downscale_check check;
	uint64_t max;
	char high_s[32], cur_s[32], buf_s[32];

	memset(out, 0, sizeof(*out));
	out->basis = plan_basis(cfg, vm_bytes, mem_total);
	out->cache_target = plan_cache_target(cfg, out->basis);
	plan_limits(cfg, out->basis, out->cache_target, &max, &out->new_high);
	out->ok = true;
	if (!cfg->cgroup.enabled)
		return; /* only the file cache: never refused, as the original */

	if (!cg_downscale_check(out->new_high, current, cfg->cgroup.memory_high_buffer, &check)) {
		ap_format_mib(check.new_high, high_s, sizeof(high_s));
		ap_format_mib(check.current, cur_s, sizeof(cur_s));
		ap_format_mib(check.buffer, buf_s, sizeof(buf_s));
		snprintf(out->status, sizeof(out->status),
			 "Calculated memory.high too low: %s MiB (new high) < %s MiB (current usage) "
			 "+ %s MiB (buffer)",
			 high_s, cur_s, buf_s);
		out->ok = false;
		return;
	}
	if (!plan_bounds_fit(cfg, vm_bytes, current,
			     cfg->filecache.in_memory ? out->cache_target : 0, out->status,
			     sizeof(out->status)))
		out->ok = false;
}

int plan_accept_status(char *out, size_t outlen, bool cache_set, uint64_t cache_bytes,
		       bool cgroup_set, uint64_t high, uint64_t max)
{
	char a[32], b[32], c[32];
	int n = 0;

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
		int m = snprintf(out + n, outlen - (size_t)n,
				 "%sSet cgroup memory.high to %s MiB, of new max %s MiB",
				 cache_set ? "; " : "", b, c);
		if (m < 0 || (size_t)m >= outlen - (size_t)n)
			return -ENOSPC;
	}
	return 0;
}
