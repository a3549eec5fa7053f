/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handlers.c — decode the request, ask the agent set or the memory policy,
 * answer.  Decoding failures are "400 bad JSON" exactly as the reference
 * says it; the decoder's reason goes to the log and to X-Error-Detail.
 */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "status.h"

/* Anyone can send bad requests, as fast as they like: one log line a
 * second at most, with the count of those left out. */
#define BAD_REQUEST_LOG_MS 1000

static void bad_json(struct handlers_ctx *ctx, struct server_req *r, const char *endpoint,
		     const char *detail)
{
	uint64_t suppressed;

	if (log_limit_allow(&ctx->bad_request_log, loop_now_ms(), BAD_REQUEST_LOG_MS,
			    &suppressed))
		log_event(LOG_INFO, "bad request body", LF_STR("endpoint", endpoint),
			  LF_STR("detail", detail), LF_U64("suppressed", suppressed), LF_END);
	server_req_header(r, "X-Error-Detail", detail);
	server_respond_text(r, 400, "bad JSON");
}

static void respond(struct server_req *r, unsigned status, const char *body)
{
	/* The protocol's rule: 200 carries JSON, everything else text. */
	server_respond(r, status, status == 200 ? SERVER_CT_JSON : SERVER_CT_TEXT, body);
}

static bool shutting_down(struct server_req *r, const void *needed)
{
	if (needed)
		return false;
	server_respond_text(r, 503, "Service shutting down");
	return true;
}

/* ---- POST /register ------------------------------------------------------ */

static void register_sent(void *vctx, struct server_req *r)
{
	struct handlers_ctx *ctx = vctx;

	/* D16: only now may the selector resume the new agent. */
	if (ctx->agents)
		agents_register_sent(ctx->agents, server_req_user(r));
}

static void register_done(void *arg, unsigned status, const char *body)
{
	struct server_req *r = arg;

	if (status == 200)
		server_req_on_done(r, register_sent);
	respond(r, status, body);
}

static void on_register(void *vctx, struct server_req *r, const char *body, size_t len)
{
	struct handlers_ctx *ctx = vctx;
	struct ap_agent_desc d;
	char err[256];

	_Static_assert(sizeof(struct ap_uuid) <= SERVER_USER_BYTES, "user area too small");
	if (ap_decode_agent_desc(body, len, &d, err, sizeof(err)) < 0) {
		bad_json(ctx, r, "/register", err);
		return;
	}
	if (shutting_down(r, ctx->agents))
		return;
	memcpy(server_req_user(r), &d.agent_id, sizeof(d.agent_id));
	agents_register(ctx->agents, &d, register_done, r);
}

/* ---- PUT /health-check, DELETE /unregister -------------------------------- */

static void on_health_check(void *vctx, struct server_req *r, const char *body, size_t len)
{
	struct handlers_ctx *ctx = vctx;
	struct agents_reply rep;
	struct ap_uuid id;
	char err[256];

	if (ap_decode_agent_ident(body, len, &id, err, sizeof(err)) < 0) {
		bad_json(ctx, r, "/health-check", err);
		return;
	}
	if (shutting_down(r, ctx->agents))
		return;
	agents_health_check(ctx->agents, &id, &rep);
	respond(r, rep.status, rep.body);
}

static void on_unregister(void *vctx, struct server_req *r, const char *body, size_t len)
{
	struct handlers_ctx *ctx = vctx;
	struct agents_reply rep;
	struct ap_agent_desc d;
	char err[256];

	if (ap_decode_agent_desc(body, len, &d, err, sizeof(err)) < 0) {
		bad_json(ctx, r, "/unregister", err);
		return;
	}
	if (shutting_down(r, ctx->agents))
		return;
	agents_unregister(ctx->agents, &d, &rep);
	respond(r, rep.status, rep.body);
}

/* ---- PUT /upscale, PUT /downscale ------------------------------------------ */

/* The memory policy counts an applied upscale and tells the agent set
 * itself: a 200 to a shrinking /upscale may mean "limits kept". */
static void scale_done(void *arg, unsigned status, const char *body)
{
	respond(arg, status, body);
}

