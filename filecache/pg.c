/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg.c — the file cache client object: its fds, the operation queue, the
 * ensure back-off, deferred completions and the public API.
 *
 * Request functions only queue and poke the wake eventfd; operations start
 * and callbacks run from fc_process(), so a callback never runs inside the
 * caller's own request and may itself make new requests.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "pg_internal.h"

enum { TAG_WAKE = 1, TAG_OP_TIMER = 2, TAG_RETRY_TIMER = 3 };

void fc_op_list_push(struct fc_op_list *l, struct fc_op *op)
{
	op->next = NULL;
	if (l->tail)
		l->tail->next = op;
	else
		l->head = op;
	l->tail = op;
}

static void op_list_push_front(struct fc_op_list *l, struct fc_op *op)
{
	op->next = l->head;
	l->head = op;
	if (!l->tail)
		l->tail = op;
}

static struct fc_op *op_list_pop(struct fc_op_list *l)
{
	struct fc_op *op = l->head;
	if (op) {
		l->head = op->next;
		if (!l->head)
			l->tail = NULL;
		op->next = NULL;
	}
	return op;
}

int fc_timer_arm(int tfd, uint32_t ms)
{
	struct itimerspec its = { 0 };
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	return timerfd_settime(tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

static void wake(struct fc *fc)
{
	uint64_t one = 1;
	/* Fails only when the counter is saturated, i.e. already readable. */
	(void)!write(fc->wake_fd, &one, sizeof(one));
}

static void drain(int fd)
{
	uint64_t v;
	(void)!read(fd, &v, sizeof(v));
}

static void finish_op(struct fc *fc, struct fc_op *op, int err, uint64_t result,
		      const char *msg)
{
	op->err = err;
	op->result = err ? 0 : result;
	snprintf(op->msg, sizeof(op->msg), "%s", msg);
	fc_op_list_push(&fc->done, op);
	wake(fc);
}

static void schedule_retry(struct fc *fc, struct fc_op *op, int err, const char *msg)
{
	uint32_t delay = op->backoff_ms;

	op->backoff_ms = delay >= fc->retry_max_ms / 2 ? fc->retry_max_ms : delay * 2;
	if (fc_timer_arm(fc->retry_timer_fd, delay) < 0) {
		finish_op(fc, op, err, 0, msg); /* cannot wait: report the failure */
		return;
	}
	fc->retry = op;
	/* Last: the callback may supersede or cancel op. */
	if (op->retry_cb)
		op->retry_cb(op->arg, err, delay, msg);
}

void fc_end_cur(struct fc *fc, int err, uint64_t result, const char *msg)
{
	struct fc_op *op = fc->cur;
	char both[FC_MSG_MAX];

	fc->cur = NULL;
	wake(fc); /* the next operation may start */
	if (!op)
		return;
	if (op->kind != FC_OP_ENSURE || err == 0 || fc->closing) {
		finish_op(fc, op, err, result, msg);
	} else if (op->superseded) {
		snprintf(both, sizeof(both), "superseded by a newer size request; last attempt: %s",
			 msg);
		finish_op(fc, op, -ECANCELED, 0, both);
	} else {
		schedule_retry(fc, op, err, msg);
	}
}

/* A newer size request replaces every size request not yet running. */
static void supersede(struct fc *fc)
{
	struct fc_op_list keep = { 0 };
	struct fc_op *op;

	while ((op = op_list_pop(&fc->queue))) {
		if (op->kind == FC_OP_READ)
			fc_op_list_push(&keep, op);
		else
			finish_op(fc, op, -ECANCELED, 0, "superseded by a newer size request");
	}
	fc->queue = keep;
	if (fc->retry) {
		(void)fc_timer_arm(fc->retry_timer_fd, 0);
		finish_op(fc, fc->retry, -ECANCELED, 0, "superseded by a newer size request");
		fc->retry = NULL;
	}
	if (fc->cur && fc->cur->kind == FC_OP_ENSURE)
		fc->cur->superseded = true;
}

static int enqueue(struct fc *fc, enum fc_op_kind kind, uint64_t bytes, fc_done_cb cb,
		   fc_retry_cb retry_cb, void *arg)
{
	if (fc->closing)
		return -ESHUTDOWN;
	struct fc_op *op = malloc(sizeof(*op));
	if (!op)
		return -ENOMEM;
	*op = (struct fc_op){ .kind = kind, .bytes = bytes, .cb = cb, .retry_cb = retry_cb,
			      .arg = arg, .backoff_ms = fc->retry_initial_ms };
	if (kind != FC_OP_READ)
		supersede(fc);
	fc_op_list_push(&fc->queue, op);
	wake(fc);
	return 0;
}

int fc_set_size(struct fc *fc, uint64_t bytes, fc_done_cb cb, void *arg)
{
	return enqueue(fc, FC_OP_SET, bytes, cb, NULL, arg);
}

int fc_ensure_size(struct fc *fc, uint64_t bytes, fc_done_cb cb, fc_retry_cb retry_cb,
		   void *arg)
{
	return enqueue(fc, FC_OP_ENSURE, bytes, cb, retry_cb, arg);
}

int fc_read_size(struct fc *fc, fc_done_cb cb, void *arg)
{
	return enqueue(fc, FC_OP_READ, 0, cb, NULL, arg);
}

static void run_callbacks(struct fc_op_list *list)
{
	struct fc_op *op;

	while ((op = op_list_pop(list))) {
		if (op->cb)
			op->cb(op->arg, op->err, op->result, op->msg);
		free(op);
	}
}

/* Deliver finished operations and start the next one until neither is
 * possible; callbacks may add work. */
static void run_pending(struct fc *fc)
{
	for (;;) {
		if (fc->done.head) {
			struct fc_op_list done = fc->done;
			fc->done = (struct fc_op_list){ 0 };
			run_callbacks(&done);
		} else if (!fc->cur && fc->queue.head) {
			fc->cur = op_list_pop(&fc->queue);
			fc_query_start(fc);
		} else {
			return;
		}
	}
}

int fc_process(struct fc *fc)
{
	struct epoll_event evs[8];
	int n = epoll_wait(fc->epfd, evs, 8, 0);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		switch (evs[i].data.u32) {
		case TAG_WAKE:
			drain(fc->wake_fd);
			break;
		case TAG_OP_TIMER:
			drain(fc->op_timer_fd);
			fc_query_timeout(fc);
			break;
		case TAG_RETRY_TIMER:
			drain(fc->retry_timer_fd);
			if (fc->retry) {
				op_list_push_front(&fc->queue, fc->retry);
				fc->retry = NULL;
			}
			break;
		default:
			fc_query_socket_ready(fc, evs[i].events);
			break;
		}
	}
	run_pending(fc);
	return 0;
}

void fc_cancel_all(struct fc *fc)
{
	struct fc_op_list cancel = { 0 };
	struct fc_op *op;

	fc_query_close(fc);
	(void)fc_timer_arm(fc->retry_timer_fd, 0);
	if (fc->cur)
		fc_op_list_push(&cancel, fc->cur);
	if (fc->retry)
		fc_op_list_push(&cancel, fc->retry);
	fc->cur = fc->retry = NULL;
	while ((op = op_list_pop(&fc->queue)))
		fc_op_list_push(&cancel, op);
	for (op = cancel.head; op; op = op->next) {
		op->err = -ECANCELED;
		op->result = 0;
		snprintf(op->msg, sizeof(op->msg), "file cache: operation cancelled");
	}
	/* Finished ones keep their results and go first, in order. */
	struct fc_op_list all = fc->done;
	fc->done = (struct fc_op_list){ 0 };
	if (cancel.head) {
		if (all.tail)
			all.tail->next = cancel.head;
		else
			all.head = cancel.head;
		all.tail = cancel.tail;
	}
	run_callbacks(&all);
}

static int epoll_watch(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int open_fds(struct fc *fc)
{
	fc->epfd = epoll_create1(EPOLL_CLOEXEC);
	fc->op_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	fc->retry_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	fc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fc->epfd < 0 || fc->op_timer_fd < 0 || fc->retry_timer_fd < 0 || fc->wake_fd < 0)
		return -errno;
	int r = epoll_watch(fc->epfd, fc->wake_fd, TAG_WAKE);
	if (r == 0)
		r = epoll_watch(fc->epfd, fc->op_timer_fd, TAG_OP_TIMER);
	if (r == 0)
		r = epoll_watch(fc->epfd, fc->retry_timer_fd, TAG_RETRY_TIMER);
	return r;
}

static int copy_setting(char *dst, const char *src, const char *fallback, const char *what,
			char *err, size_t errlen)
{
	if (!src)
		src = fallback;
	if (fc_setting_name_check(src) < 0) {
		snprintf(err, errlen,
			 "file cache: %s \"%.64s\" is not a valid setting name (1-128 characters "
			 "of A-Z a-z 0-9 _ . starting with a letter or _); it is used in SQL",
			 what, src);
		return -EINVAL;
	}
	snprintf(dst, FC_SETTING_MAX, "%s", src);
	return 0;
}

static int check_connstr(struct fc *fc, char *err, size_t errlen)
{
	char why[384];
	int r = fc_connstr_check(fc->connstr, why, sizeof(why));

	if (r == 0)
		r = fc_secrets_get(fc->connstr, &fc->secrets);
	if (r < 0)
		snprintf(err, errlen, "file cache: invalid connection string: %s",
			 r == -ENOMEM ? "out of memory" : why);
	return r;
}

static int configure(struct fc *fc, const struct fc_pg_config *cfg, char *err, size_t errlen)
{
	int r = copy_setting(fc->size_setting, cfg->size_setting, "neon.file_cache_size_limit",
			     "size_setting", err, errlen);
	if (r == 0)
		r = copy_setting(fc->max_setting, cfg->max_size_setting,
				 "neon.max_file_cache_size", "max_size_setting", err, errlen);
	if (r < 0)
		return r;
	snprintf(fc->app_name, sizeof(fc->app_name), "%s",
		 cfg->application_name ? cfg->application_name : "vm-informant");
	fc->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 1000;
	fc->query_ms = cfg->query_timeout_ms ? cfg->query_timeout_ms : 1000;
	fc->retry_initial_ms = cfg->retry_initial_ms ? cfg->retry_initial_ms : 250;
	fc->retry_max_ms = cfg->retry_max_ms ? cfg->retry_max_ms : 10000;
	if (fc->retry_max_ms < fc->retry_initial_ms)
		fc->retry_max_ms = fc->retry_initial_ms;
	fc->connstr = strdup(cfg->connstr ? cfg->connstr : "");
	if (!fc->connstr) {
		snprintf(err, errlen, "file cache: out of memory");
		return -ENOMEM;
	}
	(void)fc_connstr_redact(fc->connstr, fc->display, sizeof(fc->display));
	return check_connstr(fc, err, errlen);
}

int fc_new(const struct fc_pg_config *cfg, struct fc **out, char *err, size_t errlen)
{
	struct fc *fc = calloc(1, sizeof(*fc));
	int r;

	*out = NULL;
	if (!fc) {
		snprintf(err, errlen, "file cache: out of memory");
		return -ENOMEM;
	}
	fc->sock = fc->epfd = fc->op_timer_fd = fc->retry_timer_fd = fc->wake_fd = -1;
	r = configure(fc, cfg, err, errlen);
	if (r == 0 && (r = open_fds(fc)) < 0)
		snprintf(err, errlen, "file cache: creating epoll/timer/event fds failed: %s",
			 strerror(-r));
	if (r < 0) {
		fc_free(fc);
		return r;
	}
	*out = fc;
	return 0;
}

static void close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

void fc_free(struct fc *fc)
{
	if (!fc)
		return;
	fc->closing = true;
	fc_cancel_all(fc);
	close_fd(fc->wake_fd);
	close_fd(fc->retry_timer_fd);
	close_fd(fc->op_timer_fd);
	close_fd(fc->epfd);
	fc_secrets_clear(&fc->secrets);
	if (fc->connstr)
		explicit_bzero(fc->connstr, strlen(fc->connstr));
	free(fc->connstr);
	free(fc);
}

int fc_fd(const struct fc *fc)
{
	return fc->epfd;
}

/* One entry of a comma-separated host list: a name libpq must look up? */
static bool fc_host_is_name(const char *h, size_t len)
{
	char buf[256];
	unsigned char addr[sizeof(struct in6_addr)];

	if (len == 0 || h[0] == '/' || h[0] == '@' || len >= sizeof(buf))
		return false;
	memcpy(buf, h, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, addr) != 1 && inet_pton(AF_INET6, buf, addr) != 1;
}

bool fc_connstr_resolves_names(const char *connstr)
{
	PQconninfoOption *opts = fc_pq.PQconninfoParse(connstr, NULL);
	const char *host = NULL, *hostaddr = NULL;
	bool names = false;

	if (!opts)
		return false;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (o->val && strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (o->val && strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
	}
	for (const char *p = host; p && *p && !(hostaddr && *hostaddr);) {
		size_t len = strcspn(p, ",");

		names = names || fc_host_is_name(p, len);
		p += len + (p[len] == ',');
	}
	fc_pq.PQconninfoFree(opts);
	return names;
}

const char *fc_connstr_display(const struct fc *fc)
{
	return fc->display;
}
