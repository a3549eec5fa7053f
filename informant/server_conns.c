/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_conns.c — the records of the informant's connections, the two
 * limits, making room, and the deadlines (see server_conns.h).
 *
 * Why not libmicrohttpd's own accept loop and limits: at its connection
 * limit MHD simply stops accepting, so 64 sockets that never finish a
 * request lock everyone out, and its idle timeout restarts with every
 * byte.  Here a limit makes room instead of refusing, and a deadline,
 * once set, does not move.
 *
 * The waits are three FIFO lists, one per kind of deadline, so the
 * earliest deadline and the oldest incomplete connection are at their
 * heads: O(1) per state change.  Making room for one address scans that
 * address's connections (at most max_per_addr).  A record costs ~250
 * bytes; MHD allocates its per-connection memory only at the hand-over
 * from the gate (server_accept.c).
 */
#include "server_conns_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char *const wait_reason[WAIT__COUNT] = {
	[WAIT_HEAD] = "no complete request head in time",
	[WAIT_BODY] = "no complete request body in time",
	[WAIT_IDLE] = "keep-alive connection idle too long",
};

/* ---- peers ------------------------------------------------------------------- */

static void peer_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	} else if (ss->ss_family == AF_INET) {
		key[10] = key[11] = 0xff; /* the same key as ::ffff:a.b.c.d */
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	}
}

static size_t peer_bucket(const struct conns *cs, const uint8_t key[16])
{
	uint64_t h = cs->seed ^ 0xcbf29ce484222325u; /* FNV-1a, seeded */

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 0x100000001b3u;
	return (size_t)(h ^ (h >> 32)) & (cs->nbuckets - 1);
}

static struct peer *peer_get(struct conns *cs, const struct sockaddr_storage *ss)
{
	uint8_t key[16];
	size_t b;
	struct peer *p;

	peer_key(ss, key);
	b = peer_bucket(cs, key);
	for (p = cs->bucket[b]; p; p = p->next)
		if (memcmp(p->key, key, 16) == 0)
			return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	memcpy(p->key, key, 16);
	p->next = cs->bucket[b];
	cs->bucket[b] = p;
	return p;
}

