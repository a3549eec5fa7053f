/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c — libmicrohttpd driven by the informant's loop: requests,
 * answers and the common checks.  Which connections get in and how long
 * they may take is server_conns.c's business; a websocket upgrade (the
 * 101 and the hand-over of the socket) is server_upgrade.c's.
 *
 * MHD runs in external epoll mode: its epoll fd sits in the loop, a loop
 * timer follows MHD_get_timeout(), and MHD_run() runs after either fires.
 * Handlers that wait for something (the /id probe, Postgres) leave the
 * request unanswered; the connection is then suspended and resumed by
 * server_respond(), which also kicks MHD through the timer.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "httputil.h"
#include "log.h"
#include "server_conns.h"
#include "server_internal.h"

#define PATH_MAX_LEN 1024

/* ---- answers ---------------------------------------------------------------- */

void kick(struct server *s)
{
	/* MHD must run again soon (a resumed connection, a closed one); 1 ns =
	 * at once.  The flag survives run_mhd() re-arming the timer when this
	 * comes from inside MHD_run(). */
	s->rerun = true;
	(void)loop_timer_arm_ns(s->timer, 1, 0);
}

void server_req_header(struct server_req *r, const char *name, const char *value)
{
	unsigned i = r->nhdr;

	if (i >= MAX_EXTRA_HEADERS)
		return;
	snprintf(r->hdr_name[i], sizeof(r->hdr_name[i]), "%s", name);
	snprintf(r->hdr_value[i], sizeof(r->hdr_value[i]), "%s", value);
	for (char *p = r->hdr_value[i]; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	r->nhdr++;
}

void server_respond(struct server_req *r, unsigned status, const char *content_type,
		    const char *body)
{
	struct MHD_Response *resp;

	if (r->status) {
		log_event(LOG_ERROR, "request answered twice", LF_U64("status", status), LF_END);
		return;
	}
	resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp) {
		/* Out of memory: let MHD close the connection (no answer). */
		status = 500;
	} else {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
		for (unsigned i = 0; i < r->nhdr; i++)
			MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
		if (r->srv->closing)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	}
	r->resp = resp;
	r->status = status;
	if (r->suspended) {
		r->suspended = false;
		MHD_resume_connection(r->conn);
		kick(r->srv);
	}
}

void server_respond_text(struct server_req *r, unsigned status, const char *text)
{
	server_respond(r, status, SERVER_CT_TEXT, text);
}

bool server_req_answered(const struct server_req *r)
{
	return r->status != 0;
}

void server_req_on_done(struct server_req *r, server_done_fn fn)
{
	r->done = fn;
}

void *server_req_user(struct server_req *r)
{
	return r->user;
}

/* Hand the waiting answer to MHD. */
static enum MHD_Result queue(struct server_req *r)
{
	struct MHD_Response *resp = r->resp;
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	r->resp = NULL;
	ret = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	/* From here on the connection owes us nothing: no deadline of ours
	 * (a 101 leaves HTTP for good: a websocket is never timed here). */
	if (r->status == MHD_HTTP_SWITCHING_PROTOCOLS)
		conns_upgraded(r->crec);
	else
		conns_busy(r->crec);
	if (ret != MHD_YES)
		log_event(LOG_DEBUG, "MHD refused the answer", LF_U64("status", r->status),
			  LF_BOOL("dispatched", r->dispatched), LF_U64("body_so_far", r->len),
			  LF_END);
	return ret;
}

/* ---- every request: docs/informant-protocol.md §5.0, D19 ---------------------- */

static const struct server_route *find_route(const struct server *s, const char *path)
{
	for (size_t i = 0; i < s->nroutes; i++)
		if (strcmp(s->routes[i].path, path) == 0)
			return &s->routes[i];
	return NULL;
}

static bool content_length_too_big(struct server *s, struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long n;

	if (!cl)
		return false;
	errno = 0;
	n = strtoull(cl, &end, 10);
	return errno == ERANGE || (end != cl && n > s->max_body);
}

