/* SPDX-License-Identifier: Apache-2.0 */
/*
 * monitor.c — the messages of the websocket monitor protocol v1.0
 * (docs/monitor-protocol.md): the version handshake and the typed messages
 * of both directions.
 *
 * Decoding is like Go's encoding/json on the other side: unknown members
 * are ignored, member names match exactly.  Unlike it, the text must be
 * exactly one JSON object, and what a message cannot do without (its id,
 * its type, an Allocation's mem) must be there.  Encoding writes the
 * agent's messages byte for byte as Go does (struct order Content, Type,
 * Id; floats in encoding/json's notation; Go string escaping) and the
 * monitor's in the key order of the spec's examples.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"
#include "internal.h"

static const char *const type_names[AP_MON__COUNT] = {
	[AP_MON_HEALTH_CHECK] = "HealthCheck",
	[AP_MON_UPSCALE_NOTIFICATION] = "UpscaleNotification",
	[AP_MON_DOWNSCALE_REQUEST] = "DownscaleRequest",
	[AP_MON_UPSCALE_REQUEST] = "UpscaleRequest",
	[AP_MON_UPSCALE_CONFIRMATION] = "UpscaleConfirmation",
	[AP_MON_DOWNSCALE_RESULT] = "DownscaleResult",
	[AP_MON_INVALID_MESSAGE] = "InvalidMessage",
	[AP_MON_INTERNAL_ERROR] = "InternalError",
};

/* Which side may send each type. */
static bool agent_sends(enum ap_mon_type t)
{
	return t == AP_MON_HEALTH_CHECK || t == AP_MON_UPSCALE_NOTIFICATION ||
	       t == AP_MON_DOWNSCALE_REQUEST || t == AP_MON_INVALID_MESSAGE ||
	       t == AP_MON_INTERNAL_ERROR;
}

static bool has_error_text(enum ap_mon_type t)
{
	return t == AP_MON_INVALID_MESSAGE || t == AP_MON_INTERNAL_ERROR;
}

const char *ap_mon_type_name(enum ap_mon_type t)
{
	return (unsigned)t < AP_MON__COUNT ? type_names[t] : "?";
}

/* ---- decoding ------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static json_t *load_object(const char *msg, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v;

	if (errlen)
		err[0] = '\0';
	if (len == 0) {
		fail(err, errlen, "empty message: expected a JSON object");
		return NULL;
	}
	v = json_loadb(msg, len, 0, &jerr);
	if (!v) {
		fail(err, errlen, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		fail(err, errlen, "expected a JSON object");
		json_decref(v);
		return NULL;
	}
	return v;
}

/* A non-negative integer member up to max; missing counts as an error
 * only when required.  0 = found, 1 = missing, -EINVAL = bad. */
static int get_uint(json_t *o, const char *path, const char *key, uint64_t max, bool required,
		    uint64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v)) {
		if (required)
			return fail(err, errlen, "%s%s: missing", path, key);
		return 1;
	}
	/* jansson reads 4.0 and 1e2 as reals, which Go refuses for integers;
	 * its integers are signed, so ids above 2^63 - 1 do not parse at all. */
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return fail(err, errlen, "%s%s: expected an integer from 0 to %" PRIu64, path,
			    key, max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_text(json_t *o, const char *path, const char *key, char *buf, size_t size,
		    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, "%s%s: expected a string", path, key);
	/* Longer texts are cut: they are messages for people. */
	snprintf(buf, size, "%s", json_string_value(v));
	return 0;
}

static int get_object(json_t *o, const char *path, const char *key, json_t **out, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v || !json_is_object(v))
		return fail(err, errlen, "%s%s: expected an object", path, key);
	*out = v;
	return 0;
}

/* Allocation {"cpu": float, "mem": uint64}; cpu may be left out. */
static int get_allocation(json_t *content, const char *key, struct ap_mon_msg *m, char *err,
			  size_t errlen)
{
	char path[32];
	json_t *a = NULL, *cpu;
	int r = get_object(content, "content.", key, &a, err, errlen);

	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "content.%s.", key);
	cpu = json_object_get(a, "cpu");
	if (cpu && !json_is_null(cpu)) {
		if (!json_is_number(cpu) || !isfinite(json_number_value(cpu)) ||
		    json_number_value(cpu) < 0)
			return fail(err, errlen, "%scpu: expected a non-negative number", path);
		m->cpu = json_number_value(cpu);
	}
	return get_uint(a, path, "mem", UINT64_MAX, true, &m->mem, err, errlen) < 0 ? -EINVAL : 0;
}