static void peer_put(struct conns *cs, struct peer *p)
{
	struct peer **pp;

	if (p->n > 0)
		return;
	for (pp = &cs->bucket[peer_bucket(cs, p->key)]; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	free(p);
}

/* ---- waits and the deadline timer ------------------------------------------ */

static uint64_t wait_timeout(const struct conns *cs, enum wait w)
{
	return w == WAIT_HEAD ? cs->lim.head_ms : w == WAIT_BODY ? cs->lim.body_ms
								 : cs->lim.idle_ms;
}

static void wait_leave(struct conn *c)
{
	struct conns *cs = c->cs;

	if (c->wait == WAIT_NONE)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->wait_head[c->wait] = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		cs->wait_tail[c->wait] = c->prev;
	c->prev = c->next = NULL;
	c->wait = WAIT_NONE;
}

static void rearm(struct conns *cs)
{
	uint64_t earliest = 0, now;

	for (int w = 0; w < WAIT__COUNT; w++) {
		const struct conn *h = cs->wait_head[w];

		if (h && (!earliest || h->deadline_ms < earliest))
			earliest = h->deadline_ms;
	}
	/* A later deadline needs no new arming: the timer fires early, finds
	 * nothing due and arms for what is left (one syscall saved per
	 * request on a busy keep-alive connection). */
	if (!earliest || (cs->armed_ms && cs->armed_ms <= earliest))
		return;
	now = loop_now_ms();
	if (loop_timer_arm(cs->timer, earliest > now ? earliest - now : 1, 0) == 0)
		cs->armed_ms = earliest;
}

/* The wait begins now, at the tail (every list is in deadline order). */
static void wait_enter(struct conn *c, enum wait w, uint64_t now)
{
	struct conns *cs = c->cs;

	wait_leave(c);
	c->wait = w;
	c->since_ms = now;
	c->deadline_ms = now + wait_timeout(cs, w);
	c->prev = cs->wait_tail[w];
	if (c->prev)
		c->prev->next = c;
	else
		cs->wait_head[w] = c;
	cs->wait_tail[w] = c;
	rearm(cs);
}

/* ---- records ----------------------------------------------------------------- */

void conn_release(struct conn *c)
{
	struct conns *cs = c->cs;
	struct peer *p = c->peer;

	wait_leave(c);
	if (c->state == CONN_DROPPING) {
		cs->dropping--;
		p->dropping--;
	}
	if (c->peer_prev)
		c->peer_prev->peer_next = c->peer_next;
	else
		p->conns = c->peer_next;
	if (c->peer_next)
		c->peer_next->peer_prev = c->peer_prev;
	p->n--;
	peer_put(cs, p);
	cs->total--;
	cs->metrics->http_connections = cs->total;
	free(c);
}

static void note_drop(struct conns *cs, struct conn *c, enum metrics_conn_drop why,
		      const char *reason)
{
	uint64_t suppressed;

	cs->metrics->http_connections_dropped_total[why]++;
	if (log_limit_allow(&cs->drop_log, loop_now_ms(), CONNS_LOG_EVERY_MS, &suppressed))
		log_event(LOG_INFO, "connection dropped", LF_STR("reason", reason),
			  LF_U64("age_ms", loop_now_ms() - c->since_ms),
			  LF_U64("connections", cs->total), LF_U64("suppressed", suppressed),
			  LF_END);
}

static void drop(struct conn *c, enum metrics_conn_drop why, const char *reason)
{
	struct conns *cs = c->cs;

	note_drop(cs, c, why, reason);
	if (c->state == CONN_GATE) {
		gate_close(c);
		return;
	}
	/* MHD owns the fd: end the stream under it; MHD reads EOF, closes
	 * and frees the connection (conns_mhd_closed), and only then the fd
	 * number can be reused. */
	(void)shutdown(c->fd, SHUT_RDWR);
	wait_leave(c);
	c->state = CONN_DROPPING;
	cs->dropping++;
	c->peer->dropping++;
}

static bool incomplete(const struct conn *c)
{
	return c->wait != WAIT_NONE;
}

/* The oldest incomplete connection of peer p, or of all (p == NULL). */
static struct conn *oldest_incomplete(struct conns *cs, struct peer *p)
{
	struct conn *best = NULL;

	if (p) {
		for (struct conn *c = p->conns; c; c = c->peer_next)
			if (incomplete(c) && (!best || c->since_ms < best->since_ms))
				best = c;
		return best;
	}
	for (int w = 0; w < WAIT__COUNT; w++) {
		struct conn *h = cs->wait_head[w];

		if (h && (!best || h->since_ms < best->since_ms))
			best = h;
	}
	return best;
}

/* Room for c, just counted in: false if every connection that counts is
 * busy (then c is refused).  c waits for nothing yet, so it is never its
 * own victim. */
static bool make_room(struct conns *cs, struct peer *p)
{
	struct conn *victim;

	if (p->n - p->dropping > cs->lim.max_per_addr) {
		victim = oldest_incomplete(cs, p);
		if (!victim)
			return false;
		drop(victim, METRICS_DROP_EVICTED, "making room: too many connections from one address");
	}
	if (cs->total - cs->dropping > cs->lim.max_conns) {
		victim = oldest_incomplete(cs, NULL);
		if (!victim)
			return false;
		drop(victim, METRICS_DROP_EVICTED, "making room: connection limit reached");
	}
	return true;
}

struct conn *conn_admit(struct conns *cs, int fd, const struct sockaddr_storage *ss,
			socklen_t len)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct peer *p = c ? peer_get(cs, ss) : NULL;

	if (!p) {
		cs->metrics->http_connections_dropped_total[METRICS_DROP_REFUSED]++;
		free(c);
		return NULL;
	}
	c->cs = cs;
	c->fd = fd;
	c->state = CONN_GATE;
	c->wait = WAIT_NONE;
	c->addr = *ss;
	c->addrlen = len;
	/* Counted before making room: dropping the only other connection of
	 * its address must not free the address's record under us. */
	c->peer = p;
	c->peer_next = p->conns;
	if (p->conns)
		p->conns->peer_prev = c;
	p->conns = c;
	p->n++;
	cs->total++;
	if (!make_room(cs, p)) {
		cs->metrics->http_connections_dropped_total[METRICS_DROP_REFUSED]++;
		conn_release(c);
		return NULL;
	}
	cs->metrics->http_connections = cs->total;
	wait_enter(c, WAIT_HEAD, loop_now_ms());
	return c;
}

/* ---- deadlines ------------------------------------------------------------ */

