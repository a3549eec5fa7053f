/* SPDX-License-Identifier: Apache-2.0 */
/*
 * size.c — file cache configuration checks and the sizing formula.
 *
 * The formula must match the reference bit for bit, including the places
 * where float64 rounding loses a MiB (docs/file-cache.md §2).  Every
 * intermediate goes through a volatile double so the compiler can neither
 * keep it in extended precision nor fuse multiply and add; the library is
 * also built with -ffp-contract=off.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filecache.h"

void fc_config_default(struct fc_config *cfg)
{
	cfg->resource_multiplier = 0.75;
	cfg->min_remaining_after_cache = 640 * FC_MIB;
	cfg->spread_factor = 0.1;
}

/*
 * Go's "%g" (strconv 'g' with the shortest precision): the fewest digits
 * that read back as the same double, in %e form when the decimal exponent
 * is < -4 or >= 6 (the shortest-format rule), plain otherwise.
 */
static void go_format_g(double v, char *out, size_t outlen)
{
	if (isnan(v)) {
		snprintf(out, outlen, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	char buf[64];
	int prec;
	for (prec = 0; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	snprintf(buf, sizeof(buf), "%.*e", prec, v);
	const char *e = strchr(buf, 'e');
	int exp = e ? atoi(e + 1) : 0;
	if (exp < -4 || exp >= 6)
		snprintf(out, outlen, "%.*e", prec, v);
	else
		snprintf(out, outlen, "%.*f", prec > exp ? prec - exp : 0, v);
}

int fc_config_validate(const struct fc_config *cfg, char *err, size_t errlen)
{
	char num[64];
	double mult = cfg->resource_multiplier;
	double spread = cfg->spread_factor;

	/* Written so that NaN fails each check, as in the reference. */
	if (!(mult > 0.0 && mult < 1.0)) {
		go_format_g(mult, num, sizeof(num));
		snprintf(err, errlen,
			 "ResourceMultiplier must be between 0.0 and 1.0, exclusive. Got %s", num);
		return -EINVAL;
	}
	if (!(spread >= 0.0)) {
		go_format_g(spread, num, sizeof(num));
		snprintf(err, errlen, "SpreadFactor must be >= 0, got: %s", num);
		return -EINVAL;
	}
	if (cfg->min_remaining_after_cache == 0) {
		snprintf(err, errlen, "MinRemainingAfterCache must not be 0");
		return -EINVAL;
	}
	volatile double spread_plus_one = spread + 1.0;
	volatile double product = mult * spread_plus_one;
	if (!(product < 1.0)) {
		snprintf(err, errlen, "incompatible ResourceMultiplier and SpreadFactor");
		return -EINVAL;
	}
	return 0;
}

/* 2^63 and 2^64 as doubles (exact). */
#define TWO_POW_63 9223372036854775808.0
#define TWO_POW_64 18446744073709551616.0

uint64_t fc_cache_size(const struct fc_config *cfg, uint64_t total_bytes)
{
	uint64_t min_remaining = cfg->min_remaining_after_cache;
	uint64_t available = total_bytes > min_remaining ? total_bytes - min_remaining : 0;
	if (available == 0)
		return 0;

	/* Spread term: float64 quotient truncated to int64, negatives to 0.
	 * Values C cannot convert (>= 2^63, NaN from an unvalidated config)
	 * are clamped instead of being undefined behaviour; the 75 % term,
	 * always below 2^64, then decides. */
	volatile double divisor = 1.0 + cfg->spread_factor;
	volatile double quotient = (double)available / divisor;
	uint64_t spread_term;
	if (!(quotient >= 0.0))
		spread_term = 0; /* negative (truncates to <= 0) or NaN */
	else if (quotient >= TWO_POW_63)
		spread_term = INT64_MAX;
	else
		spread_term = (uint64_t)(int64_t)quotient;

	volatile double product = (double)total_bytes * cfg->resource_multiplier;
	uint64_t normal_term;
	if (!(product > 0.0))
		normal_term = 0;
	else if (product >= TWO_POW_64)
		normal_term = UINT64_MAX;
	else
		normal_term = (uint64_t)product;

	uint64_t size = spread_term < normal_term ? spread_term : normal_term;
	return size - size % FC_MIB;
}

int fc_setting_name_check(const char *name)
{
	if (!name || !name[0])
		return -EINVAL;
	if (!(name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z') ||
	      (name[0] >= 'A' && name[0] <= 'Z')))
		return -EINVAL;
	size_t n;
	for (n = 0; name[n]; n++) {
		char c = name[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '.';
		if (!ok || n >= 128)
			return -EINVAL;
	}
	return 0;
}
