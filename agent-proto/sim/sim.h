/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sim.h — agent-sim, a simulator of the autoscaler-agent's side of the
 * protocols for tests and the demo: the websocket monitor protocol v1.0 of
 * current agents (the default: it dials ws://informant/monitor), or the
 * HTTP informant protocol v2.0 (docs/informant-protocol.md §6.5,
 * §7.7, §8).
 *
 * Threads: libmicrohttpd runs one thread per connection (so a deliberately
 * slow /suspend only blocks its own connection); the main thread runs the
 * scheduler (registration, health checks, delayed upscales, periodic
 * downscales); one thread waits for SIGINT/SIGTERM.  All mutable state is
 * in struct sim under sim->lock, which is never held across network I/O
 * (the informant calls our GET /id while our POST /register is in flight).
 */
#ifndef AGENT_SIM_H
#define AGENT_SIM_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"

/* Room for a URL and a curl error, or an informant's status text. */
#define SIM_TEXT_MAX 640

enum sim_protocol { SIM_PROTO_MONITOR, SIM_PROTO_INFORMANT };

struct sim_config {
	enum sim_protocol protocol;
	char informant[AP_ADDR_MAX];
	char listen[AP_ADDR_MAX];
	char advertise[AP_ADDR_MAX]; /* empty: the bound listen address */
	bool has_id;
	struct ap_uuid id;
	bool has_memory;
	uint64_t memory, max_memory, min_memory, step; /* bytes */
	uint64_t cpu_milli;
	const char *meminfo;
	uint64_t upscale_delay_ms, health_interval_ms, register_retry_ms, downscale_every_ms;
	uint64_t duration_s;
	bool quiet, json;
	/* misbehaviour, for tests */
	bool fail_id, wrong_id, seq_zero, fail_resume, ignore_try_upscale, no_register;
	uint64_t id_delay_ms, suspend_delay_ms, resume_delay_ms;
};

struct sim_counters {
	uint64_t try_upscales, upscales_sent, upscales_ok;
	uint64_t downscales_sent, downscales_accepted, downscales_rejected;
	uint64_t health_ok, health_failed;
	uint64_t id_requests, suspends, resumes;
	uint64_t sessions, invalid_messages; /* monitor protocol */
};

struct sim_mon;

struct sim {
	struct sim_config cfg;
	char serve_addr[AP_ADDR_MAX]; /* what /register advertises */
	uint64_t start_ns;

	pthread_mutex_t lock;
	pthread_cond_t wake; /* CLOCK_MONOTONIC; broadcast on any change */
	bool quit;
	struct ap_uuid id;
	uint64_t seq;        /* last sequence number used */
	bool want_register, registering, registered, running;
	uint64_t memory;     /* bytes */
	uint64_t register_at_ns, health_at_ns, downscale_at_ns, upscale_at_ns; /* 0 = none */
	struct sim_counters n;
	long last_downscale_http;
	char last_downscale_status[SIM_TEXT_MAX];
	struct sim_mon *mon;  /* the monitor session, while there is one */
};

/* What the informant answered to one of our requests. */
struct sim_reply {
	long status; /* 0: no answer, see err */
	char *body;  /* malloc'd, NUL-terminated (may be NULL) */
	char err[SIM_TEXT_MAX];
};

/* main.c */
uint64_t sim_now_ns(void);
/* Sleep up to ms; returns early (false) when the simulator is quitting. */
bool sim_sleep_ms(struct sim *s, uint64_t ms);
void sim_request_quit(struct sim *s);

/* log.c: one line per event; fmt/... as for jansson's json_pack(). */
void sim_event(struct sim *s, const char *event, const char *fmt, ...);

/* agent.c: requests to the informant (run without s->lock held). */
uint64_t sim_next_seq(struct sim *s); /* lock held */
/* Forget the ID and register again with a new random one (lock held). */
void sim_restart_locked(struct sim *s, const char *why);
int sim_register(struct sim *s);
void sim_health_check(struct sim *s);
int sim_unregister(struct sim *s, struct sim_reply *rep);
/* PUT /upscale to `to` bytes (meminfo grown first).  0 if the informant answered. */
int sim_upscale(struct sim *s, uint64_t to, struct sim_reply *rep);
/* PUT /downscale to `to` bytes (meminfo shrunk after an Ok). */
int sim_downscale(struct sim *s, uint64_t to, struct sim_reply *rep);
void sim_reply_free(struct sim_reply *rep);
int sim_http_init(void);
void sim_http_cleanup(void);

/* wsclient.c: a websocket client (one reader thread runs sim_ws_run). */
struct sim_ws;
typedef void (*sim_ws_text_fn)(void *arg, const char *msg, size_t len);
int sim_ws_connect(const char *hostport, const char *path, int timeout_ms, sim_ws_text_fn fn,
		   void *arg, struct sim_ws **out, char *err, size_t errlen);
int sim_ws_send_text(struct sim_ws *w, const char *text);
void sim_ws_close(struct sim_ws *w, uint16_t code, const char *reason);
/* Until the connection is over; fn runs on this thread. */
void sim_ws_run(struct sim_ws *w);
uint16_t sim_ws_close_code(const struct sim_ws *w, const char **reason);
void sim_ws_free(struct sim_ws *w);

/* monitor.c: the agent's side of the monitor protocol.  register = dial
 * and handshake (the session is then "registered" and "running");
 * unregister = close 1000; a request waits for the answer with its id and
 * reports it like an HTTP exchange: 200 with the body of the informant
 * protocol's answer ({} or a DownscaleResult), 500 InternalError, 400
 * InvalidMessage (its error as the body). */
int sim_monitor_register(struct sim *s);
void sim_monitor_unregister(struct sim *s);
int sim_monitor_request(struct sim *s, enum ap_mon_type type, uint64_t mem, long timeout_ms,
			struct sim_reply *rep);

/* server.c */
int sim_server_start(struct sim *s, char *err, size_t errlen);
void sim_server_stop(void);

/* meminfo.c */
int meminfo_read_total(const char *path, uint64_t *bytes, char *err, size_t errlen);
/* Add delta bytes to MemTotal, MemFree and MemAvailable, in place. */
int meminfo_adjust(const char *path, int64_t delta, char *err, size_t errlen);

#endif
