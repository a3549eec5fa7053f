/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_http.c — the informant's HTTP request path: raw bytes sent to the
 * real server (server.c on libmicrohttpd, driven by loop.c) over loopback,
 * plus the pure path-cleaning and bearer-token helpers.
 *
 * Input: one mode byte, then the payload.
 *   'a' raw request bytes to a server without a token; 'd' the same to a
 *       server requiring "Bearer fuzz-token".  The routes are the agent
 *       protocol's (handlers.h's list of paths and methods); each handler
 *       decodes the body with the route's agent-proto decoder and answers
 *       200 or 400 at once.  Handlers must get a NUL-terminated body and
 *       whatever the server sends must be an HTTP/1.x response; ASan and
 *       UBSan watch server.c and libmicrohttpd's callbacks;
 *   'b' a path for http_path_clean / http_mux_clean: bounded output,
 *       idempotent, no "//", "/./" or "/../" left;
 *   'c' a token for http_auth_ok: "Bearer <token>" (any case of the
 *       scheme) matches, a different token does not;
 *   'e' a connection's first bytes for http_request_start (the gate of
 *       server_accept.c): every prefix decides -1, 0 or 1; a decision
 *       never changes as bytes are added; HTTP_START_BYTES always decide.
 *
 * Modes 'a' and 'd' go through the gate too: garbage must get a 400 at
 * once, a head refused (413 by Content-Length, 401, 404, 405) is answered
 * before its body, with or without "Expect: 100-continue".
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_proto.h"
#include "fuzz.h"
#include "handlers.h"
#include "httputil.h"
#include "loop.h"
#include "metrics.h"
#include "server.h"

#define TOKEN "fuzz-token"
#define MAX_BODY 2048
/* Loop turns per request: each waits at most 1 ms for something to do. */
#define MAX_TURNS 50

/* Each handler decodes its body like the real one (handlers.c) and
 * answers at once: 400 with the decoder's reason, or 200. */
static void answer(struct server_req *r, const char *body, size_t len, int decoded,
		   const char *err)
{
	/* server.h promises a NUL-terminated body. */
	FUZZ_CHECK(body != NULL && body[len] == '\0');
	if (decoded < 0)
		server_respond_text(r, 400, err);
	else
		server_respond(r, 200, SERVER_CT_JSON, "{}");
}

/* The handlers of handlers.h's protocol routes, by the same names. */
static void on_register(void *ctx, struct server_req *r, const char *body, size_t len)
{
	struct ap_agent_desc desc;
	char err[256];

	(void)ctx;
	answer(r, body, len, ap_decode_agent_desc(body, len, &desc, err, sizeof(err)), err);
}

static void on_health_check(void *ctx, struct server_req *r, const char *body, size_t len)
{
	struct ap_uuid id;
	char err[256];

	(void)ctx;
	answer(r, body, len, ap_decode_agent_ident(body, len, &id, err, sizeof(err)), err);
}

static void on_upscale(void *ctx, struct server_req *r, const char *body, size_t len)
{
	struct ap_resource_msg res;
	char err[256];

	(void)ctx;
	answer(r, body, len, ap_decode_resource_msg(body, len, &res, err, sizeof(err)), err);
}

static void on_get(void *ctx, struct server_req *r, const char *body, size_t len)
{
	(void)ctx;
	answer(r, body, len, 0, "");
}

#define on_downscale on_upscale
#define on_unregister on_register

static const struct server_route routes[] = {
	HANDLERS_PROTOCOL_ROUTES(HANDLERS_ROUTE)
	{ "/metrics", "GET", EP_METRICS, on_get },
};

struct fixture {
	struct loop *loop;
	struct metrics metrics;
	struct server *open, *auth;
};

static struct fixture fx;

static struct server *start_server(const char *token)
{
	struct server_options o = {
		.host = "127.0.0.1",
		.port = 0,
		.max_body_bytes = MAX_BODY,
		.token = token,
		.max_connections = 64,
		.max_connections_per_address = 64,
		.head_timeout_ms = 1000,
		.body_timeout_ms = 1000,
		.idle_timeout_s = 1,
		.connection_memory_limit = 16 * 1024,
	};
	struct server *s = NULL;
	char err[256];