/* Does a body follow the head?  (MHD has checked the syntax.) */
static bool body_announced(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strspn(cl, "0") != strlen(cl)) ||
	       MHD_lookup_connection_value(c, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

static void too_large_text(const struct server *s, char *text, size_t len)
{
	snprintf(text, len, "request body larger than %llu bytes",
		 (unsigned long long)s->max_body);
}

static void respond_too_large(struct server_req *r)
{
	char text[64];

	too_large_text(r->srv, text, sizeof(text));
	server_respond_text(r, 413, text);
}

/* Everything decided from the headers; true if r was answered. */
/* HEAD wherever GET (RFC 9110 §9.3.2: the same head, no body; libmicrohttpd
 * leaves the body out).  The protocol's own endpoints take one method only:
 * HEAD is a wrong method there, as in the original. */
static bool method_allowed(const char *route_method, const char *method)
{
	return strcmp(method, route_method) == 0 ||
	       (strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

static bool precheck(struct server *s, struct server_req *r, const char *url, const char *method,
		     const char *version)
{
	char clean[PATH_MAX_LEN + 3];
	char text[64];

	if (s->closing) {
		server_respond_text(r, 503, "Service shutting down");
		return true;
	}
	if (s->token[0] &&
	    !http_auth_ok(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_AUTHORIZATION), s->token)) {
		server_req_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				  "Bearer realm=\"vm-informant\"");
		server_respond_text(r, 401, "Unauthorized");
		return true;
	}
	if (s->upgrade && strcmp(url, s->upgrade->path) == 0)
		return upgrade_request(s, r, method, version);
	if (strlen(url) > PATH_MAX_LEN || http_mux_clean(url, clean, sizeof(clean)) < 0) {
		server_req_header(r, "X-Content-Type-Options", "nosniff");
		server_respond_text(r, 404, "404 page not found\n");
		return true;
	}
	if (strcmp(clean, url) != 0) {
		server_req_header(r, MHD_HTTP_HEADER_LOCATION, clean);
		server_respond_text(r, 301, "");
		return true;
	}
	r->route = find_route(s, url);
	if (!r->route) {
		server_req_header(r, "X-Content-Type-Options", "nosniff");
		server_respond_text(r, 404, "404 page not found\n");
		return true;
	}
	r->ep = r->route->ep;
	if (!method_allowed(r->route->method, method)) {
		snprintf(text, sizeof(text), "request method must be %s", r->route->method);
		server_respond_text(r, 405, text);
		return true;
	}
	if (content_length_too_big(s, r->conn)) {
		respond_too_large(r);
		return true;
	}
	return false;
}

/* 0, -E2BIG past max_body_bytes (a chunked body: a Content-Length that
 * large was refused with the head), -ENOMEM. */
static int append_body(struct server_req *r, const char *data, size_t n)
{
	char *p;

	if (n > r->srv->max_body - r->len)
		return -E2BIG;
	p = realloc(r->body, r->len + n + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p + r->len, data, n);
	r->len += n;
	p[r->len] = '\0';
	r->body = p;
	return 0;
}

/*
 * A chunked body grew past max_body_bytes.  MHD 0.9.75 queues answers only
 * before the body (at the head) or after it, never in the middle; reading
 * the rest only to refuse it would let a client make us read without end.
 * So the 413 goes straight to the socket and the connection is closed
 * (MHD_NO).  That is safe: MHD has written nothing since the request
 * began except, fully, a "100 Continue".
 */
static enum MHD_Result refuse_mid_body(struct server_req *r)
{
	char text[64];

	too_large_text(r->srv, text, sizeof(text));
	conns_answer_raw(r->crec, 413, text);
	r->status = 413; /* counted in the metrics when MHD ends the request */
	return MHD_NO;
}

static struct server_req *req_new(struct server *s, struct MHD_Connection *c)
{
	struct server_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->srv = s;
	r->conn = c;
	r->crec = conns_of(c);
	r->ep = EP_OTHER;
	r->start_ns = loop_now_ns();
	s->in_flight++;
	return r;
}

/*
 * MHD calls this once when the head is in, once per piece of body, and
 * once more when the body is complete.  An answer decided from the head
 * alone (401, 404, 405, 413 by Content-Length, 503) goes out at once when
 * a body is announced — before any of it is read, also instead of a
 * "100 Continue"; MHD then closes the connection rather than read a body
 * nobody wants.  Without a body it waits for the last call, which follows
 * at once, so that the connection stays open for the next request.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct server *s = cls;
	struct server_req *r = *con_cls;
	int ret;

	if (!r) {
		r = req_new(s, c);
		if (!r)
			return MHD_NO;
		*con_cls = r;
		conns_head_done(r->crec);
		if (precheck(s, r, url, method, version) && body_announced(c))
			return queue(r);
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->status) {
			ret = append_body(r, upload_data, *upload_data_size);
			if (ret == -E2BIG)
				return refuse_mid_body(r);
			if (ret < 0)
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->status && !r->resp)
		return MHD_NO; /* answered, but no memory for the response: close */
	if (r->resp)
		return queue(r); /* decided from the head, or answered while suspended */
	if (r->dispatched)
		return MHD_YES; /* spurious call while waiting */
	r->dispatched = true;
	conns_busy(r->crec);
	r->route->fn(s->ctx, r, r->body ? r->body : "", r->len);
	if (r->resp)
		return queue(r);
	r->suspended = true;
	MHD_suspend_connection(c);
	return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct server *s = cls;

	(void)c;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		conns_mhd_started(s->conns, socket_context);
	else
		conns_mhd_closed(s->conns, *socket_context);
}

