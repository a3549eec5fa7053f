/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_internal.h — the table of config keys shared by the parser
 * (config_load.c), the checks and printer (config.c) and the value
 * helpers (config_value.c).  Not for use outside the config code.
 */
#ifndef VMI_CONFIG_INTERNAL_H
#define VMI_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum config_kind {
	CK_BOOL,
	CK_SIZE,    /* uint64_t bytes */
	CK_DUR,     /* uint64_t milliseconds */
	CK_DBL,
	CK_STR,     /* char[] of `cap` bytes */
	CK_PATH,    /* CK_STR that must not be empty */
	CK_CGNAME,  /* relative cgroup path, may be empty (the root itself) */
	CK_GUC,     /* Postgres setting name: goes into SQL, so strictly checked */
	CK_CONNSTR, /* libpq connection string: checked by libpq, never shown */
	CK_LISTEN,  /* host:port into server.listen_host / listen_port */
	CK_LEVEL,
	CK_FORMAT,
};

/* Bounds of a double: open or closed at each end, or no upper bound. */
enum { DBL_MIN_OPEN = 1, DBL_MAX_OPEN = 2, DBL_NO_MAX = 4 };

struct config_key {
	const char *section;
	const char *name;
	enum config_kind kind;
	size_t off;           /* offset of the field in struct config */
	size_t cap;           /* size of the field (CK_LISTEN: the host) */
	const char *dflt;     /* the default, as the file writes it */
	enum config_reload reload;
	uint64_t min, max;    /* CK_SIZE, CK_DUR */
	bool zero_ok;         /* CK_SIZE, CK_DUR: 0 is allowed besides min..max */
	double dmin, dmax;    /* CK_DBL */
	unsigned dflags;
	const char *allowed;  /* what is allowed, in words, for messages */
};

extern const struct config_key config_keys[];
extern const size_t config_keys_count;
extern const char *const config_sections[];

const struct config_key *config_key_find(const char *section, const char *name);
bool config_section_known(const char *section);

/* Whether the key's field holds the same value in a and b. */
bool config_key_equal(const struct config_key *k, const struct config *a, const struct config *b);
/* Parse `value` into the field of `k` in c; checks syntax only. */
int config_key_parse(const struct config_key *k, struct config *c, const char *value,
		     char *err, size_t errlen);
/* Checks the field's current value against the key's range. */
int config_key_check(const struct config_key *k, const struct config *c, char *err,
		     size_t errlen);
/* Formats the field's current value as the file would hold it. */
void config_key_format(const struct config_key *k, const struct config *c, char *out,
		       size_t outlen);

int config_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port);
int config_parse_double(const char *s, double *out);

#endif
