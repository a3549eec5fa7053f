/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vectors.h — reading tests/vectors/ (found through $VMI_VECTORS_DIR) from
 * the agent-proto tests.  Failures end the current cmocka test.
 */
#ifndef AGENT_PROTO_TEST_VECTORS_H
#define AGENT_PROTO_TEST_VECTORS_H

#include <stddef.h>

#include <jansson.h>

/* The vectors directory; fails the test when the variable is unset. */
const char *vec_dir(void);
/* Exact bytes of a vector file (malloc'd, NUL-terminated; caller frees). */
char *vec_read(const char *name, size_t *len);
/* A case-table file parsed with jansson (caller decrefs). */
json_t *vec_json(const char *name);
/* Member of a case-table row that must be a string / an integer. */
const char *vec_str(json_t *row, const char *key);
long long vec_int(json_t *row, const char *key);

#endif
