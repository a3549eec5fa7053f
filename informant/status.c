/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c — the /status document, built with jansson; every 64-bit
 * number printed exactly.
 */
#include "status.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "loop.h"

/*
 * jansson's integers are int64, and a byte count read from a cgroup file
 * can be larger.  Such a number goes in as a marker string
 * "<tag><digits>" and the dump replaces the quoted marker with the bare
 * digits.  The tag holds 64 random bits chosen once per process, so no
 * string from outside (an agent's address is shown) can pass for one.
 */
#define TAG_LEN 26 /* "@vmi-u64-" + 16 hex digits + "-" */
static char u64_tag[TAG_LEN + 1];

static const char *tag(void)
{
	uint64_t r;

	if (!u64_tag[0]) {
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = loop_now_ns() * 0x9e3779b97f4a7c15u;
		snprintf(u64_tag, sizeof(u64_tag), "@vmi-u64-%016" PRIx64 "-", r);
	}
	return u64_tag;
}

static json_t *u64_json(uint64_t v)
{
	char marker[TAG_LEN + 24];

	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(marker, sizeof(marker), "%s%" PRIu64, tag(), v);
	return json_string(marker);
}

/* jansson's set_new functions tolerate a NULL value (they fail), so one
 * check of the final dump catches every allocation failure. */
static void set_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, u64_json(v));
}

/* The dump with every quoted marker replaced by its digits (in place: the
 * text only gets shorter). */
static char *dump(json_t *o)
{
	/* 15 significant digits: every double here (seconds from milliseconds,
	 * a growth rate) prints as people write it — 25.813, not jansson's
	 * default 17 digits, 25.812999999999999. */
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)),
	     *w, *r, *m;
	size_t tlen = strlen(tag());

	if (!text || !u64_tag[0])
		return text;
	for (w = r = text; (m = strstr(r, tag())) != NULL;) {
		size_t digits = strspn(m + tlen, "0123456789");

		/* m - 1 is the opening quote, m + tlen + digits the closing one */
		memmove(w, r, (size_t)(m - 1 - r));
		w += m - 1 - r;
		memmove(w, m + tlen, digits);
		w += digits;
		r = m + tlen + digits + 1;
	}
	memmove(w, r, strlen(r) + 1);
	return text;
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
	/* What the decisions use: the workload's memory, or memory.current. */
	set_u64(o, "usage_bytes", st.usage);
	json_object_set_new(o, "usage_is_workload", json_boolean(st.usage_is_workload));
	json_object_set_new(o, "memory_high_raised", json_boolean(st.raised));
	json_object_set_new(o, "limits_held", json_boolean(st.held));
	json_object_set_new(o, "file_cache_bytes",
			    st.file_cache_known ? u64_json(st.file_cache_bytes) : json_null());
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
	text = dump(o);
	json_decref(o);
	return text;
}
