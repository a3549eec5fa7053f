/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ema.c — growth-rate estimator: an exponential moving average of the
 * bytes/s seen between successive samples, and the time it leaves until a
 * limit is reached.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "memctl.h"

/* 2^64 as a double: the first value a uint64_t cannot hold. */
#define TWO_POW_64 18446744073709551616.0

int mc_ema_init(struct mc_ema *e, double alpha)
{
	if (!(alpha > 0 && alpha <= 1))
		return -EINVAL;
	memset(e, 0, sizeof(*e));
	e->alpha = alpha;
	return 0;
}

void mc_ema_update(struct mc_ema *e, uint64_t ts_ms, uint64_t value)
{
	double delta, observed;

	if (!e->have_sample || ts_ms <= e->last_ts_ms) {
		/* No interval to divide by: keep the newest value as the anchor
		 * and the rate as it was. */
		e->have_sample = true;
		e->last_ts_ms = ts_ms;
		e->last_value = value;
		return;
	}
	/* Both differences are taken unsigned, so nothing wraps; a shrinking
	 * value gives a negative rate. */
	delta = value >= e->last_value ? (double)(value - e->last_value)
				       : -(double)(e->last_value - value);
	observed = delta * 1000.0 / (double)(ts_ms - e->last_ts_ms);
	e->last_ts_ms = ts_ms;
	e->last_value = value;
	if (!e->have_rate) {
		e->rate_bps = observed;
		e->have_rate = true;
		return;
	}
	e->rate_bps = e->alpha * observed + (1 - e->alpha) * e->rate_bps;
}

double mc_ema_rate(const struct mc_ema *e)
{
	return e->have_rate ? e->rate_bps : 0;
}

uint64_t mc_ema_time_to_limit(const struct mc_ema *e, uint64_t current, uint64_t limit)
{
	double ms;

	if (limit == 0)
		return UINT64_MAX; /* unlimited */
	if (current >= limit)
		return 0;
	if (!e->have_rate || !(e->rate_bps > 0))
		return UINT64_MAX;
	ms = ceil((double)(limit - current) * 1000.0 / e->rate_bps);
	return ms < TWO_POW_64 ? (uint64_t)ms : UINT64_MAX;
}
