/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_value.c — strict parsers for config values (sizes, durations,
 * booleans, doubles, host:port) and the per-key "parse into the struct"
 * step.  Syntax only: ranges are config_key_check()'s job, so the same
 * checks also cover values set by the command line or by code.
 */
#include "config_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define TIB ((uint64_t)1 << 40)

struct unit {
	const char *suffix;
	uint64_t factor;
};

static const struct unit size_units[] = {
	{ "", 1 }, { "K", KIB }, { "KiB", KIB }, { "M", MIB }, { "MiB", MIB },
	{ "G", GIB }, { "GiB", GIB }, { "T", TIB }, { "TiB", TIB },
};

static const struct unit duration_units[] = {
	{ "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 60 * 60 * 1000 },
};

/* Decimal digits (at least one, no sign) into *out; *end after them. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	uint64_t n = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (n > (UINT64_MAX - d) / 10)
			return -ERANGE;
		n = n * 10 + d;
	}
	if (p == s)
		return -EINVAL;
	*out = n;
	*end = p;
	return 0;
}

/* "<digits>[ ]<unit>" with a unit from the table; a number without unit
 * is accepted only when the table has an empty suffix or the number is 0. */
static int parse_with_unit(const char *s, const struct unit *units, size_t n_units,
			   uint64_t *out)
{
	const char *p;
	uint64_t n;
	int r = parse_digits(s, &n, &p);

	if (r < 0)
		return r;
	while (*p == ' ')
		p++;
	if (*p == '\0' && n == 0) {
		*out = 0;
		return 0;
	}
	for (size_t i = 0; i < n_units; i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (n > UINT64_MAX / units[i].factor)
			return -ERANGE;
		*out = n * units[i].factor;
		return 0;
	}
	return -EINVAL;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
	return parse_with_unit(s, size_units, sizeof(size_units) / sizeof(size_units[0]), bytes);
}

int config_parse_duration_ms(const char *s, uint64_t *ms)
{
	size_t n = sizeof(duration_units) / sizeof(duration_units[0]);

	return parse_with_unit(s, duration_units, n, ms);
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int config_parse_double(const char *s, double *out)
{
	char *end;
	double d;

	/* strtod also takes hex floats, "inf" and "nan": none is a sane setting. */
	if (!*s || strpbrk(s, "xXnN") || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	d = strtod(s, &end);
	if (*end != '\0' || errno == ERANGE || !isfinite(d))
		return -EINVAL;
	*out = d;
	return 0;
}

static bool valid_hostname(const char *h)
{
	size_t label = 0, len = strlen(h);

	if (len == 0 || len > 253)
		return false;
	for (const char *p = h; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 || len > 1;
}

/* "host:port", "[v6addr]:port"; host an IPv4 address or a DNS name. */
int config_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *hstart = s;
	size_t hlen;
	uint64_t p;
	const char *end;
	char tmp[256];
	unsigned char addr[16];

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hstart = s + 1;
		hlen = (size_t)(close - hstart);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(tmp) || hlen >= hostlen)
		return -EINVAL;
	memcpy(tmp, hstart, hlen);
	tmp[hlen] = '\0';
	if (s[0] == '[') {
		if (inet_pton(AF_INET6, tmp, addr) != 1)
			return -EINVAL;
	} else if (strspn(tmp, "0123456789.") == hlen) {
		/* All digits and dots: must be a real IPv4 address, not a "name". */
		if (inet_pton(AF_INET, tmp, addr) != 1)
			return -EINVAL;
	} else if (!valid_hostname(tmp)) {
		return -EINVAL;
	}
	if (parse_digits(colon + 1, &p, &end) < 0 || *end != '\0' || p < 1 || p > 65535)
		return -EINVAL;
	memcpy(host, tmp, hlen + 1);
	*port = (uint16_t)p;
	return 0;
}

/* Drops one pair of double quotes around a string value. */
static void unquote(const char *value, const char **start, size_t *len)
{
	size_t n = strlen(value);

	*start = value;
	*len = n;
	if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
		*start = value + 1;
		*len = n - 2;
	}
}

static int parse_string(const struct config_key *k, char *field, const char *value, char *err,
			size_t errlen)
{
	const char *start;
	size_t len;

	unquote(value, &start, &len);
	if (len >= k->cap) {
		snprintf(err, errlen, "value is %zu bytes long — at most %zu bytes are allowed",
			 len, k->cap - 1);
		return -EINVAL;
	}
	memcpy(field, start, len);
	field[len] = '\0';
	return 0;
}

int config_key_parse(const struct config_key *k, struct config *c, const char *value, char *err,
		     size_t errlen)
{
	char *field = (char *)c + k->off;
	int r = 0;

	switch (k->kind) {
	case CK_BOOL:
		r = config_parse_bool(value, (bool *)field);
		if (r < 0)
			snprintf(err, errlen, "\"%s\" is not a boolean — use true/false, yes/no, "
				 "on/off or 1/0", value);
		return r;
	case CK_SIZE:
		r = config_parse_size(value, (uint64_t *)field);
		if (r < 0)
			snprintf(err, errlen, "\"%s\" is not a size — use a byte count or a "
				 "number with K, KiB, M, MiB, G, GiB, T or TiB (e.g. 100MiB)", value);
		return r < 0 ? -EINVAL : 0;
	case CK_DUR:
		r = config_parse_duration_ms(value, (uint64_t *)field);
		if (r < 0)
			snprintf(err, errlen, "\"%s\" is not a duration — use a whole number "
				 "with ms, s, m or h (e.g. 250ms, 5s)", value);
		return r < 0 ? -EINVAL : 0;
	case CK_DBL:
		r = config_parse_double(value, (double *)field);
		if (r < 0)
			snprintf(err, errlen, "\"%s\" is not a decimal number (e.g. 0.75)", value);
		return r;
	case CK_LISTEN:
		r = config_parse_listen(value, c->server.listen_host, sizeof(c->server.listen_host),
					&c->server.listen_port);
		if (r < 0)
			snprintf(err, errlen, "\"%s\" is not host:port — use IPv4:port, "
				 "name:port or [IPv6]:port with a port from 1 to 65535", value);
		return r;
	case CK_LEVEL:
		r = log_level_parse(value, (enum log_level *)field);
		if (r < 0)
			snprintf(err, errlen, "\"%s\" is not a log level — use debug, info, warn "
				 "or error", value);
		return r;
	case CK_FORMAT:
		r = log_format_parse(value, (enum log_format *)field);
		if (r < 0)
			snprintf(err, errlen, "\"%s\" is not a log format — use json or text",
				 value);
		return r;
	case CK_STR:
	case CK_PATH:
	case CK_CGNAME:
	case CK_GUC:
	case CK_CONNSTR:
		return parse_string(k, field, value, err, errlen);
	}
	snprintf(err, errlen, "internal error: unknown key kind");
	return -EINVAL;
}
