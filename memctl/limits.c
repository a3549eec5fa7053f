/* SPDX-License-Identifier: Apache-2.0 */
/*
 * limits.c — pressure levels with hysteresis, and the minimum/firm bounds
 * of the components that share the VM's memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "internal.h"
#include "memctl.h"

/* The least value that is at or above fraction x limit. */
static uint64_t threshold(uint64_t limit, double fraction)
{
	uint64_t ppb = 0;

	/* Checked config: this cannot fail; a 0 threshold would be the safe
	 * side (level too high, never too low) if it did. */
	(void)mc_fraction_ppb(fraction, 0, 1, &ppb);
	return mc_mul_ppb_ceil(limit, ppb);
}

/* The level value would have if judged by the given thresholds alone. */
static enum mc_level level_at(uint64_t value, uint64_t limit, double warning, double critical)
{
	if (value >= threshold(limit, critical))
		return MC_LEVEL_CRITICAL;
	if (value >= threshold(limit, warning))
		return MC_LEVEL_WARNING;
	return MC_LEVEL_NORMAL;
}

enum mc_level mc_level_next(const struct mc_level_config *cfg, enum mc_level prev,
			    uint64_t value, uint64_t limit)
{
	enum mc_level rising, holding = MC_LEVEL_NORMAL;
	double h = cfg->hysteresis;

	if (limit == 0)
		return MC_LEVEL_NORMAL; /* unlimited */
	rising = level_at(value, limit, cfg->warning, cfg->critical);
	/* A level once reached is kept until the value falls below its line
	 * by the hysteresis, so a value hovering at the line does not flap. */
	if (prev == MC_LEVEL_CRITICAL)
		holding = level_at(value, limit, cfg->warning - h, cfg->critical - h);
	else if (prev == MC_LEVEL_WARNING && value >= threshold(limit, cfg->warning - h))
		holding = MC_LEVEL_WARNING;
	return rising > holding ? rising : holding;
}

const char *mc_level_name(enum mc_level level)
{
	switch (level) {
	case MC_LEVEL_NORMAL:
		return "normal";
	case MC_LEVEL_WARNING:
		return "warning";
	case MC_LEVEL_CRITICAL:
		return "critical";
	}
	return "unknown";
}

uint64_t mc_bounds_min_sum(const struct mc_bound *b, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = mc_sat_add(sum, b[i].min);
	return sum;
}

static const char *bound_name(const struct mc_bound *b, size_t i, char *buf, size_t len)
{
	if (b->name)
		return b->name;
	if (snprintf(buf, len, "#%zu", i) < 0)
		return "?";
	return buf;
}

int mc_bounds_verify(const struct mc_bound *b, size_t n, uint64_t total, size_t *offending,
		     char *err, size_t errlen)
{
	uint64_t sum = 0;
	char nbuf[24];
	size_t i;

	if (n > 0 && !b)
		return mc_fail(err, errlen, -EINVAL, "bounds: %zu components but no array", n);
	for (i = 0; i < n; i++) {
		if (b[i].firm != 0 && b[i].min > b[i].firm) {
			if (offending)
				*offending = i;
			return mc_fail(err, errlen, -EINVAL,
				       "component %s: minimum %" PRIu64 " bytes is above its firm "
				       "limit %" PRIu64 " bytes",
				       bound_name(&b[i], i, nbuf, sizeof(nbuf)), b[i].min,
				       b[i].firm);
		}
	}
	for (i = 0; i < n; i++) {
		/* sum <= total holds here, so total - sum cannot wrap. */
		if (b[i].min > total - sum) {
			if (offending)
				*offending = i;
			return mc_fail(err, errlen, -ENOSPC,
				       "component %s: its minimum %" PRIu64 " bytes brings the sum "
				       "of minimums to %" PRIu64 " bytes, more than the total %"
				       PRIu64 " bytes; lower the minimums or raise the total",
				       bound_name(&b[i], i, nbuf, sizeof(nbuf)), b[i].min,
				       mc_sat_add(sum, b[i].min), total);
		}
		sum += b[i].min;
	}
	return 0;
}
