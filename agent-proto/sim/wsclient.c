/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wsclient.c — agent-sim's websocket client (the agent dials the VM):
 * the opening handshake by hand, then libwslay's client framing (masked
 * frames, ping/pong, the close handshake) over a non-blocking socket.
 *
 * Like nhooyr.io/websocket with default options, the upgrade offers
 * permessage-deflate; the informant declines it, and an answer that
 * accepted it would be refused here (we only speak plain frames).
 *
 * One reader thread runs sim_ws_run(); any thread may send or close.
 * wslay's context is guarded by a recursive mutex, so the message callback
 * (called with it held) may send an answer.  A pipe wakes the reader when
 * something was queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "sim.h"

#define HEAD_MAX 4096

struct sim_ws {
	int fd;
	int wake[2];
	pthread_mutex_t lock;
	wslay_event_context_ptr ctx;
	sim_ws_text_fn on_text;
	void *arg;
	bool gone;
	uint16_t code;         /* the close status received (1006: none) */
	char reason[128];
};

/* ---- the opening handshake -------------------------------------------------- */

static int dial(const char *hostport, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char host[AP_ADDR_MAX], *colon;
	struct pollfd p;
	int fd, r, soerr = 0;
	socklen_t len = sizeof(soerr);

	snprintf(host, sizeof(host), "%s", hostport);
	colon = strrchr(host, ':');
	if (!colon) {
		snprintf(err, errlen, "%s: expected HOST:PORT", hostport);
		return -EINVAL;
	}
	*colon = '\0';
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r != 0) {
		snprintf(err, errlen, "%s: %s", hostport, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
		snprintf(err, errlen, "connect %s: %s", hostport, strerror(errno));
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return -ECONNREFUSED;
	}
	freeaddrinfo(ai);
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	r = poll(&p, 1, timeout_ms);
	if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
		snprintf(err, errlen, "connect %s: %s", hostport,
			 r == 0 ? "timed out" : strerror(soerr ? soerr : errno));
		close(fd);
		return -ECONNREFUSED;
	}
	return fd;
}

/* Send all of buf before the deadline (poll on a non-blocking socket). */
static int send_all(int fd, const char *buf, size_t len, int timeout_ms)
{
	while (len) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		} else if (poll(&p, 1, timeout_ms) <= 0) {
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* Read the answer's head; bytes after it (early frames) go to *extra. */
static int read_head(int fd, char *head, size_t size, size_t *extra_off, size_t *total,
		     int timeout_ms)
{
	size_t n = 0;
	char *end;

	while (!(head[n] = '\0', end = strstr(head, "\r\n\r\n"))) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t k;

		if (n + 1 >= size)
			return -EMSGSIZE;
		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		k = recv(fd, head + n, size - n - 1, 0);
		if (k == 0)
			return -ECONNRESET;
		if (k < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (k > 0)
			n += (size_t)k;
	}
	*extra_off = (size_t)(end - head) + 4;
	*total = n;
	return 0;
}

/* The value of header name in head ("" if absent), at most size bytes. */
static void head_value(const char *head, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	out[0] = '\0';
	for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n"))
		if (strncasecmp(l + 2, name, n) == 0 && l[2 + n] == ':') {
			const char *v = l + 3 + n;
			size_t len = strcspn(v += strspn(v, " \t"), "\r");

			snprintf(out, size, "%.*s", (int)len, v);
			return;
		}
}

static int accept_key(const char *key, char out[32])
{
	char text[128];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	snprintf(text, sizeof(text), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha1(), NULL) != 1)
		return -EIO;
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	return 0;
}

static int upgrade(int fd, const char *hostport, const char *path, int timeout_ms,
		   char *extra, size_t *extra_len, char *err, size_t errlen)
{
	unsigned char nonce[16];
	char key[32], want[32], got[64], ext[128], req[1024], head[HEAD_MAX];
	size_t off = 0, total = 0;
	int r;

	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce))
		return -EIO;
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: agent-sim\r\nConnection: Upgrade\r\n"
		 "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n"
		 "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
		 path, hostport, key);
	r = send_all(fd, req, strlen(req), timeout_ms);
	if (r == 0)
		r = read_head(fd, head, sizeof(head), &off, &total, timeout_ms);
	if (r < 0) {
		snprintf(err, errlen, "upgrade of %s%s: %s", hostport, path, strerror(-r));
		return r;
	}
	if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
		snprintf(err, errlen, "upgrade of %s%s answered %.*s", hostport, path,
			 (int)strcspn(head, "\r"), head);
		return -EPROTO;
	}
	head_value(head, "Sec-WebSocket-Accept", got, sizeof(got));
	head_value(head, "Sec-WebSocket-Extensions", ext, sizeof(ext));
	if (accept_key(key, want) < 0 || strcmp(got, want) != 0 || ext[0]) {
		snprintf(err, errlen, "upgrade of %s%s: bad Sec-WebSocket-Accept \"%s\" or "
			 "extensions \"%s\"", hostport, path, got, ext);
		return -EPROTO;
	}
	*extra_len = total - off;
	memcpy(extra, head + off, *extra_len);
	return 0;
}

