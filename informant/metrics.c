/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c — request accounting and the Prometheus text rendering
 * (format 0.0.4) of struct metrics, plus the standard process_* families.
 *
 * Names follow Prometheus's conventions so that `promtool check metrics`
 * has nothing to say (tests/integration/test_metrics.py runs it): base
 * units (seconds, bytes), _total on counters, a HELP and TYPE per family.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stddef.h>
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
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample without labels: integers exactly, the rest with the fewest
 * digits that read back as the same double (0.0275, not 0.027501999999999999). */
static void sample(struct buf *b, const char *name, bool integer, uint64_t u, double d)
{
	char num[40];

	if (integer) {
		put(b, "%s %llu\n", name, (unsigned long long)u);
		return;
	}
	ap_format_float_g(d, num, sizeof(num));
	put(b, "%s %s\n", name, num);
}

enum scalar_kind { SK_U64, SK_BOOL, SK_DBL };

/* A metric without labels: a field of struct metrics. */
struct scalar {
	const char *name; /* after the vm_informant_ prefix */
	const char *type;
	enum scalar_kind kind;
	size_t off;
	const char *help;
};

#define U64(n, t, f, h) { n, t, SK_U64, offsetof(struct metrics, f), h }
#define BOOL(n, f, h) { n, "gauge", SK_BOOL, offsetof(struct metrics, f), h }
#define DBL(n, t, f, h) { n, t, SK_DBL, offsetof(struct metrics, f), h }

static const struct scalar scalars[] = {
	U64("agents_registered", "gauge", agents_registered, "Agents registered."),
	BOOL("agent_current", agent_current, "1 if an agent is current."),
	U64("agent_drops_total", "counter", agent_drops_total, "Agents dropped after failed calls."),
	U64("memory_high_events_total", "counter", memory_high_events_total,
	    "memory.high events seen."),
	U64("freezes_total", "counter", freezes_total, "Cgroup freezes."),
	BOOL("frozen", frozen, "1 while the cgroup is frozen."),
	DBL("frozen_seconds_total", "counter", frozen_seconds_total,
	    "Time the cgroup spent frozen."),
	DBL("last_freeze_seconds", "gauge", last_freeze_seconds, "Duration of the last freeze."),
	U64("memory_high_raises_total", "counter", memory_high_raises_total,
	    "Stepwise memory.high raises."),
	U64("memory_high_cache_events_total", "counter", memory_high_cache_events_total,
	    "memory.high events while usage + memory_high_buffer was below memory.high "
	    "(page cache, or an event from before the last upscale): no freeze, no ask."),
	U64("pressure_level", "gauge", pressure_level,
	    "Memory pressure of the workload against memory.high: 0 normal, 1 warning "
	    "(80 %), 2 critical (90 %)."),
	U64("memory_stalls_total", "counter", psi_stalls_total,
	    "Memory stalls seen through PSI that asked for memory."),
	DBL("memory_pressure_some_seconds_total", "counter", psi_some_seconds_total,
	    "The cgroup's memory.pressure \"some\" stall time."),
	DBL("memory_pressure_full_seconds_total", "counter", psi_full_seconds_total,
	    "The cgroup's memory.pressure \"full\" stall time."),
	U64("reclaims_total", "counter", reclaims_total,
	    "memory.reclaim requests made for downscales."),
	U64("reclaimed_bytes_total", "counter", reclaimed_bytes_total,
	    "Bytes asked of memory.reclaim for downscales that the kernel reclaimed."),
	U64("upscale_requests_total", "counter", upscale_requests_total,
	    "Upscale requests sent to the current agent (/try-upscale or UpscaleRequest)."),
	U64("upscale_requests_predicted_total", "counter", upscale_requests_predicted_total,
	    "Upscale requests sent before any memory.high event."),
	U64("upscale_requests_failed_total", "counter", upscale_requests_failed_total,
	    "Upscale requests that failed (/try-upscale error, or the session could not send)."),
	U64("upscales_granted_total", "counter", upscales_granted_total,
	    "Upscales applied (/upscale or UpscaleNotification)."),
	U64("downscales_accepted_total", "counter", downscales_accepted_total,
	    "Downscale requests accepted."),
	U64("downscales_rejected_total", "counter", downscales_rejected_total,
	    "Downscale requests refused (Ok: false)."),
	U64("downscales_failed_total", "counter", downscales_failed_total,
	    "Downscale requests that failed (500 or InternalError: file cache or cgroup write)."),
	U64("vm_memory_bytes", "gauge", vm_memory_bytes,
	    "VM size the agent last announced (0 before any upscale or downscale)."),
	U64("memory_high_bytes", "gauge", memory_high_bytes, "Cgroup memory.high."),
	U64("memory_max_bytes", "gauge", memory_max_bytes, "Cgroup memory.max."),
	U64("memory_current_bytes", "gauge", memory_current_bytes, "Cgroup memory.current."),
	U64("workload_bytes", "gauge", workload_bytes,
	    "memory.current without reclaimable page cache (0 without memory.stat)."),
	U64("file_cache_bytes", "gauge", file_cache_bytes, "Postgres file cache size."),
	U64("filecache_errors_total", "counter", filecache_errors_total,
	    "Failed file cache operations."),
	BOOL("monitor_session_up", monitor_session_up,
	     "1 while a websocket monitor session is up (it is then the current agent)."),
	U64("monitor_sessions_total", "counter", monitor_sessions_total,
	    "Monitor sessions that completed the version handshake."),
	U64("monitor_sessions_replaced_total", "counter", monitor_sessions_replaced_total,
	    "Monitor sessions closed because a newer one completed its handshake."),
	U64("monitor_handshake_failures_total", "counter", monitor_handshake_failures_total,
	    "Monitor connections refused in the version handshake or timed out in it."),
	U64("http_connections", "gauge", http_connections, "HTTP connections open."),
};

