/* SPDX-License-Identifier: Apache-2.0 */
/*
 * helpers.h — shared by the client tests: run agent-sim as a child process,
 * a canned one-response HTTP server thread, and a tiny event loop (epoll on
 * ap_client_fd plus a 5 ms ticker) that waits for calls to finish.
 */
#ifndef TEST_CLIENT_HELPERS_H
#define TEST_CLIENT_HELPERS_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "agent_proto.h"

#define TEST_AGENT_ID "0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30"

struct sim_proc {
	pid_t pid;
	int out_fd;
	char addr[64];
};

/* Start agent-sim --no-register --quiet --listen 127.0.0.1:0 --id TEST_AGENT_ID
 * plus extra (NULL-terminated); waits for its address.  0 or -errno. */
int sim_start(struct sim_proc *p, const char *const *extra);
/* SIGTERM and wait (bounded); returns the exit status or -1. */
int sim_stop(struct sim_proc *p);

/* Serves `response` (raw HTTP bytes) to every connection; records the last request. */
struct canned_server {
	int lfd;
	char addr[64];
	const char *response;
	size_t response_len;
	pthread_t thread;
	pthread_mutex_t lock;
	int requests;
	char last_request[4096];
};

int canned_start(struct canned_server *srv, const char *response, size_t len);
void canned_stop(struct canned_server *srv);

/* A finished call as seen by its callback. */
struct waiter {
	int calls;
	struct ap_call_result res;
};

void waiter_cb(void *arg, const struct ap_call_result *res);

/* Run the loop until *done >= want or max_ms passes; *ticks counts the 5 ms
 * ticker's expirations meanwhile (may be NULL).  Returns 0 or -ETIMEDOUT. */
int loop_until(struct ap_client *c, const int *done, int want, int max_ms,
	       unsigned long *ticks);

#endif
