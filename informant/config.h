/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h — the daemon's settings: defaults, INI file, command-line flags.
 * Every key of the interface contract has a field here; sizes are bytes,
 * durations milliseconds.  See deploy/vm-informant.conf.example.
 */
#ifndef VMI_CONFIG_H
#define VMI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/vm-informant/vm-informant.conf"
#define CONFIG_STR_MAX 1024

/* [agent]: the budgets of the calls to the agent, as the agent set
 * (agents.h) takes them. */
struct agents_timeouts {
	uint64_t id_check_interval_ms;   /* background GET /id period */
	uint64_t id_check_timeout_ms;
	uint64_t register_id_timeout_ms; /* the GET /id of /register */
	uint64_t resume_timeout_ms;
	uint64_t suspend_timeout_ms;
	uint64_t upscale_timeout_ms;     /* POST /try-upscale */
};

/* Defaults, ranges and reload rules of every field: the key table in
 * config.c.  Sizes are bytes, durations milliseconds. */
struct config {
	struct {
		char listen_host[256];      /* "0.0.0.0" */
		uint16_t listen_port;       /* 10301 */
		char auth_token_file[CONFIG_STR_MAX]; /* "" = no auth */
		uint64_t max_body_bytes;    /* 64 KiB */
		bool metrics;               /* serve /metrics and /status */
	} server;
	struct agents_timeouts agent;
	struct {
		bool enabled;
		char name[CONFIG_STR_MAX];  /* "neon-postgres" */
		char root[CONFIG_STR_MAX];  /* "/sys/fs/cgroup" */
		uint64_t oom_buffer;        /* 100 MiB */
		uint64_t memory_high_buffer;/* 100 MiB */
		uint64_t max_upscale_wait_ms;      /* 20 ms */
		uint64_t min_freeze_interval_ms;   /* 1 s */
		uint64_t memory_high_step;         /* 10 MiB */
		uint64_t memory_high_step_interval_ms; /* 25 ms */
		bool exclude_page_cache;    /* decide on memory.current − (file − shmem) */
	} cgroup;
	struct {
		bool enabled;
		char connstr[CONFIG_STR_MAX];
		bool in_memory;
		double resource_multiplier;        /* 0.75 */
		uint64_t min_remaining_after_cache;/* 640 MiB */
		double spread_factor;              /* 0.1 */
		char size_setting[128];            /* neon.file_cache_size_limit */
		char max_size_setting[128];        /* neon.max_file_cache_size */
		uint64_t connect_timeout_ms;       /* 1 s */
	} filecache;
	struct {
		char meminfo[CONFIG_STR_MAX];      /* /proc/meminfo */
		uint64_t sys_buffer;               /* 100 MiB */
	} system;
	struct {
		uint64_t interval_ms;              /* 100 ms; 0 = off */
	} sampler;
	struct {
		bool enabled;
		uint64_t horizon_ms;               /* 2 s */
		double critical_ratio;             /* 0.9 */
		uint64_t min_interval_ms;          /* 1 s */
	} predict;
	struct {
		enum log_level level;
		enum log_format format;
	} log;
	struct {
		bool auto_restart;
		uint64_t min_restart_interval_ms;  /* 5 s */
	} supervisor;
};

void config_defaults(struct config *c);

/* What a SIGHUP does with a key: apply it, or keep the running value
 * until a restart.  The rule of each key is in the key table (config.c). */
enum config_reload { RELOAD_LIVE, RELOAD_RESTART };

typedef void (*config_restart_fn)(const char *section, const char *name, void *arg);
/* A reload: every live key of loaded is copied into running; for each
 * restart-only key whose value differs, restart_needed (if not NULL) is
 * called and the running value stays. */
void config_apply_reload(struct config *running, const struct config *loaded,
			 config_restart_fn restart_needed, void *arg);

/* Parse an INI file over the current values.  On error returns -EINVAL
 * (or -errno for I/O) and writes "FILE:LINE: [section] key: problem" to err.
 * Unknown sections/keys, malformed and out-of-range values are errors; a
 * later line for the same key wins.  [filecache] enabled becomes true when
 * the file sets a non-empty connstr and does not set enabled itself. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* Every key's range again (values may come from flags or code) plus the
 * cross-field rules: multiplier x (1 + spread) < 1; an enabled file cache
 * needs a non-empty connstr. */
int config_validate(const struct config *c, char *err, size_t errlen);

/* Print effective settings as INI (secrets redacted) to the stream. */
void config_print(const struct config *c, FILE *out);

/* Copies a libpq connection string (keyword=value or postgres:// URL) with
 * every password replaced by "xxxxx".  -ENOSPC (and out = "xxxxx") when out
 * is too small. */
int config_connstr_redact(const char *connstr, char *out, size_t outlen);

/* Value parsers shared with the CLI: 0, -EINVAL (malformed) or -ERANGE
 * (too large for 64 bits). */
int config_parse_size(const char *s, uint64_t *bytes);
int config_parse_duration_ms(const char *s, uint64_t *ms);
int config_parse_bool(const char *s, bool *out);

#endif
