/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c — request accounting and the Prometheus text rendering
 * (format 0.0.4) of struct metrics.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds (seconds) of the latency buckets; +Inf is implicit. */
static const double latency_bounds[METRICS_LATENCY_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};
static const unsigned status_codes[METRICS_STATUS_SLOTS - 1] = {
	101, 200, 301, 400, 401, 404, 405, 409, 413, 426, 500, 503,
};
static const char *const endpoint_names[EP__COUNT] = {
	[EP_REGISTER] = "register",       [EP_HEALTH_CHECK] = "health-check",
	[EP_UPSCALE] = "upscale",         [EP_DOWNSCALE] = "downscale",
	[EP_UNREGISTER] = "unregister",   [EP_METRICS] = "metrics",
	[EP_STATUS] = "status",           [EP_MONITOR] = "monitor",
	[EP_OTHER] = "other",
};

unsigned metrics_status_slot(unsigned http_status)
{
	for (unsigned i = 0; i < METRICS_STATUS_SLOTS - 1; i++)
		if (status_codes[i] == http_status)
			return i;
	return METRICS_STATUS_SLOTS - 1;
}

const char *metrics_endpoint_name(enum metrics_endpoint ep)
{
	return (unsigned)ep < EP__COUNT ? endpoint_names[ep] : "other";
}

void metrics_observe_request(struct metrics *m, enum metrics_endpoint ep, unsigned http_status,
			     double seconds)
{
	unsigned b = 0, slot;

	if ((unsigned)ep >= EP__COUNT)
		ep = EP_OTHER;
	if (seconds < 0)
		seconds = 0;
	slot = metrics_status_slot(http_status);
	m->requests_total[ep][slot]++;
	while (b < METRICS_LATENCY_BUCKETS && seconds > latency_bounds[b])
		b++;
	m->latency_bucket[ep][slot][b]++; /* cumulated when rendered */
	m->latency_sum_seconds[ep][slot] += seconds;
	m->latency_count[ep][slot]++;
}

/* ---- rendering -------------------------------------------------------------- */

struct buf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->failed = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

static void header(struct buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP vm_informant_%s %s\n# TYPE vm_informant_%s %s\n", name, help, name, type);
}

static void scalar_u(struct buf *b, const char *name, const char *type, const char *help,
		     uint64_t v)
{
	header(b, name, type, help);
	put(b, "vm_informant_%s %llu\n", name, (unsigned long long)v);
}

static void scalar_d(struct buf *b, const char *name, const char *type, const char *help,
		     double v)
{
	header(b, name, type, help);
	put(b, "vm_informant_%s %.17g\n", name, v);
}

/* The status label of a slot: the code, or "other". */
static void status_label(unsigned slot, char *out, size_t outlen)
{
	if (slot < METRICS_STATUS_SLOTS - 1)
		snprintf(out, outlen, "%u", status_codes[slot]);
	else
		snprintf(out, outlen, "other");
}

