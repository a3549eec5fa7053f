/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.c — asynchronous client for the agent's endpoints (docs/informant-protocol.md §6).
 *
 * libcurl's multi interface does the HTTP (loaded and initialised on the
 * first call: curl_lib.h); we give it our own epoll fd for
 * its sockets (CURLMOPT_SOCKETFUNCTION) and a timerfd inside that epoll for
 * its timeouts (CURLMOPT_TIMERFUNCTION).  The caller therefore watches one
 * fd and calls ap_client_process() when it is readable; nothing here ever
 * blocks or sleeps.
 *
 * Error codes in struct ap_call_result.err:
 *   -ETIMEDOUT     the call's budget ran out
 *   -ECONNREFUSED  (or the socket's errno) connecting failed
 *   -EMSGSIZE      the reply body exceeded AP_CLIENT_MAX_BODY
 *   -EBADMSG       the 200 body is not a valid AgentMessage<AgentIdentification>
 *   -EPROTO        non-200 status (redirects included), sequence number 0,
 *                  or another agent ID
 *   -ENOMEM, -EIO  out of memory / any other transfer failure
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent_proto.h"
#include "client_internal.h"
#include "curl_lib.h"

struct ap_call {
	struct ap_client *client;
	struct ap_call *prev, *next;
	CURL *easy;
	uint64_t id;
	enum ap_call_kind kind;
	struct ap_uuid expected;
	ap_call_cb cb;
	void *arg;
	char *request;        /* JSON body sent (curl does not copy it) */
	char *body;           /* reply body received so far */
	size_t body_len, body_cap;
	bool body_too_large, body_oom;
	uint64_t start_ns;
	char url[AP_ADDR_MAX + 32];
	char curl_err[CURL_ERROR_SIZE];
};

struct ap_client {
	CURLM *multi;
	int epfd;
	int timerfd;
	struct curl_slist *headers;
	struct ap_call *calls;
	size_t ncalls;
	uint64_t last_id;
	bool in_process;      /* callbacks are running: defer a free */
	bool free_requested;
};

static const char *const call_path[] = {
	[AP_CALL_ID] = "/id",
	[AP_CALL_SUSPEND] = "/suspend",
	[AP_CALL_RESUME] = "/resume",
	[AP_CALL_TRY_UPSCALE] = "/try-upscale",
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- judging a reply (pure) ------------------------------------------------ */

/* Causes are cut to fit: a truncated message still says what failed. */
static void set_cause(struct ap_call_result *res, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_cause(struct ap_call_result *res, int err, const char *fmt, ...)
{
	va_list ap;

	res->err = err;
	va_start(ap, fmt);
	vsnprintf(res->cause, sizeof(res->cause), fmt, ap);
	va_end(ap);
}

void ap_client_judge(const struct ap_uuid *expected, long status, const char *body, size_t len,
		     struct ap_call_result *res)
{
	struct ap_agent_ident_msg msg;
	char reason[256];
	char want[AP_UUID_STRLEN + 1], got[AP_UUID_STRLEN + 1];

	res->http_status = status;
	res->seq = 0;
	res->cause[0] = '\0';
	if (!body)
		body = "";
	if (status != 200) {
		/* %.*s: the agent's text as sent, cut at a NUL or at the buffer's end. */
		set_cause(res, -EPROTO, "Unsuccessful response status %ld: %.*s",
			  status, (int)(len > AP_CLIENT_MAX_BODY ? AP_CLIENT_MAX_BODY : len), body);
		return;
	}
	if (ap_decode_agent_ident_msg(body, len, &msg, reason, sizeof(reason)) < 0) {
		set_cause(res, -EBADMSG, "Error reading response as JSON: %s", reason);
		return;
	}
	res->seq = msg.seq;
	if (msg.seq == 0) {
		set_cause(res, -EPROTO, "Got invalid sequence number 0");
		return;
	}
	if (!ap_uuid_equal(&msg.agent_id, expected)) {
		ap_uuid_format(expected, want);
		ap_uuid_format(&msg.agent_id, got);
		set_cause(res, -EPROTO, "Bad agent identification: expected \"%s\" but got \"%s\"",
			  want, got);
		return;
	}
	res->err = 0;
}

/* ---- curl callbacks ----------------------------------------------------------- */

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct ap_client *c = userp;
	struct epoll_event ev = { .data.fd = s };

	if (what == CURL_POLL_REMOVE) {
		/* The socket may already be gone from the set; nothing to undo then. */
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
		return 0;
	if (errno == ENOENT && epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) == 0)
		return 0;
	return -1; /* curl fails the transfers on this socket */
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct ap_client *c = userp;
	struct itimerspec its = { 0 };

	/* 0 means "act now": a 1 ns timer makes the fd readable at once, because
	 * curl must not be re-entered from this callback. */
	if (timeout_ms == 0) {
		its.it_value.tv_nsec = 1;
	} else if (timeout_ms > 0) {
		its.it_value.tv_sec = timeout_ms / 1000;
		its.it_value.tv_nsec = (timeout_ms % 1000) * 1000000L;
	}
	return timerfd_settime(c->timerfd, 0, &its, NULL) < 0 ? -1 : 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct ap_call *call = userp;
	size_t n = size * nmemb;
	size_t cap;
	char *grown;

	if (n > AP_CLIENT_MAX_BODY - call->body_len) {
		call->body_too_large = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (call->body_len + n + 1 > call->body_cap) {
		cap = call->body_cap ? call->body_cap : 256;
		while (cap < call->body_len + n + 1)
			cap *= 2;
		grown = realloc(call->body, cap);
		if (!grown) {
			call->body_oom = true;
			return 0;
		}
		call->body = grown;
		call->body_cap = cap;
	}
	memcpy(call->body + call->body_len, data, n);
	call->body_len += n;
	call->body[call->body_len] = '\0';
	return n;
}

/* ---- calls ------------------------------------------------------------------- */

static void call_destroy(struct ap_client *c, struct ap_call *call)
{
	if (call->easy) {
		ap_curl.curl_multi_remove_handle(c->multi, call->easy);
		ap_curl.curl_easy_cleanup(call->easy);
	}
	if (call->prev)
		call->prev->next = call->next;
	else if (c->calls == call)
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	if (call->client)
		c->ncalls--;
	free(call->request);
	free(call->body);
	free(call);
}

static struct ap_call *call_find(const struct ap_client *c, uint64_t id)
{
	for (struct ap_call *call = c->calls; call; call = call->next)
		if (call->id == id)
			return call;
	return NULL;
}

/* Errno for a transfer that did not produce a complete reply. */
static int transfer_errno(const struct ap_call *call, CURLcode code)
{
	long os_errno = 0;

	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_COULDNT_CONNECT:
		if (ap_curl.curl_easy_getinfo(call->easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
		    os_errno > 0)
			return (int)-os_errno;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	default:
		return -EIO;
	}
}

static void call_result(struct ap_call *call, CURLcode code, struct ap_call_result *res)
{
	long status = 0;
	const char *method = call->kind == AP_CALL_ID ? "Get" : "Post";

	memset(res, 0, sizeof(*res));
	ap_curl.curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
	if (code == CURLE_OK) {
		ap_client_judge(&call->expected, status, call->body, call->body_len, res);
	} else if (call->body_too_large) {
		res->http_status = status;
		set_cause(res, -EMSGSIZE, "Error reading response body: larger than %d bytes",
			  AP_CLIENT_MAX_BODY);
	} else if (call->body_oom) {
		res->http_status = status;
		set_cause(res, -ENOMEM, "Out of memory reading response body");
	} else {
		/* Like Go's url.Error: `Post "http://…/resume": <reason>`. */
		res->http_status = status;
		set_cause(res, transfer_errno(call, code), "%s \"%s\": %s", method, call->url,
			  call->curl_err[0] ? call->curl_err : ap_curl.curl_easy_strerror(code));
	}
	res->elapsed_ms = (double)(now_ns() - call->start_ns) / 1e6;
}

/* Only what may appear in host:port (names, IPv4, [IPv6]); keeps the URL ours. */
static bool serve_addr_ok(const char *addr)
{
	size_t len = strnlen(addr, AP_ADDR_MAX);

	if (len == 0 || len >= AP_ADDR_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = addr[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr(".-_:[]%", ch)))
			return false;
	}
	return true;
}

static char *request_body(enum ap_call_kind kind, const struct ap_uuid *id)
{
	switch (kind) {
	case AP_CALL_ID:
		return strdup("{}");
	case AP_CALL_SUSPEND:
	case AP_CALL_RESUME:
		return ap_encode_expected_id(id);
	case AP_CALL_TRY_UPSCALE:
		return ap_encode_more_resources(false, true, id);
	}
	return NULL;
}

static int call_setup(struct ap_client *c, struct ap_call *call, uint64_t timeout_ms)
{
	CURL *e = call->easy;
	int r = 0;

	r |= ap_curl.curl_easy_setopt(e, CURLOPT_URL, call->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
#endif
	/* A GET with a body for /id; POST for the others. */
	if (call->kind == AP_CALL_ID)
		r |= ap_curl.curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->request);
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(call->request));
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_USERAGENT, "vm-informant");
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never via $http_proxy */
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->curl_err);
	r |= ap_curl.curl_easy_setopt(e, CURLOPT_PRIVATE, call);
	return r ? -EINVAL : 0;
}

