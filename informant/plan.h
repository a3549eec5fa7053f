/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan.h — pure memory planning for the daemon: which memory the limits are
 * computed from, the cgroup limits and file cache target for it, and the
 * downscale decision with the protocol's Status text.  Numbers in,
 * decisions out; the I/O is in memory.c.
 */
#ifndef VMI_PLAN_H
#define VMI_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The memory the limits are computed from (one basis, defect D20):
 * before any agent size is known, MemTotal; afterwards the agent's size
 * minus the sys buffer, but never more than MemTotal shows, so limits are
 * not raised before hot-plugged memory has arrived (defect D11). */
uint64_t plan_basis(const struct config *cfg, uint64_t vm_bytes, uint64_t mem_total);

/* File cache target for a basis (0 when the file cache is not managed). */
uint64_t plan_cache_target(const struct config *cfg, uint64_t basis);

/* Limits once the file cache holds cache_bytes: max = basis − cache (when
 * in memory), high = max − oom_buffer (both saturating). */
void plan_limits(const struct config *cfg, uint64_t basis, uint64_t cache_bytes,
		 uint64_t *max, uint64_t *high);

struct downscale_plan {
	bool ok;
	uint64_t basis;
	uint64_t cache_target;   /* uncapped, as the check uses it */
	uint64_t new_high;       /* from the uncapped cache target */
	char status[512];        /* the refusal text when !ok */
};

/* May the VM shrink to vm_bytes while the cgroup uses current bytes?
 * The basis is plan_basis(vm_bytes, mem_total) (mem_total 0 = unknown).
 * Refused when new memory.high < current + memory_high_buffer, or when the
 * declared memory bounds (system, Postgres, file cache) do not fit. */
void plan_downscale(const struct config *cfg, uint64_t vm_bytes, uint64_t current,
		    uint64_t mem_total, struct downscale_plan *out);

/* Start-up check of the configuration against the VM: the kernel's share
 * and the cgroup's buffers (oom, memory.high) must fit in MemTotal.
 * Returns true, or false with the offending component in why. */
bool plan_buffers_fit(const struct config *cfg, uint64_t mem_total, char *why, size_t whylen);

/* "Set file cache size to N MiB" / "Set cgroup memory.high to H MiB, of
 * new max M MiB" joined with "; " as the original did.  Returns 0 or
 * -ENOSPC. */
int plan_accept_status(char *out, size_t outlen, bool cache_set, uint64_t cache_bytes,
		       bool cgroup_set, uint64_t high, uint64_t max);

#endif
