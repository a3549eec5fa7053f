/* SPDX-License-Identifier: Apache-2.0 */
/* testutil.h — small helpers shared by the memctl tests. */
#ifndef MEMCTL_TESTUTIL_H
#define MEMCTL_TESTUTIL_H

#include <math.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* cmocka's assert_float_equal works in float; these values need double. */
#define assert_near(a, b, eps)                                                     \
	do {                                                                       \
		double a_ = (a), b_ = (b);                                         \
		if (!(fabs(a_ - b_) <= (eps)))                                     \
			fail_msg("%s = %.17g, expected %.17g (+-%g)", #a, a_, b_,  \
				 (double)(eps));                                   \
	} while (0)

/* A failing call must say why. */
#define assert_err_text(ret, err)                                                  \
	do {                                                                       \
		if ((ret) < 0)                                                     \
			assert_true((err)[0] != '\0');                             \
	} while (0)

#endif
