/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_print.c — the effective settings as an INI file that parses back
 * to the same values, with the Postgres password redacted.
 */
#include "config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REDACTED "xxxxx"

static void format_size(uint64_t v, char *out, size_t outlen)
{
	static const char *const units[] = { "GiB", "MiB", "KiB" };
	static const unsigned shifts[] = { 30, 20, 10 };

	for (size_t i = 0; i < 3 && v != 0; i++) {
		if ((v & (((uint64_t)1 << shifts[i]) - 1)) == 0) {
			snprintf(out, outlen, "%llu%s", (unsigned long long)(v >> shifts[i]),
				 units[i]);
			return;
		}
	}
	snprintf(out, outlen, "%llu", (unsigned long long)v);
}

static void format_duration(uint64_t ms, char *out, size_t outlen)
{
	if (ms == 0)
		snprintf(out, outlen, "0");
	else if (ms % 60000 == 0)
		snprintf(out, outlen, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(out, outlen, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(out, outlen, "%llums", (unsigned long long)ms);
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static void format_double(double d, char *out, size_t outlen)
{
	snprintf(out, outlen, "%.15g", d);
	if (strtod(out, NULL) != d)
		snprintf(out, outlen, "%.17g", d);
}

/* A value with outer blanks or outer quotes is quoted so it reads back intact. */
static void format_string(const char *s, char *out, size_t outlen)
{
	size_t n = strlen(s);
	bool quote = n > 0 && (s[0] == ' ' || s[0] == '"' || s[n - 1] == ' ' || s[n - 1] == '"');

	snprintf(out, outlen, quote ? "\"%s\"" : "%s", s);
}

void config_key_format(const struct config_key *k, const struct config *c, char *out,
		       size_t outlen)
{
	const char *field = (const char *)c + k->off;

	switch (k->kind) {
	case CK_BOOL:
		snprintf(out, outlen, "%s", *(const bool *)field ? "true" : "false");
		return;
	case CK_SIZE:
		format_size(*(const uint64_t *)field, out, outlen);
		return;
	case CK_DUR:
		format_duration(*(const uint64_t *)field, out, outlen);
		return;
	case CK_DBL:
		format_double(*(const double *)field, out, outlen);
		return;
	case CK_LISTEN:
		snprintf(out, outlen, strchr(c->server.listen_host, ':') ? "[%s]:%u" : "%s:%u",
			 c->server.listen_host, (unsigned)c->server.listen_port);
		return;
	case CK_LEVEL:
		snprintf(out, outlen, "%s", log_level_name(*(const enum log_level *)field));
		return;
	case CK_FORMAT:
		snprintf(out, outlen, "%s",
			 *(const enum log_format *)field == LOG_FORMAT_TEXT ? "text" : "json");
		return;
	case CK_STR:
	case CK_PATH:
	case CK_CGNAME:
	case CK_GUC:
		format_string(field, out, outlen);
		return;
	}
	snprintf(out, outlen, "?");
}

/* Appends n bytes of s to out (bounded); false when out is full. */
static bool append(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
	if (n >= outlen - *pos)
		return false;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return true;
}

/* URL form: hide the password in user:password@ and in ?password=... */
static int redact_url(const char *in, char *out, size_t outlen)
{
	const char *auth = strstr(in, "://") + 3;
	size_t authlen = strcspn(auth, "/?#");
	const char *at = memrchr(auth, '@', authlen);
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	const char *p = in;
	size_t pos = 0;

	out[0] = '\0';
	if (colon) {
		if (!append(out, outlen, &pos, in, (size_t)(colon + 1 - in)) ||
		    !append(out, outlen, &pos, REDACTED, strlen(REDACTED)))
			return -ENOSPC;
		p = at;
	}
	while (*p) {
		const char *pw = strstr(p, "password=");

		if (!pw || (pw != in && pw[-1] != '?' && pw[-1] != '&')) {
			size_t n = pw ? (size_t)(pw - p) + 1 : strlen(p);

			if (!append(out, outlen, &pos, p, n))
				return -ENOSPC;
			p += n;
			continue;
		}
		if (!append(out, outlen, &pos, p, (size_t)(pw - p) + 9) ||
		    !append(out, outlen, &pos, REDACTED, strlen(REDACTED)))
			return -ENOSPC;
		p = pw + 9 + strcspn(pw + 9, "&#");
	}
	return 0;
}

/* Length of a keyword/value value at s: 'quoted with \\ escapes' or bare. */
static size_t kv_value_len(const char *s)
{
	size_t i = 0;

	if (s[0] != '\'')
		return strcspn(s, " \t\n");
	for (i = 1; s[i] && s[i] != '\''; i++) {
		if (s[i] == '\\' && s[i + 1])
			i++;
	}
	return s[i] ? i + 1 : i;
}

/* keyword = value form: every password value becomes xxxxx. */
static int redact_kv(const char *in, char *out, size_t outlen)
{
	const char *p = in;
	size_t pos = 0;

	out[0] = '\0';
	while (*p) {
		const char *kw = p + strspn(p, " \t\n");
		size_t kwlen = strcspn(kw, " \t\n=");
		const char *eq = kw + kwlen + strspn(kw + kwlen, " \t\n");
		const char *val;
		size_t vlen;
		bool secret;

		if (*eq != '=')
			return append(out, outlen, &pos, p, strlen(p)) ? 0 : -ENOSPC;
		val = eq + 1 + strspn(eq + 1, " \t\n");
		vlen = kv_value_len(val);
		secret = kwlen == 8 && strncasecmp(kw, "password", 8) == 0;
		if (!append(out, outlen, &pos, p, (size_t)(val - p)))
			return -ENOSPC;
		if (!(secret ? append(out, outlen, &pos, REDACTED, strlen(REDACTED))
			     : append(out, outlen, &pos, val, vlen)))
			return -ENOSPC;
		p = val + vlen;
	}
	return 0;
}

int config_connstr_redact(const char *connstr, char *out, size_t outlen)
{
	int r;

	if (outlen == 0)
		return -ENOSPC;
	if (strncmp(connstr, "postgresql://", 13) == 0 || strncmp(connstr, "postgres://", 11) == 0)
		r = redact_url(connstr, out, outlen);
	else
		r = redact_kv(connstr, out, outlen);
	if (r < 0)
		snprintf(out, outlen, "%s", REDACTED); /* never leak a cut-off secret */
	return r;
}

void config_print(const struct config *c, FILE *out)
{
	const char *section = "";
	char value[2 * CONFIG_STR_MAX + 16];

	fprintf(out, "# vm-informant effective settings (secrets redacted)\n");
	for (size_t i = 0; i < config_keys_count; i++) {
		const struct config_key *k = &config_keys[i];

		if (strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
		}
		if (k->off == offsetof(struct config, filecache.connstr)) {
			char redacted[2 * CONFIG_STR_MAX];

			config_connstr_redact(c->filecache.connstr, redacted, sizeof(redacted));
			format_string(redacted, value, sizeof(value));
		} else {
			config_key_format(k, c, value, sizeof(value));
		}
		fprintf(out, "%s = %s\n", k->name, value);
	}
}
