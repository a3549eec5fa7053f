/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h — counters and gauges the daemon exports on GET /metrics
 * (Prometheus text 0.0.4, prefix vm_informant_).  Plain fields written by
 * the owner of each fact on the loop thread; metrics.c only renders them.
 */
#ifndef VMI_METRICS_H
#define VMI_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"
#include "procstat.h"

enum metrics_endpoint {
	EP_REGISTER, EP_HEALTH_CHECK, EP_UPSCALE, EP_DOWNSCALE, EP_UNREGISTER,
	EP_METRICS, EP_STATUS, EP_MONITOR, EP_OTHER, EP__COUNT
};

/* Why the server closed a connection without a complete request. */
enum metrics_conn_drop {
	METRICS_DROP_DEADLINE, /* head, body or keep-alive deadline passed */
	METRICS_DROP_EVICTED,  /* made room for a newer connection */
	METRICS_DROP_REFUSED,  /* no room: every connection busy (or no memory) */
	METRICS_DROP_GARBAGE,  /* not an HTTP request line: answered 400 */
	METRICS_DROP__COUNT
};

#define METRICS_LATENCY_BUCKETS 12 /* upper bounds in metrics.c */
#define METRICS_STATUS_SLOTS 13 /* 101 200 301 400 401 404 405 409 413 426 500 503 other */

/* Monitor protocol messages by direction and type; the extra type counts
 * incoming messages that could not be decoded. */
enum { METRICS_IN, METRICS_OUT };
#define METRICS_MON_UNDECODABLE AP_MON__COUNT
#define METRICS_MON_TYPES (AP_MON__COUNT + 1)

struct metrics {
	const char *version;              /* build_info's label (VMI_VERSION) */
	/* agents */
	uint64_t agents_registered;       /* gauge */
	bool agent_current;               /* gauge */
	uint64_t agent_drops_total;
	/* memory.high reaction */
	uint64_t memory_high_events_total;
	uint64_t freezes_total;
	bool frozen;                      /* gauge: set by mem_react.c */
	double frozen_seconds_total;
	double last_freeze_seconds;
	uint64_t memory_high_raises_total;
	uint64_t memory_high_cache_events_total; /* events that were not pressure */
	uint64_t pressure_level;                 /* gauge: enum mc_level, by mem_predict.c */
	uint64_t psi_stalls_total;               /* stalls that asked for memory */
	double psi_some_seconds_total, psi_full_seconds_total; /* memory.pressure */
	uint64_t reclaims_total;                 /* memory.reclaim writes for downscales */
	uint64_t reclaimed_bytes_total;
	/* the websocket monitor protocol */
	bool monitor_session_up;                   /* gauge */
	uint64_t monitor_sessions_total;           /* handshakes completed */
	uint64_t monitor_sessions_replaced_total;  /* closed for a newer session */
	uint64_t monitor_handshake_failures_total;
	uint64_t monitor_messages_total[2][METRICS_MON_TYPES];
	/* upscale asks (informant -> agent) */
	uint64_t upscale_requests_total;           /* /try-upscale or UpscaleRequest sent */
	uint64_t upscale_requests_predicted_total; /* of which predictive */
	uint64_t upscale_requests_failed_total;
	uint64_t upscales_granted_total;           /* /upscale applied */
	uint64_t downscales_accepted_total;
	uint64_t downscales_rejected_total;
	uint64_t downscales_failed_total;          /* answered 500 */
	/* limits and usage, bytes (gauges) */
	uint64_t vm_memory_bytes;
	uint64_t memory_high_bytes;
	uint64_t memory_max_bytes;
	uint64_t memory_current_bytes;
	uint64_t workload_bytes;                 /* memory.current − (file − shmem); 0 = unknown */
	uint64_t file_cache_bytes;
	uint64_t filecache_errors_total;
	/* HTTP server */
	uint64_t http_connections; /* gauge */
	uint64_t http_connections_dropped_total[METRICS_DROP__COUNT];
	uint64_t requests_total[EP__COUNT][METRICS_STATUS_SLOTS];
	/* by endpoint and status slot; buckets: last = +Inf */
	uint64_t latency_bucket[EP__COUNT][METRICS_STATUS_SLOTS][METRICS_LATENCY_BUCKETS + 1];
	double latency_sum_seconds[EP__COUNT][METRICS_STATUS_SLOTS];
	uint64_t latency_count[EP__COUNT][METRICS_STATUS_SLOTS];
};

/* Slot of an HTTP status in requests_total, and its label. */
unsigned metrics_status_slot(unsigned http_status);
const char *metrics_endpoint_name(enum metrics_endpoint ep);

void metrics_observe_request(struct metrics *m, enum metrics_endpoint ep, unsigned http_status,
			     double seconds);
/* Render Prometheus text, with the process_* families when proc is not
 * NULL; returns a malloc'd string or NULL. */
char *metrics_render(const struct metrics *m, const struct procstat *proc);

#endif
