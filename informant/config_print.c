/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_print.c — the effective settings as an INI file that parses back
 * to the same values, with the Postgres password redacted.
 */
#include "config_internal.h"
#include "filecache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REDACTED "***"

static void format_size(uint64_t v, char *out, size_t outlen)
{
	static const char *const units[] = { "TiB", "GiB", "MiB", "KiB" };
	static const unsigned shifts[] = { 40, 30, 20, 10 };

	for (size_t i = 0; i < 4 && v != 0; i++) {
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

/* A '#' or ';' after a blank starts an inline comment wherever it is, even
 * inside quotes: such a value cannot be written in this INI dialect. */
static bool has_comment_mark(const char *s)
{
	return strstr(s, " #") || strstr(s, " ;") || strstr(s, "\t#") || strstr(s, "\t;");
}

/* A value with outer blanks, outer quotes or a leading comment mark is
 * quoted so it reads back intact. */
static void format_string(const char *s, char *out, size_t outlen)
{
	size_t n = strlen(s);
	bool quote = n > 0 && (s[0] == ' ' || s[0] == '"' || s[n - 1] == ' ' || s[n - 1] == '"' ||
			       s[0] == '#' || s[0] == ';');

	snprintf(out, outlen, quote ? "\"%s\"" : "%s", s);
}

/* The file cache library shows a connection string as libpq reads it,
 * secrets masked; a cut-off copy shows only the marker. */
int config_connstr_redact(const char *connstr, char *out, size_t outlen)
{
	if (outlen == 0)
		return -ENOSPC;
	if (fc_connstr_redact(connstr, out, outlen) < 0) {
		snprintf(out, outlen, "%s", outlen > strlen(REDACTED) ? REDACTED : "");
		return -ENOSPC;
	}
	return 0;
}

/* Sized like the field.  What cannot be shown so that it loads again — it
 * grew past the field, the INI dialect cannot hold it, or masking a
 * password that recurs in another value made that value invalid (a
 * password equal to the port) — prints as a connection string holding
 * only a masked password: it still loads, and says what was hidden. */
static void format_connstr(const char *connstr, char *out, size_t outlen)
{
	char redacted[CONFIG_STR_MAX], why[256];

	if (config_connstr_redact(connstr, redacted, sizeof(redacted)) < 0 ||
	    has_comment_mark(redacted) || fc_connstr_check(redacted, why, sizeof(why)) < 0)
		snprintf(redacted, sizeof(redacted), "password=%s", REDACTED);
	format_string(redacted, out, outlen);
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
	case CK_CONNSTR:
		format_connstr(field, out, outlen);
		return;
	}
	snprintf(out, outlen, "?");
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
		config_key_format(k, c, value, sizeof(value));
		fprintf(out, "%s = %s\n", k->name, value);
	}
}
