/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redact.c — connection strings as libpq reads them: checked, shown
 * without their secrets, and those secrets masked in any other text.
 *
 * Nothing here re-parses a connection string by hand.  libpq decides what
 * the password is (PQconninfoParse; its secret options are the ones whose
 * dispchar is "*": password, sslpassword), and what is shown is rebuilt
 * from libpq's reading, so a URL that a person and libpq read differently
 * (an unencoded '/' or '@' in the password) cannot show the password in
 * another field's place — fc_connstr_check() refuses those strings, whose
 * "port" or "host" would then hold part of the password.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pq.h"

#include "filecache.h"

#define MASK "***"
#define PERCENT_HINT " — in a URL, a password holding '/' or '@' must be percent-encoded " \
		     "(/ as %%2F, @ as %%40)"

static bool is_secret(const PQconninfoOption *o)
{
	return o->dispchar && o->dispchar[0] == '*';
}

static bool is_url(const char *s)
{
	/* libpq's own test (uri_prefix_length): exactly these, case-sensitive. */
	return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* ---- checking ---------------------------------------------------------------- */

/*
 * libpq's complaint about a string it cannot parse quotes pieces of that
 * string, which may be a password or part of one: every quoted piece is
 * masked, except the name in "invalid connection option "…"", which comes
 * from a key, and a lone punctuation mark (missing "=").  (The daemon never
 * calls setlocale(), so libpq's messages are the English ones this
 * recognises.)
 */
static void parse_complaint(const char *detail, char *out, size_t outlen)
{
	static const char unknown[] = "invalid connection option \"";
	size_t n = 0;
	bool quoted = false, keep = false;

	if (!detail)
		detail = "out of memory";
	if (strncmp(detail, unknown, sizeof(unknown) - 1) == 0) {
		const char *name = detail + sizeof(unknown) - 1;
		size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyz_0123456789");

		keep = name[len] == '"';
	}
	for (const char *p = detail; *p && n + sizeof(MASK) + 1 < outlen; p++) {
		if (*p == '"') {
			quoted = !quoted;
			if (quoted && !keep && !(ispunct((unsigned char)p[1]) && p[2] == '"')) {
				memcpy(out + n, "\"" MASK, sizeof(MASK));
				n += sizeof(MASK);
				continue;
			}
		} else if (quoted && !keep && !(ispunct((unsigned char)*p) && p[1] == '"' &&
						p[-1] == '"')) {
			continue;
		}
		out[n++] = *p == '\n' ? ' ' : *p;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* Every element of a comma-separated list passes ok(). */
static bool each(const char *list, bool (*ok)(const char *, size_t))
{
	for (const char *p = list;;) {
		size_t len = strcspn(p, ",");

		if (!ok(p, len))
			return false;
		if (!p[len])
			return true;
		p += len + 1;
	}
}

static bool port_ok(const char *p, size_t n)
{
	return n == 0 || (n <= 5 && all_digits(p, n) && strtoul(p, NULL, 10) - 1 < 65535);
}

static bool host_ok(const char *h, size_t n)
{
	return n == 0 || h[0] == '/' || !memchr(h, '@', n); /* a socket directory may */
}

static int spilled(const PQconninfoOption *opts, bool url, char *err, size_t errlen)
{
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "port") == 0 && !each(o->val, port_ok))
			snprintf(err, errlen, "libpq reads a port that is not a number from 1 to "
				 "65535" PERCENT_HINT);
		else if (strcmp(o->keyword, "host") == 0 && !each(o->val, host_ok))
			snprintf(err, errlen, "libpq reads a host name holding '@'" PERCENT_HINT);
		else if (url && strcmp(o->keyword, "dbname") == 0 && strchr(o->val, '@'))
			snprintf(err, errlen, "libpq reads a database name holding '@'"
				 PERCENT_HINT);
		else
			continue;
		return -EINVAL;
	}
	return 0;
}

/* libpq's reading of s, loading libpq first; NULL when it cannot parse
 * it (or cannot be loaded: then nothing may be shown). */
static PQconninfoOption *conninfo_parse(const char *s, char **detail)
{
	char ignored[8];

	if (detail)
		*detail = NULL;
	return fc_pq_load(ignored, sizeof(ignored)) == 0 ? fc_pq.PQconninfoParse(s, detail) : NULL;
}

static void conninfo_free(PQconninfoOption *opts)
{
	if (opts)
		fc_pq.PQconninfoFree(opts);
}

int fc_connstr_check(const char *connstr, char *err, size_t errlen)
{
	char *detail = NULL, complaint[256];
	PQconninfoOption *opts;
	int r = fc_pq_load(err, errlen);

	if (r < 0)
		return r;
	opts = conninfo_parse(connstr, &detail);
	if (!opts) {
		parse_complaint(detail, complaint, sizeof(complaint));
		snprintf(err, errlen, "libpq cannot parse it: %s", complaint);
		r = detail ? -EINVAL : -ENOMEM;
		fc_pq.PQfreemem(detail);
		return r;
	}
	r = spilled(opts, is_url(connstr), err, errlen);
	fc_pq.PQconninfoFree(opts);
	return r;
}

