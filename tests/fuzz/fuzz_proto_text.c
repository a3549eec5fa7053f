/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_proto_text.c — the text forms of agent-proto: Kubernetes quantities,
 * UUIDs, Go-style numbers and version negotiation.
 *
 * Input: one mode byte, then the payload.
 *   'a' quantity text: ap_quantity_parse and _milli agree (same grammar,
 *       same range rules, milli = the byte value x 1000 before rounding),
 *       match an exact 128-bit oracle on short plain forms ("1.5Gi",
 *       "250m", "12e-3") and what they accept formats back to the same number;
 *   'b' UUID text: what parses formats canonically and parses back equal,
 *       in either letter case;
 *   'c' 8 bytes as a u64 / double: quantity formatters round-trip, Go 'g'
 *       text reads back as the same double, and a short buffer holds a
 *       NUL-terminated prefix of the full text;
 *   'd' 16 bytes as four u32: negotiation picks the newest common version
 *       or explains the mismatch.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>

#include "agent_proto.h"
#include "fuzz.h"

/* ---- an independent oracle for the plain forms -------------------------- */

typedef unsigned __int128 u128;

struct plain_quantity {
	u128 digits;     /* all digits, the point removed */
	int net_exp10;   /* exponent of 10 after removing the point */
	int pow1024;
	int negative;
};

/* [+-] digits [. digits] [suffix] with at most 18 digits in all and an
 * exponent of at most two digits: small enough for exact 128-bit math.
 * Returns 0 when s has this form. */
static int plain_parse(const char *s, struct plain_quantity *q)
{
	static const char binary[] = "KMGTPE";
	static const struct {
		char c;
		int exp;
	} decimal[] = { { 'n', -9 }, { 'u', -6 }, { 'm', -3 }, { 'k', 3 }, { 'M', 6 },
			{ 'G', 9 },  { 'T', 12 }, { 'P', 15 }, { 'E', 18 } };
	int ndig = 0, frac = -1;

	memset(q, 0, sizeof(*q));
	q->negative = *s == '-';
	if (*s == '+' || *s == '-')
		s++;
	for (; isdigit((unsigned char)*s) || (*s == '.' && frac < 0); s++) {
		if (*s == '.') {
			if (ndig == 0)
				return -1;
			frac = 0;
			continue;
		}
		if (++ndig > 18)
			return -1;
		q->digits = q->digits * 10 + (u128)(*s - '0');
		if (frac >= 0)
			frac++;
	}
	if (ndig == 0 || frac == 0)
		return -1;
	q->net_exp10 = frac > 0 ? -frac : 0;
	if (*s == '\0')
		return 0;
	if (s[1] == 'i' && s[2] == '\0' && strchr(binary, s[0])) {
		q->pow1024 = (int)(strchr(binary, s[0]) - binary) + 1;
		return 0;
	}
	for (size_t i = 0; i < sizeof(decimal) / sizeof(decimal[0]); i++) {
		if (s[0] == decimal[i].c && s[1] == '\0') {
			q->net_exp10 += decimal[i].exp;
			return 0;
		}
	}
	if (s[0] == 'e' || s[0] == 'E') {
		const char *d = s[1] == '-' || s[1] == '+' ? s + 2 : s + 1;
		char *end;
		long e = strtol(s + 1, &end, 10);

		if (!isdigit((unsigned char)*d) || *end != '\0' || strlen(d) > 2)
			return -1;
		q->net_exp10 += (int)e;
		return 0;
	}
	return -1;
}

