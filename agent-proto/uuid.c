/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uuid.c — parse the UUID forms the reference accepts, print the canonical
 * lowercase form, make random v4 UUIDs.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "agent_proto.h"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 32 hex digits, with a '-' expected before digit 8, 12, 16 and 20 when
 * dashed is set.  s has exactly the right length. */
static int parse_hex(const char *s, bool dashed, struct ap_uuid *out)
{
	struct ap_uuid u;

	for (int i = 0; i < 16; i++) {
		if (dashed && (i == 4 || i == 6 || i == 8 || i == 10) && *s++ != '-')
			return -EINVAL;
		int hi = hex_value(s[0]), lo = hex_value(s[1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		u.b[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	*out = u;
	return 0;
}

int ap_uuid_parse(const char *s, struct ap_uuid *out)
{
	size_t len = strlen(s);

	switch (len) {
	case AP_UUID_STRLEN:
		return parse_hex(s, true, out);
	case 32:
		return parse_hex(s, false, out);
	case AP_UUID_STRLEN + 2:
		if (s[0] != '{' || s[len - 1] != '}')
			return -EINVAL;
		return parse_hex(s + 1, true, out);
	case AP_UUID_STRLEN + 9:
		if (strncasecmp(s, "urn:uuid:", 9) != 0)
			return -EINVAL;
		return parse_hex(s + 9, true, out);
	default:
		return -EINVAL;
	}
}

void ap_uuid_format(const struct ap_uuid *u, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->b[i] >> 4];
		*p++ = hex[u->b[i] & 0xf];
	}
	*p = '\0';
}

bool ap_uuid_equal(const struct ap_uuid *a, const struct ap_uuid *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

bool ap_uuid_is_zero(const struct ap_uuid *u)
{
	static const struct ap_uuid zero;

	return ap_uuid_equal(u, &zero);
}

int ap_uuid_random(struct ap_uuid *out)
{
	size_t got = 0;

	/* 16 bytes never come back short once the pool is initialised, but an
	 * early-boot EINTR or a short read must not leave bytes unset. */
	while (got < sizeof(out->b)) {
		ssize_t n = getrandom(out->b + got, sizeof(out->b) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40); /* version 4 */
	out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}
