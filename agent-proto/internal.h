/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h — helpers shared by the codec files of agent-proto; not part
 * of the public API.
 */
#ifndef AGENT_PROTO_INTERNAL_H
#define AGENT_PROTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The shortest decimal digits that read back as x (x finite, > 0):
 * digits[0..*ndigits) with value 0.d1d2d3… × 10^*point.  digits must hold
 * at least 18 bytes. */
void ap_shortest_digits(double x, char *digits, int *ndigits, int *point);

/* Dump v as compact JSON (members in insertion order) with Go's string
 * escaping, then drop the reference to v.  NULL if v is NULL or on
 * allocation failure. */
char *ap_json_finish(json_t *v);

/* s as a JSON string literal with Go's escaping ("a\u003cb"); NULL if s
 * is not UTF-8 or on allocation failure. */
char *ap_json_string_text(const char *s);

/* Rewrite jansson's escaping of a dumped JSON text into Go's (see
 * jsonenc.c).  Returns a malloc'd string, or NULL on allocation failure. */
char *ap_json_go_escape(const char *text);

#endif
