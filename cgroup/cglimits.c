/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cglimits.c — memory.max / memory.high from the VM size, and the downscale
 * safety rule (pure arithmetic; all subtractions saturate at 0).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "cgroup.h"

uint64_t cg_satsub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

uint64_t cg_usable_bytes(uint64_t vm_bytes, uint64_t sys_buffer, uint64_t mem_total)
{
	uint64_t from_vm;

	if (vm_bytes == 0)
		return mem_total;
	from_vm = cg_satsub(vm_bytes, sys_buffer);
	if (mem_total == 0)
		return from_vm;
	/* The agent may announce memory the guest does not have yet (D11). */
	return from_vm < mem_total ? from_vm : mem_total;
}

void cg_limits_compute(uint64_t usable, uint64_t file_cache, uint64_t oom_buffer,
		       struct cg_limits *out)
{
	out->max = cg_satsub(usable, file_cache);
	out->high = cg_satsub(out->max, oom_buffer);
}

void cg_limits_from_vm(uint64_t vm_bytes, uint64_t sys_buffer, uint64_t file_cache,
		       uint64_t oom_buffer, struct cg_limits *out)
{
	cg_limits_compute(cg_satsub(vm_bytes, sys_buffer), file_cache, oom_buffer, out);
}

bool cg_downscale_check(uint64_t new_high, uint64_t current, uint64_t buffer,
			struct cg_downscale_check *out)
{
	uint64_t needed = current > UINT64_MAX - buffer ? UINT64_MAX : current + buffer;

	out->new_high = new_high;
	out->current = current;
	out->buffer = buffer;
	out->ok = new_high >= needed;
	return out->ok;
}

int cg_downscale_describe(const struct cg_downscale_check *c, char *buf, size_t len)
{
	int n = snprintf(buf, len, "new memory.high %" PRIu64 " B %s memory.current %" PRIu64
			 " B + buffer %" PRIu64 " B: downscale %s", c->new_high,
			 c->ok ? ">=" : "<", c->current, c->buffer,
			 c->ok ? "accepted" : "rejected");

	return n < 0 ? -EINVAL : n;
}
