/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msg_encode.c — messages to the exact bytes the reference sends (docs/informant-protocol.md §4):
 * members in wire order, compact, Go string escaping.
 */
#include <stdint.h>

#include "agent_proto.h"
#include "internal.h"

static json_t *uuid_json(const struct ap_uuid *id)
{
	char s[AP_UUID_STRLEN + 1];

	ap_uuid_format(id, s);
	return json_string(s);
}

/* jansson integers are signed 64-bit; larger values cannot be encoded. */
static json_t *u64_json(uint64_t v)
{
	return v > INT64_MAX ? NULL : json_integer((json_int_t)v);
}

/* Append key: value to obj and return obj.  Takes value; on any failure
 * (including obj or value being NULL) frees both and returns NULL, so calls
 * can be chained without checking each step. */
static json_t *member(json_t *obj, const char *key, json_t *value)
{
	if (!obj || !value || json_object_set_new(obj, key, value) < 0) {
		json_decref(obj);
		json_decref(value);
		return NULL;
	}
	return obj;
}

/* {"agentID":…}, also embedded as "id" in ResourceMessage. */
static json_t *agent_ident_json(const struct ap_uuid *id)
{
	return member(json_object(), "agentID", uuid_json(id));
}

/* AgentMessage<T>: {"data":T,"sequenceNumber":N}; takes data. */
static json_t *agent_message_json(json_t *data, uint64_t seq)
{
	return member(member(json_object(), "data", data), "sequenceNumber", u64_json(seq));
}

char *ap_encode_empty(void)
{
	return ap_json_finish(json_object());
}

char *ap_encode_agent_desc(const struct ap_agent_desc *d)
{
	json_t *o = member(json_object(), "agentID", uuid_json(&d->agent_id));

	o = member(o, "agentServeAddr", json_string(d->serve_addr));
	o = member(o, "minProtoVersion", json_integer(d->min_proto));
	o = member(o, "maxProtoVersion", json_integer(d->max_proto));
	return ap_json_finish(o);
}

char *ap_encode_agent_ident(const struct ap_uuid *id)
{
	return ap_json_finish(agent_ident_json(id));
}

char *ap_encode_agent_ident_msg(const struct ap_agent_ident_msg *m)
{
	return ap_json_finish(agent_message_json(agent_ident_json(&m->agent_id), m->seq));
}

/* A quantity string, or null for an absent one (a nil pointer in Go). */
static json_t *quantity_json(bool present, const char *text)
{
	return present ? json_string(text) : json_null();
}

char *ap_encode_resource_msg(const struct ap_resource_msg *m)
{
	char cpu[32], mem[32];

	ap_quantity_format_milli(m->cpu_milli, cpu, sizeof(cpu));
	ap_quantity_format_bytes(m->memory_bytes, mem, sizeof(mem));
	json_t *data = member(json_object(), "cpu", quantity_json(m->has_cpu, cpu));
	data = member(data, "memory", quantity_json(m->has_memory, mem));
	data = member(data, "id", agent_ident_json(&m->agent_id));
	return ap_json_finish(agent_message_json(data, m->seq));
}

char *ap_encode_informant_desc(const struct ap_informant_desc *d)
{
	json_t *method = json_object();

	if (d->has_prometheus) {
		json_t *prom = member(json_object(), "port", json_integer(d->prometheus_port));
		method = member(method, "prometheus", prom);
	}
	json_t *o = member(json_object(), "protoVersion", json_integer(d->proto_version));
	return ap_json_finish(member(o, "metricsMethod", method));
}

char *ap_encode_downscale_result(const struct ap_downscale_result *r)
{
	json_t *o = member(json_object(), "Ok", json_boolean(r->ok));

	return ap_json_finish(member(o, "Status", json_string(r->status)));
}

char *ap_encode_unregister_result(bool was_active)
{
	return ap_json_finish(member(json_object(), "wasActive", json_boolean(was_active)));
}

char *ap_encode_expected_id(const struct ap_uuid *id)
{
	return ap_json_finish(member(json_object(), "expectedID", uuid_json(id)));
}

char *ap_encode_more_resources(bool cpu, bool memory, const struct ap_uuid *expected)
{
	json_t *o = member(json_object(), "cpu", json_boolean(cpu));

	o = member(o, "memory", json_boolean(memory));
	return ap_json_finish(member(o, "expectedID", uuid_json(expected)));
}