static int type_of(json_t *o, enum ap_mon_type *t, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, "type");

	if (!json_is_string(v))
		return fail(err, errlen, "type: expected a string");
	for (int i = 0; i < AP_MON__COUNT; i++)
		if (strcmp(json_string_value(v), type_names[i]) == 0) {
			*t = (enum ap_mon_type)i;
			return 0;
		}
	fail(err, errlen, "type: unknown message type \"%.64s\"", json_string_value(v));
	return -ENOMSG;
}

int ap_mon_decode_agent(const char *msg, size_t len, struct ap_mon_msg *out, bool *id_known,
			char *err, size_t errlen)
{
	struct ap_mon_msg m = { 0 };
	json_t *content = NULL;
	int r;
	json_t *o = load_object(msg, len, err, errlen);

	*id_known = false;
	if (!o)
		return -EINVAL;
	/* The id first: every later failure is answered with it. */
	r = get_uint(o, "", "id", UINT64_MAX, true, &m.id, err, errlen);
	if (r == 0) {
		*id_known = true;
		out->id = m.id;
		r = type_of(o, &m.type, err, errlen);
	}
	if (r == 0 && !agent_sends(m.type))
		r = fail(err, errlen, "type: %s is a message of the monitor, not of the agent",
			 type_names[m.type]);
	if (r == 0)
		r = get_object(o, "", "content", &content, err, errlen);
	if (r == 0 && m.type == AP_MON_UPSCALE_NOTIFICATION)
		r = get_allocation(content, "granted", &m, err, errlen);
	else if (r == 0 && m.type == AP_MON_DOWNSCALE_REQUEST)
		r = get_allocation(content, "target", &m, err, errlen);
	else if (r == 0 && has_error_text(m.type))
		r = get_text(content, "content.", "error", m.text, sizeof(m.text), err, errlen);
	json_decref(o);
	if (r == 0)
		*out = m;
	return r;
}

int ap_mon_decode_monitor(const char *msg, size_t len, struct ap_mon_msg *out, char *err,
			  size_t errlen)
{
	struct ap_mon_msg m = { 0 };
	json_t *o = load_object(msg, len, err, errlen);
	int r;

	if (!o)
		return -EINVAL;
	r = type_of(o, &m.type, err, errlen);
	if (r == 0)
		r = get_uint(o, "", "id", UINT64_MAX, true, &m.id, err, errlen);
	if (r == 0 && m.type == AP_MON_DOWNSCALE_RESULT) {
		json_t *ok = json_object_get(o, "Ok");

		if (!json_is_boolean(ok))
			r = fail(err, errlen, "Ok: expected true or false");
		m.ok = json_is_true(ok);
		if (r == 0)
			r = get_text(o, "", "Status", m.text, sizeof(m.text), err, errlen);
	} else if (r == 0 && has_error_text(m.type)) {
		r = get_text(o, "", "error", m.text, sizeof(m.text), err, errlen);
	}
	json_decref(o);
	if (r == 0)
		*out = m;
	return r;
}

int ap_mon_decode_range(const char *msg, size_t len, uint32_t *min, uint32_t *max, char *err,
			size_t errlen)
{
	uint64_t lo = 0, hi = 0;
	json_t *o = load_object(msg, len, err, errlen);
	int r;

	if (!o)
		return -EINVAL;
	r = get_uint(o, "", "min", UINT32_MAX, true, &lo, err, errlen);
	if (r == 0)
		r = get_uint(o, "", "max", UINT32_MAX, true, &hi, err, errlen);
	json_decref(o);
	if (r < 0)
		return -EINVAL;
	if (lo == 0)
		return fail(err, errlen, "min: version 0 is invalid (v1.0 is 1)");
	if (lo > hi)
		return fail(err, errlen, "min %" PRIu64 " is above max %" PRIu64, lo, hi);
	*min = (uint32_t)lo;
	*max = (uint32_t)hi;
	return 0;
}

int ap_mon_negotiate(uint32_t agent_min, uint32_t agent_max, uint32_t *chosen, char *err,
		     size_t errlen)
{
	uint32_t hi = agent_max < AP_MONITOR_PROTO_MAX ? agent_max : AP_MONITOR_PROTO_MAX;
	uint32_t lo = agent_min > AP_MONITOR_PROTO_MIN ? agent_min : AP_MONITOR_PROTO_MIN;

	if (lo > hi) {
		snprintf(err, errlen,
			 "no common protocol version: the agent speaks %" PRIu32 " to %" PRIu32
			 ", this monitor %d to %d",
			 agent_min, agent_max, AP_MONITOR_PROTO_MIN, AP_MONITOR_PROTO_MAX);
		return -EPROTO;
	}
	*chosen = hi;
	return 0;
}

