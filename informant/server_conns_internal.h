/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_conns_internal.h — shared by server_conns.c (records, limits,
 * deadlines) and server_accept.c (the listening socket and the gate).
 * Not for other users: server.c uses server_conns.h.
 */
#ifndef VMI_SERVER_CONNS_INTERNAL_H
#define VMI_SERVER_CONNS_INTERNAL_H

#include <sys/socket.h>

#include "log.h"
#include "server_conns.h"

#define CONNS_LOG_EVERY_MS 1000

enum conn_state {
	CONN_GATE,     /* ours: waiting for the first bytes */
	CONN_HEAD,     /* MHD's: waiting for a complete request head */
	CONN_BODY,     /* MHD's: head in, body arriving */
	CONN_IDLE,     /* MHD's: answered, keep-alive until the next head */
	CONN_BUSY,     /* MHD's: request being handled or answered */
	CONN_UPGRADED, /* MHD's: switched protocols; not HTTP any more */
	CONN_DROPPING, /* MHD's: shut down by us; MHD closes it soon */
};

/* The waits of incomplete connections, each with its own timeout. */
enum wait { WAIT_HEAD, WAIT_BODY, WAIT_IDLE, WAIT__COUNT, WAIT_NONE = WAIT__COUNT };

struct peer {
	uint8_t key[16];   /* IPv6, or IPv4-mapped IPv6 */
	unsigned n;        /* its connections, dropping ones included */
	unsigned dropping;
	struct conn *conns;
	struct peer *next; /* hash chain */
};

struct conn {
	struct conns *cs;
	int fd;
	enum conn_state state;
	enum wait wait;
	uint64_t since_ms;    /* start of the current wait (its age when evicting) */
	uint64_t deadline_ms;
	struct conn *prev, *next;           /* in cs->wait_*[wait] */
	struct peer *peer;
	struct conn *peer_prev, *peer_next; /* in peer->conns */
	bool mhd_closed;                    /* MHD gave up on it while being added */
	socklen_t addrlen;
	struct sockaddr_storage addr;       /* for MHD_add_connection */
};

struct conns {
	struct loop *loop;
	struct MHD_Daemon *mhd;
	struct metrics *metrics;
	struct conns_limits lim;
	int listen_fd;
	struct loop_timer *timer;        /* the earliest deadline */
	uint64_t armed_ms;               /* ... it is armed for (0: not armed) */
	struct loop_timer *accept_again; /* after EMFILE */
	struct conn *wait_head[WAIT__COUNT], *wait_tail[WAIT__COUNT];
	unsigned total, dropping;
	struct peer **bucket;
	size_t nbuckets;                 /* a power of two */
	uint64_t seed;                   /* of the address hash: chains stay short */
	struct conn *adding;             /* inside MHD_add_connection() */
	struct log_limit drop_log, garbage_log, accept_log;
};

/* server_conns.c */
/* A record for a new connection from ss, in the gate and waiting for its
 * head; room is made first (evicting), NULL if there is none.  The caller
 * still owns fd either way. */
struct conn *conn_admit(struct conns *cs, int fd, const struct sockaddr_storage *ss,
			socklen_t len);
/* Forget the record (its fd is closed by whoever owns it). */
void conn_release(struct conn *c);

/* server_accept.c */
int conns_accept_start(struct conns *cs, int listen_fd);
void conns_accept_stop(struct conns *cs);
/* Close a connection still in the gate. */
void gate_close(struct conn *c);
void accept_resume(void *arg);

#endif