static int start_curl(struct ap_client *c);

int ap_client_call(struct ap_client *c, enum ap_call_kind kind, const char *serve_addr,
		   const struct ap_uuid *agent_id, uint64_t timeout_ms, ap_call_cb cb, void *arg,
		   uint64_t *call_id)
{
	struct ap_call *call;
	int r;

	if (!c || c->free_requested || (unsigned)kind > AP_CALL_TRY_UPSCALE || !serve_addr ||
	    !serve_addr_ok(serve_addr) || !agent_id || !cb || timeout_ms == 0 ||
	    timeout_ms > 24u * 3600 * 1000)
		return -EINVAL;
	if (!c->multi) {
		r = start_curl(c);
		if (r < 0)
			return r;
	}
	call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	call->kind = kind;
	call->expected = *agent_id;
	call->cb = cb;
	call->arg = arg;
	snprintf(call->url, sizeof(call->url), "http://%s%s", serve_addr, call_path[kind]);
	call->request = request_body(kind, agent_id);
	call->easy = ap_curl.curl_easy_init();
	if (!call->request || !call->easy) {
		r = -ENOMEM;
		goto fail;
	}
	r = call_setup(c, call, timeout_ms);
	if (r < 0)
		goto fail;
	call->start_ns = now_ns();
	if (ap_curl.curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
		r = -ENOMEM;
		goto fail;
	}
	call->client = c;
	call->id = ++c->last_id;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	c->ncalls++;
	if (call_id)
		*call_id = call->id;
	return 0;
fail:
	if (call->easy)
		ap_curl.curl_easy_cleanup(call->easy);
	call->easy = NULL;
	call_destroy(c, call);
	return r;
}