/* ---- showing ----------------------------------------------------------------- */

struct out_buf {
	char *buf;
	size_t cap, len;
	bool cut;
};

/* Appends one whole pair or nothing (a cut copy ends before it). */
static void put_pair(struct out_buf *o, const char *key, const char *val)
{
	bool quote = !val[0] || strpbrk(val, " \t\n\r\f\v'\\") != NULL;
	size_t need = strlen(key) + 2 + (o->len ? 1 : 0) + (quote ? 2 : 0), start = o->len;

	for (const char *p = val; *p; p++)
		need += (*p == '\'' || *p == '\\') ? 2 : 1;
	if (o->cut || need >= o->cap - o->len) {
		o->cut = true;
		return;
	}
	o->len += (size_t)snprintf(o->buf + o->len, o->cap - o->len, "%s%s=%s", start ? " " : "",
				   key, quote ? "'" : "");
	for (const char *p = val; *p; p++) {
		if (*p == '\'' || *p == '\\')
			o->buf[o->len++] = '\\';
		o->buf[o->len++] = *p;
	}
	if (quote)
		o->buf[o->len++] = '\'';
	o->buf[o->len] = '\0';
}

/* Secret options show as the mask; a secret inside another value (a
 * socket directory named like the password) is masked there too. */
static void put_option(struct out_buf *o, const PQconninfoOption *p, const struct fc_secrets *s)
{
	size_t cap = 3 * strlen(p->val) + 1; /* a 1-byte secret grows to 3 */
	char *masked;

	if (is_secret(p)) {
		put_pair(o, p->keyword, MASK);
		return;
	}
	masked = malloc(cap);
	if (!masked) {
		o->cut = true;
		return;
	}
	fc_secrets_mask(s, p->val, masked, cap);
	put_pair(o, p->keyword, masked);
	free(masked);
}

int fc_connstr_redact(const char *in, char *out, size_t outlen)
{
	struct out_buf o = { .buf = out, .cap = outlen };
	struct fc_secrets secrets;
	PQconninfoOption *opts;

	if (!out || outlen == 0)
		return -ENOBUFS;
	out[0] = '\0';
	if (!in || !in[0])
		return 0;
	opts = conninfo_parse(in, NULL);
	if (!opts || fc_secrets_get(in, &secrets) < 0) {
		/* Nothing libpq would use, and nothing safe to show. */
		conninfo_free(opts);
		snprintf(out, outlen, "%s", outlen > sizeof(MASK) - 1 ? MASK : "");
		return outlen > sizeof(MASK) - 1 ? 0 : -ENOBUFS;
	}
	for (const PQconninfoOption *p = opts; p->keyword; p++)
		if (p->val)
			put_option(&o, p, &secrets);
	fc_pq.PQconninfoFree(opts);
	fc_secrets_clear(&secrets);
	return o.cut ? -ENOBUFS : 0;
}

/* ---- masking ----------------------------------------------------------------- */

int fc_secrets_get(const char *connstr, struct fc_secrets *s)
{
	PQconninfoOption *opts = conninfo_parse(connstr ? connstr : "", NULL);
	int r = 0;

	memset(s, 0, sizeof(*s));
	if (!opts)
		return -EINVAL;
	for (const PQconninfoOption *p = opts; p->keyword; p++) {
		if (!is_secret(p) || !p->val || !p->val[0] || s->n == FC_SECRETS_MAX)
			continue;
		s->v[s->n] = strdup(p->val);
		if (!s->v[s->n]) {
			r = -ENOMEM;
			break;
		}
		s->n++;
	}
	fc_pq.PQconninfoFree(opts);
	if (r < 0)
		fc_secrets_clear(s);
	return r;
}

void fc_secrets_clear(struct fc_secrets *s)
{
	for (size_t i = 0; i < s->n; i++) {
		explicit_bzero(s->v[i], strlen(s->v[i]));
		free(s->v[i]);
	}
	memset(s, 0, sizeof(*s));
}

/* The secret starting at p, if any (the longest, so that one secret
 * holding another is masked whole). */
static size_t secret_at(const struct fc_secrets *s, const char *p)
{
	size_t best = 0;

	for (size_t i = 0; i < s->n; i++) {
		size_t len = strlen(s->v[i]);

		if (len > best && strncmp(p, s->v[i], len) == 0)
			best = len;
	}
	return best;
}

void fc_secrets_mask(const struct fc_secrets *s, const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	if (outlen == 0)
		return;
	while (*in) {
		size_t len = secret_at(s, in);

		if (len) {
			/* A mask that does not fit ends the copy: never half a secret. */
			if (n + sizeof(MASK) > outlen)
				break;
			memcpy(out + n, MASK, sizeof(MASK) - 1);
			n += sizeof(MASK) - 1;
			in += len;
			continue;
		}
		if (n + 1 >= outlen)
			break;
		out[n++] = *in++;
	}
	out[n] = '\0';
}
