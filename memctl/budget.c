/* SPDX-License-Identifier: Apache-2.0 */
/*
 * budget.c — pure sizing formulas: how many units fit, the default worker
 * count, and the split of a total budget.  Fractions are converted once to
 * billionths so that every product is exact and cannot overflow.
 */
#include <errno.h>

#include "internal.h"
#include "memctl.h"

int mc_scale(uint64_t v, double fraction, uint64_t *out)
{
	uint64_t ppb;

	if (mc_fraction_ppb(fraction, 0, 1, &ppb) < 0)
		return -EINVAL;
	*out = mc_mul_ppb(v, ppb);
	return 0;
}

/* fraction in (0, 1] as billionths, or a message naming it. */
static int positive_fraction(const char *what, double fraction, uint64_t *ppb, char *err,
			     size_t errlen)
{
	if (!(fraction > 0) || mc_fraction_ppb(fraction, 0, 1, ppb) < 0)
		return mc_fail(err, errlen, -EINVAL, "%s %g is outside (0, 1]", what, fraction);
	return 0;
}

int mc_fit(const struct mc_fit_input *in, struct mc_fit *out, char *err, size_t errlen)
{
	uint64_t ppb, space;
	int r;

	r = positive_fraction("headroom", in->headroom, &ppb, err, errlen);
	if (r < 0)
		return r;
	if (in->wanted == 0)
		return mc_fail(err, errlen, -EINVAL, "wanted unit count is 0: ask for at least 1");
	out->budget = mc_mul_ppb(in->available, ppb);
	space = mc_sat_sub(out->budget, in->fixed);
	/* Written without fixed + per_unit, which could wrap. */
	out->overflow = in->fixed > out->budget || in->per_unit > space;
	if (out->overflow)
		out->units = 1;
	else if (in->per_unit == 0)
		out->units = in->wanted;
	else
		out->units = space / in->per_unit < in->wanted ? space / in->per_unit : in->wanted;
	out->reduced = out->units < in->wanted;
	return 0;
}

/* floor(n x ratio_ppb / 1e9) for n < 2^32 and ratio_ppb < 2^41: split so
 * that no product overflows. */
static uint64_t mul_count_ppb(uint32_t n, uint64_t ratio_ppb)
{
	return (uint64_t)n * (ratio_ppb / MC_PPB) + (uint64_t)n * (ratio_ppb % MC_PPB) / MC_PPB;
}

int mc_worker_budget(const struct mc_worker_input *in, struct mc_worker_budget *out,
		     char *err, size_t errlen)
{
	uint64_t frac_ppb, ratio_ppb, w;
	int r;

	r = positive_fraction("memory fraction", in->fraction, &frac_ppb, err, errlen);
	if (r < 0)
		return r;
	if (in->cores == 0)
		return mc_fail(err, errlen, -EINVAL, "core count is 0: pass the online CPUs");
	if (!(in->max_cores_ratio > 0) ||
	    mc_fraction_ppb(in->max_cores_ratio, 0, 1024, &ratio_ppb) < 0)
		return mc_fail(err, errlen, -EINVAL, "workers per core %g is outside (0, 1024]",
			       in->max_cores_ratio);
	out->usable = mc_sat_sub(mc_mul_ppb(in->available, frac_ppb), in->base);
	out->by_memory = in->per_worker ? out->usable / in->per_worker : UINT64_MAX;
	out->by_cores = mul_count_ppb(in->cores, ratio_ppb);
	w = out->by_memory < out->by_cores ? out->by_memory : out->by_cores;
	if (in->max_workers != 0 && w > in->max_workers)
		w = in->max_workers;
	out->workers = w < 1 ? 1 : w;
	return 0;
}

int mc_split(uint64_t total, const struct mc_split_config *cfg, struct mc_split *out,
	     char *err, size_t errlen)
{
	const double shares[3] = { cfg->work, cfg->aggregate, cfg->in_flight };
	static const char *const names[3] = { "work", "aggregate", "in-flight" };
	uint64_t usable_ppb, ppb[3], sum = 0;
	int r;

	r = positive_fraction("usable share", cfg->usable, &usable_ppb, err, errlen);
	if (r < 0)
		return r;
	for (int i = 0; i < 3; i++) {
		if (mc_fraction_ppb(shares[i], 0, 1, &ppb[i]) < 0)
			return mc_fail(err, errlen, -EINVAL, "%s share %g is outside [0, 1]",
				       names[i], shares[i]);
		sum += ppb[i];
	}
	if (sum > MC_PPB)
		return mc_fail(err, errlen, -EINVAL,
			       "work + aggregate + in-flight shares = %g exceed 1",
			       (double)sum / MC_PPB);
	out->usable = mc_mul_ppb(total, usable_ppb);
	out->work = mc_mul_ppb(out->usable, ppb[0]);
	out->aggregate = mc_mul_ppb(out->usable, ppb[1]);
	/* A full split must not lose the rounding bytes. */
	out->in_flight = sum == MC_PPB ? out->usable - out->work - out->aggregate
				       : mc_mul_ppb(out->usable, ppb[2]);
	return 0;
}
