/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config.c — the informant's config file parser and value parsers on
 * arbitrary bytes (a hand-edited /etc/vm-informant/vm-informant.conf).
 *
 * Input: one mode byte, then the payload.
 *   'a' a whole INI file, loaded over the defaults with config_load_file
 *       from a memfd (no disk I/O).  A failure is -EINVAL with a non-empty
 *       "FILE:LINE: …" message; a success is validated, printed with
 *       config_print, and the printed file must load again and print the
 *       same (config_print.c promises an INI file that parses back to the
 *       same values);
 *   'b' one value for config_parse_size, _duration_ms and _bool: 0 or
 *       -EINVAL, deterministic;
 *   'c' a connection string for config_connstr_redact; the next byte sets
 *       the output size.  0 or -ENOSPC, NUL-terminated within the size,
 *       and redacting the result again changes nothing.  When libpq
 *       (PQconninfoParse) reads the string, it reads the redacted copy the
 *       same way, except that every secret it found is "***" (also where
 *       it recurs inside another value), and no secret is left in it; when
 *       it cannot, the copy is just "***".  fc_connstr_check's message
 *       never holds a secret libpq found;
 *   'd' a connection string, then after a NUL any text: fc_secrets_mask
 *       leaves no secret (without '*') that libpq finds in the string,
 *       whatever the output size (the next byte).
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "config.h"
#include "filecache.h"
#include "fuzz.h"

#define ERRLEN 512

/* A memfd holding the text to load, and its /proc path. */
struct memfile {
	int fd;
	char path[64];
};

static void memfile_set(struct memfile *m, const char *text, size_t len)
{
	if (m->fd < 0) {
		m->fd = memfd_create("vmi-fuzz-config", MFD_CLOEXEC);
		FUZZ_CHECK(m->fd >= 0);
		snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", m->fd);
	}
	FUZZ_CHECK(ftruncate(m->fd, 0) == 0);
	FUZZ_CHECK(len == 0 || pwrite(m->fd, text, len, 0) == (ssize_t)len);
}

/* config_print into a malloc'd string (caller frees). */
static char *print_config(const struct config *c, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	FUZZ_CHECK(f != NULL);
	config_print(c, f);
	FUZZ_CHECK(fclose(f) == 0);
	return text;
}

static void check_file(const uint8_t *p, size_t n)
{
	static struct memfile file = { -1, "" }, printed = { -1, "" };
	struct config c, again;
	char err[ERRLEN];
	size_t len1, len2;

	memfile_set(&file, (const char *)p, n);
	config_defaults(&c);
	int r = config_load_file(&c, file.path, err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(fuzz_message_ok(err, sizeof(err)));
		FUZZ_CHECK(strncmp(err, file.path, strlen(file.path)) == 0);
		return;
	}
	if (config_validate(&c, err, sizeof(err)) < 0)
		FUZZ_CHECK(fuzz_message_ok(err, sizeof(err)));
	char *text1 = print_config(&c, &len1);
	memfile_set(&printed, text1, len1);
	config_defaults(&again);
	r = config_load_file(&again, printed.path, err, sizeof(err));
	if (r != 0)
		fprintf(stderr, "printed config does not load: %s\n%s", err, text1);
	FUZZ_CHECK(r == 0);
	char *text2 = print_config(&again, &len2);
	if (len1 != len2 || memcmp(text1, text2, len1) != 0)
		fprintf(stderr, "printed:\n%s\nreloaded and printed:\n%s", text1, text2);
	FUZZ_CHECK(len1 == len2 && memcmp(text1, text2, len1) == 0);
	free(text1);
	free(text2);
}

static void check_values(const char *s)
{
	uint64_t v1 = 0, v2 = 0;
	bool b1 = false, b2 = false;
	int r1, r2;

	r1 = config_parse_size(s, &v1);
	r2 = config_parse_size(s, &v2);
	FUZZ_CHECK((r1 == 0 || r1 == -EINVAL || r1 == -ERANGE) && r1 == r2 &&
		   (r1 != 0 || v1 == v2));
	r1 = config_parse_duration_ms(s, &v1);
	r2 = config_parse_duration_ms(s, &v2);
	FUZZ_CHECK((r1 == 0 || r1 == -EINVAL || r1 == -ERANGE) && r1 == r2 &&
		   (r1 != 0 || v1 == v2));
	r1 = config_parse_bool(s, &b1);
	r2 = config_parse_bool(s, &b2);
	FUZZ_CHECK((r1 == 0 || r1 == -EINVAL) && r1 == r2 && (r1 != 0 || b1 == b2));
}

/* Does text hold any secret of s that has no '*' in it? */
static bool holds_secret(const struct fc_secrets *s, const char *text)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strchr(s->v[i], '*') && strstr(text, s->v[i]))
			return true;
	return false;
}

/* Does any value libpq reads from conninfo (a redacted copy, maybe cut at
 * a pair) hold a secret?  Keywords may ("p" is in "password"). */
