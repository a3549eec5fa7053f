/* SPDX-License-Identifier: Apache-2.0 */
/*
 * quantity.c — Kubernetes resource quantities (docs/informant-protocol.md §2), parsed exactly.
 *
 * A quantity is  [sign] digits [. digits] [suffix]  and its value is
 * D × 10^E × 1024^B, where D is the digit string read as an integer, E
 * collects the fraction length, a decimal suffix or exponent and (for
 * milli-units) +3, and B comes from a binary suffix.  The result is that
 * value rounded up, computed with a small base-10^9 big integer so that no
 * floating point ever rounds a byte count.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent_proto.h"

/* Digits we keep exactly: a longer mantissa is an error, not a rounding. */
#define MAX_DIGITS 64
#define LIMB_BASE 1000000000u
/* MAX_DIGITS digits × 1024^6 × 10^19 fits in 12 limbs; a little slack. */
#define MAX_LIMBS 16

struct big {
	uint32_t limb[MAX_LIMBS]; /* little-endian, base 10^9 */
	int n;
};

struct parsed_quantity {
	char digits[MAX_DIGITS + 1]; /* significant digits, no leading zeros */
	int ndigits;
	long exp10; /* E above */
	int pow1024; /* B above */
};

static int big_mul_small(struct big *b, uint32_t m)
{
	uint64_t carry = 0;

	for (int i = 0; i < b->n; i++) {
		uint64_t v = (uint64_t)b->limb[i] * m + carry;
		b->limb[i] = (uint32_t)(v % LIMB_BASE);
		carry = v / LIMB_BASE;
	}
	if (carry) {
		if (b->n == MAX_LIMBS)
			return -ERANGE;
		b->limb[b->n++] = (uint32_t)carry;
	}
	return 0;
}

/* Divide in place; return the remainder. */
static uint32_t big_div_small(struct big *b, uint32_t d)
{
	uint64_t rem = 0;

	for (int i = b->n - 1; i >= 0; i--) {
		uint64_t v = rem * LIMB_BASE + b->limb[i];
		b->limb[i] = (uint32_t)(v / d);
		rem = v % d;
	}
	while (b->n > 0 && b->limb[b->n - 1] == 0)
		b->n--;
	return (uint32_t)rem;
}

static void big_from_digits(struct big *b, const char *digits, int n)
{
	b->n = 0;
	/* Limbs of 9 digits from the least significant end. */
	for (int end = n; end > 0; end -= 9) {
		int start = end > 9 ? end - 9 : 0;
		uint32_t v = 0;
		for (int i = start; i < end; i++)
			v = v * 10 + (uint32_t)(digits[i] - '0');
		b->limb[b->n++] = v;
	}
	while (b->n > 0 && b->limb[b->n - 1] == 0)
		b->n--;
}

static int big_to_u64(const struct big *b, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = b->n - 1; i >= 0; i--) {
		if (v > (UINT64_MAX - b->limb[i]) / LIMB_BASE)
			return -ERANGE;
		v = v * LIMB_BASE + b->limb[i];
	}
	*out = v;
	return 0;
}

static uint32_t pow10_u32(long k)
{
	uint32_t p = 1;

	while (k-- > 0)
		p *= 10;
	return p;
}

/* ceil(D × 10^E × 1024^B). */
static int quantity_value(const struct parsed_quantity *q, uint64_t *out)
{
	struct big b;
	long e = q->exp10;
	bool inexact = false;

	if (q->ndigits == 0) {
		*out = 0;
		return 0;
	}
	/* D >= 10^(ndigits-1) and 1024^B >= 1: at least 10^20 overflows. */
	if (e >= 0 && q->ndigits - 1 + e >= 20)
		return -ERANGE;
	/* D < 10^ndigits and 1024^B < 10^19: below 1, which rounds up to 1. */
	if (e < 0 && q->ndigits + 19 + e <= 0) {
		*out = 1;
		return 0;
	}
	big_from_digits(&b, q->digits, q->ndigits);
	for (int i = 0; i < q->pow1024; i++)
		if (big_mul_small(&b, 1024) < 0)
			return -ERANGE;
	for (; e > 0; e -= e >= 9 ? 9 : e)
		if (big_mul_small(&b, pow10_u32(e >= 9 ? 9 : e)) < 0)
			return -ERANGE;
	for (; e < 0; e += e <= -9 ? 9 : -e)
		if (big_div_small(&b, pow10_u32(e <= -9 ? 9 : -e)) != 0)
			inexact = true;
	uint64_t v;
	if (big_to_u64(&b, &v) < 0)
		return -ERANGE;
	if (inexact) {
		if (v == UINT64_MAX)
			return -ERANGE;
		v++;
	}
	*out = v;
	return 0;
}