/* The agent check, then D14/D12 validation; false if r was answered. */
static bool scale_allowed(struct handlers_ctx *ctx, struct server_req *r,
			  const struct ap_resource_msg *msg, const char *endpoint)
{
	struct agents_reply rep;
	char text[128];

	if (!agents_check_scaler(ctx->agents, &msg->agent_id, msg->seq, endpoint, &rep)) {
		respond(r, rep.status, rep.body);
		return false;
	}
	if (!msg->has_memory) {
		server_respond_text(r, 400, "Invalid request: memory is missing or null");
		return false;
	}
	if (msg->memory_bytes == 0 || msg->memory_bytes > HANDLERS_MAX_MEMORY_BYTES) {
		snprintf(text, sizeof(text),
			 "Invalid request: memory of %llu bytes is out of range",
			 (unsigned long long)msg->memory_bytes);
		server_respond_text(r, 400, text);
		return false;
	}
	return true;
}

static void on_scale(struct handlers_ctx *ctx, struct server_req *r, const char *body,
		     size_t len, bool upscale)
{
	const char *endpoint = upscale ? "/upscale" : "/downscale";
	struct ap_resource_msg msg;
	char err[256];
	int ret;

	if (ap_decode_resource_msg(body, len, &msg, err, sizeof(err)) < 0) {
		bad_json(ctx, r, endpoint, err);
		return;
	}
	if (shutting_down(r, ctx->agents) || shutting_down(r, ctx->memory))
		return;
	if (!scale_allowed(ctx, r, &msg, endpoint))
		return;
	log_event(LOG_INFO, upscale ? "upscale" : "downscale request",
		  LF_U64("memory_bytes", msg.memory_bytes), LF_U64("seq", msg.seq), LF_END);
	if (upscale)
		ret = memory_upscale(ctx->memory, msg.memory_bytes, scale_done, r);
	else
		ret = memory_downscale(ctx->memory, msg.memory_bytes, scale_done, r);
	/* A refusal to even start means done will not run. */
	if (ret < 0 && !server_req_answered(r)) {
		log_event(LOG_ERROR, "memory request failed", LF_STR("endpoint", endpoint),
			  LF_ERR(ret), LF_END);
		server_respond_text(r, 500, "Internal error");
	}
}

static void on_upscale(void *vctx, struct server_req *r, const char *body, size_t len)
{
	on_scale(vctx, r, body, len, true);
}

static void on_downscale(void *vctx, struct server_req *r, const char *body, size_t len)
{
	on_scale(vctx, r, body, len, false);
}

/* ---- GET /metrics, GET /status ------------------------------------------------ */

static void on_metrics(void *vctx, struct server_req *r, const char *body, size_t len)
{
	struct handlers_ctx *ctx = vctx;
	struct procstat proc;
	char *text;

	(void)body;
	(void)len;
	/* A figure /proc cannot give stays 0; the rest is still worth serving. */
	(void)procstat_read(&proc);
	text = metrics_render(ctx->metrics, &proc);
	if (!text) {
		server_respond_text(r, 500, "Internal error");
		return;
	}
	server_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text);
	free(text);
}

static void on_status(void *vctx, struct server_req *r, const char *body, size_t len)
{
	struct handlers_ctx *ctx = vctx;
	char *json;

	(void)body;
	(void)len;
	if (shutting_down(r, ctx->agents))
		return;
	json = status_render(ctx->cfg, ctx->agents, ctx->memory, ctx->started_ms);
	if (!json) {
		server_respond_text(r, 500, "Internal error");
		return;
	}
	server_respond(r, 200, SERVER_CT_JSON, json);
	free(json);
}

static const struct server_route routes[] = {
	HANDLERS_PROTOCOL_ROUTES(HANDLERS_ROUTE)
	/* only with [server] metrics = true: */
	{ "/metrics", "GET", EP_METRICS, on_metrics },
	{ "/status", "GET", EP_STATUS, on_status },
};

size_t handlers_routes(bool with_metrics, const struct server_route **out)
{
	*out = routes;
	return sizeof(routes) / sizeof(routes[0]) - (with_metrics ? 0 : 2);
}
