/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsonenc.c — compact JSON text with Go's encoding/json string escaping.
 *
 * jansson already writes compact JSON in insertion order and escapes '"',
 * '\' and control characters, but it writes \b and \f, uppercase \u00XX,
 * and leaves '<' '>' '&' U+2028 U+2029 alone, where Go writes \u0008,
 * \u000c, lowercase hex and \u003c \u003e \u0026 \u2028 \u2029.  All of
 * these can only occur inside JSON strings, so a pass over the dumped text
 * that rewrites them is exact.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool is_hex4(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Go's spelling of one byte sequence at s, or NULL to copy the byte as is.
 * *used is how many input bytes the replacement stands for. */
static const char *go_spelling(const char *s, char *tmp, size_t *used)
{
	*used = 1;
	switch (s[0]) {
	case '<':
		return "\\u003c";
	case '>':
		return "\\u003e";
	case '&':
		return "\\u0026";
	case '\\':
		/* A lone trailing backslash cannot come from jansson; copy it. */
		if (s[1] == '\0')
			return NULL;
		*used = 2;
		if (s[1] == 'b')
			return "\\u0008";
		if (s[1] == 'f')
			return "\\u000c";
		if (s[1] == 'u' && is_hex4(s + 2)) {
			/* jansson writes \uXXXX with uppercase hex digits. */
			*used = 6;
			tmp[0] = '\\';
			tmp[1] = 'u';
			for (int i = 2; i < 6; i++)
				tmp[i] = (char)tolower((unsigned char)s[i]);
			tmp[6] = '\0';
			return tmp;
		}
		tmp[0] = s[0];
		tmp[1] = s[1];
		tmp[2] = '\0';
		return tmp;
	case '\xe2':
		/* U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8. */
		if (s[1] == '\x80' && (s[2] == '\xa8' || s[2] == '\xa9')) {
			*used = 3;
			return s[2] == '\xa8' ? "\\u2028" : "\\u2029";
		}
		return NULL;
	default:
		return NULL;
	}
}

/* Write the escaped text into out (if not NULL); return its length. */
static size_t go_escape_into(const char *text, char *out)
{
	size_t n = 0;
	char tmp[8];

	while (*text) {
		size_t used;
		const char *rep = go_spelling(text, tmp, &used);
		if (!rep) {
			if (out)
				out[n] = *text;
			n++;
			text++;
			continue;
		}
		size_t replen = strlen(rep);
		if (out)
			memcpy(out + n, rep, replen);
		n += replen;
		text += used;
	}
	return n;
}

char *ap_json_go_escape(const char *text)
{
	size_t len = go_escape_into(text, NULL);
	char *out = malloc(len + 1);

	if (!out)
		return NULL;
	go_escape_into(text, out);
	out[len] = '\0';
	return out;
}

char *ap_json_finish(json_t *v)
{
	if (!v)
		return NULL;
	char *raw = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(v);
	if (!raw)
		return NULL;
	char *out = ap_json_go_escape(raw);
	free(raw);
	return out;
}

char *ap_json_string_text(const char *s)
{
	json_t *v = json_string(s); /* NULL for text that is not UTF-8 */
	char *raw, *out;

	if (!v)
		return NULL;
	raw = json_dumps(v, JSON_ENCODE_ANY);
	json_decref(v);
	if (!raw)
		return NULL;
	out = ap_json_go_escape(raw);
	free(raw);
	return out;
}