/* The exact rounded-up value, or -ERANGE / -EINVAL like the library. */
static int plain_value(const struct plain_quantity *q, int extra_exp10, uint64_t *out)
{
	u128 v = q->digits;
	int e = q->net_exp10 + extra_exp10;

	if (v == 0) {
		*out = 0;
		return 0;
	}
	if (q->negative)
		return -EINVAL;
	for (int i = 0; i < q->pow1024; i++)
		v *= 1024; /* < 10^18 x 2^60 < 2^120 */
	for (; e > 0; e--) {
		if (v > UINT64_MAX)
			return -ERANGE;
		v *= 10;
	}
	if (e < 0) {
		u128 div = 1;
		/* 10^38 still fits; below that the value rounds up to 1. */
		if (e < -38) {
			*out = 1;
			return 0;
		}
		for (; e < 0; e++)
			div *= 10;
		v = v / div + (v % div != 0);
	}
	if (v > UINT64_MAX)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

/* The library agrees with the oracle wherever the oracle applies. */
static void check_quantity_oracle(const char *s, int r, uint64_t bytes, int rm, uint64_t milli)
{
	struct plain_quantity q;
	uint64_t want = 0;

	if (plain_parse(s, &q) < 0)
		return;
	int rw = plain_value(&q, 0, &want);
	FUZZ_CHECK(r == rw && (r != 0 || bytes == want));
	rw = plain_value(&q, 3, &want);
	FUZZ_CHECK(rm == rw && (rm != 0 || milli == want));
}

static void check_quantity(const char *s)
{
	uint64_t bytes = 0, milli = 0, again = 0;
	int r = ap_quantity_parse(s, &bytes);
	int rm = ap_quantity_parse_milli(s, &milli);
	char text[64];

	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
	FUZZ_CHECK(rm == 0 || rm == -EINVAL || rm == -ERANGE);
	/* The grammar does not depend on the unit. */
	FUZZ_CHECK((r == -EINVAL) == (rm == -EINVAL));
	/* x > 2^64-1 implies 1000x > 2^64-1. */
	if (r == -ERANGE)
		FUZZ_CHECK(rm == -ERANGE);
	/* bytes = ceil(x), milli = ceil(1000x), so ceil(milli / 1000) = bytes;
	 * and milli overflows only for x > (2^64-1) / 1000. */
	if (r == 0 && rm == 0)
		FUZZ_CHECK(milli / 1000 + (milli % 1000 != 0) == bytes);
	if (r == 0 && rm == -ERANGE)
		FUZZ_CHECK(bytes > UINT64_MAX / 1000);
	check_quantity_oracle(s, r, bytes, rm, milli);
	if (r == 0) {
		ap_quantity_format_bytes(bytes, text, sizeof(text));
		FUZZ_CHECK(ap_quantity_parse(text, &again) == 0 && again == bytes);
	}
	if (rm == 0) {
		ap_quantity_format_milli(milli, text, sizeof(text));
		FUZZ_CHECK(ap_quantity_parse_milli(text, &again) == 0 && again == milli);
	}
}

static void check_uuid(char *s)
{
	struct ap_uuid u, again;
	char text[AP_UUID_STRLEN + 1];
	size_t len = strlen(s);

	if (ap_uuid_parse(s, &u) < 0)
		return;
	FUZZ_CHECK(len == 32 || len == 36 || len == 38 || len == 45);
	ap_uuid_format(&u, text);
	FUZZ_CHECK(strlen(text) == AP_UUID_STRLEN);
	for (size_t i = 0; i < AP_UUID_STRLEN; i++)
		FUZZ_CHECK(text[i] == '-' || isdigit((unsigned char)text[i]) ||
			   (text[i] >= 'a' && text[i] <= 'f'));
	FUZZ_CHECK(ap_uuid_parse(text, &again) == 0 && ap_uuid_equal(&u, &again));
	for (size_t i = 0; i < len; i++)
		s[i] = (char)toupper((unsigned char)s[i]);
	FUZZ_CHECK(ap_uuid_parse(s, &again) == 0 && ap_uuid_equal(&u, &again));
}

/* Formatting into outlen bytes gives the NUL-terminated prefix of full. */
static void check_prefix(const char *full, const char *part, size_t outlen)
{
	size_t n = strlen(full) < outlen - 1 ? strlen(full) : outlen - 1;

	FUZZ_CHECK(strlen(part) == n && memcmp(full, part, n) == 0);
}

static void check_float(double x, size_t outlen)
{
	char full[64], part[64];

	ap_format_float_g(x, full, sizeof(full));
	if (isnan(x))
		FUZZ_CHECK(strcmp(full, "NaN") == 0);
	else if (isinf(x))
		FUZZ_CHECK(strcmp(full, x > 0 ? "+Inf" : "-Inf") == 0);
	else
		FUZZ_CHECK(strtod(full, NULL) == x && signbit(strtod(full, NULL)) == signbit(x));
	ap_format_float_g(x, part, outlen);
	check_prefix(full, part, outlen);
}

static void check_numbers(const uint8_t *p, size_t n)
{
	uint64_t v = 0, again = 0;
	double x;
	char text[64];
	size_t outlen = n > 8 ? 1 + p[8] % sizeof(text) : sizeof(text);

	memcpy(&v, p, n < sizeof(v) ? n : sizeof(v));
	memcpy(&x, &v, sizeof(x));
	ap_quantity_format_bytes(v, text, sizeof(text));
	FUZZ_CHECK(ap_quantity_parse(text, &again) == 0 && again == v);
	ap_quantity_format_milli(v, text, sizeof(text));
	FUZZ_CHECK(ap_quantity_parse_milli(text, &again) == 0 && again == v);
	check_float(x, outlen);
	check_float((double)v, outlen);
	ap_format_mib(v, text, sizeof(text));
	FUZZ_CHECK(strtod(text, NULL) == (double)v / 1048576.0);
}

static void check_negotiate(const uint8_t *p, size_t n)
{
	uint32_t v[4] = { 0 }, chosen = 0;
	char err[200];

	memcpy(v, p, n < sizeof(v) ? n : sizeof(v));
	int r = ap_negotiate(v[0], v[1], v[2], v[3], &chosen, err, sizeof(err));
	if (r == 0) {
		FUZZ_CHECK(chosen >= v[0] && chosen <= v[1] && chosen >= v[2] && chosen <= v[3]);
		/* The newest: nothing above it is in both ranges. */
		FUZZ_CHECK(chosen == v[1] || chosen == v[3]);
	} else {
		FUZZ_CHECK(r == -EPROTO && fuzz_message_ok(err, sizeof(err)));
		FUZZ_CHECK(v[0] > v[1] || v[2] > v[3] || v[0] > v[3] || v[2] > v[1]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode = fuzz_mode(data, size, 4);
	char *s;

	switch (mode) {
	case 0:
	case 1:
		s = fuzz_cstr(data + 1, size - 1);
		FUZZ_CHECK(s != NULL);
		if (mode == 0)
			check_quantity(s);
		else
			check_uuid(s);
		free(s);
		break;
	case 2:
		check_numbers(data + 1, size - 1);
		break;
	case 3:
		check_negotiate(data + 1, size - 1);
		break;
	default:
		break;
	}
	return 0;
}
