/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h — the informant's HTTP server: libmicrohttpd in external epoll
 * mode on the informant's loop (no threads), with the common handling of
 * docs/informant-protocol.md §5.0 (301 for unclean paths, 404, 405) and the hardening of D19
 * (optional bearer token, body limit → 413 before the body is read,
 * connection limits that make room rather than refuse, a deadline for each
 * request head and body and for idle keep-alive, garbage → 400;
 * server_conns.h).
 *
 * A request answered 101 (a protocol upgrade, e.g. a websocket) leaves its
 * connection exempt from those deadlines and from being dropped.
 *
 * A handler answers with server_respond*() either before it returns or
 * later (the connection is suspended meanwhile, e.g. while an agent's /id
 * is probed); every request must be answered exactly once.
 */
#ifndef VMI_SERVER_H
#define VMI_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "metrics.h"

#define SERVER_CT_TEXT "text/plain; charset=utf-8"
#define SERVER_CT_JSON "application/json"
#define SERVER_USER_BYTES 64

struct server;
struct server_req;

/* body is NUL-terminated (len excludes the NUL). */
typedef void (*server_handler_fn)(void *ctx, struct server_req *r, const char *body, size_t len);
typedef void (*server_done_fn)(void *ctx, struct server_req *r);

struct server_route {
	const char *path;   /* exact, e.g. "/register" */
	const char *method; /* "POST", "PUT", "DELETE", "GET" */
	enum metrics_endpoint ep;
	server_handler_fn fn;
};

struct server_options {
	const char *host;          /* numeric or resolvable; "0.0.0.0" = all IPv4 */
	uint16_t port;             /* 0 = any free port (tests) */
	uint64_t max_body_bytes;
	const char *token;         /* NULL or "" = no authentication */
	unsigned max_connections;  /* all together (see server_max_connections) */
	unsigned max_connections_per_address;
	unsigned head_timeout_ms;  /* accept → complete request head */
	unsigned body_timeout_ms;  /* complete head → complete body */
	unsigned idle_timeout_s;   /* keep-alive: answer → next complete head */
	size_t connection_memory_limit;
};

/* The connection limit an fd budget (RLIMIT_NOFILE) allows. */
unsigned server_max_connections(uint64_t nofile);

/* Bind, listen and add the server to the loop.  routes must outlive the
 * server.  -errno and a message such as "cannot listen on 0.0.0.0:10301:
 * Address already in use" on failure. */
int server_new(struct loop *loop, const struct server_options *o,
	       const struct server_route *routes, size_t nroutes, void *ctx, struct metrics *m,
	       struct server **out, char *err, size_t errlen);
/* Closes every connection; answer all suspended requests first. */
void server_free(struct server *s);
/* The port actually bound (for port 0). */
uint16_t server_port(const struct server *s);
/* Replace the bearer token (SIGHUP); NULL or "" turns authentication off. */
int server_set_token(struct server *s, const char *token);
/* Shutdown: stop accepting connections (and close those that have not
 * sent a request yet); further requests on open connections get 503. */
void server_quiesce(struct server *s);
unsigned server_connections(const struct server *s);
unsigned server_requests_in_flight(const struct server *s);

/* The websocket upgrade hook: GET path with "Upgrade: websocket" is
 * answered 101 (checks in ws_handshake.h; refusals 400/405/426), then
 * take(arg, fd, extra, extra_len, handle) gets the connected non-blocking
 * socket and the bytes read past the request.  The socket stays the
 * server's: give it back with server_upgraded_release(handle), exactly
 * once, before server_free().  The bearer token and shutdown checks apply
 * as to every request. */
struct server_upgraded;
struct server_upgrade {
	const char *path;
	void (*take)(void *arg, int fd, const void *extra, size_t extra_len,
		     struct server_upgraded *handle);
	void *arg;
};
/* u must outlive the server; NULL turns the hook off. */
void server_set_upgrade(struct server *s, const struct server_upgrade *u);
/* Takes a struct server_upgraded * (void * to serve as a release callback). */
void server_upgraded_release(void *handle);

/* Answer r; body is copied.  May be called from the handler or later. */
void server_respond(struct server_req *r, unsigned status, const char *content_type,
		    const char *body);
void server_respond_text(struct server_req *r, unsigned status, const char *text);
bool server_req_answered(const struct server_req *r);
/* An extra header for the answer (call before server_respond*()).
 * CR, LF and other control characters in value become spaces. */
void server_req_header(struct server_req *r, const char *name, const char *value);
/* Run fn(ctx, r) once the answer has been sent or the connection ended. */
void server_req_on_done(struct server_req *r, server_done_fn fn);
/* SERVER_USER_BYTES of scratch space for the handler, zeroed. */
void *server_req_user(struct server_req *r);

#endif