	if (server_new(fx.loop, &o, routes, sizeof(routes) / sizeof(routes[0]), NULL,
		       &fx.metrics, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_http: %s\n", err);
		abort();
	}
	return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_CHECK(loop_new(&fx.loop) == 0);
	fx.open = start_server(NULL);
	fx.auth = start_server(TOKEN);
	return 0;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	FUZZ_CHECK(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FUZZ_CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
	return fd;
}

/* Send the request, read the answer until EOF, with a bounded number of
 * loop turns; returns how many bytes of answer were kept in resp. */
static size_t exchange(struct server *s, const uint8_t *req, size_t n, char *resp,
		       size_t resplen)
{
	int fd = connect_to(server_port(s));
	size_t sent = 0, got = 0;
	bool eof = false, shut = false;

	for (int turn = 0; turn < MAX_TURNS && !eof; turn++) {
		if (sent < n) {
			ssize_t w = send(fd, req + sent, n - sent, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != ENOTCONN)
				sent = n; /* the server closed on us: stop sending */
		}
		if (sent == n && !shut) {
			(void)shutdown(fd, SHUT_WR);
			shut = true;
		}
		(void)loop_run_once(fx.loop, 1);
		char buf[4096];
		ssize_t rd = recv(fd, buf, sizeof(buf), 0);
		if (rd == 0 || (rd < 0 && errno != EAGAIN))
			eof = true;
		for (ssize_t i = 0; i < rd && got + 1 < resplen; i++)
			resp[got++] = buf[i];
	}
	resp[got] = '\0';
	close(fd);
	return got;
}

static void check_request(struct server *s, const uint8_t *p, size_t n)
{
	char resp[256];
	size_t got = exchange(s, p, n, resp, sizeof(resp));

	if (got >= 7)
		FUZZ_CHECK(strncmp(resp, "HTTP/1.", 7) == 0);
	/* Garbage is answered by the gate, whatever follows it. */
	if (http_request_start((const char *)p, n) < 0)
		FUZZ_CHECK(strncmp(resp, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
	/* Not checked (yet): that the server lets go of the connection soon
	 * after the client closed it.  It takes 100-250 ms here, see README. */
	for (int turn = 0; turn < MAX_TURNS && server_connections(s) > 0; turn++)
		(void)loop_run_once(fx.loop, 1);
}

static void check_clean(const char *in, int (*clean)(const char *, char *, size_t), size_t extra)
{
	size_t outlen = strlen(in) + extra;
	/* A clean path may be longer than its input ("" -> "."): the second
	 * pass gets the room its own input needs. */
	char *out = malloc(outlen), *again = malloc(outlen + extra);

	FUZZ_CHECK(out && again);
	FUZZ_CHECK(clean(in, out, outlen) == 0);
	FUZZ_CHECK(strlen(out) < outlen && strstr(out, "//") == NULL);
	/* A relative result may start with "../"; a rooted one never climbs. */
	if (out[0] == '/')
		FUZZ_CHECK(strstr(out, "/../") == NULL && strstr(out, "/./") == NULL);
	FUZZ_CHECK(clean(out, again, strlen(out) + extra) == 0 && strcmp(out, again) == 0);
	/* One byte short: refused or still fitting, never overrun (ASan). */
	int r = clean(in, again, outlen - 1);
	FUZZ_CHECK(r == -ENAMETOOLONG || (r == 0 && strlen(again) < outlen - 1));
	free(out);
	free(again);
}

static void check_auth(const char *token)
{
	size_t n = strlen(token);
	char *hdr = malloc(n + 16);

	FUZZ_CHECK(hdr != NULL);
	if (n > 0 && !strpbrk(token, " \t")) {
		snprintf(hdr, n + 16, "Bearer %s", token);
		FUZZ_CHECK(http_auth_ok(hdr, token));
		snprintf(hdr, n + 16, "bEARER %s", token);
		FUZZ_CHECK(http_auth_ok(hdr, token));
		snprintf(hdr, n + 16, "Bearer %sx", token);
		FUZZ_CHECK(!http_auth_ok(hdr, token));
		FUZZ_CHECK(!http_auth_ok(NULL, token));
	}
	(void)http_auth_ok(token, TOKEN);
	free(hdr);
}

static void check_start(const uint8_t *p, size_t n)
{
	int decided = 0;

	for (size_t len = 0; len <= n && len <= 2 * HTTP_START_BYTES; len++) {
		int r = http_request_start((const char *)p, len);

		FUZZ_CHECK(r >= -1 && r <= 1);
		FUZZ_CHECK(decided == 0 || r == decided);
		FUZZ_CHECK(len < HTTP_START_BYTES || r != 0);
		decided = r;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode = fuzz_mode(data, size, 5);
	char *s;

	switch (mode) {
	case 0:
	case 3:
		check_request(mode == 0 ? fx.open : fx.auth, data + 1, size - 1);
		break;
	case 1:
	case 2:
		s = fuzz_cstr(data + 1, size - 1);
		FUZZ_CHECK(s != NULL);
		if (mode == 1) {
			check_clean(s, http_path_clean, 2);
			check_clean(s, http_mux_clean, 3);
		} else {
			check_auth(s);
		}
		free(s);
		break;
	case 4:
		check_start(data + 1, size - 1);
		break;
	default:
		break;
	}
	return 0;
}
