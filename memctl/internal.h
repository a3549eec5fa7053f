/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h — helpers shared by the memctl sources; not installed, not
 * part of the public API.
 */
#ifndef MEMCTL_INTERNAL_H
#define MEMCTL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define MC_PPB 1000000000u

/* Formats the reason into err (if errlen > 0) and returns code. */
int mc_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* fraction (finite, within [lo, hi]) in billionths, rounded to nearest.
 * -EINVAL otherwise. */
int mc_fraction_ppb(double fraction, double lo, double hi, uint64_t *ppb);

/* floor(v x ppb / 1e9) without overflow for ppb <= 1e9. */
uint64_t mc_mul_ppb(uint64_t v, uint64_t ppb);
/* The same, rounded up: so that value >= result <=> value >= v x ppb / 1e9. */
uint64_t mc_mul_ppb_ceil(uint64_t v, uint64_t ppb);

static inline uint64_t mc_sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static inline uint64_t mc_sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

#endif