/* MHD decodes %XX in the path before handing it over as a C string: a %00
 * would end it early and "/health-check%00abc" would reach /health-check.
 * A path holding %00 is left undecoded, so it matches no route (404, as
 * Go's mux answers for a NUL in the path). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	if (strstr(s, "%00"))
		return strlen(s);
	return MHD_http_unescape(s);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct server_req *r = *con_cls;
	uint64_t suppressed;

	(void)c;
	if (!r)
		return;
	*con_cls = NULL;
	/* An upgraded request was accounted for when it was handed over, and
	 * its connection is no HTTP connection any more. */
	if (!r->upgraded) {
		s->in_flight--;
		conns_idle(r->crec); /* keep-alive: the next head is due (if it stays open) */
	}
	if (r->status && !r->upgraded)
		metrics_observe_request(s->metrics, r->ep, r->status,
					(double)(loop_now_ns() - r->start_ns) / 1e9);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && log_enabled(LOG_DEBUG) &&
	    log_limit_allow(&s->ended_log, loop_now_ms(), 1000, &suppressed))
		log_event(LOG_DEBUG, "request ended early", LF_U64("code", toe),
			  LF_U64("status", r->status), LF_U64("suppressed", suppressed), LF_END);
	if (r->done)
		r->done(s->ctx, r);
	if (r->resp)
		MHD_destroy_response(r->resp);
	free(r->body);
	free(r);
}

/* ---- the loop side ------------------------------------------------------- */

static void run_mhd(struct server *s)
{
	MHD_UNSIGNED_LONG_LONG ms;

	/* MHD_get_timeout64 is newer than Debian bookworm's MHD 0.9.75. */
	s->rerun = false;
	(void)MHD_run(s->mhd);
	if (s->rerun)
		(void)loop_timer_arm_ns(s->timer, 1, 0);
	else if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
		(void)loop_timer_arm_ns(s->timer, ms ? (uint64_t)ms * 1000000u : 1, 0);
	else
		(void)loop_timer_arm(s->timer, 0, 0);
}

static void on_epoll(void *arg, uint32_t events)
{
	(void)events;
	run_mhd(arg);
}

static void on_timer(void *arg)
{
	run_mhd(arg);
}

