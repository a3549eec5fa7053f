/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "vectors.h"

const char *vec_dir(void)
{
	const char *dir = getenv("VMI_VECTORS_DIR");

	if (!dir || !*dir)
		fail_msg("VMI_VECTORS_DIR is not set: run through meson test");
	return dir;
}

char *vec_read(const char *name, size_t *len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", vec_dir(), name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open vector %s", path);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	rewind(f);
	assert_true(size >= 0);
	char *buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	size_t got = fread(buf, 1, (size_t)size, f);
	fclose(f);
	assert_int_equal(got, (size_t)size);
	buf[size] = '\0';
	*len = (size_t)size;
	return buf;
}

json_t *vec_json(const char *name)
{
	char path[4096];
	json_error_t jerr;

	snprintf(path, sizeof(path), "%s/%s", vec_dir(), name);
	json_t *v = json_load_file(path, 0, &jerr);
	if (!v)
		fail_msg("cannot parse %s: %s (line %d)", path, jerr.text, jerr.line);
	return v;
}

const char *vec_str(json_t *row, const char *key)
{
	json_t *v = json_object_get(row, key);

	if (!json_is_string(v))
		fail_msg("vector row has no string member %s", key);
	return json_string_value(v);
}

long long vec_int(json_t *row, const char *key)
{
	json_t *v = json_object_get(row, key);

	if (!json_is_integer(v))
		fail_msg("vector row has no integer member %s", key);
	return json_integer_value(v);
}
