/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent.h — a minimal autoscaler-agent for the benchmarks, on the caller's
 * epoll: it serves GET /id, POST /resume, /suspend and /try-upscale on
 * loopback (AgentMessage replies with its ID and a sequence number), and
 * sends POST /register and PUT /upscale to the daemon over one keep-alive
 * connection.  It timestamps the first bytes of every /try-upscale.
 */
#ifndef VMI_BENCH_AGENT_H
#define VMI_BENCH_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "minihttp.h"

#define AGENT_MAX_CONNS 8

struct agent;

/* Called for each /try-upscale, with the monotonic ns its first bytes arrived. */
typedef void (*agent_try_fn)(struct agent *a, uint64_t arrived_ns);
/* Called when the daemon answered the agent's own request. */
typedef void (*agent_reply_fn)(struct agent *a, int status, const char *body, size_t len);

struct agent_conn {
	struct mh_watch w;
	struct agent *a;
	char in[8192];
	size_t len;
	uint64_t first_byte_ns;
};

struct agent {
	int ep;
	char id[40];
	char daemon[64];
	uint16_t port;
	uint64_t seq;
	bool resumed;
	uint64_t id_requests, try_requests;
	agent_try_fn on_try;
	void *user;
	struct mh_watch listener;
	struct agent_conn conns[AGENT_MAX_CONNS];
	/* The client side: one request in flight at most. */
	struct mh_watch client;
	bool client_busy;
	agent_reply_fn on_reply;
	char cin[8192];
	size_t cin_len;
};

/* Listens on 127.0.0.1 (any port) and registers with ep.  Exits on failure. */
void agent_init(struct agent *a, int ep, const char *daemon_addr, agent_try_fn on_try);
/* Sends POST /register; the reply goes to on_reply.  0 or -errno. */
int agent_register(struct agent *a, agent_reply_fn on_reply);
/* Sends PUT /upscale announcing vm_bytes of memory.  0 or -errno. */
int agent_upscale(struct agent *a, uint64_t vm_bytes, agent_reply_fn on_reply);

#endif
