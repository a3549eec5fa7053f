/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c — the table of keys with their defaults, ranges and reload
 * rules, the checks and cross-field validation.
 *
 * One table drives everything, so a key cannot be parsed without being
 * range-checked, printed, reloaded and documented the same way
 * (tests/informant/test_keytable.py holds README.md and
 * vm-informant.conf(5) to it).
 */
#include "config_internal.h"
#include "filecache.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define SEC 1000u
#define MIN (60u * SEC)
#define HOUR (60u * MIN)
/* Bounds for keys the contract leaves open: far above any sane value, far
 * below where arithmetic on them (ns timers, byte sums) could overflow. */
#define ANY_DURATION (7u * 24u * HOUR)
#define ANY_SIZE ((uint64_t)1 << 50)

#define OFF(f) offsetof(struct config, f)
#define CAP(f) sizeof(((struct config *)0)->f)

/* One row per key: where it lives, its default (as the file would write
 * it), whether a reload applies it, and its range. */
#define KEY(s, n, k, f, d, r, ...)                                              \
	{ .section = s, .name = n, .kind = k, .off = OFF(f), .cap = CAP(f), .dflt = d, \
	  .reload = r, __VA_ARGS__ }
#define K_BOOL(s, n, f, d, r) KEY(s, n, CK_BOOL, f, d, r, .allowed = "true or false")
#define K_SIZE(s, n, f, d, r, lo, hi, txt) \
	KEY(s, n, CK_SIZE, f, d, r, .min = lo, .max = hi, .allowed = txt)
#define K_DUR(s, n, f, d, r, lo, hi, txt) \
	KEY(s, n, CK_DUR, f, d, r, .min = lo, .max = hi, .allowed = txt)
#define K_STR(s, n, kind, f, d, r, txt) KEY(s, n, kind, f, d, r, .allowed = txt)
#define K_DBL(s, n, f, d, r, lo, hi, fl, txt) \
	KEY(s, n, CK_DBL, f, d, r, .dmin = lo, .dmax = hi, .dflags = fl, .allowed = txt)

const char *const config_sections[] = {
	"server", "agent", "cgroup", "filecache", "system", "sampler", "predict", "log",
	"supervisor", NULL,
};

/*
 * RELOAD_LIVE keys take effect on SIGHUP; RELOAD_RESTART keys keep their
 * running value until a restart (a change is logged).  Restart-only are
 * what the daemon opens or binds once at start (the listen socket, the
 * cgroup directory, the Postgres connection and its settings, the meminfo
 * file), what sizes the server (body limit, which routes exist), and what
 * the supervisor read before the daemon existed.
 */
