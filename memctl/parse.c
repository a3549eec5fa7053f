/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse.c — the strict, bounded parser for meminfo-style files.  Buffers
 * need not be NUL-terminated and may be torn (a file rewritten while we
 * read it): anything that is not exactly the expected shape is rejected
 * rather than guessed at.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "memctl.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* One or more decimal digits at *p into *out; advances *p past them. */
static int parse_digits(const char **p, const char *end, uint64_t *out)
{
	const char *q = *p;
	uint64_t v = 0;

	if (q == end || !is_digit(*q))
		return -EINVAL;
	for (; q < end && is_digit(*q); q++) {
		unsigned d = (unsigned)(*q - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*p = q;
	*out = v;
	return 0;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* The end of the line starting at p: its '\n' or end. */
static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl ? nl : end;
}

/* Where the line after the one ending at eol starts (never past end). */
static const char *next_line(const char *eol, const char *end)
{
	return eol < end ? eol + 1 : end;
}

/* "<blanks><digits><blanks>kB" exactly filling [p, eol). */
static int parse_kb_value(const char *p, const char *eol, uint64_t *bytes)
{
	const char *q = skip_blanks(p, eol);
	uint64_t kb;
	int r;

	r = parse_digits(&q, eol, &kb);
	if (r < 0)
		return r;
	p = skip_blanks(q, eol);
	/* Blanks are required before the unit; the unit is what proves the
	 * number was not cut short by a torn read. */
	if (p == q || eol - p != 2 || p[0] != 'k' || p[1] != 'B')
		return -EINVAL;
	if (kb > UINT64_MAX / 1024)
		return -ERANGE;
	*bytes = kb * 1024;
	return 0;
}

int mc_parse_kb_field(const char *buf, size_t len, const char *key, uint64_t *bytes)
{
	size_t keylen = key ? strlen(key) : 0;
	const char *end, *p = buf;
	int found = -ENOENT;
	uint64_t v = 0;

	if (!buf || !bytes || keylen == 0)
		return -EINVAL;
	end = buf + len;
	while (p < end) {
		const char *eol = line_end(p, end);

		if ((size_t)(eol - p) > keylen && memcmp(p, key, keylen) == 0 && p[keylen] == ':') {
			if (found != -ENOENT)
				return -EINVAL; /* repeated: which one is true? */
			found = parse_kb_value(p + keylen + 1, eol, &v);
		}
		p = next_line(eol, end);
	}
	if (found == 0)
		*bytes = v;
	return found;
}
