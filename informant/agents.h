/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents.h — the set of autoscaler-agents known to the informant
 * (docs/informant-protocol.md §7):
 * registration with the /id probe, selection of the current agent and the
 * switch (/suspend the old, /resume the new), background /id checks, the
 * monitor session of the websocket protocol as the other kind of agent,
 * and the delivery of the upscale wish.
 *
 * Two kinds of agents, one current agent at a time.  Agents of the HTTP
 * informant protocol (autoscaling before v0.18.0) register; the newest
 * registered one is resumed and current.  A monitor session (monitor.h,
 * agents since v0.18.0) is the newer kind and always wins: while one is up
 * it is the current agent, an HTTP agent that was current is suspended
 * (/suspend) and registered ones wait; their /upscale and /downscale get
 * 400 "not the active Agent".  When the session ends (and no newer one
 * replaced it) the newest registered HTTP agent is resumed.
 *
 * The upscale wish: the memory policy decides when to ask (and how often:
 * its back-off) and calls agents_request_upscale() each time; the set only
 * delivers, at once, to the current agent: a monitor session gets an
 * UpscaleRequest, an HTTP agent a /try-upscale unless one is already in
 * flight.  With no current agent the wish is kept and goes to the next
 * agent that becomes current, of either kind, at once.  The wish stays
 * until agents_upscale_applied() (an upscale was applied); a failed ask
 * does not end it.
 *
 * The set is a state machine without sockets or clocks of its own: calls
 * to agents go out through struct agents_io and come back through
 * agents_call_done(); time comes from io->now_ms() and agents_tick() runs
 * whatever is due.  The daemon plugs in ap_client and the loop
 * (agents_loop.c); the unit tests plug in a fake clock and fake results.
 *
 * Deliberate deviations from the original (docs/informant-protocol.md §10), each also
 * explained where it is implemented in agents.c:
 *   D4  background checks and /try-upscale drop an agent only after
 *       AGENTS_MAX_FAILURES consecutive failures; a failed check is retried
 *       after AGENTS_RETRY_MS instead of a full interval.
 *   D5  duplicates (409) are checked before the protocol version;
 *       agents_check_scaler() answers 404 for an unknown ID.
 *   D6  the outgoing agent is "leaving" from the start of the switch: no
 *       /try-upscale goes to it; the wish goes to the incoming agent right
 *       after its /resume succeeds.
 *   D9  the wish does not end with a successful /try-upscale: it is kept
 *       until an upscale is applied, and the memory policy asks again.
 *   D15 a failed /resume drops that agent and the selection starts over
 *       with the next newest agent; a suspended agent is never current.
 *   D16 an agent takes part in selection only after agents_register_sent()
 *       (called when its /register 200 has been sent).
 *   D23 sequence numbers are tracked per agent; stale ones are logged.
 */
#ifndef VMI_AGENTS_H
#define VMI_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"
#include "config.h" /* struct agents_timeouts */
#include "metrics.h"

#define AGENTS_MAX_FAILURES 3       /* consecutive failed /id or /try-upscale */
#define AGENTS_RETRY_MS 1000        /* next /id check after a failure (at most) */
#define AGENTS_MAX_KNOWN 64         /* more registrations get 503 */
/* Registrations whose /id probe is still running (each bounded by
 * register_id_timeout); more get 503, so that callers naming addresses that
 * never answer cannot hold the slots of the agents. */
#define AGENTS_MAX_REGISTERING 8
#define AGENTS_CAUSE_EXCERPT 120    /* bytes of a failed probe's cause in the log */
#define AGENTS_REPLY_MAX 1024

struct agents;

/* What the set needs from the outside world. */
struct agents_io {
	/* Start a call to an agent; its result must come back later through
	 * agents_call_done(set, token, …), never from inside call().  On a
	 * negative return the set treats the call as failed at once. */
	int (*call)(void *ctx, enum ap_call_kind kind, const char *addr, const struct ap_uuid *id,
		    uint64_t timeout_ms, uint64_t token);
	/* Abandon a call started with call(); its result must not be delivered. */
	void (*cancel)(void *ctx, uint64_t token);
	uint64_t (*now_ms)(void *ctx);
	/* agents_tick() is due at at_ms (0 = nothing is due). */
	void (*schedule)(void *ctx, uint64_t at_ms);
	void *ctx;
};

/* A synchronous answer for the HTTP handler: status and body (JSON for 200). */
struct agents_reply {
	unsigned status;
	char body[AGENTS_REPLY_MAX];
};

