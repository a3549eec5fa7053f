/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_query.c — one file cache operation on its own libpq connection, using
 * only the non-blocking API: PQconnectStartParams + PQconnectPoll, then one
 * statement at a time with PQsendQuery / PQflush / PQconsumeInput /
 * PQisBusy / PQgetResult.  Each statement is sent on its own (autocommit):
 * ALTER SYSTEM cannot run inside a transaction block, which a
 * multi-statement query string would be.
 *
 * The libpq socket is watched through the object's epoll fd; libpq may
 * replace its socket while connecting (another host or address, SSL or GSS
 * fallback), so the registration follows fc_pq.PQsocket() on every step.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "pg_internal.h"

#define FC_TAG_SOCK 4u

/* libpq prints notices to stderr by default; a library must stay quiet. */
static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void watch_socket(struct fc *fc, uint32_t events)
{
	int s = fc_pq.PQsocket(fc->conn);
	struct epoll_event ev = { .events = events, .data.u32 = FC_TAG_SOCK };

	if (fc->sock >= 0 && fc->sock != s)
		(void)epoll_ctl(fc->epfd, EPOLL_CTL_DEL, fc->sock, NULL); /* may be closed */
	fc->sock = -1;
	if (s < 0)
		return;
	/* The same number may now name a new socket that epoll has dropped
	 * together with the old one: MOD, and ADD when it is unknown. */
	if (epoll_ctl(fc->epfd, EPOLL_CTL_MOD, s, &ev) < 0 &&
	    epoll_ctl(fc->epfd, EPOLL_CTL_ADD, s, &ev) < 0)
		return;
	fc->sock = s;
}

void fc_query_close(struct fc *fc)
{
	if (fc->sock >= 0)
		(void)epoll_ctl(fc->epfd, EPOLL_CTL_DEL, fc->sock, NULL);
	fc->sock = -1;
	fc_pq.PQclear(fc->res);
	fc->res = NULL;
	if (fc->conn)
		fc_pq.PQfinish(fc->conn);
	fc->conn = NULL;
	fc->connecting = false;
	(void)fc_timer_arm(fc->op_timer_fd, 0);
}