/* One histogram series: cumulative buckets, sum and count. */
static void render_histogram(struct buf *b, const struct metrics *m, unsigned e, unsigned k)
{
	const char *ep = endpoint_names[e];
	const char *name = "vm_informant_http_request_duration_seconds";
	char status[16], le[32];
	uint64_t cum = 0;

	status_label(k, status, sizeof(status));
	for (unsigned i = 0; i <= METRICS_LATENCY_BUCKETS; i++) {
		cum += m->latency_bucket[e][k][i];
		if (i < METRICS_LATENCY_BUCKETS)
			snprintf(le, sizeof(le), "%g", latency_bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		put(b, "%s_bucket{endpoint=\"%s\",status=\"%s\",le=\"%s\"} %llu\n", name, ep,
		    status, le, (unsigned long long)cum);
	}
	put(b, "%s_sum{endpoint=\"%s\",status=\"%s\"} %.17g\n", name, ep, status,
	    m->latency_sum_seconds[e][k]);
	put(b, "%s_count{endpoint=\"%s\",status=\"%s\"} %llu\n", name, ep, status,
	    (unsigned long long)m->latency_count[e][k]);
}

static void render_connections(struct buf *b, const struct metrics *m)
{
	static const char *const reasons[METRICS_DROP__COUNT] = {
		[METRICS_DROP_DEADLINE] = "deadline", [METRICS_DROP_EVICTED] = "evicted",
		[METRICS_DROP_REFUSED] = "refused",   [METRICS_DROP_GARBAGE] = "garbage",
	};

	scalar_u(b, "http_connections", "gauge", "HTTP connections open.", m->http_connections);
	header(b, "http_connections_dropped_total", "counter",
	       "HTTP connections closed without a complete request, by reason.");
	for (unsigned i = 0; i < METRICS_DROP__COUNT; i++)
		put(b, "vm_informant_http_connections_dropped_total{reason=\"%s\"} %llu\n",
		    reasons[i], (unsigned long long)m->http_connections_dropped_total[i]);
}

static void render_requests(struct buf *b, const struct metrics *m)
{
	render_connections(b, m);
	header(b, "http_requests_total", "counter", "HTTP requests by endpoint and status.");
	for (unsigned e = 0; e < EP__COUNT; e++)
		for (unsigned k = 0; k < METRICS_STATUS_SLOTS; k++) {
			char status[16];

			if (!m->requests_total[e][k])
				continue;
			status_label(k, status, sizeof(status));
			put(b, "vm_informant_http_requests_total"
			       "{endpoint=\"%s\",status=\"%s\"} %llu\n",
			    endpoint_names[e], status, (unsigned long long)m->requests_total[e][k]);
		}
	header(b, "http_request_duration_seconds", "histogram",
	       "Time from request start to response completion, by endpoint and status.");
	for (unsigned e = 0; e < EP__COUNT; e++)
		for (unsigned k = 0; k < METRICS_STATUS_SLOTS; k++)
			if (m->latency_count[e][k])
				render_histogram(b, m, e, k);
}

static void render_monitor(struct buf *b, const struct metrics *m)
{
	static const char *const dirs[2] = { "in", "out" };
	const struct { const char *name, *type, *help; uint64_t v; } scalars[] = {
		{ "monitor_session_up", "gauge",
		  "1 while a websocket monitor session is up (it is then the current agent).",
		  m->monitor_session_up },
		{ "monitor_sessions_total", "counter",
		  "Monitor sessions that completed the version handshake.",
		  m->monitor_sessions_total },
		{ "monitor_sessions_replaced_total", "counter",
		  "Monitor sessions closed because a newer one completed its handshake.",
		  m->monitor_sessions_replaced_total },
		{ "monitor_handshake_failures_total", "counter",
		  "Monitor connections refused in the version handshake or timed out in it.",
		  m->monitor_handshake_failures_total },
	};

	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
		scalar_u(b, scalars[i].name, scalars[i].type, scalars[i].help, scalars[i].v);
	header(b, "monitor_messages_total", "counter",
	       "Monitor protocol messages by direction and type (undecodable: could not be read).");
	for (int d = 0; d < 2; d++)
		for (int t = 0; t < METRICS_MON_TYPES; t++)
			if (m->monitor_messages_total[d][t])
				put(b, "vm_informant_monitor_messages_total"
				       "{direction=\"%s\",type=\"%s\"} %llu\n",
				    dirs[d], t == METRICS_MON_UNDECODABLE ? "undecodable"
					     : ap_mon_type_name((enum ap_mon_type)t),
				    (unsigned long long)m->monitor_messages_total[d][t]);
}

char *metrics_render(const struct metrics *m)
{
	struct buf b = { .cap = 8192 };

	b.s = malloc(b.cap);
	if (!b.s)
		return NULL;
	b.s[0] = '\0';
	scalar_u(&b, "agents_registered", "gauge", "Agents registered.", m->agents_registered);
	scalar_u(&b, "agent_current", "gauge", "1 if an agent is current.", m->agent_current);
	scalar_u(&b, "agent_drops_total", "counter", "Agents dropped after failed calls.",
		 m->agent_drops_total);
	scalar_u(&b, "memory_high_events_total", "counter", "memory.high events seen.",
		 m->memory_high_events_total);
	scalar_u(&b, "freezes_total", "counter", "Cgroup freezes.", m->freezes_total);
	scalar_d(&b, "frozen_seconds_total", "counter", "Time the cgroup spent frozen.",
		 m->frozen_seconds_total);
	scalar_d(&b, "last_freeze_milliseconds", "gauge", "Duration of the last freeze.",
		 m->last_freeze_ms);
	scalar_u(&b, "memory_high_raises_total", "counter", "Stepwise memory.high raises.",
		 m->memory_high_raises_total);
	scalar_u(&b, "memory_high_cache_events_total", "counter",
		 "memory.high events while usage + memory_high_buffer was below memory.high "
		 "(page cache, or an event from before the last upscale): no freeze, no ask.",
		 m->memory_high_cache_events_total);
	scalar_u(&b, "memory_stalls_total", "counter",
		 "Memory stalls seen through PSI that asked for memory.", m->psi_stalls_total);
	scalar_d(&b, "memory_pressure_some_seconds_total", "counter",
		 "The cgroup's memory.pressure \"some\" stall time.", m->psi_some_seconds_total);
	scalar_d(&b, "memory_pressure_full_seconds_total", "counter",
		 "The cgroup's memory.pressure \"full\" stall time.", m->psi_full_seconds_total);
	scalar_u(&b, "reclaims_total", "counter",
		 "memory.reclaim requests made for downscales.", m->reclaims_total);
	scalar_u(&b, "reclaimed_bytes_total", "counter",
		 "Bytes asked of memory.reclaim for downscales that the kernel reclaimed.",
		 m->reclaimed_bytes_total);
	scalar_u(&b, "upscale_requests_total", "counter",
		 "Upscale requests sent to the current agent (/try-upscale or UpscaleRequest).",
		 m->upscale_requests_total);
	scalar_u(&b, "upscale_requests_predicted_total", "counter",
		 "Upscale requests sent before any memory.high event.",
		 m->upscale_requests_predicted_total);
	scalar_u(&b, "upscale_requests_failed_total", "counter",
		 "Upscale requests that failed (/try-upscale error, or the session could not send).",
		 m->upscale_requests_failed_total);
	scalar_u(&b, "upscales_granted_total", "counter",
		 "Upscales applied (/upscale or UpscaleNotification).", m->upscales_granted_total);
	scalar_u(&b, "downscales_accepted_total", "counter", "/downscale requests accepted.",
		 m->downscales_accepted_total);
	scalar_u(&b, "downscales_rejected_total", "counter", "/downscale requests refused.",
		 m->downscales_rejected_total);
	scalar_u(&b, "downscales_failed_total", "counter",
		 "/downscale requests answered 500 (file cache or cgroup write failed).",
		 m->downscales_failed_total);
	scalar_u(&b, "vm_memory_bytes", "gauge",
		 "VM size the agent last announced (0 before any /upscale or /downscale).",
		 m->vm_memory_bytes);
	scalar_u(&b, "memory_high_bytes", "gauge", "Cgroup memory.high.", m->memory_high_bytes);
	scalar_u(&b, "memory_max_bytes", "gauge", "Cgroup memory.max.", m->memory_max_bytes);
	scalar_u(&b, "memory_current_bytes", "gauge", "Cgroup memory.current.",
		 m->memory_current_bytes);
	scalar_u(&b, "workload_bytes", "gauge",
		 "memory.current without reclaimable page cache (0 without memory.stat).",
		 m->workload_bytes);
	scalar_u(&b, "file_cache_bytes", "gauge", "Postgres file cache size.", m->file_cache_bytes);
	scalar_u(&b, "filecache_errors_total", "counter", "Failed file cache operations.",
		 m->filecache_errors_total);
	render_monitor(&b, m);
	render_requests(&b, m);
	if (b.failed) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
