/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_internal.h — the server and its requests, shared by server.c
 * (requests, answers, the loop side) and server_upgrade.c (the websocket
 * upgrade hook, which answers a request with 101 and hands its socket
 * over).  Not for other users: they see server.h's opaque types.
 */
#ifndef VMI_SERVER_INTERNAL_H
#define VMI_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "httputil.h"
#include "log.h"
#include "server.h"
#include "server_conns.h"

#define MAX_EXTRA_HEADERS 4

struct server {
	struct loop *loop;
	struct MHD_Daemon *mhd;
	struct loop_timer *timer;
	bool rerun;              /* MHD must run again at once (see kick) */
	int epfd;
	struct conns *conns;
	uint16_t port;
	const struct server_route *routes;
	size_t nroutes;
	void *ctx;
	struct metrics *metrics;
	uint64_t max_body;
	char token[HTTP_TOKEN_MAX];
	bool closing;
	unsigned in_flight; /* requests started and not yet completed */
	struct log_limit mhd_log_limit, ended_log; /* clients decide how often */
	const struct server_upgrade *upgrade; /* websocket path, or NULL */
};

struct server_req {
	struct server *srv;
	struct MHD_Connection *conn;
	struct conn *crec;         /* its connection's record (server_conns.c) */
	const struct server_route *route;
	enum metrics_endpoint ep;
	uint64_t start_ns;
	char *body;
	size_t len;
	bool dispatched, suspended;
	bool upgraded;             /* handed over as a websocket (server_upgrade.c) */
	struct MHD_Response *resp; /* answer waiting to be queued */
	unsigned status;           /* 0 until answered */
	char hdr_name[MAX_EXTRA_HEADERS][32];
	char hdr_value[MAX_EXTRA_HEADERS][256];
	unsigned nhdr;
	server_done_fn done;
	_Alignas(max_align_t) unsigned char user[SERVER_USER_BYTES];
};

/* server.c */
/* MHD must run again soon (a resumed connection, a closed one). */
void kick(struct server *s);

/* server_upgrade.c */
/* A request for the upgrade path, judged from its head: answered either
 * way (a refusal, or a 101 left in r->resp for server.c to queue); true. */
bool upgrade_request(struct server *s, struct server_req *r, const char *method,
		     const char *version);

#endif