static void render_scalar(struct buf *b, const struct metrics *m, const struct scalar *sc)
{
	const char *field = (const char *)m + sc->off;
	char name[96];

	snprintf(name, sizeof(name), "vm_informant_%s", sc->name);
	header(b, name, sc->type, sc->help);
	switch (sc->kind) {
	case SK_U64:
		sample(b, name, true, *(const uint64_t *)field, 0);
		break;
	case SK_BOOL:
		sample(b, name, true, *(const bool *)field, 0);
		break;
	case SK_DBL:
		sample(b, name, false, 0, *(const double *)field);
		break;
	}
}

/* The families every Prometheus client library exports about its process. */
static void render_process(struct buf *b, const struct procstat *p)
{
	const struct { const char *name, *type, *help; bool integer; uint64_t u; double d; } f[] = {
		{ "process_cpu_seconds_total", "counter", "Total user and system CPU time spent "
		  "in seconds.", false, 0, p->cpu_seconds },
		{ "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", true,
		  p->resident_bytes, 0 },
		{ "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", true,
		  p->virtual_bytes, 0 },
		{ "process_open_fds", "gauge", "Number of open file descriptors.", true,
		  p->open_fds, 0 },
		{ "process_max_fds", "gauge", "Maximum number of open file descriptors.", true,
		  p->max_fds, 0 },
		{ "process_start_time_seconds", "gauge", "Start time of the process since unix "
		  "epoch in seconds.", false, 0, p->start_time_seconds },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		header(b, f[i].name, f[i].type, f[i].help);
		sample(b, f[i].name, f[i].integer, f[i].u, f[i].d);
	}
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
	ap_format_float_g(m->latency_sum_seconds[e][k], le, sizeof(le));
	put(b, "%s_sum{endpoint=\"%s\",status=\"%s\"} %s\n", name, ep, status, le);
	put(b, "%s_count{endpoint=\"%s\",status=\"%s\"} %llu\n", name, ep, status,
	    (unsigned long long)m->latency_count[e][k]);
}

static void render_connections(struct buf *b, const struct metrics *m)
{
	static const char *const reasons[METRICS_DROP__COUNT] = {
		[METRICS_DROP_DEADLINE] = "deadline", [METRICS_DROP_EVICTED] = "evicted",
		[METRICS_DROP_REFUSED] = "refused",   [METRICS_DROP_GARBAGE] = "garbage",
	};

	header(b, "vm_informant_http_connections_dropped_total", "counter",
	       "HTTP connections closed without a complete request, by reason.");
	for (unsigned i = 0; i < METRICS_DROP__COUNT; i++)
		put(b, "vm_informant_http_connections_dropped_total{reason=\"%s\"} %llu\n",
		    reasons[i], (unsigned long long)m->http_connections_dropped_total[i]);
}

static void render_requests(struct buf *b, const struct metrics *m)
{
	render_connections(b, m);
	header(b, "vm_informant_http_requests_total", "counter",
	       "HTTP requests by endpoint and status.");
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
	header(b, "vm_informant_http_request_duration_seconds", "histogram",
	       "Time from request start to response completion, by endpoint and status.");
	for (unsigned e = 0; e < EP__COUNT; e++)
		for (unsigned k = 0; k < METRICS_STATUS_SLOTS; k++)
			if (m->latency_count[e][k])
				render_histogram(b, m, e, k);
}

static void render_monitor(struct buf *b, const struct metrics *m)
{
	static const char *const dirs[2] = { "in", "out" };

	header(b, "vm_informant_monitor_messages_total", "counter",
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

char *metrics_render(const struct metrics *m, const struct procstat *proc)
{
	struct buf b = { .cap = 16384 };

	b.s = malloc(b.cap);
	if (!b.s)
		return NULL;
	b.s[0] = '\0';
	header(&b, "vm_informant_build_info", "gauge",
	       "Always 1; the version of the running vm-informant as a label.");
	put(&b, "vm_informant_build_info{version=\"%s\"} 1\n",
	    m->version ? m->version : "unknown");
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
		render_scalar(&b, m, &scalars[i]);
	render_monitor(&b, m);
	render_requests(&b, m);
	if (proc)
		render_process(&b, proc);
	if (b.failed) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