const struct config_key config_keys[] = {
	KEY("server", "listen", CK_LISTEN, server.listen_host, "0.0.0.0:10301", RELOAD_RESTART,
	    .allowed = "host:port with a port from 1 to 65535"),
	K_STR("server", "auth_token_file", CK_STR, server.auth_token_file, "", RELOAD_LIVE,
	      "a file path, or empty for no authentication"),
	K_SIZE("server", "max_body_bytes", server.max_body_bytes, "64KiB", RELOAD_RESTART, KIB,
	       16 * MIB, "1KiB to 16MiB"),
	K_BOOL("server", "metrics", server.metrics, "true", RELOAD_RESTART),

	K_DUR("agent", "id_check_interval", agent.id_check_interval_ms, "10s", RELOAD_LIVE, 100,
	      HOUR, "100ms to 1h"),
	K_DUR("agent", "id_check_timeout", agent.id_check_timeout_ms, "250ms", RELOAD_LIVE, 1, MIN,
	      "1ms to 60s"),
	K_DUR("agent", "register_id_timeout", agent.register_id_timeout_ms, "250ms", RELOAD_LIVE, 1,
	      MIN, "1ms to 60s"),
	K_DUR("agent", "resume_timeout", agent.resume_timeout_ms, "100ms", RELOAD_LIVE, 1, MIN,
	      "1ms to 60s"),
	K_DUR("agent", "suspend_timeout", agent.suspend_timeout_ms, "5s", RELOAD_LIVE, 1, MIN,
	      "1ms to 60s"),
	K_DUR("agent", "upscale_timeout", agent.upscale_timeout_ms, "400ms", RELOAD_LIVE, 1, MIN,
	      "1ms to 60s"),

	K_BOOL("cgroup", "enabled", cgroup.enabled, "true", RELOAD_RESTART),
	K_STR("cgroup", "name", CK_CGNAME, cgroup.name, "neon-postgres", RELOAD_RESTART,
	      "a non-empty path relative to root, without '.' or '..' parts "
	      "(the root itself is never managed)"),
	K_STR("cgroup", "root", CK_PATH, cgroup.root, "/sys/fs/cgroup", RELOAD_RESTART,
	      "a non-empty directory path"),
	K_SIZE("cgroup", "oom_buffer", cgroup.oom_buffer, "100MiB", RELOAD_LIVE, 0, ANY_SIZE,
	       "0 to 1024TiB"),
	K_SIZE("cgroup", "memory_high_buffer", cgroup.memory_high_buffer, "100MiB", RELOAD_LIVE, 0,
	       ANY_SIZE, "0 to 1024TiB"),
	K_DUR("cgroup", "max_upscale_wait", cgroup.max_upscale_wait_ms, "20ms", RELOAD_LIVE, 1, SEC,
	      "1ms to 1s"),
	K_DUR("cgroup", "min_freeze_interval", cgroup.min_freeze_interval_ms, "1s", RELOAD_LIVE, 0,
	      MIN, "0 to 60s"),
	K_SIZE("cgroup", "memory_high_step", cgroup.memory_high_step, "10MiB", RELOAD_LIVE, MIB, GIB,
	       "1MiB to 1GiB"),
	K_DUR("cgroup", "memory_high_step_interval", cgroup.memory_high_step_interval_ms, "25ms",
	      RELOAD_LIVE, 1, SEC, "1ms to 1s"),
	K_BOOL("cgroup", "exclude_page_cache", cgroup.exclude_page_cache, "true", RELOAD_LIVE),

	K_BOOL("filecache", "enabled", filecache.enabled, "false", RELOAD_RESTART),
	K_STR("filecache", "connstr", CK_CONNSTR, filecache.connstr, "", RELOAD_RESTART,
	      "a libpq connection string"),
	K_BOOL("filecache", "in_memory", filecache.in_memory, "true", RELOAD_RESTART),
	K_DBL("filecache", "resource_multiplier", filecache.resource_multiplier, "0.75", RELOAD_LIVE,
	      0, 1, DBL_MIN_OPEN | DBL_MAX_OPEN, "greater than 0 and less than 1"),
	K_SIZE("filecache", "min_remaining_after_cache", filecache.min_remaining_after_cache,
	       "640MiB", RELOAD_LIVE, 1, ANY_SIZE,
	       "1 byte to 1024TiB (0 would leave nothing outside the cache)"),
	K_DBL("filecache", "spread_factor", filecache.spread_factor, "0.1", RELOAD_LIVE, 0, 0,
	      DBL_NO_MAX, "0 or more"),
	K_STR("filecache", "size_setting", CK_GUC, filecache.size_setting,
	      "neon.file_cache_size_limit", RELOAD_RESTART,
	      "a Postgres setting name such as neon.file_cache_size_limit"),
	K_STR("filecache", "max_size_setting", CK_GUC, filecache.max_size_setting,
	      "neon.max_file_cache_size", RELOAD_RESTART,
	      "a Postgres setting name such as neon.max_file_cache_size"),
	K_DUR("filecache", "connect_timeout", filecache.connect_timeout_ms, "1s", RELOAD_RESTART, 0,
	      ANY_DURATION, "0 to 168h"),

	K_STR("system", "meminfo", CK_PATH, system.meminfo, "/proc/meminfo", RELOAD_RESTART,
	      "a non-empty file path"),
	K_SIZE("system", "sys_buffer", system.sys_buffer, "100MiB", RELOAD_LIVE, 0, ANY_SIZE,
	       "0 to 1024TiB"),

	/* Live, except that turning sampling on or off needs a restart
	 * (memory_reconfigure says so when asked). */
	KEY("sampler", "interval", CK_DUR, sampler.interval_ms, "100ms", RELOAD_LIVE, .min = 10,
	    .max = 10 * SEC, .zero_ok = true, .allowed = "0 (off) or 10ms to 10s"),

	K_BOOL("predict", "enabled", predict.enabled, "true", RELOAD_LIVE),
	K_DUR("predict", "horizon", predict.horizon_ms, "2s", RELOAD_LIVE, 100, MIN,
	      "100ms to 60s"),
	K_DBL("predict", "critical_ratio", predict.critical_ratio, "0.9", RELOAD_LIVE, 0, 1,
	      DBL_MIN_OPEN, "greater than 0 and at most 1"),
	K_DUR("predict", "min_interval", predict.min_interval_ms, "1s", RELOAD_LIVE, 0,
	      ANY_DURATION, "0 to 168h"),

	KEY("log", "level", CK_LEVEL, log.level, "info", RELOAD_LIVE,
	    .allowed = "debug, info, warn or error"),
	KEY("log", "format", CK_FORMAT, log.format, "json", RELOAD_LIVE,
	    .allowed = "json or text"),

	K_BOOL("supervisor", "auto_restart", supervisor.auto_restart, "false", RELOAD_RESTART),
	K_DUR("supervisor", "min_restart_interval", supervisor.min_restart_interval_ms, "5s",
	      RELOAD_RESTART, 0, HOUR, "0 to 1h"),
};

