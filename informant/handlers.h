/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handlers.h — the informant's endpoints (spec §5.1–§5.5) plus GET /metrics
 * and GET /status, as a route table for server.h.
 */
#ifndef VMI_HANDLERS_H
#define VMI_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agents.h"
#include "config.h"
#include "log.h"
#include "memory.h"
#include "metrics.h"
#include "server.h"

/* Largest memory size an /upscale or /downscale may name (D12). */
#define HANDLERS_MAX_MEMORY_BYTES (64ull << 40) /* 64 TiB */

/* The server's ctx.  agents and memory become NULL when the daemon shuts
 * down; handlers then answer 503. */
struct handlers_ctx {
	struct agents *agents;
	struct memory *memory;
	struct metrics *metrics;
	const struct config *cfg;
	uint64_t started_ms;
	struct log_limit bad_request_log; /* "bad request body" lines */
};

/* The routes; /metrics and /status only when with_metrics. */
size_t handlers_routes(bool with_metrics, const struct server_route **out);

#endif