/* Suffix → exponents; false if s is not a suffix. */
static bool parse_suffix(const char *s, struct parsed_quantity *q)
{
	static const char binary[] = "KMGTPE";
	static const char decimal[] = "num kMGTPE"; /* index 3 (10^0) is a placeholder */

	if (s[0] == '\0')
		return true;
	if (s[1] == 'i' && s[2] == '\0' && strchr(binary, s[0])) {
		q->pow1024 = (int)(strchr(binary, s[0]) - binary) + 1;
		return true;
	}
	if (s[1] == '\0' && s[0] != ' ' && strchr(decimal, s[0])) {
		q->exp10 += 3 * ((long)(strchr(decimal, s[0]) - decimal) - 3);
		return true;
	}
	if ((s[0] == 'e' || s[0] == 'E') && s[1] != '\0') {
		/* A signed decimal exponent; bounded so the sum cannot overflow. */
		const char *p = s + 1;
		bool neg = *p == '-';
		long v = 0;
		if (*p == '+' || *p == '-')
			p++;
		if (*p == '\0')
			return false;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return false;
			if (v < 100000000)
				v = v * 10 + (*p - '0');
		}
		q->exp10 += neg ? -v : v;
		return true;
	}
	return false;
}

/* Split s into digits, exponents and sign; -EINVAL if malformed. */
static int parse_quantity(const char *s, struct parsed_quantity *q, bool *negative)
{
	int seen = 0;
	bool in_fraction = false;

	memset(q, 0, sizeof(*q));
	*negative = *s == '-';
	if (*s == '+' || *s == '-')
		s++;
	for (; (*s >= '0' && *s <= '9') || *s == '.'; s++) {
		if (*s == '.') {
			if (in_fraction)
				return -EINVAL;
			in_fraction = true;
			continue;
		}
		seen++;
		if (in_fraction)
			q->exp10--;
		if (q->ndigits == 0 && *s == '0')
			continue; /* leading zero */
		if (q->ndigits == MAX_DIGITS) {
			/* Only zeros may follow a full mantissa; each just scales. */
			if (*s != '0')
				return -EINVAL;
			q->exp10++;
			continue;
		}
		q->digits[q->ndigits++] = *s;
	}
	if (seen == 0 || !parse_suffix(s, q))
		return -EINVAL;
	/* Trailing zeros only scale the value: fold them into the exponent. */
	while (q->ndigits > 0 && q->digits[q->ndigits - 1] == '0') {
		q->ndigits--;
		q->exp10++;
	}
	if (q->ndigits == 0)
		*negative = false; /* "-0" is zero */
	return 0;
}

static int quantity_scaled(const char *s, long extra_exp10, uint64_t *out)
{
	struct parsed_quantity q;
	bool negative;
	int r = parse_quantity(s, &q, &negative);

	if (r < 0)
		return r;
	if (negative)
		return -EINVAL;
	q.exp10 += extra_exp10;
	return quantity_value(&q, out);
}

int ap_quantity_parse(const char *s, uint64_t *out)
{
	return quantity_scaled(s, 0, out);
}

int ap_quantity_parse_milli(const char *s, uint64_t *out)
{
	return quantity_scaled(s, 3, out);
}

void ap_quantity_format_bytes(uint64_t bytes, char *out, size_t outlen)
{
	static const char *const suffix[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	int i = 0;

	/* The largest power of 1024 that still leaves an integer. */
	while (bytes != 0 && bytes % 1024 == 0 && i < 6) {
		bytes /= 1024;
		i++;
	}
	snprintf(out, outlen, "%" PRIu64 "%s", bytes, suffix[i]);
}

void ap_quantity_format_milli(uint64_t milli, char *out, size_t outlen)
{
	if (milli % 1000 == 0)
		snprintf(out, outlen, "%" PRIu64, milli / 1000);
	else
		snprintf(out, outlen, "%" PRIu64 "m", milli);
}