const size_t config_keys_count = sizeof(config_keys) / sizeof(config_keys[0]);

/* Every default comes from the table: the file, the table and the code
 * cannot disagree.  The texts are constants checked by the tests, so a
 * parse here cannot fail. */
void config_defaults(struct config *c)
{
	char err[128];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < config_keys_count; i++)
		(void)config_key_parse(&config_keys[i], c, config_keys[i].dflt, err, sizeof(err));
}

static bool key_is_string(const struct config_key *k)
{
	return k->kind == CK_STR || k->kind == CK_PATH || k->kind == CK_CGNAME ||
	       k->kind == CK_GUC || k->kind == CK_CONNSTR || k->kind == CK_LISTEN;
}

bool config_key_equal(const struct config_key *k, const struct config *a, const struct config *b)
{
	const char *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;

	if (k->kind == CK_LISTEN && a->server.listen_port != b->server.listen_port)
		return false;
	return key_is_string(k) ? strcmp(fa, fb) == 0 : memcmp(fa, fb, k->cap) == 0;
}

static void key_copy(const struct config_key *k, struct config *dst, const struct config *src)
{
	memcpy((char *)dst + k->off, (const char *)src + k->off, k->cap);
	if (k->kind == CK_LISTEN)
		dst->server.listen_port = src->server.listen_port;
}

void config_apply_reload(struct config *running, const struct config *loaded,
			 config_restart_fn restart_needed, void *arg)
{
	for (size_t i = 0; i < config_keys_count; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->reload == RELOAD_LIVE)
			key_copy(k, running, loaded);
		else if (restart_needed && !config_key_equal(k, running, loaded))
			restart_needed(k->section, k->name, arg);
	}
}

bool config_section_known(const char *section)
{
	for (size_t i = 0; config_sections[i]; i++) {
		if (strcmp(config_sections[i], section) == 0)
			return true;
	}
	return false;
}

