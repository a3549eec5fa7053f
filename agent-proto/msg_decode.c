/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msg_decode.c — strict decoding of the protocol messages (docs/informant-protocol.md §2, §4).
 *
 * Like the reference: unknown members are ignored, and missing or null
 * members leave zero values (all-zero UUID, 0, false, "").  Unlike it: the
 * body must be exactly one JSON object (trailing data is an error), member
 * names match exactly, and a missing or null memory quantity is recorded as
 * such instead of crashing later (defect D14).  Every failure is -EINVAL
 * with a message naming the member, e.g. "data.memory: …".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent_proto.h"
#include "internal.h"

/* Where errors go, and the path of the object being decoded ("", "data."). */
struct dec {
	char *err;
	size_t errlen;
	const char *prefix;
};

static int fail(const struct dec *dc, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(const struct dec *dc, const char *key, const char *fmt, ...)
{
	char what[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(dc->err, dc->errlen, "%s%s: %s", dc->prefix, key, what);
	return -EINVAL;
}

static json_t *load_object(const char *body, size_t len, const struct dec *dc)
{
	json_error_t jerr;
	json_t *v;

	if (len == 0) {
		snprintf(dc->err, dc->errlen, "empty body: expected a JSON object");
		return NULL;
	}
	/* Flags 0: the text must be one object or array and nothing else. */
	v = json_loadb(body, len, 0, &jerr);
	if (!v && strstr(jerr.text, "too big")) {
		/* jansson's integers are int64: say which limit that is. */
		snprintf(dc->err, dc->errlen, "invalid JSON at byte %d: an integer beyond "
			 "%" PRId64 " (the largest accepted)", jerr.position, INT64_MAX);
		return NULL;
	}
	if (!v) {
		snprintf(dc->err, dc->errlen, "invalid JSON at byte %d: %s", jerr.position,
			 jerr.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		snprintf(dc->err, dc->errlen, "expected a JSON object");
		json_decref(v);
		return NULL;
	}
	return v;
}

/* The member, or NULL when it is missing or null (both mean "zero"). */
static json_t *member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

static int get_uuid(const struct dec *dc, json_t *obj, const char *key, struct ap_uuid *out)
{
	json_t *v = member(obj, key);

	if (!v)
		return 0;
	if (!json_is_string(v) || ap_uuid_parse(json_string_value(v), out) < 0)
		return fail(dc, key, "expected a UUID string");
	return 0;
}

static int get_uint(const struct dec *dc, json_t *obj, const char *key, uint64_t max,
		    uint64_t *out)
{
	json_t *v = member(obj, key);

	if (!v)
		return 0;
	/* jansson reads "4.0" and "1e2" as reals, which Go rejects for ints. */
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return fail(dc, key, "expected a non-negative integer up to %" PRIu64, max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_u32(const struct dec *dc, json_t *obj, const char *key, uint32_t *out)
{
	uint64_t v = 0;
	int r = get_uint(dc, obj, key, UINT32_MAX, &v);

	*out = (uint32_t)v;
	return r;
}

static int get_bool(const struct dec *dc, json_t *obj, const char *key, bool *out)
{
	json_t *v = member(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return fail(dc, key, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static int get_string(const struct dec *dc, json_t *obj, const char *key, char *buf,
		      size_t size)
{
	json_t *v = member(obj, key);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(dc, key, "expected a string");
	if (json_string_length(v) >= size)
		return fail(dc, key, "longer than %zu bytes", size - 1);
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* A nested object, or NULL when missing or null; members of NULL read as
 * missing, so callers need not distinguish. */
static int get_object(const struct dec *dc, json_t *obj, const char *key, json_t **out)
{
	json_t *v = member(obj, key);

	if (v && !json_is_object(v))
		return fail(dc, key, "expected an object");
	*out = v;
	return 0;
}

/* A bare JSON number as quantity text.  A real is printed with its
 * shortest round-trip digits, which gives back what was written ("1.5")
 * for any number with up to 15 significant digits. */
static void number_text(json_t *v, char *buf, size_t size)
{
	char digits[24];
	int nd, point;
	double x = json_real_value(v);

	if (json_is_integer(v)) {
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	}
	if (x == 0) {
		snprintf(buf, size, "0");
		return;
	}
	ap_shortest_digits(x < 0 ? -x : x, digits, &nd, &point);
	snprintf(buf, size, "%s%.*se%d", x < 0 ? "-" : "", nd, digits, point - nd);
}

static int get_quantity(const struct dec *dc, json_t *obj, const char *key, bool milli,
			bool *has, uint64_t *out)
{
	json_t *v = member(obj, key);
	char text[64];
	const char *s = text;

	*has = v != NULL;
	if (!v)
		return 0;
	if (json_is_string(v))
		s = json_string_value(v);
	else if (json_is_number(v))
		number_text(v, text, sizeof(text));
	else
		return fail(dc, key, "expected a quantity string such as \"4Gi\"");
	int r = milli ? ap_quantity_parse_milli(s, out) : ap_quantity_parse(s, out);
	if (r == -ERANGE)
		return fail(dc, key, "quantity too large");
	if (r < 0)
		return fail(dc, key, "expected a non-negative quantity such as \"4Gi\"");
	return 0;
}

typedef int (*fill_fn)(struct dec *dc, json_t *o, void *msg);

/* Parse body as one object and let fill read its members into a zeroed
 * message; only a complete success is copied to out (size bytes). */
static int decode(const char *body, size_t len, char *err, size_t errlen, fill_fn fill,
		  void *out, size_t size)
{
	struct dec dc = { err, errlen, "" };
	union ap_any_msg msg;

	if (errlen)
		err[0] = '\0';
	json_t *o = load_object(body, len, &dc);
	if (!o)
		return -EINVAL;
	memset(&msg, 0, sizeof(msg));
	int r = fill ? fill(&dc, o, &msg) : 0;
	json_decref(o);
	if (r == 0 && out)
		memcpy(out, &msg, size);
	return r;
}

static int fill_agent_desc(struct dec *dc, json_t *o, void *msg)
{
	struct ap_agent_desc *d = msg;
	int r = get_uuid(dc, o, "agentID", &d->agent_id);

	if (r == 0)
		r = get_string(dc, o, "agentServeAddr", d->serve_addr, sizeof(d->serve_addr));
	if (r == 0)
		r = get_u32(dc, o, "minProtoVersion", &d->min_proto);
	if (r == 0)
		r = get_u32(dc, o, "maxProtoVersion", &d->max_proto);
	return r;
}

static int fill_agent_ident(struct dec *dc, json_t *o, void *msg)
{
	return get_uuid(dc, o, "agentID", msg);
}

static int fill_expected_id(struct dec *dc, json_t *o, void *msg)
{
	return get_uuid(dc, o, "expectedID", msg);
}

static int fill_resource_msg(struct dec *dc, json_t *o, void *msg)
{
	struct ap_resource_msg *m = msg;
	json_t *data = NULL, *id = NULL;
	int r = get_object(dc, o, "data", &data);

	if (r == 0)
		r = get_uint(dc, o, "sequenceNumber", AP_SEQ_MAX, &m->seq);
	dc->prefix = "data.";
	if (r == 0)
		r = get_quantity(dc, data, "cpu", true, &m->has_cpu, &m->cpu_milli);
	if (r == 0)
		r = get_quantity(dc, data, "memory", false, &m->has_memory, &m->memory_bytes);
	if (r == 0)
		r = get_object(dc, data, "id", &id);
	dc->prefix = "data.id.";
	if (r == 0)
		r = get_uuid(dc, id, "agentID", &m->agent_id);
	return r;
}

static int fill_agent_ident_msg(struct dec *dc, json_t *o, void *msg)
{
	struct ap_agent_ident_msg *m = msg;
	json_t *data = NULL;
	int r = get_object(dc, o, "data", &data);

	if (r == 0)
		r = get_uint(dc, o, "sequenceNumber", AP_SEQ_MAX, &m->seq);
	dc->prefix = "data.";
	if (r == 0)
		r = get_uuid(dc, data, "agentID", &m->agent_id);
	return r;
}

static int fill_informant_desc(struct dec *dc, json_t *o, void *msg)
{
	struct ap_informant_desc *d = msg;
	json_t *method = NULL, *prom = NULL;
	uint64_t port = 0;
	int r = get_u32(dc, o, "protoVersion", &d->proto_version);

	if (r == 0)
		r = get_object(dc, o, "metricsMethod", &method);
	dc->prefix = "metricsMethod.";
	if (r == 0)
		r = get_object(dc, method, "prometheus", &prom);
	dc->prefix = "metricsMethod.prometheus.";
	if (r == 0)
		r = get_uint(dc, prom, "port", UINT16_MAX, &port);
	d->has_prometheus = prom != NULL;
	d->prometheus_port = (uint16_t)port;
	return r;
}

static int fill_downscale_result(struct dec *dc, json_t *o, void *msg)
{
	struct ap_downscale_result *d = msg;
	int r = get_bool(dc, o, "Ok", &d->ok);

	if (r == 0)
		r = get_string(dc, o, "Status", d->status, sizeof(d->status));
	return r;
}

static int fill_unregister_result(struct dec *dc, json_t *o, void *msg)
{
	return get_bool(dc, o, "wasActive", msg);
}

static int fill_more_resources(struct dec *dc, json_t *o, void *msg)
{
	struct ap_more_resources *m = msg;
	int r = get_bool(dc, o, "cpu", &m->cpu);

	if (r == 0)
		r = get_bool(dc, o, "memory", &m->memory);
	if (r == 0)
		r = get_uuid(dc, o, "expectedID", &m->expected);
	return r;
}

int ap_decode_empty(const char *body, size_t len, char *err, size_t errlen)
{
	return decode(body, len, err, errlen, NULL, NULL, 0);
}

int ap_decode_agent_desc(const char *body, size_t len, struct ap_agent_desc *out, char *err,
			 size_t errlen)
{
	return decode(body, len, err, errlen, fill_agent_desc, out, sizeof(*out));
}

int ap_decode_agent_ident(const char *body, size_t len, struct ap_uuid *out, char *err,
			  size_t errlen)
{
	return decode(body, len, err, errlen, fill_agent_ident, out, sizeof(*out));
}

int ap_decode_resource_msg(const char *body, size_t len, struct ap_resource_msg *out, char *err,
			   size_t errlen)
{
	return decode(body, len, err, errlen, fill_resource_msg, out, sizeof(*out));
}

int ap_decode_agent_ident_msg(const char *body, size_t len, struct ap_agent_ident_msg *out,
			      char *err, size_t errlen)
{
	return decode(body, len, err, errlen, fill_agent_ident_msg, out, sizeof(*out));
}

int ap_decode_informant_desc(const char *body, size_t len, struct ap_informant_desc *out,
			     char *err, size_t errlen)
{
	return decode(body, len, err, errlen, fill_informant_desc, out, sizeof(*out));
}

int ap_decode_downscale_result(const char *body, size_t len, struct ap_downscale_result *out,
			       char *err, size_t errlen)
{
	return decode(body, len, err, errlen, fill_downscale_result, out, sizeof(*out));
}

int ap_decode_unregister_result(const char *body, size_t len, bool *was_active, char *err,
				size_t errlen)
{
	return decode(body, len, err, errlen, fill_unregister_result, was_active,
		      sizeof(*was_active));
}

int ap_decode_expected_id(const char *body, size_t len, struct ap_uuid *out, char *err,
			  size_t errlen)
{
	return decode(body, len, err, errlen, fill_expected_id, out, sizeof(*out));
}

int ap_decode_more_resources(const char *body, size_t len, bool *cpu, bool *memory,
			     struct ap_uuid *expected, char *err, size_t errlen)
{
	struct ap_more_resources m;
	int r = decode(body, len, err, errlen, fill_more_resources, &m, sizeof(m));

	if (r == 0) {
		*cpu = m.cpu;
		*memory = m.memory;
		*expected = m.expected;
	}
	return r;
}
