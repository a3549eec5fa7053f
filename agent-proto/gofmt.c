/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gofmt.c — numbers as Go's strconv.FormatFloat(x, 'g', -1, 64) prints
 * them: the shortest digits that read back as the same double, fixed
 * notation unless the decimal exponent is below -4 or at least 6 (docs/informant-protocol.md §5.4);
 * and as Go's encoding/json writes a float64 (the monitor protocol's cpu).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"
#include "internal.h"

void ap_shortest_digits(double x, char *digits, int *ndigits, int *point)
{
	char buf[40];
	int prec;

	/* printf rounds correctly, so the first precision whose output reads
	 * back as x gives the shortest round-trip digits; 17 always does. */
	for (prec = 1; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	snprintf(buf, sizeof(buf), "%.*e", prec - 1, x);

	/* buf is "d.ddde±XX" (or "de±XX" for one digit). */
	int n = 0;
	const char *p = buf;
	for (; *p != 'e'; p++)
		if (*p != '.')
			digits[n++] = *p;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	*ndigits = n;
	*point = atoi(p + 1) + 1;
}

/* Append to out at *pos, keeping it NUL-terminated and never overflowing. */
static void put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *pos + 1 < outlen; i++)
		out[(*pos)++] = s[i];
	if (outlen)
		out[*pos < outlen ? *pos : outlen - 1] = '\0';
}

static void put_fixed(char *out, size_t outlen, size_t *pos, const char *d, int nd, int point)
{
	static const char zeros[] = "0000000000000000000000";

	if (point <= 0) {
		/* 0.000ddd: point >= -5 here (exponent >= -4 for 'g', >= -6
		 * for JSON), so the zeros below always suffice. */
		put(out, outlen, pos, "0.", 2);
		put(out, outlen, pos, zeros, (size_t)-point);
		put(out, outlen, pos, d, (size_t)nd);
	} else if (point >= nd) {
		/* ddd000: point <= 21 here (JSON's 'f' ends at 1e21). */
		put(out, outlen, pos, d, (size_t)nd);
		put(out, outlen, pos, zeros, (size_t)(point - nd));
	} else {
		put(out, outlen, pos, d, (size_t)point);
		put(out, outlen, pos, ".", 1);
		put(out, outlen, pos, d + point, (size_t)(nd - point));
	}
}

static void put_exponent(char *out, size_t outlen, size_t *pos, const char *d, int nd, int exp)
{
	char tail[16];

	put(out, outlen, pos, d, 1);
	if (nd > 1) {
		put(out, outlen, pos, ".", 1);
		put(out, outlen, pos, d + 1, (size_t)(nd - 1));
	}
	int n = snprintf(tail, sizeof(tail), "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
	put(out, outlen, pos, tail, (size_t)n);
}

void ap_format_float_g(double x, char *out, size_t outlen)
{
	char digits[24];
	int nd, point;
	size_t pos = 0;

	if (outlen)
		out[0] = '\0';
	if (isnan(x) || isinf(x)) {
		put(out, outlen, &pos, isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf",
		    isnan(x) ? 3 : 4);
		return;
	}
	if (signbit(x)) {
		put(out, outlen, &pos, "-", 1);
		x = -x;
	}
	if (x == 0) {
		put(out, outlen, &pos, "0", 1);
		return;
	}
	ap_shortest_digits(x, digits, &nd, &point);
	int exp = point - 1;
	if (exp < -4 || exp >= 6)
		put_exponent(out, outlen, &pos, digits, nd, exp);
	else
		put_fixed(out, outlen, &pos, digits, nd, point);
}

void ap_format_mib(uint64_t bytes, char *out, size_t outlen)
{
	ap_format_float_g((double)bytes / 1048576.0, out, outlen);
}

void ap_format_json_float(double x, char *out, size_t outlen)
{
	char digits[24];
	int nd, point;
	size_t pos = 0;
	double ax = fabs(x);

	if (outlen)
		out[0] = '\0';
	/* encoding/json refuses NaN and infinities; say so visibly. */
	if (isnan(x) || isinf(x)) {
		put(out, outlen, &pos, "null", 4);
		return;
	}
	if (signbit(x))
		put(out, outlen, &pos, "-", 1); /* Go writes -0 too */
	if (ax == 0) {
		put(out, outlen, &pos, "0", 1);
		return;
	}
	ap_shortest_digits(ax, digits, &nd, &point);
	if (ax >= 1e-6 && ax < 1e21) {
		put_fixed(out, outlen, &pos, digits, nd, point);
		return;
	}
	/* 'e' as strconv writes it, then Go's cleanup: e-07 -> e-7. */
	put_exponent(out, outlen, &pos, digits, nd, point - 1);
	if (pos >= 4 && out[pos - 4] == 'e' && out[pos - 3] == '-' && out[pos - 2] == '0') {
		out[pos - 2] = out[pos - 1];
		out[pos - 1] = '\0';
	}
}
