/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_conns.h — who may hold a connection to the informant, and for how
 * long.  Internal to the HTTP server (server.c); not for other users.
 *
 * The informant accepts connections itself.  A new connection first sits
 * in "the gate" until its first bytes show an HTTP request line; garbage
 * gets "400 Bad Request" and is closed at once, a request goes on to
 * libmicrohttpd (MHD_add_connection).  Every connection, in the gate or in
 * MHD, is one struct conn counted against two limits (all connections; per
 * peer address) and, while it owes us a request ("incomplete"), held to a
 * deadline fixed when the wait began:
 *
 *   waiting for its first bytes or request head   head_ms from accept
 *   head in, body still arriving                   body_ms from the head
 *   answered, keep-alive until the next head       idle_ms from the answer
 *
 * Unlike MHD's idle timeout, a byte now and then does not extend them.  A
 * connection that would exceed a limit takes the place of the oldest
 * incomplete connection (of its address, or of all); connections whose
 * request is being handled or answered, and upgraded ones (101), are never
 * dropped.  MHD-owned connections are dropped with shutdown(2): MHD sees
 * the end of the stream, closes and frees them itself.
 */
#ifndef VMI_SERVER_CONNS_H
#define VMI_SERVER_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "loop.h"
#include "metrics.h"

struct conns;
struct conn;

struct conns_limits {
	unsigned max_conns;    /* all connections, gate and MHD together */
	unsigned max_per_addr; /* connections from one peer address */
	uint64_t head_ms;      /* accept → complete request head */
	uint64_t body_ms;      /* complete head → complete body */
	uint64_t idle_ms;      /* answer sent → next complete head (keep-alive) */
};

/* A listening socket on host:port (numeric or resolvable; "" = any),
 * non-blocking; *bound is the port actually bound (for port 0).  -errno
 * and "cannot listen on HOST:PORT: …" in err. */
int conns_listen(const char *host, uint16_t port, int *fd, uint16_t *bound, char *err,
		 size_t errlen);
/* Starts accepting on listen_fd (non-blocking, listening) from the loop;
 * the fd is closed by conns_stop() or conns_free().  mhd must have been
 * started with MHD_USE_NO_LISTEN_SOCKET and its connection notifications
 * forwarded to conns_mhd_started()/conns_mhd_closed(). */
int conns_new(struct loop *loop, int listen_fd, struct MHD_Daemon *mhd,
	      const struct conns_limits *lim, struct metrics *m, struct conns **out);
/* Stop accepting and close the connections still in the gate; MHD's
 * connections stay (their requests are answered). */
void conns_stop(struct conns *cs);
/* After MHD_stop_daemon(): frees what is left. */
void conns_free(struct conns *cs);
/* Connections open now (gate and MHD). */
unsigned conns_count(const struct conns *cs);

/* MHD_OPTION_NOTIFY_CONNECTION, STARTED and CLOSED. */
void conns_mhd_started(struct conns *cs, void **socket_context);
void conns_mhd_closed(struct conns *cs, void *socket_context);

/* The record of an MHD connection (its socket context), or NULL. */
struct conn *conns_of(struct MHD_Connection *c);
/* An answer MHD cannot give (see server.c), written straight to the
 * socket with "Connection: close", whose writing side is then shut. */
void conns_answer_raw(struct conn *c, unsigned status, const char *text);

/* Request progress on an MHD connection, from server.c's callbacks; each
 * tolerates NULL and connections already being dropped. */
void conns_head_done(struct conn *c); /* a complete head: the body deadline runs */
void conns_busy(struct conn *c);      /* handled or answered: no deadline of ours */
void conns_idle(struct conn *c);      /* request over: the keep-alive deadline runs */
void conns_upgraded(struct conn *c);  /* 101 sent: no longer HTTP, never dropped */

/* The connection limit for an fd budget (RLIMIT_NOFILE): what is left
 * after CONNS_FD_RESERVE for the daemon's own files and agent calls,
 * at most CONNS_MAX (memory), at least half the budget. */
#define CONNS_FD_RESERVE 256
#define CONNS_MAX 4096
unsigned conns_limit_for_fds(uint64_t nofile);

#endif
