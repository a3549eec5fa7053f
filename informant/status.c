/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c — the /status document, built with jansson.
 */
#include "status.h"

#include <jansson.h>

#include "loop.h"

/* jansson's set_new functions tolerate a NULL value (they fail), so one
 * check of the final dump catches every allocation failure. */
static void set_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static json_t *agent_json(const struct agents_info *info, uint64_t now)
{
	json_t *o = json_object();

	json_object_set_new(o, "protocol", json_string(info->protocol));
	json_object_set_new(o, "id", info->id[0] ? json_string(info->id) : json_null());
	json_object_set_new(o, "addr", json_string(info->addr));
	json_object_set_new(o, "state", json_string(info->state));
	json_object_set_new(o, "protocol_version", json_integer(info->proto));
	if (info->registered_ms)
		json_object_set_new(o, "registered_seconds_ago",
				    json_real((double)(now - info->registered_ms) / 1000.0));
	if (info->current_since_ms)
		json_object_set_new(o, "current_for_seconds",
				    json_real((double)(now - info->current_since_ms) / 1000.0));
	json_object_set_new(o, "consecutive_failures", json_integer(info->failures));
	set_u64(o, "last_sequence_number", info->last_seq);
	return o;
}

static json_t *agents_json(const struct agents *agents, uint64_t now)
{
	struct agents_info info;
	json_t *list = json_array();

	for (size_t i = 0; agents_get(agents, i, &info); i++)
		json_array_append_new(list, agent_json(&info, now));
	return list;
}

static json_t *config_json(const struct config *cfg)
{
	json_t *o = json_object();

	set_u64(o, "max_body_bytes", cfg->server.max_body_bytes);
	json_object_set_new(o, "auth", json_boolean(cfg->server.auth_token_file[0] != '\0'));
	set_u64(o, "id_check_interval_ms", cfg->agent.id_check_interval_ms);
	set_u64(o, "resume_timeout_ms", cfg->agent.resume_timeout_ms);
	set_u64(o, "suspend_timeout_ms", cfg->agent.suspend_timeout_ms);
	set_u64(o, "upscale_timeout_ms", cfg->agent.upscale_timeout_ms);
	set_u64(o, "oom_buffer_bytes", cfg->cgroup.oom_buffer);
	set_u64(o, "memory_high_buffer_bytes", cfg->cgroup.memory_high_buffer);
	set_u64(o, "sys_buffer_bytes", cfg->system.sys_buffer);
	set_u64(o, "max_upscale_wait_ms", cfg->cgroup.max_upscale_wait_ms);
	return o;
}

static json_t *memory_json(const struct memory *m)
{
	struct memory_status st = { 0 };
	json_t *o = json_object();

	memory_get_status(m, &st);
	json_object_set_new(o, "cgroup_managed", json_boolean(st.cgroup_managed));
	json_object_set_new(o, "filecache_managed", json_boolean(st.filecache_managed));
	set_u64(o, "vm_bytes", st.vm_bytes);
	set_u64(o, "mem_total_bytes", st.mem_total_bytes);
	set_u64(o, "memory_current_bytes", st.memory_current);
	/* What the files hold, or null when that is not known (a write
	 * failed, or the cgroup was made anew and not rewritten yet). */
	json_object_set_new(o, "memory_high_bytes",
			    st.limits_known ? json_integer((json_int_t)st.memory_high) : json_null());
	json_object_set_new(o, "memory_max_bytes",
			    st.limits_known ? json_integer((json_int_t)st.memory_max) : json_null());
	json_object_set_new(o, "memory_high_raised", json_boolean(st.raised));
	json_object_set_new(o, "limits_held", json_boolean(st.held));
	json_object_set_new(o, "file_cache_bytes",
			    st.file_cache_known ? json_integer((json_int_t)st.file_cache_bytes)
						: json_null());
	json_object_set_new(o, "frozen", json_boolean(st.frozen));
	json_object_set_new(o, "waiting_on_upscale", json_boolean(st.ask_pending));
	json_object_set_new(o, "growth_bytes_per_second", json_real(st.growth_bytes_per_sec));
	json_object_set_new(o, "pressure", json_string(st.pressure ? st.pressure : "unknown"));
	return o;
}

char *status_render(const struct config *cfg, const struct agents *agents,
		    const struct memory *memory, uint64_t started_ms)
{
	uint64_t now = loop_now_ms();
	struct agents_info cur;
	json_t *o = json_object();
	char *text;

	json_object_set_new(o, "uptime_seconds", json_real((double)(now - started_ms) / 1000.0));
	/* The informant protocol's version; the monitor protocol's (v1.0) is
	 * the current agent's protocol_version when a session is current. */
	json_object_set_new(o, "protocol_version", json_string("v2.0"));
	json_object_set_new(o, "current_agent",
			    agents_current(agents, &cur) ? agent_json(&cur, now) : json_null());
	json_object_set_new(o, "agents", agents_json(agents, now));
	json_object_set_new(o, "upscale_wanted", json_boolean(agents_wish_pending(agents)));
	json_object_set_new(o, "config", config_json(cfg));
	if (memory)
		json_object_set_new(o, "memory", memory_json(memory));
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}
