/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msg_decode.c — strict decoding of the protocol messages (spec §2.2, §4).
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

/* Set up dc and parse the body; NULL (with err set) on failure. */
static json_t *begin(struct dec *dc, const char *body, size_t len, char *err, size_t errlen)
{
	dc->err = err;
	dc->errlen = errlen;
	dc->prefix = "";
	if (errlen)
		err[0] = '\0';
	return load_object(body, len, dc);
}

int ap_decode_empty(const char *body, size_t len, char *err, size_t errlen)
{
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen);

	json_decref(o);
	return o ? 0 : -EINVAL;
}

int ap_decode_agent_desc(const char *body, size_t len, struct ap_agent_desc *out, char *err,
			 size_t errlen)
{
	struct ap_agent_desc d = { 0 };
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen);
	int r = o ? 0 : -EINVAL;

	if (r == 0)
		r = get_uuid(&dc, o, "agentID", &d.agent_id);
	if (r == 0)
		r = get_string(&dc, o, "agentServeAddr", d.serve_addr, sizeof(d.serve_addr));
	if (r == 0)
		r = get_u32(&dc, o, "minProtoVersion", &d.min_proto);
	if (r == 0)
		r = get_u32(&dc, o, "maxProtoVersion", &d.max_proto);
	json_decref(o);
	if (r == 0)
		*out = d;
	return r;
}

int ap_decode_agent_ident(const char *body, size_t len, struct ap_uuid *out, char *err,
			  size_t errlen)
{
	struct ap_uuid id = { { 0 } };
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen);
	int r = o ? get_uuid(&dc, o, "agentID", &id) : -EINVAL;

	json_decref(o);
	if (r == 0)
		*out = id;
	return r;
}

int ap_decode_resource_msg(const char *body, size_t len, struct ap_resource_msg *out, char *err,
			   size_t errlen)
{
	struct ap_resource_msg m = { 0 };
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen), *data = NULL, *id = NULL;
	int r = o ? 0 : -EINVAL;

	if (r == 0)
		r = get_object(&dc, o, "data", &data);
	if (r == 0)
		r = get_uint(&dc, o, "sequenceNumber", UINT64_MAX, &m.seq);
	dc.prefix = "data.";
	if (r == 0)
		r = get_quantity(&dc, data, "cpu", true, &m.has_cpu, &m.cpu_milli);
	if (r == 0)
		r = get_quantity(&dc, data, "memory", false, &m.has_memory, &m.memory_bytes);
	if (r == 0)
		r = get_object(&dc, data, "id", &id);
	dc.prefix = "data.id.";
	if (r == 0)
		r = get_uuid(&dc, id, "agentID", &m.agent_id);
	json_decref(o);
	if (r == 0)
		*out = m;
	return r;
}

int ap_decode_agent_ident_msg(const char *body, size_t len, struct ap_agent_ident_msg *out,
			      char *err, size_t errlen)
{
	struct ap_agent_ident_msg m = { 0 };
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen), *data = NULL;
	int r = o ? 0 : -EINVAL;

	if (r == 0)
		r = get_object(&dc, o, "data", &data);
	if (r == 0)
		r = get_uint(&dc, o, "sequenceNumber", UINT64_MAX, &m.seq);
	dc.prefix = "data.";
	if (r == 0)
		r = get_uuid(&dc, data, "agentID", &m.agent_id);
	json_decref(o);
	if (r == 0)
		*out = m;
	return r;
}

int ap_decode_informant_desc(const char *body, size_t len, struct ap_informant_desc *out,
			     char *err, size_t errlen)
{
	struct ap_informant_desc d = { 0 };
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen), *method = NULL, *prom = NULL;
	uint64_t port = 0;
	int r = o ? 0 : -EINVAL;

	if (r == 0)
		r = get_u32(&dc, o, "protoVersion", &d.proto_version);
	if (r == 0)
		r = get_object(&dc, o, "metricsMethod", &method);
	dc.prefix = "metricsMethod.";
	if (r == 0)
		r = get_object(&dc, method, "prometheus", &prom);
	dc.prefix = "metricsMethod.prometheus.";
	if (r == 0)
		r = get_uint(&dc, prom, "port", UINT16_MAX, &port);
	json_decref(o);
	d.has_prometheus = prom != NULL;
	d.prometheus_port = (uint16_t)port;
	if (r == 0)
		*out = d;
	return r;
}

int ap_decode_downscale_result(const char *body, size_t len, struct ap_downscale_result *out,
			       char *err, size_t errlen)
{
	struct ap_downscale_result d = { 0 };
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen);
	int r = o ? 0 : -EINVAL;

	if (r == 0)
		r = get_bool(&dc, o, "Ok", &d.ok);
	if (r == 0)
		r = get_string(&dc, o, "Status", d.status, sizeof(d.status));
	json_decref(o);
	if (r == 0)
		*out = d;
	return r;
}

int ap_decode_unregister_result(const char *body, size_t len, bool *was_active, char *err,
				size_t errlen)
{
	struct dec dc;
	bool active = false;
	json_t *o = begin(&dc, body, len, err, errlen);
	int r = o ? get_bool(&dc, o, "wasActive", &active) : -EINVAL;

	json_decref(o);
	if (r == 0)
		*was_active = active;
	return r;
}

int ap_decode_expected_id(const char *body, size_t len, struct ap_uuid *out, char *err,
			  size_t errlen)
{
	struct ap_uuid id = { { 0 } };
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen);
	int r = o ? get_uuid(&dc, o, "expectedID", &id) : -EINVAL;

	json_decref(o);
	if (r == 0)
		*out = id;
	return r;
}

int ap_decode_more_resources(const char *body, size_t len, bool *cpu, bool *memory,
			     struct ap_uuid *expected, char *err, size_t errlen)
{
	struct ap_uuid id = { { 0 } };
	bool want_cpu = false, want_memory = false;
	struct dec dc;
	json_t *o = begin(&dc, body, len, err, errlen);
	int r = o ? 0 : -EINVAL;

	if (r == 0)
		r = get_bool(&dc, o, "cpu", &want_cpu);
	if (r == 0)
		r = get_bool(&dc, o, "memory", &want_memory);
	if (r == 0)
		r = get_uuid(&dc, o, "expectedID", &id);
	json_decref(o);
	if (r == 0) {
		*cpu = want_cpu;
		*memory = want_memory;
		*expected = id;
	}
	return r;
}
