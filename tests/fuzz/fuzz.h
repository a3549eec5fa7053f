/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz.h — helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * A target checks invariants the code under test promises (round trips,
 * outputs left untouched on error, agreement between two parsers of the
 * same format).  A broken invariant aborts with a message, which libFuzzer
 * reports as a crash and saves the input, exactly like a sanitizer error.
 */
#ifndef VMI_FUZZ_H
#define VMI_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* The first input byte picks one of n modes: 'a' is mode 0, 'b' mode 1, …
 * (any other byte maps somewhere too), so seed files stay readable: a
 * letter followed by the payload.  Returns -1 for an empty input. */
static inline int fuzz_mode(const uint8_t *data, size_t size, unsigned n)
{
	if (size == 0)
		return -1;
	return (int)((uint8_t)(data[0] - 'a') % n);
}

/* A NUL-terminated heap copy of exactly size bytes (+ the NUL), so that
 * ASan sees any read past it; NULL on allocation failure. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

/* True when buf holds a NUL within len bytes and some text before it. */
static inline int fuzz_message_ok(const char *buf, size_t len)
{
	return memchr(buf, '\0', len) != NULL && buf[0] != '\0';
}

#endif
