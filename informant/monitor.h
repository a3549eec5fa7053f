/* SPDX-License-Identifier: Apache-2.0 */
/*
 * monitor.h — the websocket monitor protocol v1.0 on GET /monitor: what
 * autoscaler-agents since v0.18.0 speak (docs/monitor-protocol.md).
 *
 * Sessions: a connection first sends its version range and gets our
 * version (or an error, then close 1002).  A session that completes the
 * handshake becomes the current session; the one before it is closed with
 * 1000 "replaced by a newer session".  A connection that has not completed
 * its handshake after MONITOR_HANDSHAKE_MS is closed with 1008.
 *
 * Messages: HealthCheck is answered at once; UpscaleNotification and
 * DownscaleRequest go through ops->scale (the same path as PUT /upscale
 * and /downscale) and are answered with UpscaleConfirmation /
 * DownscaleResult, or InternalError, under the request's id.  A message we
 * cannot decode gets InvalidMessage (its id when one can be read, else 0)
 * and the session goes on — unlike vm-monitor, which ends it.
 *
 * The rest of the daemon comes in through struct monitor_ops, so this file
 * knows neither the memory policy nor the agent set (monitor_wire.c does).
 */
#ifndef VMI_MONITOR_H
#define VMI_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"
#include "loop.h"
#include "metrics.h"

#define MONITOR_HANDSHAKE_MS 5000            /* the agent's own connect timeout is 4 s */
#define MONITOR_MAX_IN_FLIGHT 8              /* scaling requests per session */
#define MONITOR_MAX_MEMORY_BYTES (64ull << 40) /* as for /upscale (D12) */

struct monitor;
struct monitor_session;
struct monitor_req; /* one UpscaleNotification or DownscaleRequest in flight */

/* What a scaling request came to. */
struct monitor_result {
	bool failed;              /* answered with InternalError{text} */
	bool ok;                  /* DownscaleResult.Ok */
	char text[AP_STATUS_MAX]; /* DownscaleResult.Status, or the error */
};

struct monitor_ops {
	/* Carry out an UpscaleNotification (upscale) or a DownscaleRequest for
	 * a VM of vm_bytes; monitor_req_done(req, …) must follow exactly once,
	 * possibly before this returns. */
	void (*scale)(void *arg, bool upscale, uint64_t vm_bytes, struct monitor_req *req);
	/* ms completed its handshake and is the current session. */
	void (*session_up)(void *arg, struct monitor_session *ms);
	/* ms, which had been up, is replaced or gone. */
	void (*session_down)(void *arg, struct monitor_session *ms);
	void *arg;
};

/* max_msg: the largest message accepted; more closes with 1009. */
int monitor_new(struct loop *loop, struct metrics *m, uint64_t max_msg,
		const struct monitor_ops *ops, struct monitor **out);
/* Closes every session (1001, one send attempt) at once. */
void monitor_free(struct monitor *mon);
/* Shutdown begins: close the sessions (1001) and take no new ones. */
void monitor_shutdown(struct monitor *mon);

/* A connection upgraded on GET /monitor: fd and the bytes read past the
 * request; release(release_arg) gives fd back, exactly once (at once if
 * the session cannot even start). */
void monitor_accept(struct monitor *mon, int fd, const void *extra, size_t extra_len,
		    void (*release)(void *), void *release_arg);

/* The end of a request given to ops->scale; req is freed. */
void monitor_req_done(struct monitor_req *req, const struct monitor_result *res);

/* Send UpscaleRequest (a new odd id) on a session that is up. */
int monitor_session_request_upscale(struct monitor_session *ms);
const char *monitor_session_peer(const struct monitor_session *ms);

#endif