/* Runs exactly once per agents_register(), possibly before it returns. */
typedef void (*agents_register_done_fn)(void *arg, unsigned status, const char *body);

/* A snapshot of one agent for /status and tests. */
struct agents_info {
	char id[AP_UUID_STRLEN + 1];
	char addr[AP_ADDR_MAX];
	const char *protocol;     /* "informant" (HTTP) or "monitor" (websocket) */
	const char *state;        /* registering|registered|resuming|current|leaving */
	uint32_t proto;           /* the kind's own version numbers: 4 = v2.0, 1 = v1.0 */
	uint64_t registered_ms;   /* io->now_ms() when /id succeeded (0 while registering) */
	uint64_t current_since_ms;
	unsigned failures;        /* consecutive failed calls */
	uint64_t last_seq;        /* highest sequence number seen */
};

int agents_new(const struct agents_io *io, const struct agents_timeouts *t, struct metrics *m,
	       struct agents **out);
/* Cancels every call; pending registrations are answered 503. */
void agents_free(struct agents *s);
void agents_set_timeouts(struct agents *s, const struct agents_timeouts *t);

/* POST /register: 409 duplicate, 400 version mismatch or failed /id probe
 * (naming only the status of a non-200 answer, never its body), 503 when
 * full or AGENTS_MAX_REGISTERING probes run, else 200 with the
 * InformantDesc. */
void agents_register(struct agents *s, const struct ap_agent_desc *d,
		     agents_register_done_fn done, void *arg);
/* The /register 200 of this agent has been sent (or its connection ended):
 * only now may it be resumed (D16). */
void agents_register_sent(struct agents *s, const struct ap_uuid *id);
/* PUT /health-check and DELETE /unregister. */
void agents_health_check(struct agents *s, const struct ap_uuid *id, struct agents_reply *r);
void agents_unregister(struct agents *s, const struct ap_agent_desc *d, struct agents_reply *r);
/* PUT /upscale and /downscale: may this agent scale now?  Returns true if
 * it is the current agent; else fills r (404 unknown, 400 not current).
 * seq is noted for D23 (what names the endpoint in the log). */
bool agents_check_scaler(struct agents *s, const struct ap_uuid *id, uint64_t seq,
			 const char *what, struct agents_reply *r);
/* An upscale (HTTP or monitor) was applied: the wish is fulfilled. */
void agents_upscale_applied(struct agents *s);

/* memory_request_upscale_fn: remember the wish and deliver it to the
 * current agent now (see above).  Always 0. */
int agents_request_upscale(void *agents, bool predicted);

/* The monitor session as the current agent. */
struct agents_monitor {
	/* Send UpscaleRequest on the session; 0 or -errno. */
	int (*request_upscale)(void *session);
	void *session;
	char peer[AP_ADDR_MAX];
	uint32_t version;
};
/* A session completed its handshake: it becomes current (replacing an
 * earlier session), the HTTP agent that was current is suspended, a
 * pending wish is delivered to it. */
void agents_monitor_up(struct agents *s, const struct agents_monitor *m);
/* That session ended: the newest registered HTTP agent is resumed.  A
 * session that is no longer the attached one is ignored. */
void agents_monitor_down(struct agents *s, void *session);

/* Results of io->call(). */
void agents_call_done(struct agents *s, uint64_t token, const struct ap_call_result *res);
/* Run the background /id checks that are due. */
void agents_tick(struct agents *s);

/* Introspection. */
size_t agents_count(const struct agents *s);
/* i-th known agent in registration order; false past the end. */
bool agents_get(const struct agents *s, size_t i, struct agents_info *out);
/* The current agent, if any (a monitor session: protocol "monitor", its
 * peer address, no ID). */
bool agents_current(const struct agents *s, struct agents_info *out);
bool agents_wish_pending(const struct agents *s);

/* ---- the daemon's wiring (agents_loop.c) ----------------------------------
 * The set on the informant's loop: calls through an ap_client whose fd is in
 * the loop, agents_tick() from a loop timer, time from loop_now_ms(). */
struct loop;
struct agents_loop;

int agents_loop_new(struct loop *loop, const struct agents_timeouts *t, struct metrics *m,
		    struct agents_loop **out);
struct agents *agents_loop_agents(struct agents_loop *al);
/* Frees the set first (pending registrations get 503), then the client. */
void agents_loop_free(struct agents_loop *al);

#endif