static void on_deadline(void *arg)
{
	struct conns *cs = arg;
	uint64_t now = loop_now_ms();

	cs->armed_ms = 0;
	for (int w = 0; w < WAIT__COUNT; w++)
		while (cs->wait_head[w] && cs->wait_head[w]->deadline_ms <= now)
			drop(cs->wait_head[w], METRICS_DROP_DEADLINE, wait_reason[w]);
	rearm(cs);
}

/* ---- MHD's side ------------------------------------------------------------ */

void conns_mhd_started(struct conns *cs, void **socket_context)
{
	struct conn *c = cs->adding;

	*socket_context = c;
	if (c)
		c->state = CONN_HEAD; /* still in WAIT_HEAD, since its accept */
}

void conns_mhd_closed(struct conns *cs, void *socket_context)
{
	struct conn *c = socket_context;

	if (!c)
		return;
	if (c == cs->adding) {
		c->mhd_closed = true; /* gate_hand_over() frees it */
		return;
	}
	conn_release(c);
}

struct conn *conns_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

static bool in_http(const struct conn *c)
{
	return c && c->state != CONN_GATE && c->state != CONN_UPGRADED &&
	       c->state != CONN_DROPPING;
}

/* Move an MHD connection on; w is its new wait (WAIT_NONE: no deadline). */
static void move(struct conn *c, enum conn_state state, enum wait w)
{
	if (!in_http(c))
		return;
	c->state = state;
	if (w == WAIT_NONE)
		wait_leave(c);
	else
		wait_enter(c, w, loop_now_ms());
}

void conns_head_done(struct conn *c)
{
	move(c, CONN_BODY, WAIT_BODY);
}

void conns_busy(struct conn *c)
{
	move(c, CONN_BUSY, WAIT_NONE);
}

void conns_idle(struct conn *c)
{
	move(c, CONN_IDLE, WAIT_IDLE);
}

void conns_upgraded(struct conn *c)
{
	move(c, CONN_UPGRADED, WAIT_NONE);
}

/* ---- life cycle ------------------------------------------------------------ */

unsigned conns_limit_for_fds(uint64_t nofile)
{
	uint64_t n = nofile > 2 * CONNS_FD_RESERVE ? nofile - CONNS_FD_RESERVE : nofile / 2;

	return (unsigned)(n > CONNS_MAX ? CONNS_MAX : n);
}

int conns_new(struct loop *loop, int listen_fd, struct MHD_Daemon *mhd,
	      const struct conns_limits *lim, struct metrics *m, struct conns **out)
{
	struct conns *cs = calloc(1, sizeof(*cs));
	int r;

	if (!cs)
		return -ENOMEM;
	cs->loop = loop;
	cs->mhd = mhd;
	cs->metrics = m;
	cs->lim = *lim;
	cs->listen_fd = -1;
	for (cs->nbuckets = 16; cs->nbuckets < lim->max_conns / 2; cs->nbuckets *= 2)
		;
	cs->bucket = calloc(cs->nbuckets, sizeof(*cs->bucket));
	if (getrandom(&cs->seed, sizeof(cs->seed), GRND_NONBLOCK) != sizeof(cs->seed))
		cs->seed = loop_now_ns(); /* early boot: still not known outside */
	r = cs->bucket ? loop_timer_new(loop, on_deadline, cs, &cs->timer) : -ENOMEM;
	if (r == 0)
		r = loop_timer_new(loop, accept_resume, cs, &cs->accept_again);
	if (r == 0)
		r = conns_accept_start(cs, listen_fd);
	if (r < 0) {
		conns_free(cs);
		return r;
	}
	*out = cs;
	return 0;
}

void conns_stop(struct conns *cs)
{
	conns_accept_stop(cs);
}

void conns_free(struct conns *cs)
{
	if (!cs)
		return;
	if (cs->accept_again)
		conns_accept_stop(cs);
	/* MHD has been stopped: every MHD connection reported its close.
	 * Anything left would be a record MHD never adopted. */
	for (size_t b = 0; cs->bucket && b < cs->nbuckets; b++)
		while (cs->bucket[b])
			conn_release(cs->bucket[b]->conns); /* the last one frees its peer */
	loop_timer_free(cs->timer);
	loop_timer_free(cs->accept_again);
	free(cs->bucket);
	free(cs);
}

unsigned conns_count(const struct conns *cs)
{
	return cs ? cs->total : 0;
}
