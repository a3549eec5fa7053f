/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redact.c — connection strings without their passwords, for log lines.
 *
 * Follows libpq's own tokenisation (conninfo_parse / conninfo_uri_parse)
 * closely enough to find every value libpq would use as a password, and
 * errs towards hiding too much: on malformed key=value input everything
 * from the first error on is replaced, and in a URL the user info ends at
 * the last '@' before the first '/'.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "filecache.h"

#define MASK "***"

struct out_buf {
	char *buf;
	size_t cap, len;
	bool cut;
};

static void put(struct out_buf *o, const char *s, size_t n)
{
	if (o->cut)
		return;
	if (n >= o->cap - o->len) {
		/* Never emit part of a token: a cut copy ends before it. */
		o->cut = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void put_str(struct out_buf *o, const char *s)
{
	put(o, s, strlen(s));
}

/* Hides an unparsable rest.  The mask starts a token of its own, so that
 * redacting the output again hides the same rest the same way (libpq
 * rejects such strings; the output must still be stable). */
static void put_hidden_rest(struct out_buf *o)
{
	if (o->len && !isspace((unsigned char)o->buf[o->len - 1]))
		put_str(o, " ");
	put_str(o, MASK);
}

static bool is_secret_key(const char *key, size_t n)
{
	return (n == 8 && strncasecmp(key, "password", 8) == 0) ||
	       (n == 11 && strncasecmp(key, "sslpassword", 11) == 0);
}

static const char *skip_space(const char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

/* End of a key=value value starting at p (quoted or plain), or NULL if a
 * quoted value is unterminated. */
static const char *value_end(const char *p)
{
	if (*p != '\'') {
		while (*p && !isspace((unsigned char)*p)) {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		return p;
	}
	for (p++; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '\'')
			return p + 1;
	}
	return NULL;
}

static void redact_keyvalue(const char *p, struct out_buf *o)
{
	while (*p) {
		const char *start = p;
		p = skip_space(p);
		put(o, start, (size_t)(p - start));
		if (!*p)
			break;
		const char *key = p;
		while (*p && *p != '=' && !isspace((unsigned char)*p))
			p++;
		size_t keylen = (size_t)(p - key);
		const char *eq = skip_space(p);
		if (*eq != '=' || keylen == 0) {
			put_hidden_rest(o); /* malformed: hide the rest */
			return;
		}
		const char *val = skip_space(eq + 1);
		const char *end = value_end(val);
		bool secret = is_secret_key(key, keylen);
		put(o, key, (size_t)(val - key));
		if (!end) {
			put_str(o, MASK); /* unterminated quote */
			return;
		}
		if (secret) {
			put_str(o, MASK);
			/* After a quoted value libpq reads the next keyword even
			 * without a blank; the bare mask needs one to stay apart. */
			if (*end && !isspace((unsigned char)*end))
				put_str(o, " ");
		} else {
			put(o, val, (size_t)(end - val));
		}
		p = end;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes a query key (libpq decodes keys too) into buf. */
static size_t decode_key(const char *s, size_t n, char *buf, size_t cap)
{
	size_t len = 0;
	for (size_t i = 0; i < n && len + 1 < cap; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n &&
		    (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
			buf[len++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			buf[len++] = s[i];
		}
	}
	return len;
}

static void redact_query(const char *p, struct out_buf *o)
{
	while (*p) {
		const char *amp = strchr(p, '&');
		const char *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		char key[32];
		size_t keylen = eq ? decode_key(p, (size_t)(eq - p), key, sizeof(key)) : 0;
		if (eq && is_secret_key(key, keylen)) {
			put(o, p, (size_t)(eq + 1 - p));
			put_str(o, MASK);
		} else {
			put(o, p, (size_t)(end - p));
		}
		if (!amp)
			break;
		put(o, "&", 1);
		p = amp + 1;
	}
}

static void redact_url(const char *url, size_t prefix_len, struct out_buf *o)
{
	put(o, url, prefix_len);
	const char *rest = url + prefix_len;
	const char *slash = strchr(rest, '/');
	const char *auth_end = slash ? slash : rest + strlen(rest);

	/* libpq takes the user info up to an '@' before the first '/'; the
	 * last such '@' also covers an unencoded '@' in the password. */
	const char *at = NULL;
	for (const char *q = rest; q < auth_end; q++)
		if (*q == '@')
			at = q;
	if (at) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));
		if (colon) {
			put(o, rest, (size_t)(colon + 1 - rest));
			put_str(o, MASK);
		} else {
			put(o, rest, (size_t)(at - rest));
		}
		rest = at;
	}
	const char *query = strchr(rest, '?');
	if (!query) {
		put_str(o, rest);
		return;
	}
	put(o, rest, (size_t)(query + 1 - rest));
	redact_query(query + 1, o);
}

int fc_connstr_redact(const char *in, char *out, size_t outlen)
{
	if (!out || outlen == 0)
		return -ENOBUFS;
	struct out_buf o = { .buf = out, .cap = outlen, .len = 0, .cut = false };
	out[0] = '\0';
	if (!in)
		return 0;
	static const char *const prefixes[] = { "postgresql://", "postgres://" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		if (strncasecmp(in, prefixes[i], n) == 0) {
			redact_url(in, n, &o);
			return o.cut ? -ENOBUFS : 0;
		}
	}
	redact_keyvalue(in, &o);
	return o.cut ? -ENOBUFS : 0;
}
