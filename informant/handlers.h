/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handlers.h — the informant's endpoints (docs/informant-protocol.md
 * §5.1–§5.5) plus GET /metrics
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

/* The informant protocol's endpoints as X(path, method, endpoint, handler):
 * one list for the daemon's route table and the HTTP fuzz harness, which
 * plugs its own handlers of those names into the same paths and methods. */
#define HANDLERS_PROTOCOL_ROUTES(X)                                  \
	X("/register", "POST", EP_REGISTER, on_register)             \
	X("/health-check", "PUT", EP_HEALTH_CHECK, on_health_check)  \
	X("/upscale", "PUT", EP_UPSCALE, on_upscale)                 \
	X("/downscale", "PUT", EP_DOWNSCALE, on_downscale)           \
	X("/unregister", "DELETE", EP_UNREGISTER, on_unregister)
#define HANDLERS_ROUTE(path, method, ep, fn) { path, method, ep, fn },

/* The routes; /metrics and /status only when with_metrics. */
size_t handlers_routes(bool with_metrics, const struct server_route **out);

#endif