/* ---- wslay over the socket ------------------------------------------------------ */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *user)
{
	struct sim_ws *w = user;
	ssize_t n = recv(w->fd, buf, len, 0);

	(void)flags;
	if (n > 0)
		return n;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	struct sim_ws *w = user;
	ssize_t n = send(w->fd, data, len, MSG_NOSIGNAL);

	(void)flags;
	if (n >= 0)
		return n;
	wslay_event_set_error(ctx, errno == EAGAIN || errno == EINTR ? WSLAY_ERR_WOULDBLOCK
								    : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	(void)user;
	return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
		   void *user)
{
	struct sim_ws *w = user;

	(void)ctx;
	if (a->opcode == WSLAY_TEXT_FRAME)
		w->on_text(w->arg, (const char *)a->msg, a->msg_length);
	else if (a->opcode == WSLAY_CONNECTION_CLOSE && a->msg_length > 2)
		snprintf(w->reason, sizeof(w->reason), "%.*s", (int)(a->msg_length - 2),
			 (const char *)a->msg + 2);
}

int sim_ws_connect(const char *hostport, const char *path, int timeout_ms, sim_ws_text_fn fn,
		   void *arg, struct sim_ws **out, char *err, size_t errlen)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = on_recv, .send_callback = on_send,
		.genmask_callback = on_genmask, .on_msg_recv_callback = on_msg,
	};
	char extra[HEAD_MAX];
	size_t extra_len = 0;
	pthread_mutexattr_t attr;
	struct sim_ws *w;
	int fd = dial(hostport, timeout_ms, err, errlen), r;

	if (fd < 0)
		return fd;
	r = upgrade(fd, hostport, path, timeout_ms, extra, &extra_len, err, errlen);
	w = r == 0 ? calloc(1, sizeof(*w)) : NULL;
	if (w && (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) < 0 ||
		  wslay_event_context_client_init(&w->ctx, &cbs, w) != 0)) {
		snprintf(err, errlen, "cannot set up the websocket client: out of resources");
		free(w);
		w = NULL;
		r = -ENOMEM;
	}
	if (!w || extra_len) {
		/* An answer with frames glued to the 101 does not happen with
		 * a server that waits for our first message; refuse it. */
		if (w) {
			snprintf(err, errlen, "frames before our first message");
			wslay_event_context_free(w->ctx);
			free(w);
		}
		close(fd);
		return r < 0 ? r : -EPROTO;
	}
	w->fd = fd;
	w->on_text = fn;
	w->arg = arg;
	w->code = 1006;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&w->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	*out = w;
	return 0;
}

static void wake(struct sim_ws *w)
{
	ssize_t n = write(w->wake[1], "x", 1);

	(void)n; /* a full pipe is already a wake-up */
}

int sim_ws_send_text(struct sim_ws *w, const char *text)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)text, strlen(text) };
	int r;

	pthread_mutex_lock(&w->lock);
	r = w->gone ? WSLAY_ERR_NO_MORE_MSG : wslay_event_queue_msg(w->ctx, &m);
	pthread_mutex_unlock(&w->lock);
	wake(w);
	return r == 0 ? 0 : -EPIPE;
}

void sim_ws_close(struct sim_ws *w, uint16_t code, const char *reason)
{
	pthread_mutex_lock(&w->lock);
	if (!w->gone)
		(void)wslay_event_queue_close(w->ctx, code, (const uint8_t *)reason,
					      strlen(reason));
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

/* One step: read, write, and say whether the connection is over. */
static bool step(struct sim_ws *w)
{
	int r = 0;

	pthread_mutex_lock(&w->lock);
	if (wslay_event_want_read(w->ctx))
		r = wslay_event_recv(w->ctx);
	if (r == 0 && wslay_event_want_write(w->ctx))
		r = wslay_event_send(w->ctx);
	if (r != 0 || (!wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx)))
		w->gone = true;
	if (wslay_event_get_close_received(w->ctx))
		w->code = wslay_event_get_status_code_received(w->ctx);
	pthread_mutex_unlock(&w->lock);
	return w->gone;
}

void sim_ws_run(struct sim_ws *w)
{
	char drain[64];

	while (!step(w)) {
		struct pollfd p[2] = { { .fd = w->fd, .events = POLLIN }, { .fd = w->wake[0],
									      .events = POLLIN } };

		pthread_mutex_lock(&w->lock);
		if (wslay_event_want_write(w->ctx))
			p[0].events |= POLLOUT;
		pthread_mutex_unlock(&w->lock);
		if (poll(p, 2, 200) < 0 && errno != EINTR)
			break;
		while (read(w->wake[0], drain, sizeof(drain)) > 0)
			;
	}
	pthread_mutex_lock(&w->lock);
	w->gone = true;
	pthread_mutex_unlock(&w->lock);
}

uint16_t sim_ws_close_code(const struct sim_ws *w, const char **reason)
{
	*reason = w->reason;
	return w->code;
}

void sim_ws_free(struct sim_ws *w)
{
	if (!w)
		return;
	wslay_event_context_free(w->ctx);
	close(w->fd);
	close(w->wake[0]);
	close(w->wake[1]);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
