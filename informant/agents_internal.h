/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents_internal.h — internals shared by agents.c and agents_select.c.
 * Not for other users: the public API is agents.h.
 */
#ifndef VMI_AGENTS_INTERNAL_H
#define VMI_AGENTS_INTERNAL_H

#include "agents.h"

enum agent_state { AGENT_REGISTERING, AGENT_REGISTERED };

/* One call in flight per slot and agent. */
enum agent_slot {
	SLOT_CHECK,   /* /id: registration probe or background check */
	SLOT_SWITCH,  /* /suspend or /resume */
	SLOT_UPSCALE, /* /try-upscale */
	SLOT__COUNT
};

struct agent {
	struct ap_uuid id;
	char id_str[AP_UUID_STRLEN + 1];
	char addr[AP_ADDR_MAX];
	uint32_t proto;
	enum agent_state state;
	bool sent;                 /* its /register 200 went out (D16) */
	uint64_t order;            /* registration completion order */
	uint64_t registered_ms;
	uint64_t next_check_ms;
	unsigned failures;         /* consecutive (D4) */
	uint64_t last_req_seq;     /* /upscale, /downscale (D23) */
	uint64_t last_resp_seq;    /* replies to our calls */
	uint64_t token[SLOT__COUNT];
	agents_register_done_fn reg_done; /* set while registering */
	void *reg_arg;
};

struct agents {
	struct agents_io io;
	struct agents_timeouts t;
	struct metrics *metrics;
	struct agent *v[AGENTS_MAX_KNOWN]; /* in order of arrival */
	size_t n;
	uint64_t next_token;
	uint64_t next_order;
	/* The agent that scales: its /upscale and /downscale are accepted. */
	struct agent *current;
	uint64_t current_since_ms;
	/* The agent of the switch step in flight: current (being suspended,
	 * "leaving") or the incoming one (being resumed); NULL when idle. */
	struct agent *switching;
	/* The monitor session, current whenever it is up (the newer kind). */
	bool monitor_up;
	struct agents_monitor monitor;
	uint64_t monitor_since_ms;
	/* The upscale wish (docs/informant-protocol.md §7.6, D6, D9). */
	bool wish;
	bool wish_predicted;
};

struct agent *agents_find(const struct agents *s, const struct ap_uuid *id);
/* The one way to start a call to an agent: token in the slot, or a failure
 * already recorded in res (ready for the slot's completion). */
int agents_start_call(struct agents *s, struct agent *a, enum agent_slot slot,
		      enum ap_call_kind kind, uint64_t timeout_ms, struct ap_call_result *res);
void agents_drop(struct agents *s, struct agent *a, const char *why);
void agents_note_failure(struct agents *s, struct agent *a, const char *what,
			 const struct ap_call_result *res);
void agents_note_success(struct agent *a, const struct ap_call_result *res, const char *what);

/* agents_select.c */
void agents_select(struct agents *s);
void agents_reschedule(struct agents *s);
void agents_check_done(struct agents *s, struct agent *a, const struct ap_call_result *res);
void agents_switch_done(struct agents *s, struct agent *a, const struct ap_call_result *res);
void agents_upscale_done(struct agents *s, struct agent *a, const struct ap_call_result *res);
void agents_deliver_wish(struct agents *s);
void agents_update_current_gauge(struct agents *s);

#endif
