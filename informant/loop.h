/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loop.h — the informant's single event loop: epoll over file descriptors
 * plus one-shot/periodic timers on CLOCK_MONOTONIC (each a timerfd).
 *
 * Every piece of informant state is owned by the thread running loop_run();
 * callbacks run on that thread, one at a time, and must never block.
 * Libraries plug in by exposing one pollable fd (often an epoll fd of their
 * own) and a "process" function that the fd's callback calls.
 */
#ifndef VMI_LOOP_H
#define VMI_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_timer;

typedef void (*loop_fd_cb)(void *arg, uint32_t events);
typedef void (*loop_timer_cb)(void *arg);

/* Monotonic time in nanoseconds / milliseconds. */
uint64_t loop_now_ns(void);
static inline uint64_t loop_now_ms(void) { return loop_now_ns() / 1000000u; }

int loop_new(struct loop **out);
/* Frees the loop; every fd and timer must have been removed/freed first. */
void loop_free(struct loop *l);

/* Watch fd for EPOLLIN/EPOLLOUT/...; the callback gets the ready events.
 * One registration per fd. Returns 0 or -errno. */
int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg);
int loop_mod_fd(struct loop *l, int fd, uint32_t events);
/* Safe to call from inside any callback, including the fd's own. */
int loop_del_fd(struct loop *l, int fd);

int loop_timer_new(struct loop *l, loop_timer_cb cb, void *arg, struct loop_timer **out);
/* Fire after delay_ms (0 = disarm); then every interval_ms if non-zero. */
int loop_timer_arm(struct loop_timer *t, uint64_t delay_ms, uint64_t interval_ms);
/* Same with nanosecond resolution (for sub-millisecond bounds). */
int loop_timer_arm_ns(struct loop_timer *t, uint64_t delay_ns, uint64_t interval_ns);
bool loop_timer_armed(const struct loop_timer *t);
/* Disarms and frees; safe inside callbacks (also the timer's own). */
void loop_timer_free(struct loop_timer *t);

/* Dispatch until loop_stop(); returns 0, or -errno if epoll itself fails. */
int loop_run(struct loop *l);
/* One dispatch round waiting at most timeout_ms (-1 = forever). */
int loop_run_once(struct loop *l, int timeout_ms);
void loop_stop(struct loop *l);

#endif
