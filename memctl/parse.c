/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse.c — strict, bounded parsers for meminfo-style files, cgroup
 * single-value files and PSI files.  Buffers need not be NUL-terminated and
 * may be torn (a file rewritten while we read it): anything that is not
 * exactly the expected shape is rejected rather than guessed at.
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

int mc_parse_meminfo(const char *buf, size_t len, struct mc_meminfo *out)
{
	memset(out, 0, sizeof(*out));
	out->mem_total_ok = mc_parse_kb_field(buf, len, "MemTotal", &out->mem_total) == 0;
	out->mem_available_ok =
		mc_parse_kb_field(buf, len, "MemAvailable", &out->mem_available) == 0;
	if (!out->mem_total_ok)
		out->mem_total = 0;
	if (!out->mem_available_ok)
		out->mem_available = 0;
	return out->mem_total_ok && out->mem_available_ok ? 0 : -ENODATA;
}

int mc_parse_u64_value(const char *buf, size_t len, bool allow_max, uint64_t *out)
{
	const char *p = buf, *end;
	uint64_t v;
	int r;

	if (!buf || !out)
		return -EINVAL;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	end = buf + len;
	if (allow_max && len == 3 && memcmp(buf, "max", 3) == 0) {
		*out = 0;
		return 0;
	}
	r = parse_digits(&p, end, &v);
	if (r < 0)
		return r;
	if (p != end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A PSI average: "<1-3 digits>[.<1-9 digits>]", at most 100. */
static int parse_percent(const char *p, const char *end, double *out)
{
	uint64_t whole, frac = 0;
	double scale = 1;
	const char *q = p;
	int r;

	r = parse_digits(&q, end, &whole);
	if (r < 0 || q - p > 3)
		return -EINVAL;
	if (q < end && *q == '.') {
		const char *f = ++q;

		r = parse_digits(&q, end, &frac);
		if (r < 0 || q - f > 9)
			return -EINVAL;
		for (; f < q; f++)
			scale *= 10;
	}
	if (q != end)
		return -EINVAL;
	*out = (double)whole + (double)frac / scale;
	return *out <= 100 ? 0 : -ERANGE;
}

struct psi_line {
	double avg10;
	uint64_t total;
};

/* One "key=value" token in [p, end) of a PSI line; sets the bit of the key
 * in *seen so that a repeated key is rejected. */
static int parse_psi_token(const char *p, const char *end, struct psi_line *line, unsigned *seen)
{
	static const char *const keys[] = { "avg10", "avg60", "avg300", "total" };
	const char *eq = memchr(p, '=', (size_t)(end - p));
	double ignored;
	size_t i, klen;

	if (!eq)
		return -EINVAL;
	klen = (size_t)(eq - p);
	for (i = 0; i < 4; i++)
		if (strlen(keys[i]) == klen && memcmp(p, keys[i], klen) == 0)
			break;
	if (i == 4)
		return 0; /* a field a newer kernel added: not ours to judge */
	if (*seen & (1u << i))
		return -EINVAL;
	*seen |= 1u << i;
	if (i == 3) {
		const char *q = eq + 1;
		int r = parse_digits(&q, end, &line->total);

		return r < 0 ? r : q == end ? 0 : -EINVAL;
	}
	return parse_percent(eq + 1, end, i == 0 ? &line->avg10 : &ignored);
}

/* The text after "some " or "full ": single-space separated tokens. */
static int parse_psi_line(const char *p, const char *eol, struct psi_line *line)
{
	unsigned seen = 0;

	while (p < eol) {
		const char *sp = memchr(p, ' ', (size_t)(eol - p));
		const char *tok_end = sp ? sp : eol;
		int r = parse_psi_token(p, tok_end, line, &seen);

		if (r < 0)
			return r;
		p = sp ? sp + 1 : eol;
		if (sp && p == eol)
			return -EINVAL; /* trailing blank: a cut-off token? */
	}
	/* avg10 and total are what we report; avg60/avg300 are optional. */
	return (seen & 1u) && (seen & 8u) ? 0 : -EINVAL;
}

int mc_parse_psi(const char *buf, size_t len, struct mc_psi *out)
{
	const char *end, *p = buf;
	int some_lines = 0, full_lines = 0;
	struct psi_line some = { 0 }, full = { 0 };
	bool some_ok = false, full_ok = false;

	memset(out, 0, sizeof(*out));
	if (!buf)
		return -EINVAL;
	end = buf + len;
	while (p < end) {
		const char *eol = line_end(p, end);

		if (eol - p > 5 && memcmp(p, "some ", 5) == 0) {
			some_lines++;
			some_ok = parse_psi_line(p + 5, eol, &some) == 0;
		} else if (eol - p > 5 && memcmp(p, "full ", 5) == 0) {
			full_lines++;
			full_ok = parse_psi_line(p + 5, eol, &full) == 0;
		}
		p = next_line(eol, end);
	}
	some_ok = some_ok && some_lines == 1;
	full_ok = full_ok && full_lines == 1;
	if (some_ok) {
		out->some_avg10 = some.avg10;
		out->some_total = some.total;
	}
	if (full_ok) {
		out->full_avg10 = full.avg10;
		out->full_total = full.total;
	}
	out->some_avg10_ok = out->some_total_ok = some_ok;
	out->full_avg10_ok = out->full_total_ok = full_ok;
	return some_ok && full_ok ? 0 : -ENODATA;
}