int ap_mon_decode_version(const char *msg, size_t len, uint32_t *version, char *err,
			  size_t errlen)
{
	char why[AP_STATUS_MAX] = "";
	uint64_t v = 0;
	json_t *o = load_object(msg, len, err, errlen);
	int r;

	if (!o)
		return -EINVAL;
	r = get_text(o, "", "error", why, sizeof(why), err, errlen);
	if (r == 0 && why[0]) {
		json_decref(o);
		snprintf(err, errlen, "%s", why);
		return -EPROTO;
	}
	if (r == 0)
		r = get_uint(o, "", "version", UINT32_MAX, true, &v, err, errlen);
	json_decref(o);
	if (r < 0)
		return -EINVAL;
	if (v == 0)
		return fail(err, errlen, "version: 0 is invalid");
	*version = (uint32_t)v;
	return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

/* A JSON text of at most this size: the only free text (Status, error) is
 * at most AP_STATUS_MAX bytes, six times that escaped. */
#define TEXT_MAX (6 * AP_STATUS_MAX + 256)

struct out {
	char buf[TEXT_MAX];
	size_t len;
	bool failed;
};

static void add(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(o->buf) - o->len)
		o->failed = true;
	else
		o->len += (size_t)n;
}

/* "key":"text" with Go's escaping; fails on text that is not UTF-8. */
static void add_string(struct out *o, const char *key, const char *text)
{
	char *s = ap_json_string_text(text);

	if (!s)
		o->failed = true;
	else
		add(o, "\"%s\":%s", key, s);
	free(s);
}

static char *finish(struct out *o)
{
	return o->failed ? NULL : strdup(o->buf);
}

static void add_allocation(struct out *o, const char *key, const struct ap_mon_msg *m)
{
	char cpu[40];

	ap_format_json_float(m->cpu, cpu, sizeof(cpu));
	add(o, "\"%s\":{\"cpu\":%s,\"mem\":%" PRIu64 "}", key, cpu, m->mem);
}

char *ap_mon_encode_agent(const struct ap_mon_msg *m)
{
	struct out o = { .len = 0 };

	if ((unsigned)m->type >= AP_MON__COUNT)
		return NULL;
	add(&o, "{\"content\":{");
	if (m->type == AP_MON_UPSCALE_NOTIFICATION)
		add_allocation(&o, "granted", m);
	else if (m->type == AP_MON_DOWNSCALE_REQUEST)
		add_allocation(&o, "target", m);
	else if (has_error_text(m->type))
		add_string(&o, "error", m->text);
	add(&o, "},\"type\":\"%s\",\"id\":%" PRIu64 "}", type_names[m->type], m->id);
	return finish(&o);
}

char *ap_mon_encode_monitor(const struct ap_mon_msg *m)
{
	struct out o = { .len = 0 };

	if ((unsigned)m->type >= AP_MON__COUNT)
		return NULL;
	add(&o, "{\"type\":\"%s\",", type_names[m->type]);
	if (m->type == AP_MON_DOWNSCALE_RESULT) {
		add(&o, "\"Ok\":%s,", m->ok ? "true" : "false");
		add_string(&o, "Status", m->text);
		add(&o, ",");
	} else if (has_error_text(m->type)) {
		add_string(&o, "error", m->text);
		add(&o, ",");
	}
	add(&o, "\"id\":%" PRIu64 "}", m->id);
	return finish(&o);
}

char *ap_mon_encode_range(uint32_t min, uint32_t max)
{
	struct out o = { .len = 0 };

	add(&o, "{\"min\":%" PRIu32 ",\"max\":%" PRIu32 "}", min, max);
	return finish(&o);
}

char *ap_mon_encode_version(uint32_t version)
{
	struct out o = { .len = 0 };

	add(&o, "{\"version\":%" PRIu32 "}", version);
	return finish(&o);
}

char *ap_mon_encode_refusal(const char *why)
{
	struct out o = { .len = 0 };

	add(&o, "{");
	add_string(&o, "error", why);
	add(&o, "}");
	return finish(&o);
}