/* libpq messages end with a newline and may span lines: one log line. */
static void one_line(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	for (; in && *in && n + 1 < outlen; in++)
		out[n++] = (*in == '\n' || *in == '\r') ? ' ' : *in;
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

static void fail(struct fc *fc, int err, const char *what, const char *detail)
{
	char line[384], clean[384], msg[FC_MSG_MAX];

	/* libpq's messages quote hosts, users, database names and socket
	 * paths: whichever of them equals a password is masked. */
	one_line(detail, line, sizeof(line));
	fc_secrets_mask(&fc->secrets, line, clean, sizeof(clean));
	snprintf(msg, sizeof(msg), "file cache: %s (Postgres at \"%.200s\")%s%s", what, fc->display,
		 clean[0] ? ": " : "", clean);
	fc_query_close(fc);
	fc_end_cur(fc, err, 0, msg);
}

static void statement_text(const struct fc *fc, char *sql, size_t len)
{
	switch (fc->step) {
	case FC_STEP_TIMEOUT:
		snprintf(sql, len, "SET statement_timeout = %" PRIu32, fc->query_ms);
		break;
	case FC_STEP_READ_SIZE:
		snprintf(sql, len, "SELECT pg_size_bytes(current_setting('%s'))", fc->size_setting);
		break;
	case FC_STEP_READ_MAX:
		snprintf(sql, len, "SELECT pg_size_bytes(current_setting('%s'))", fc->max_setting);
		break;
	case FC_STEP_ALTER:
		snprintf(sql, len, "ALTER SYSTEM SET %s = %" PRIu64, fc->size_setting, fc->mb);
		break;
	case FC_STEP_RELOAD:
		snprintf(sql, len, "SELECT pg_reload_conf()");
		break;
	}
}

static void send_step(struct fc *fc)
{
	char sql[256];

	statement_text(fc, sql, sizeof(sql));
	if (!fc_pq.PQsendQuery(fc->conn, sql)) {
		fail(fc, -ECONNRESET, "sending a statement failed", fc_pq.PQerrorMessage(fc->conn));
		return;
	}
	int r = fc_pq.PQflush(fc->conn);
	if (r < 0) {
		fail(fc, -ECONNRESET, "sending a statement failed", fc_pq.PQerrorMessage(fc->conn));
		return;
	}
	watch_socket(fc, EPOLLIN | (r == 1 ? EPOLLOUT : 0));
}

static void connected(struct fc *fc)
{
	fc->connecting = false;
	if (fc_pq.PQsetnonblocking(fc->conn, 1) != 0) {
		fail(fc, -EIO, "switching the connection to non-blocking mode failed",
		     fc_pq.PQerrorMessage(fc->conn));
		return;
	}
	if (fc_timer_arm(fc->op_timer_fd, fc->query_ms) < 0) {
		fail(fc, -errno, "arming the query timer failed", strerror(errno));
		return;
	}
	fc->step = FC_STEP_TIMEOUT;
	send_step(fc);
}

static void connect_poll(struct fc *fc)
{
	switch (fc_pq.PQconnectPoll(fc->conn)) {
	case PGRES_POLLING_READING:
		watch_socket(fc, EPOLLIN);
		break;
	case PGRES_POLLING_WRITING:
		watch_socket(fc, EPOLLOUT);
		break;
	case PGRES_POLLING_OK:
		connected(fc);
		break;
	default:
		fail(fc, -ECONNREFUSED, "connecting failed", fc_pq.PQerrorMessage(fc->conn));
		break;
	}
}

void fc_query_start(struct fc *fc)
{
	const char *const keywords[] = { "application_name", "dbname", NULL };
	const char *const values[] = { fc->app_name, fc->connstr, NULL };

	fc->sock = -1;
	fc->res = NULL;
	/* application_name comes before the expanded connstr: the connstr's
	 * own application_name, if any, wins. */
	fc->conn = fc_pq.PQconnectStartParams(keywords, values, 1);
	if (!fc->conn) {
		fail(fc, -ENOMEM, "out of memory starting a connection", NULL);
		return;
	}
	fc_pq.PQsetNoticeProcessor(fc->conn, ignore_notice, NULL);
	if (fc_pq.PQstatus(fc->conn) == CONNECTION_BAD) {
		fail(fc, -ECONNREFUSED, "connecting failed", fc_pq.PQerrorMessage(fc->conn));
		return;
	}
	if (fc_timer_arm(fc->op_timer_fd, fc->connect_ms) < 0) {
		fail(fc, -errno, "arming the connect timer failed", strerror(errno));
		return;
	}
	fc->connecting = true;
	/* libpq's protocol: start as if PQconnectPoll asked for writing. */
	watch_socket(fc, EPOLLOUT);
	if (fc->sock < 0)
		fail(fc, -EIO, "watching the connection's socket failed", strerror(errno));
}

void fc_query_timeout(struct fc *fc)
{
	char what[128];

	if (!fc->cur || !fc->conn)
		return;
	if (fc->connecting)
		snprintf(what, sizeof(what), "connecting timed out after %" PRIu32 " ms",
			 fc->connect_ms);
	else
		snprintf(what, sizeof(what), "statements did not finish within %" PRIu32 " ms",
			 fc->query_ms);
	fail(fc, -ETIMEDOUT, what, NULL);
}

/* SQLSTATE → errno for the callback. */
static int sql_error(const PGresult *res)
{
	const char *state = fc_pq.PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (!state)
		return -EIO;
	if (strcmp(state, "42501") == 0) /* insufficient_privilege */
		return -EACCES;
	if (strcmp(state, "42704") == 0) /* undefined_object: unknown setting */
		return -ENOENT;
	if (strcmp(state, "57014") == 0) /* query_canceled: statement_timeout */
		return -ETIMEDOUT;
	return -EIO;
}

/* One row, one column, a non-negative decimal integer. */
static int result_uint(const PGresult *res, uint64_t *out, char *why, size_t whylen)
{
	if (fc_pq.PQntuples(res) != 1 || fc_pq.PQnfields(res) != 1) {
		snprintf(why, whylen, "expected one row with one column, got %d rows, %d columns",
			 fc_pq.PQntuples(res), fc_pq.PQnfields(res));
		return -EBADMSG;
	}
	if (fc_pq.PQgetisnull(res, 0, 0)) {
		snprintf(why, whylen, "expected an integer, got NULL");
		return -EBADMSG;
	}
	const char *text = fc_pq.PQgetvalue(res, 0, 0);
	size_t n = strlen(text);
	bool digits = n > 0 && n <= 19;
	for (size_t i = 0; digits && i < n; i++)
		digits = text[i] >= '0' && text[i] <= '9';
	if (!digits) {
		snprintf(why, whylen, "expected a non-negative integer, got \"%.40s\"", text);
		return -EBADMSG;
	}
	*out = strtoull(text, NULL, 10);
	return 0;
}

static void step_failed(struct fc *fc, int err, const char *why)
{
	char sql[256], what[320];

	statement_text(fc, sql, sizeof(sql));
	snprintf(what, sizeof(what), "%s failed", sql);
	fail(fc, err, what, why);
}

static void finish_set(struct fc *fc)
{
	char msg[FC_MSG_MAX];
	uint64_t bytes = fc->mb * FC_MIB;

	snprintf(msg, sizeof(msg),
		 "file cache: %s set to %" PRIu64 " MiB (asked %" PRIu64 " bytes, upper bound %s = %"
		 PRIu64 " bytes%s)", fc->size_setting, fc->mb, fc->cur->bytes, fc->max_setting,
		 fc->max_bytes, fc->cur->bytes > fc->max_bytes ? ", capped" : "");
	fc_query_close(fc);
	fc_end_cur(fc, 0, bytes, msg);
}

/* The statement of fc->step completed with fc->res. */
static void step_done(struct fc *fc)
{
	const PGresult *res = fc->res;
	ExecStatusType want = fc->step == FC_STEP_TIMEOUT || fc->step == FC_STEP_ALTER
				      ? PGRES_COMMAND_OK : PGRES_TUPLES_OK;
	char why[160], msg[FC_MSG_MAX];
	uint64_t value = 0;
	int r;

	if (!res || fc_pq.PQresultStatus(res) != want) {
		step_failed(fc, res ? sql_error(res) : -EBADMSG,
			    res ? fc_pq.PQresultErrorMessage(res) : "no result");
		return;
	}
	switch (fc->step) {
	case FC_STEP_TIMEOUT:
		fc->step = fc->cur->kind == FC_OP_READ ? FC_STEP_READ_SIZE : FC_STEP_READ_MAX;
		break;
	case FC_STEP_READ_SIZE:
		if ((r = result_uint(res, &value, why, sizeof(why))) < 0) {
			step_failed(fc, r, why);
			return;
		}
		snprintf(msg, sizeof(msg), "file cache: %s is %" PRIu64 " bytes",
			 fc->size_setting, value);
		fc_query_close(fc);
		fc_end_cur(fc, 0, value, msg);
		return;
	case FC_STEP_READ_MAX:
		if ((r = result_uint(res, &fc->max_bytes, why, sizeof(why))) < 0) {
			step_failed(fc, r, why);
			return;
		}
		value = fc->cur->bytes < fc->max_bytes ? fc->cur->bytes : fc->max_bytes;
		fc->mb = value / FC_MIB;
		fc->step = FC_STEP_ALTER;
		break;
	case FC_STEP_ALTER:
		fc->step = FC_STEP_RELOAD;
		break;
	case FC_STEP_RELOAD:
		if (fc_pq.PQntuples(res) != 1 || fc_pq.PQnfields(res) != 1 || fc_pq.PQgetisnull(res, 0, 0) ||
		    strcmp(fc_pq.PQgetvalue(res, 0, 0), "t") != 0) {
			step_failed(fc, -EBADMSG, "pg_reload_conf() did not return true");
			return;
		}
		finish_set(fc);
		return;
	}
	fc_pq.PQclear(fc->res);
	fc->res = NULL;
	send_step(fc);
}

/* Keeps the first result, or the first error if one follows. */
static void keep_result(struct fc *fc, PGresult *res)
{
	ExecStatusType st = fc_pq.PQresultStatus(res);
	bool is_error = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;
	bool kept_error = fc->res && fc_pq.PQresultStatus(fc->res) == PGRES_FATAL_ERROR;

	if (!fc->res || (is_error && !kept_error)) {
		fc_pq.PQclear(fc->res);
		fc->res = res;
	} else {
		fc_pq.PQclear(res);
	}
}

static void read_results(struct fc *fc, uint32_t events)
{
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
		int r = fc_pq.PQflush(fc->conn);
		if (r < 0) {
			fail(fc, -ECONNRESET, "sending a statement failed", fc_pq.PQerrorMessage(fc->conn));
			return;
		}
		watch_socket(fc, EPOLLIN | (r == 1 ? EPOLLOUT : 0));
	}
	if (!fc_pq.PQconsumeInput(fc->conn)) {
		fail(fc, -ECONNRESET, "reading from Postgres failed", fc_pq.PQerrorMessage(fc->conn));
		return;
	}
	while (!fc_pq.PQisBusy(fc->conn)) {
		PGresult *res = fc_pq.PQgetResult(fc->conn);
		if (!res) {
			step_done(fc);
			return;
		}
		keep_result(fc, res);
	}
}

void fc_query_socket_ready(struct fc *fc, uint32_t events)
{
	if (!fc->cur || !fc->conn)
		return; /* a stale event for a connection closed in this round */
	if (fc->connecting)
		connect_poll(fc);
	else
		read_results(fc, events);
}