const struct config_key *config_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < config_keys_count; i++) {
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static bool dbl_in_range(const struct config_key *k, double d)
{
	if (!isfinite(d))
		return false;
	if ((k->dflags & DBL_MIN_OPEN) ? d <= k->dmin : d < k->dmin)
		return false;
	if (k->dflags & DBL_NO_MAX)
		return true;
	return (k->dflags & DBL_MAX_OPEN) ? d < k->dmax : d <= k->dmax;
}

/* Cgroup names are joined to root: refuse anything that could leave it. */
static bool cgname_ok(const char *s)
{
	const char *p = s;

	if (*s == '\0')
		return false; /* the root: the original failed later, at start-up */
	if (*s == '/')
		return false;
	while (*p) {
		size_t len = strcspn(p, "/");

		bool dot = len == 1 && p[0] == '.';
		bool dotdot = len == 2 && p[0] == '.' && p[1] == '.';

		if (len == 0 || dot || dotdot)
			return false;
		p += len;
		if (*p == '/' && *++p == '\0')
			return false;
	}
	return strcspn(s, "\n\r\t") == strlen(s);
}

/* Postgres setting names: identifiers joined by dots; they are put in SQL. */
static bool guc_ok(const char *s)
{
	bool start = true;

	for (const char *p = s; *p; p++) {
		if (*p == '.' && !start) {
			start = true;
		} else if (isalpha((unsigned char)*p) || *p == '_' ||
			   (!start && isdigit((unsigned char)*p))) {
			start = false;
		} else {
			return false;
		}
	}
	return !start;
}

/* libpq must read it the way it is meant; the message never quotes it. */
static int connstr_check(const struct config_key *k, const char *connstr, char *err,
			 size_t errlen)
{
	char why[384];
	int r;

	if (!connstr[0])
		return 0;
	r = fc_connstr_check(connstr, why, sizeof(why));
	if (r < 0)
		snprintf(err, errlen, "[%s] %s: %s", k->section, k->name, why);
	return r < 0 ? -EINVAL : 0;
}

int config_key_check(const struct config_key *k, const struct config *c, char *err, size_t errlen)
{
	const char *field = (const char *)c + k->off;
	char shown[CONFIG_STR_MAX + 64];
	bool ok = true;

	switch (k->kind) {
	case CK_CONNSTR:
		return connstr_check(k, field, err, errlen);
	case CK_SIZE:
	case CK_DUR: {
		uint64_t v = *(const uint64_t *)field;

		ok = (v == 0 && k->zero_ok) || (v >= k->min && v <= k->max);
		break;
	}
	case CK_DBL:
		ok = dbl_in_range(k, *(const double *)field);
		break;
	case CK_PATH:
		ok = field[0] != '\0';
		break;
	case CK_CGNAME:
		ok = cgname_ok(field) || (field[0] == '\0' && !c->cgroup.enabled);
		break;
	case CK_GUC:
		ok = guc_ok(field);
		break;
	case CK_LISTEN:
		ok = c->server.listen_port != 0 && c->server.listen_host[0] != '\0';
		break;
	case CK_BOOL:
	case CK_STR:
	case CK_LEVEL:
	case CK_FORMAT:
		break;
	}
	if (ok)
		return 0;
	config_key_format(k, c, shown, sizeof(shown));
	snprintf(err, errlen, "[%s] %s: %s%s%s is not allowed — allowed: %s", k->section, k->name,
		 shown[0] ? "" : "\"", shown, shown[0] ? "" : "\"", k->allowed);
	return -EINVAL;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
	double product;

	for (size_t i = 0; i < config_keys_count; i++) {
		int r = config_key_check(&config_keys[i], c, err, errlen);

		if (r < 0)
			return r;
	}
	product = c->filecache.resource_multiplier * (1.0 + c->filecache.spread_factor);
	if (!(product < 1.0)) {
		snprintf(err, errlen, "[filecache] resource_multiplier × (1 + spread_factor) = %g "
			 "must be less than 1 — lower resource_multiplier or spread_factor",
			 product);
		return -EINVAL;
	}
	if (c->filecache.enabled && c->filecache.connstr[0] == '\0') {
		snprintf(err, errlen, "[filecache] enabled = true needs a connstr — set connstr "
			 "(e.g. \"dbname=postgres\") or -pgconnstr, or set enabled = false");
		return -EINVAL;
	}
	return 0;
}