int ap_client_cancel(struct ap_client *c, uint64_t call_id)
{
	struct ap_call *call = c ? call_find(c, call_id) : NULL;

	if (!call)
		return -ENOENT;
	call_destroy(c, call);
	return 0;
}

size_t ap_client_pending(const struct ap_client *c)
{
	return c ? c->ncalls : 0;
}

/* ---- the client ------------------------------------------------------------- */

static void client_release(struct ap_client *c)
{
	while (c->calls)
		call_destroy(c, c->calls);
	if (c->multi) {
		ap_curl.curl_multi_cleanup(c->multi);
		ap_curl.curl_slist_free_all(c->headers);
		ap_curl.curl_global_cleanup();
	}
	if (c->timerfd >= 0)
		close(c->timerfd);
	if (c->epfd >= 0)
		close(c->epfd);
	free(c);
}

/* libcurl on the first call (curl_lib.h says why not at start): loaded,
 * initialised, a multi handle on our epoll and timerfd.  -ELIBACC when the
 * library cannot be loaded, -ENOMEM, -EINVAL. */
static int start_curl(struct ap_client *c)
{
	struct curl_slist *h;
	int r;

	r = ap_curl_load();
	if (r < 0)
		return r;
	if (ap_curl.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	c->multi = ap_curl.curl_multi_init();
	if (!c->multi) {
		ap_curl.curl_global_cleanup();
		return -ENOMEM;
	}
	if (ap_curl.curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
	    ap_curl.curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    ap_curl.curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
	    ap_curl.curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
		return -EINVAL; /* client_release() cleans up */
	/* No Content-Type (the agent ignores it), no Accept, no Expect: 100-continue. */
	for (const char *const *name = (const char *const[]){ "Content-Type:", "Accept:",
							       "Expect:", NULL };
	     *name; name++) {
		h = ap_curl.curl_slist_append(c->headers, *name);
		if (!h)
			return -ENOMEM;
		c->headers = h;
	}
	return 0;
}

int ap_client_new(struct ap_client **out)
{
	struct ap_client *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };
	int r;

	if (!c)
		return -ENOMEM;
	c->timerfd = -1;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0)
		goto fail;
	c->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->timerfd < 0)
		goto fail;
	ev.data.fd = c->timerfd;
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->timerfd, &ev) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	r = -errno;
	client_release(c);
	return r;
}

