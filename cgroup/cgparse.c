/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgparse.c — strict parsers for the cgroup files (pure: bytes in, values or
 * a message out).  Content is handled with explicit lengths, so embedded
 * NULs or a missing terminator can never make a parser run off the end.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgroup.h"

/* Parses digits [s, s+len) as an unsigned 64-bit decimal. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Quotes at most 32 bytes of untrusted content for a message (non-printable
 * bytes become '?'). */
static const char *quote(const char *s, size_t len, char *tmp, size_t tmplen)
{
	size_t n = len < 32 ? len : 32, j = 0;

	for (size_t i = 0; i < n && j + 1 < tmplen; i++)
		tmp[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	tmp[j] = '\0';
	if (len > n && j + 4 < tmplen)
		memcpy(tmp + j, "...", 4);
	return tmp;
}

/* Empty content (a file caught mid-rewrite) and oversized content. */
static int check_size(const char *file, size_t len, const char *expected, char *err,
		      size_t errlen)
{
	if (len == 0) {
		snprintf(err, errlen, "%s: empty, expected %s", file, expected);
		return -ENODATA;
	}
	if (len > CG_FILE_MAX) {
		snprintf(err, errlen, "%s: %zu bytes, longer than %d", file, len, CG_FILE_MAX);
		return -EFBIG;
	}
	return 0;
}

int cg_parse_value(const char *file, const char *buf, size_t len, uint64_t *out,
		   char *err, size_t errlen)
{
	char q[40];
	size_t n = len;
	int r;

	r = check_size(file, len, "a decimal byte count or \"max\"", err, errlen);
	if (r < 0)
		return r;
	if (buf[n - 1] == '\n')
		n--;
	if (n == 3 && memcmp(buf, "max", 3) == 0) {
		*out = CG_UNLIMITED;
		return 0;
	}
	r = parse_u64(buf, n, out);
	if (r == -ERANGE)
		snprintf(err, errlen, "%s: \"%s\" does not fit in 64 bits", file,
			 quote(buf, n, q, sizeof(q)));
	else if (r < 0)
		snprintf(err, errlen, "%s: \"%s\" is not an unsigned decimal or \"max\"", file,
			 quote(buf, n, q, sizeof(q)));
	return r;
}

/* One "name value" line split out of a keyed file. */
struct kv_line {
	const char *name, *value;
	size_t name_len, value_len;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Splits one line into exactly two blank-separated fields. */
static int split_line(const char *s, size_t len, struct kv_line *kv)
{
	const char *field[3];
	size_t flen[3], nfields = 0, i = 0;

	while (i < len) {
		size_t start;

		while (i < len && is_blank(s[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !is_blank(s[i]))
			i++;
		if (nfields == 3)
			return -EINVAL;
		field[nfields] = s + start;
		flen[nfields++] = i - start;
	}
	if (nfields != 2)
		return -EINVAL;
	kv->name = field[0];
	kv->name_len = flen[0];
	kv->value = field[1];
	kv->value_len = flen[1];
	return 0;
}

/* A key the caller wants, where to store it, and whether it was seen. */
struct key_slot {
	const char *name;
	uint64_t *dst;
	bool required, seen;
};

static struct key_slot *find_slot(struct key_slot *slots, size_t n, const struct kv_line *kv)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(slots[i].name) == kv->name_len &&
		    memcmp(slots[i].name, kv->name, kv->name_len) == 0)
			return &slots[i];
	return NULL;
}

/* Stores one parsed line into its slot; unknown names are skipped. */
static int store_line(const char *file, unsigned lineno, const struct kv_line *kv,
		      struct key_slot *slots, size_t nslots, char *err, size_t errlen)
{
	struct key_slot *slot = find_slot(slots, nslots, kv);
	uint64_t v;
	char q[40];
	int r;

	r = parse_u64(kv->value, kv->value_len, &v);
	if (r < 0) {
		snprintf(err, errlen, "%s: line %u: value \"%s\" is %s", file, lineno,
			 quote(kv->value, kv->value_len, q, sizeof(q)),
			 r == -ERANGE ? "larger than 64 bits" : "not an unsigned decimal");
		return r;
	}
	if (!slot)
		return 0;
	if (slot->seen) {
		snprintf(err, errlen, "%s: line %u: \"%s\" appears twice", file, lineno,
			 slot->name);
		return -EINVAL;
	}
	slot->seen = true;
	*slot->dst = v;
	return 0;
}

/* Parses a keyed file ("name value" per line) into slots. */
static int parse_keyed(const char *file, const char *buf, size_t len, struct key_slot *slots,
		       size_t nslots, char *err, size_t errlen)
{
	unsigned lineno = 0;
	size_t pos = 0;

	int r = check_size(file, len, "\"name value\" lines", err, errlen);

	if (r < 0)
		return r;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		struct kv_line kv;
		char q[40];

		lineno++;
		if (split_line(buf + pos, line_len, &kv) < 0) {
			snprintf(err, errlen, "%s: line %u: \"%s\" is not \"name value\"", file,
				 lineno, quote(buf + pos, line_len, q, sizeof(q)));
			return -EINVAL;
		}
		r = store_line(file, lineno, &kv, slots, nslots, err, errlen);
		if (r < 0)
			return r;
		pos += line_len + 1;
	}
	for (size_t i = 0; i < nslots; i++) {
		if (slots[i].required && !slots[i].seen) {
			snprintf(err, errlen, "%s: required \"%s\" is missing (truncated?)", file,
				 slots[i].name);
			return -EINVAL;
		}
	}
	return 0;
}

int cg_parse_memory_events(const char *file, const char *buf, size_t len,
			   struct cg_memory_events *out, char *err, size_t errlen)
{
	struct cg_memory_events ev = { 0 };
	struct key_slot slots[] = {
		{ "low", &ev.low, true, false },
		{ "high", &ev.high, true, false },
		{ "max", &ev.max, true, false },
		{ "oom", &ev.oom, true, false },
		{ "oom_kill", &ev.oom_kill, true, false },
		{ "oom_group_kill", &ev.oom_group_kill, false, false },
	};
	int r = parse_keyed(file, buf, len, slots, sizeof(slots) / sizeof(slots[0]), err, errlen);

	if (r < 0)
		return r;
	ev.has_oom_group_kill = slots[5].seen;
	*out = ev;
	return 0;
}

int cg_parse_cgroup_events(const char *file, const char *buf, size_t len,
			   struct cg_cgroup_events *out, char *err, size_t errlen)
{
	uint64_t populated = 0, frozen = 0;
	struct key_slot slots[] = {
		{ "populated", &populated, true, false },
		{ "frozen", &frozen, true, false },
	};
	int r = parse_keyed(file, buf, len, slots, 2, err, errlen);

	if (r < 0)
		return r;
	if (populated > 1 || frozen > 1) {
		snprintf(err, errlen, "%s: populated/frozen must be 0 or 1, got %llu/%llu", file,
			 (unsigned long long)populated, (unsigned long long)frozen);
		return -EINVAL;
	}
	out->populated = populated == 1;
	out->frozen = frozen == 1;
	return 0;
}

int cg_parse_memory_stat(const char *file, const char *buf, size_t len,
			 struct cg_memory_stat *out, char *err, size_t errlen)
{
	struct cg_memory_stat st = { 0 };
	struct key_slot slots[] = {
		{ "anon", &st.anon, true, false },
		{ "file", &st.file, true, false },
		{ "shmem", &st.shmem, true, false },
		{ "workingset_refault_file", &st.refault_file, false, false },
	};
	int r = parse_keyed(file, buf, len, slots, sizeof(slots) / sizeof(slots[0]), err, errlen);

	if (r < 0)
		return r;
	st.has_refault_file = slots[3].seen;
	*out = st;
	return 0;
}

uint64_t cg_workload_bytes(uint64_t current, const struct cg_memory_stat *st)
{
	uint64_t cache = st->file > st->shmem ? st->file - st->shmem : 0;

	return current > cache ? current - cache : 0;
}

/* ---- PSI ------------------------------------------------------------------- */

/* A PSI average: "<1-3 digits>[.<1-9 digits>]", at most 100. */
static int parse_percent(const char *p, size_t len, double *out)
{
	const char *dot = memchr(p, '.', len);
	size_t whole_len = dot ? (size_t)(dot - p) : len;
	uint64_t whole, frac = 0;
	double scale = 1;
	int r;

	if (whole_len > 3 || parse_u64(p, whole_len, &whole) < 0)
		return -EINVAL;
	if (dot) {
		size_t frac_len = len - whole_len - 1;

		r = frac_len > 9 ? -EINVAL : parse_u64(dot + 1, frac_len, &frac);
		if (r < 0)
			return -EINVAL;
		for (size_t i = 0; i < frac_len; i++)
			scale *= 10;
	}
	*out = (double)whole + (double)frac / scale;
	return *out <= 100 ? 0 : -ERANGE;
}

/* The tokens after "some " or "full ": single-space separated key=value;
 * avg10 and total are required, each at most once. */
static int parse_psi_tokens(const char *p, size_t len, double *avg10, uint64_t *total)
{
	bool seen_avg = false, seen_total = false;
	size_t pos = 0;

	while (pos < len) {
		const char *tok = p + pos, *sp = memchr(tok, ' ', len - pos);
		size_t tlen = sp ? (size_t)(sp - tok) : len - pos;
		const char *eq = memchr(tok, '=', tlen);
		size_t klen;

		if (!eq)
			return -EINVAL;
		klen = (size_t)(eq - tok);
		if (klen == 5 && memcmp(tok, "avg10", 5) == 0) {
			if (seen_avg || parse_percent(eq + 1, tlen - klen - 1, avg10) < 0)
				return -EINVAL;
			seen_avg = true;
		} else if (klen == 5 && memcmp(tok, "total", 5) == 0) {
			if (seen_total || parse_u64(eq + 1, tlen - klen - 1, total) < 0)
				return -EINVAL;
			seen_total = true;
		}
		pos += tlen + 1;
		if (sp && pos == len)
			return -EINVAL; /* a trailing blank: a cut-off token? */
	}
	return seen_avg && seen_total ? 0 : -EINVAL;
}

int cg_parse_pressure(const char *file, const char *buf, size_t len, struct cg_pressure *out,
		      char *err, size_t errlen)
{
	struct cg_pressure pr = { 0 };
	unsigned lineno = 0, some = 0, full = 0;
	size_t pos = 0;
	char q[40];
	int r = check_size(file, len, "\"some ...\" and \"full ...\" lines", err, errlen);

	if (r < 0)
		return r;
	while (pos < len) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - line) : len - pos;

		lineno++;
		if (line_len > 5 && memcmp(line, "some ", 5) == 0 && !some++)
			r = parse_psi_tokens(line + 5, line_len - 5, &pr.some_avg10,
					     &pr.some_total_us);
		else if (line_len > 5 && memcmp(line, "full ", 5) == 0 && !full++)
			r = parse_psi_tokens(line + 5, line_len - 5, &pr.full_avg10,
					     &pr.full_total_us);
		else
			r = -EINVAL;
		if (r < 0) {
			snprintf(err, errlen, "%s: line %u: \"%s\" is not one \"some\" or \"full\" "
				 "line with avg10= and total=", file, lineno,
				 quote(line, line_len, q, sizeof(q)));
			return -EINVAL;
		}
		pos += line_len + 1;
	}
	if (!some || !full) {
		snprintf(err, errlen, "%s: the \"%s\" line is missing (truncated?)", file,
			 some ? "full" : "some");
		return -EINVAL;
	}
	*out = pr;
	return 0;
}
