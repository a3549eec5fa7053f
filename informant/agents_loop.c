/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents_loop.c — struct agents_io for the daemon: ap_client (its epoll fd
 * in the informant's loop) for the calls, a loop timer for agents_tick().
 */
#include <errno.h>
#include <stdlib.h>

#include "agents.h"
#include "log.h"
#include "loop.h"

struct call_ctx {
	struct agents_loop *al;
	uint64_t token;
	uint64_t call_id;
	struct call_ctx *next;
};

struct agents_loop {
	struct loop *loop;
	struct ap_client *client;
	bool client_in_loop;
	struct loop_timer *timer;
	struct agents *agents;
	struct call_ctx *calls; /* in flight */
};

static void unlink_call(struct agents_loop *al, struct call_ctx *cc)
{
	for (struct call_ctx **p = &al->calls; *p; p = &(*p)->next)
		if (*p == cc) {
			*p = cc->next;
			return;
		}
}

static void on_result(void *arg, const struct ap_call_result *res)
{
	struct call_ctx *cc = arg;
	struct agents_loop *al = cc->al;
	uint64_t token = cc->token;

	unlink_call(al, cc);
	free(cc);
	agents_call_done(al->agents, token, res);
}

static int io_call(void *ctx, enum ap_call_kind kind, const char *addr, const struct ap_uuid *id,
		   uint64_t timeout_ms, uint64_t token)
{
	struct agents_loop *al = ctx;
	struct call_ctx *cc = calloc(1, sizeof(*cc));
	int r;

	if (!cc)
		return -ENOMEM;
	cc->al = al;
	cc->token = token;
	r = ap_client_call(al->client, kind, addr, id, timeout_ms, on_result, cc, &cc->call_id);
	if (r < 0) {
		free(cc);
		return r;
	}
	cc->next = al->calls;
	al->calls = cc;
	return 0;
}

static void io_cancel(void *ctx, uint64_t token)
{
	struct agents_loop *al = ctx;

	for (struct call_ctx *cc = al->calls; cc; cc = cc->next)
		if (cc->token == token) {
			(void)ap_client_cancel(al->client, cc->call_id);
			unlink_call(al, cc);
			free(cc);
			return;
		}
}

static uint64_t io_now(void *ctx)
{
	(void)ctx;
	return loop_now_ms();
}

static void io_schedule(void *ctx, uint64_t at_ms)
{
	struct agents_loop *al = ctx;
	uint64_t now = loop_now_ms();
	int r;

	if (!al->timer)
		return;
	r = loop_timer_arm(al->timer, at_ms == 0 ? 0 : at_ms > now ? at_ms - now : 1, 0);
	if (r < 0)
		log_event(LOG_ERROR, "cannot arm the agent check timer", LF_ERR(r), LF_END);
}

static void on_timer(void *arg)
{
	struct agents_loop *al = arg;

	agents_tick(al->agents);
}

static void on_client(void *arg, uint32_t events)
{
	struct agents_loop *al = arg;
	int r;

	(void)events;
	r = ap_client_process(al->client);
	if (r < 0)
		log_event(LOG_ERROR, "agent client processing failed", LF_ERR(r), LF_END);
}

int agents_loop_new(struct loop *loop, const struct agents_timeouts *t, struct metrics *m,
		    struct agents_loop **out)
{
	struct agents_loop *al = calloc(1, sizeof(*al));
	struct agents_io io = { io_call, io_cancel, io_now, io_schedule, NULL };
	int r;

	if (!al)
		return -ENOMEM;
	al->loop = loop;
	io.ctx = al;
	r = ap_client_new(&al->client);
	if (r == 0) {
		r = loop_add_fd(loop, ap_client_fd(al->client), EPOLLIN, on_client, al);
		al->client_in_loop = r == 0;
	}
	if (r == 0)
		r = loop_timer_new(loop, on_timer, al, &al->timer);
	if (r == 0)
		r = agents_new(&io, t, m, &al->agents);
	if (r < 0) {
		agents_loop_free(al);
		return r;
	}
	*out = al;
	return 0;
}

struct agents *agents_loop_agents(struct agents_loop *al)
{
	return al->agents;
}

void agents_loop_free(struct agents_loop *al)
{
	if (!al)
		return;
	/* The set cancels its calls through io_cancel: the client must live. */
	agents_free(al->agents);
	while (al->calls) {
		struct call_ctx *cc = al->calls;

		al->calls = cc->next;
		free(cc);
	}
	loop_timer_free(al->timer);
	if (al->client_in_loop)
		(void)loop_del_fd(al->loop, ap_client_fd(al->client));
	ap_client_free(al->client);
	free(al);
}