/* MHD reports every malformed request and dropped connection: a client
 * decides how many, so at most one line a second. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct server *s = cls;
	uint64_t suppressed;
	char line[512];
	size_t n;

	if (!log_enabled(LOG_DEBUG) ||
	    !log_limit_allow(&s->mhd_log_limit, loop_now_ms(), 1000, &suppressed))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	log_event(LOG_DEBUG, "http server", LF_STR("detail", line), LF_U64("suppressed", suppressed),
		  LF_END);
}

static int start_mhd(struct server *s, const struct server_options *o)
{
	/* Connections come from server_conns.c (MHD_add_connection); MHD's
	 * own limit is only a backstop above ours. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
			 MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
	const union MHD_DaemonInfo *info;

	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
				  MHD_OPTION_CONNECTION_LIMIT, 2 * o->max_connections + 64,
				  MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout_s,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->connection_memory_limit,
				  MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				  MHD_OPTION_END);
	if (!s->mhd)
		return -EIO;
	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		return -EIO;
	s->epfd = info->epoll_fd;
	return 0;
}

int server_new(struct loop *loop, const struct server_options *o,
	       const struct server_route *routes, size_t nroutes, void *ctx, struct metrics *m,
	       struct server **out, char *err, size_t errlen)
{
	struct server *s = malloc(sizeof(*s));
	struct conns_limits lim = {
		.max_conns = o->max_connections,
		.max_per_addr = o->max_connections_per_address,
		.head_ms = o->head_timeout_ms,
		.body_ms = o->body_timeout_ms,
		.idle_ms = (uint64_t)o->idle_timeout_s * 1000,
	};
	int listen_fd = -1, r;

	if (!s)
		return -ENOMEM;
	*s = (struct server){ .loop = loop, .routes = routes, .nroutes = nroutes, .ctx = ctx,
			      .metrics = m, .max_body = o->max_body_bytes, .epfd = -1 };
	r = server_set_token(s, o->token);
	if (r < 0) {
		snprintf(err, errlen, "auth token too long");
		free(s);
		return r;
	}
	r = conns_listen(o->host, o->port, &listen_fd, &s->port, err, errlen);
	if (r < 0) {
		free(s);
		return r;
	}
	r = start_mhd(s, o);
	if (r < 0)
		snprintf(err, errlen, "cannot start the HTTP server on %s:%u", o->host, o->port);
	if (r == 0)
		r = conns_new(loop, listen_fd, s->mhd, &lim, m, &s->conns);
	if (r == 0)
		listen_fd = -1; /* the connections' now */
	if (r == 0)
		r = loop_timer_new(loop, on_timer, s, &s->timer);
	if (r == 0)
		r = loop_add_fd(loop, s->epfd, EPOLLIN, on_epoll, s);
	if (r < 0) {
		if (!err[0])
			snprintf(err, errlen, "cannot add the HTTP server to the loop: %s",
				 strerror(-r));
		if (listen_fd >= 0)
			close(listen_fd);
		s->epfd = -1;
		server_free(s);
		return r;
	}
	run_mhd(s);
	*out = s;
	return 0;
}

void server_free(struct server *s)
{
	if (!s)
		return;
	if (s->epfd >= 0)
		(void)loop_del_fd(s->loop, s->epfd);
	if (s->conns)
		conns_stop(s->conns);
	/* Stopping MHD closes its connections, whose callbacks release their
	 * records and kick the timer: free those only afterwards. */
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	conns_free(s->conns);
	loop_timer_free(s->timer);
	explicit_bzero(s->token, sizeof(s->token));
	free(s);
}

uint16_t server_port(const struct server *s)
{
	return s->port;
}

int server_set_token(struct server *s, const char *token)
{
	if (token && strlen(token) >= sizeof(s->token))
		return -E2BIG;
	explicit_bzero(s->token, sizeof(s->token));
	if (token)
		memcpy(s->token, token, strlen(token) + 1);
	return 0;
}

void server_quiesce(struct server *s)
{
	s->closing = true;
	conns_stop(s->conns);
	kick(s);
}

unsigned server_requests_in_flight(const struct server *s)
{
	return s->in_flight;
}

unsigned server_connections(const struct server *s)
{
	return conns_count(s->conns);
}

unsigned server_max_connections(uint64_t nofile)
{
	return conns_limit_for_fds(nofile);
}
