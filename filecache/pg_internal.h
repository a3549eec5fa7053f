/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_internal.h — shared between pg.c (object, queue, fds, public API) and
 * pg_query.c (one operation on one libpq connection).  Not installed.
 */
#ifndef VMI_FILECACHE_PG_INTERNAL_H
#define VMI_FILECACHE_PG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "pq.h"

#include "filecache.h"

#define FC_MSG_MAX 1024
#define FC_SETTING_MAX 129

enum fc_op_kind { FC_OP_READ, FC_OP_SET, FC_OP_ENSURE };

/* The statements of an operation, in order. */
enum fc_step { FC_STEP_TIMEOUT, FC_STEP_READ_SIZE, FC_STEP_READ_MAX, FC_STEP_ALTER,
	       FC_STEP_RELOAD };

struct fc_op {
	struct fc_op *next;
	enum fc_op_kind kind;
	uint64_t bytes;          /* requested size (set/ensure) */
	fc_done_cb cb;
	fc_retry_cb retry_cb;
	void *arg;
	uint32_t backoff_ms;     /* ensure: delay before the next attempt */
	bool superseded;         /* ensure: do not retry after this attempt */
	int err;                 /* result, once finished */
	uint64_t result;
	char msg[FC_MSG_MAX];
};

struct fc_op_list {
	struct fc_op *head, *tail;
};

struct fc {
	int epfd, op_timer_fd, retry_timer_fd, wake_fd;
	char size_setting[FC_SETTING_MAX];
	char max_setting[FC_SETTING_MAX];
	char app_name[64];
	char *connstr;
	char display[512];       /* connstr, passwords redacted */
	struct fc_secrets secrets; /* masked in every message */
	uint32_t connect_ms, query_ms, retry_initial_ms, retry_max_ms;
	bool closing;            /* fc_free(): refuse new requests */

	struct fc_op_list queue; /* waiting to run, in order */
	struct fc_op_list done;  /* finished, callbacks not yet run */
	struct fc_op *retry;     /* an ensure waiting for its back-off */
	struct fc_op *cur;       /* running: owns conn */

	/* The running operation's connection. */
	PGconn *conn;
	int sock;                /* registered in epfd, or -1 */
	bool connecting;
	enum fc_step step;
	PGresult *res;           /* the current statement's (first) result */
	uint64_t max_bytes;      /* set: the upper bound read */
	uint64_t mb;             /* set: MiB being written */
};

/* pg.c */
void fc_op_list_push(struct fc_op_list *l, struct fc_op *op);
/* Ends the running operation (connection already closed). */
void fc_end_cur(struct fc *fc, int err, uint64_t result, const char *msg);
int fc_timer_arm(int tfd, uint32_t ms);

/* pg_query.c */
/* Starts fc->cur: connect, then its statements.  Failures end it. */
void fc_query_start(struct fc *fc);
/* The socket or the operation timer is ready. */
void fc_query_socket_ready(struct fc *fc, uint32_t events);
void fc_query_timeout(struct fc *fc);
/* Closes the connection (if any) and disarms the operation timer. */
void fc_query_close(struct fc *fc);

#endif