void ap_client_free(struct ap_client *c)
{
	if (!c)
		return;
	while (c->calls)
		call_destroy(c, c->calls);
	if (c->in_process) {
		/* Called from a callback: ap_client_process() frees on its way out. */
		c->free_requested = true;
		return;
	}
	client_release(c);
}

int ap_client_fd(const struct ap_client *c)
{
	return c ? c->epfd : -EINVAL;
}

/* Deliver every finished call.  Each message is copied out and its call
 * destroyed before the callback runs, so a callback may start or cancel
 * calls (removing a handle also drops its queued messages in curl). */
static void deliver_finished(struct ap_client *c)
{
	struct ap_call_result res;
	struct ap_call *call;
	CURLMsg *msg;
	char *priv;
	int left;
	ap_call_cb cb;
	void *arg;

	while (!c->free_requested && (msg = ap_curl.curl_multi_info_read(c->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		priv = NULL;
		if (ap_curl.curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
		    !priv)
			continue;
		call = (struct ap_call *)priv;
		call_result(call, msg->data.result, &res);
		cb = call->cb;
		arg = call->arg;
		call_destroy(c, call);
		cb(arg, &res);
	}
}

int ap_client_process(struct ap_client *c)
{
	struct epoll_event evs[32];
	uint64_t expirations;
	int n, running, mask, r = 0;

	if (!c)
		return -EINVAL;
	if (c->in_process)
		return -EBUSY;
	if (!c->multi)
		return 0; /* no call yet: libcurl not even loaded */
	n = epoll_wait(c->epfd, evs, 32, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		CURLMcode mc;

		if (evs[i].data.fd == c->timerfd) {
			if (read(c->timerfd, &expirations, sizeof(expirations)) < 0 &&
			    errno != EAGAIN)
				r = -errno;
			mc = ap_curl.curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		} else {
			mask = 0;
			if (evs[i].events & EPOLLIN)
				mask |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				mask |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				mask |= CURL_CSELECT_ERR;
			mc = ap_curl.curl_multi_socket_action(c->multi, evs[i].data.fd, mask, &running);
		}
		if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
			r = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
	}
	c->in_process = true;
	deliver_finished(c);
	c->in_process = false;
	if (c->free_requested)
		client_release(c);
	return r;
}
