/* SPDX-License-Identifier: Apache-2.0 */
/* Event loop: fd dispatch, one-shot and periodic timers, removal from
 * inside callbacks (own fd and another fd ready in the same round). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <unistd.h>

#include "loop.h"

struct counter {
	struct loop *loop;
	int hits;
	int fd_to_drop;           /* removed by the first callback that runs */
	struct loop_timer *self;  /* freed from its own callback */
};

static void on_readable(void *arg, uint32_t events)
{
	struct counter *c = arg;
	assert_true(events & EPOLLIN);
	c->hits++;
	if (c->fd_to_drop >= 0) {
		assert_int_equal(loop_del_fd(c->loop, c->fd_to_drop), 0);
		c->fd_to_drop = -1;
	}
}

static void test_fd_dispatch_and_removal_in_round(void **state)
{
	struct loop *l;
	int a[2], b[2];
	struct counter ca = { .fd_to_drop = -1 }, cb = { .fd_to_drop = -1 };

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	ca.loop = cb.loop = l;
	/* Whichever of the two runs first removes the other: the removed one
	 * must not be dispatched although it is in the same ready batch. */
	ca.fd_to_drop = b[0];
	cb.fd_to_drop = a[0];
	assert_int_equal(loop_add_fd(l, a[0], EPOLLIN, on_readable, &ca), 0);
	assert_int_equal(loop_add_fd(l, b[0], EPOLLIN, on_readable, &cb), 0);
	assert_int_equal(loop_add_fd(l, a[0], EPOLLIN, on_readable, &ca), -EEXIST);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	assert_true(loop_run_once(l, 1000) >= 1);
	assert_int_equal(ca.hits + cb.hits, 1);
	/* the survivor is still registered; the dropped one is gone */
	if (ca.hits)
		assert_int_equal(loop_del_fd(l, a[0]), 0);
	else
		assert_int_equal(loop_del_fd(l, b[0]), 0);
	assert_int_equal(loop_del_fd(l, a[0]), -ENOENT);
	assert_int_equal(loop_del_fd(l, b[0]), -ENOENT);
	loop_free(l);
	close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}

static void on_tick(void *arg)
{
	struct counter *c = arg;

	c->hits++;
	if (c->hits == 3)
		loop_stop(c->loop);
}

static void test_periodic_timer(void **state)
{
	struct loop *l;
	struct loop_timer *t;
	struct counter c = { .fd_to_drop = -1 };
	uint64_t t0;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	c.loop = l;
	assert_int_equal(loop_timer_new(l, on_tick, &c, &t), 0);
	assert_false(loop_timer_armed(t));
	t0 = loop_now_ms();
	assert_int_equal(loop_timer_arm(t, 5, 5), 0);
	assert_true(loop_timer_armed(t));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(c.hits, 3);
	assert_true(loop_now_ms() - t0 >= 15);
	assert_true(loop_timer_armed(t)); /* periodic stays armed */
	assert_int_equal(loop_timer_arm(t, 0, 0), 0);
	assert_false(loop_timer_armed(t));
	loop_timer_free(t);
	loop_free(l);
}

static void on_oneshot_free_self(void *arg)
{
	struct counter *c = arg;

	c->hits++;
	assert_false(loop_timer_armed(c->self));
	loop_timer_free(c->self);
	c->self = NULL;
	loop_stop(c->loop);
}

static void test_oneshot_timer_frees_itself(void **state)
{
	struct loop *l;
	struct counter c = { .fd_to_drop = -1 };

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	c.loop = l;
	assert_int_equal(loop_timer_new(l, on_oneshot_free_self, &c, &c.self), 0);
	assert_int_equal(loop_timer_arm_ns(c.self, 1, 0), 0);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(c.hits, 1);
	assert_null(c.self);
	loop_free(l);
}

static void test_rearm_replaces_pending_expiry(void **state)
{
	struct loop *l;
	struct loop_timer *t;
	struct counter c = { .fd_to_drop = -1 };

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	c.loop = l;
	assert_int_equal(loop_timer_new(l, on_tick, &c, &t), 0);
	assert_int_equal(loop_timer_arm(t, 1, 0), 0);
	usleep(5000); /* expired, not yet dispatched */
	assert_int_equal(loop_timer_arm(t, 10000, 0), 0); /* pushed far out */
	assert_int_equal(loop_run_once(l, 20), 0);
	assert_int_equal(c.hits, 0);
	loop_timer_free(t);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_dispatch_and_removal_in_round),
		cmocka_unit_test(test_periodic_timer),
		cmocka_unit_test(test_oneshot_timer_frees_itself),
		cmocka_unit_test(test_rearm_replaces_pending_expiry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
