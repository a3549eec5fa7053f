/* SPDX-License-Identifier: Apache-2.0 */
/* util.c — error formatting and exact fixed-point fractions. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

int mc_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		/* A truncated message is still a message; nothing to check. */
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int mc_fraction_ppb(double fraction, double lo, double hi, uint64_t *ppb)
{
	/* Written so that NaN fails the test. */
	if (!(fraction >= lo && fraction <= hi) || !isfinite(fraction))
		return -EINVAL;
	*ppb = (uint64_t)llround(fraction * MC_PPB);
	return 0;
}

uint64_t mc_mul_ppb(uint64_t v, uint64_t ppb)
{
	/* Split v so neither product can overflow: (v / 1e9) x ppb <= v and
	 * (v % 1e9) x ppb < 1e18. */
	return (v / MC_PPB) * ppb + (v % MC_PPB) * ppb / MC_PPB;
}

uint64_t mc_mul_ppb_ceil(uint64_t v, uint64_t ppb)
{
	/* Only the second term of mc_mul_ppb() can leave a remainder. */
	return mc_mul_ppb(v, ppb) + ((v % MC_PPB) * ppb % MC_PPB != 0);
}
