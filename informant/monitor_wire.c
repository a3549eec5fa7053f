/* SPDX-License-Identifier: Apache-2.0 */
/*
 * monitor_wire.c — the monitor protocol plugged into the daemon: its
 * scaling requests go to the memory policy (the same calls as PUT /upscale
 * and /downscale), its sessions join the agent set.
 *
 * The one place that maps the memory policy's HTTP-shaped completion onto
 * the monitor's answers, so a change of memory.h's interface is re-pointed
 * here only:
 *   upscale   200            -> UpscaleConfirmation (the memory policy itself
 *                               counts it and tells the agent set)
 *   downscale 200 + body      -> DownscaleResult{Ok, Status} from the body
 *   any other status, or a 200 body that is not a DownscaleResult
 *                             -> InternalError{the body}
 */
#include "monitor_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct scale_call {
	struct monitor_wire *w;
	struct monitor_req *req;
	bool upscale;
	bool returned; /* memory_*() has returned */
	bool answered; /* its done callback ran */
};

static void answer(struct scale_call *sc, unsigned status, const char *body)
{
	struct monitor_result res = { .failed = status != 200 };
	char err[128];

	if (status == 200 && !sc->upscale) {
		struct ap_downscale_result d;

		if (ap_decode_downscale_result(body, strlen(body), &d, err, sizeof(err)) == 0) {
			res.ok = d.ok;
			snprintf(res.text, sizeof(res.text), "%s", d.status);
		} else {
			log_event(LOG_ERROR, "unreadable downscale result", LF_STR("detail", err),
				  LF_END);
			res.failed = true;
			snprintf(res.text, sizeof(res.text), "Internal error");
		}
	}
	if (status != 200)
		snprintf(res.text, sizeof(res.text), "%s", body && body[0] ? body : "Internal error");
	monitor_req_done(sc->req, &res);
}

static void memory_done(void *arg, unsigned status, const char *body)
{
	struct scale_call *sc = arg;

	answer(sc, status, body);
	sc->answered = true;
	if (sc->returned)
		free(sc);
}

static void fail_now(struct monitor_req *req, const char *why)
{
	struct monitor_result res = { .failed = true };

	snprintf(res.text, sizeof(res.text), "%s", why);
	monitor_req_done(req, &res);
}

static void scale(void *arg, bool upscale, uint64_t vm_bytes, struct monitor_req *req)
{
	struct monitor_wire *w = arg;
	struct scale_call *sc;
	int r;

	if (!w->memory) {
		fail_now(req, "Service shutting down");
		return;
	}
	sc = calloc(1, sizeof(*sc));
	if (!sc) {
		fail_now(req, "Internal error");
		return;
	}
	sc->w = w;
	sc->req = req;
	sc->upscale = upscale;
	r = upscale ? memory_upscale(w->memory, vm_bytes, memory_done, sc)
		    : memory_downscale(w->memory, vm_bytes, memory_done, sc);
	sc->returned = true;
	if (sc->answered) {
		free(sc);
		return;
	}
	/* A refusal to even start means done will not run. */
	if (r < 0) {
		log_event(LOG_ERROR, "memory request failed", LF_STR("protocol", "monitor"),
			  LF_BOOL("upscale", upscale), LF_ERR(r), LF_END);
		fail_now(req, "Internal error");
		free(sc);
	}
}

static int request_upscale(void *session)
{
	return monitor_session_request_upscale(session);
}

static void session_up(void *arg, struct monitor_session *ms)
{
	struct monitor_wire *w = arg;
	struct agents_monitor m = { .request_upscale = request_upscale, .session = ms,
				    .version = AP_MONITOR_PROTO_MAX };

	snprintf(m.peer, sizeof(m.peer), "%s", monitor_session_peer(ms));
	if (w->agents)
		agents_monitor_up(w->agents, &m);
}

static void session_down(void *arg, struct monitor_session *ms)
{
	struct monitor_wire *w = arg;

	if (w->agents)
		agents_monitor_down(w->agents, ms);
}

void monitor_wire_ops(struct monitor_wire *w, struct monitor_ops *ops)
{
	*ops = (struct monitor_ops){ scale, session_up, session_down, w };
}