static bool values_hold_secret(const struct fc_secrets *s, const char *conninfo)
{
	PQconninfoOption *o = PQconninfoParse(conninfo, NULL);
	bool held = false;

	for (size_t i = 0; o && o[i].keyword; i++)
		held = held || (o[i].val && o[i].dispchar[0] != '*' && holds_secret(s, o[i].val));
	PQconninfoFree(o);
	return held;
}

/* Input shows in fc_connstr_check's messages only between double quotes. */
static bool quotes_hold_secret(const struct fc_secrets *s, const char *msg)
{
	char *copy = strdup(msg), *q, *end;
	bool held = false;

	FUZZ_CHECK(copy != NULL);
	for (q = strchr(copy, '"'); q && (end = strchr(q + 1, '"')); q = strchr(end + 1, '"')) {
		*end = '\0';
		held = held || holds_secret(s, q + 1);
	}
	free(copy);
	return held;
}

/* libpq reads out as it reads in, secrets masked. */
static void check_same_reading(const char *in, const char *out, const struct fc_secrets *s)
{
	PQconninfoOption *a = PQconninfoParse(in, NULL), *b = PQconninfoParse(out, NULL);

	FUZZ_CHECK(a != NULL && b != NULL);
	for (size_t i = 0; a[i].keyword; i++) {
		bool secret = a[i].dispchar[0] == '*';

		FUZZ_CHECK(strcmp(a[i].keyword, b[i].keyword) == 0);
		FUZZ_CHECK((a[i].val == NULL) == (b[i].val == NULL));
		if (!a[i].val)
			continue;
		if (secret) {
			FUZZ_CHECK(strcmp(b[i].val, "***") == 0);
		} else {
			size_t cap = 3 * strlen(a[i].val) + 1;
			char *masked = malloc(cap);

			FUZZ_CHECK(masked != NULL);
			fc_secrets_mask(s, a[i].val, masked, cap);
			FUZZ_CHECK(strcmp(masked, b[i].val) == 0);
			free(masked);
		}
	}
	PQconninfoFree(a);
	PQconninfoFree(b);
}

static void check_redact(const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	size_t outlen = 1 + p[0] % CONFIG_STR_MAX;
	char *in = fuzz_cstr(p + 1, n - 1);
	char *out = malloc(outlen), *again = malloc(outlen), err[ERRLEN];
	struct fc_secrets s;
	bool parsed;

	FUZZ_CHECK(in && out && again);
	parsed = fc_secrets_get(in, &s) == 0;
	int r = config_connstr_redact(in, out, outlen);
	FUZZ_CHECK(r == 0 || r == -ENOSPC);
	FUZZ_CHECK(memchr(out, '\0', outlen) != NULL);
	FUZZ_CHECK(!values_hold_secret(&s, out));
	if (r == 0) {
		FUZZ_CHECK(config_connstr_redact(out, again, outlen) == 0);
		FUZZ_CHECK(strcmp(again, out) == 0);
		if (parsed)
			check_same_reading(in, out, &s);
		else
			FUZZ_CHECK(strcmp(out, in[0] ? "***" : "") == 0);
	}
	if (fc_connstr_check(in, err, sizeof(err)) < 0) {
		FUZZ_CHECK(fuzz_message_ok(err, sizeof(err)));
		FUZZ_CHECK(!quotes_hold_secret(&s, err));
	}
	fc_secrets_clear(&s);
	free(in);
	free(out);
	free(again);
}

static void check_mask(const uint8_t *p, size_t n)
{
	const uint8_t *nul = n > 1 ? memchr(p + 1, '\0', n - 1) : NULL;
	struct fc_secrets s;

	if (!nul)
		return; /* p[0] is the output size */
	size_t outlen = 1 + p[0] % 512;
	char *connstr = fuzz_cstr(p + 1, (size_t)(nul - p) - 1);
	char *text = fuzz_cstr(nul + 1, n - (size_t)(nul + 1 - p));
	char *out = malloc(outlen);

	FUZZ_CHECK(connstr && text && out);
	if (fc_secrets_get(connstr, &s) == 0) {
		fc_secrets_mask(&s, text, out, outlen);
		FUZZ_CHECK(strlen(out) < outlen);
		FUZZ_CHECK(!holds_secret(&s, out));
		fc_secrets_clear(&s);
	}
	free(connstr);
	free(text);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode = fuzz_mode(data, size, 4);
	char *s;

	switch (mode) {
	case 0:
		check_file(data + 1, size - 1);
		break;
	case 1:
		s = fuzz_cstr(data + 1, size - 1);
		FUZZ_CHECK(s != NULL);
		check_values(s);
		free(s);
		break;
	case 2:
		check_redact(data + 1, size - 1);
		break;
	case 3:
		check_mask(data + 1, size - 1);
		break;
	default:
		break;
	}
	return 0;
}
