/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c — one stdout line per event, flushed at once (tests read them
 * through a pipe).  Text: "  12.345 upscale-sent from=1Gi to=2Gi status=200";
 * with --json: {"t":12.345,"event":"upscale-sent","from":"1Gi",…}.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* key=value; strings with spaces or quotes are written as JSON strings. */
static void append_text(char *line, size_t cap, const char *key, json_t *v)
{
	size_t len = strlen(line);
	char *val;

	if (json_is_string(v) && !strpbrk(json_string_value(v), " \"=\t\n")) {
		snprintf(line + len, cap - len, " %s=%s", key, json_string_value(v));
		return;
	}
	val = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	snprintf(line + len, cap - len, " %s=%s", key, val ? val : "?");
	free(val);
}

void sim_event(struct sim *s, const char *event, const char *fmt, ...)
{
	double t = (double)(sim_now_ns() - s->start_ns) / 1e9;
	char line[2048];
	const char *key;
	json_t *obj, *v;
	char *dump;
	va_list ap;

	if (s->cfg.quiet && strcmp(event, "listening") != 0)
		return;
	va_start(ap, fmt);
	obj = json_vpack_ex(NULL, 0, fmt, ap);
	va_end(ap);
	if (!obj)
		obj = json_object();
	if (!obj)
		return;
	if (s->cfg.json) {
		v = json_pack("{s:f,s:s}", "t", t, "event", event);
		if (v && json_object_update(v, obj) == 0 &&
		    (dump = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
			snprintf(line, sizeof(line), "%s", dump);
			free(dump);
		} else {
			snprintf(line, sizeof(line), "{\"event\":\"%s\"}", event);
		}
		json_decref(v);
	} else {
		snprintf(line, sizeof(line), "%8.3f %s", t, event);
		json_object_foreach(obj, key, v)
			append_text(line, sizeof(line), key, v);
	}
	json_decref(obj);
	flockfile(stdout);
	fputs(line, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	funlockfile(stdout);
}
