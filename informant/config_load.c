/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_load.c — reading the INI file with libinih.
 *
 * Debian's libinih is built without line numbers in the handler, so the
 * file is fed through our own line reader, which counts lines (the
 * handler always runs right after its line was read), refuses overlong
 * lines instead of letting them be split, and checks every [section]
 * header — inih does not call the handler for a section without keys.
 */
#include "config_internal.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "httputil.h"

/* Longest accepted line: a full-length connstr plus its key and comment. */
#define CONFIG_LINE_MAX 4096

struct load_ctx {
	struct config *cfg;
	const char *path;
	FILE *file;
	int lineno;
	bool failed;
	bool filecache_enabled_set;
	char *err;
	size_t errlen;
};

/* Records "FILE:LINE: <message>"; only the first error is kept. */
__attribute__((format(printf, 2, 3)))
static void fail(struct load_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (ctx->failed)
		return;
	ctx->failed = true;
	snprintf(ctx->err, ctx->errlen, "%s:%d: ", ctx->path, ctx->lineno);
	n = strlen(ctx->err);
	va_start(ap, fmt);
	vsnprintf(ctx->err + n, ctx->errlen - n, fmt, ap);
	va_end(ap);
}

static void list_sections(char *out, size_t outlen)
{
	size_t pos = 0;

	out[0] = '\0';
	for (size_t i = 0; config_sections[i] && pos < outlen; i++)
		pos += (size_t)snprintf(out + pos, outlen - pos, "%s[%s]", i ? " " : "",
					config_sections[i]);
}

static void list_keys(const char *section, char *out, size_t outlen)
{
	size_t pos = 0;

	out[0] = '\0';
	for (size_t i = 0; i < config_keys_count && pos < outlen; i++) {
		if (strcmp(config_keys[i].section, section) == 0)
			pos += (size_t)snprintf(out + pos, outlen - pos, "%s%s", pos ? ", " : "",
						config_keys[i].name);
	}
}

static void check_section_header(struct load_ctx *ctx, const char *line)
{
	const char *p = line + strspn(line, " \t");
	char name[64], known[256];
	size_t len;

	if (*p != '[')
		return;
	p++;
	len = strcspn(p, "]");
	if (p[len] != ']')
		return; /* inih reports the syntax error */
	if (len >= sizeof(name)) {
		fail(ctx, "unknown section (name too long) — check the section header");
		return;
	}
	memcpy(name, p, len);
	name[len] = '\0';
	if (!config_section_known(name)) {
		list_sections(known, sizeof(known));
		fail(ctx, "unknown section [%s] — known sections: %s", name, known);
	}
}

/* One line, as fgets() would give it, but a NUL byte is an error of its
 * own (fgets would hide the rest of the line and call it too long). */
static char *read_line(char *buf, int size, void *stream)
{
	struct load_ctx *ctx = stream;
	int ch = EOF, n = 0;
	bool nul = false;

	if (ctx->failed)
		return NULL;
	while (n < size - 1 && (ch = getc(ctx->file)) != EOF) {
		nul = nul || ch == '\0';
		buf[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (n == 0)
		return NULL;
	buf[n] = '\0';
	ctx->lineno++;
	if (nul) {
		fail(ctx, "a NUL byte in the line — the file must be text (was it saved as "
		     "UTF-16, or is it not a config file?)");
		return NULL;
	}
	if (ch != '\n' && n == size - 1) {
		ch = getc(ctx->file);
		if (ch != EOF) {
			fail(ctx, "line too long — at most %d bytes per line", size - 2);
			return NULL;
		}
	}
	check_section_header(ctx, buf);
	return ctx->failed ? NULL : buf;
}

/* The daemon refuses to start without its token: so does the loader (and
 * so --check-config, and a reload that would lose the token). */
static bool token_file_ok(struct load_ctx *ctx)
{
	char token[HTTP_TOKEN_MAX], why[CONFIG_STR_MAX + 128];
	int r = http_token_load(ctx->cfg->server.auth_token_file, token, sizeof(token), why,
				sizeof(why));

	explicit_bzero(token, sizeof(token));
	if (r < 0)
		fail(ctx, "[server] auth_token_file: %s", why);
	return r == 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	const struct config_key *k;
	char msg[CONFIG_STR_MAX + 256], keys[512];

	if (section[0] == '\0') {
		fail(ctx, "%s: key outside any section — put it under its [section]", name);
		return 0;
	}
	k = config_key_find(section, name);
	if (!k) {
		list_keys(section, keys, sizeof(keys));
		fail(ctx, "[%s] %s: unknown key — keys of this section: %s", section, name, keys);
		return 0;
	}
	if (config_key_parse(k, ctx->cfg, value, msg, sizeof(msg)) < 0 ||
	    config_key_check(k, ctx->cfg, msg, sizeof(msg)) < 0) {
		/* config_key_check's message already names [section] key. */
		if (msg[0] == '[')
			fail(ctx, "%s", msg);
		else
			fail(ctx, "[%s] %s: %s", section, name, msg);
		return 0;
	}
	if (k->off == offsetof(struct config, server.auth_token_file) &&
	    ctx->cfg->server.auth_token_file[0] && !token_file_ok(ctx))
		return 0;
	if (strcmp(section, "filecache") == 0 && strcmp(name, "enabled") == 0)
		ctx->filecache_enabled_set = true;
	return 1;
}

/* inih's options are process globals: set them for every parse. */
static void set_ini_options(void)
{
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_initial_alloc = CONFIG_LINE_MAX;
	ini_max_line = CONFIG_LINE_MAX;
	ini_allow_multiline = false;  /* an indented line is a line of its own */
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = (char *)"#;"; /* after whitespace only */
	ini_start_comment_prefixes = (char *)"#;";
	ini_allow_no_value = false;
	ini_stop_on_first_error = true;
	ini_allow_bom = true;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	struct load_ctx ctx = { .cfg = c, .path = path, .err = err, .errlen = errlen };
	struct stat st;
	int r;

	ctx.file = fopen(path, "re");
	if (!ctx.file) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open config file: %s", path, strerror(-r));
		return r;
	}
	/* fopen() opens a directory; only the first read fails, with EISDIR. */
	if (fstat(fileno(ctx.file), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(ctx.file);
		snprintf(err, errlen, "%s: is a directory — give the config file itself "
			 "(e.g. %s/vm-informant.conf)", path, path);
		return -EISDIR;
	}
	set_ini_options();
	r = ini_parse_stream(read_line, &ctx, on_key, &ctx);
	if (!ctx.failed && ferror(ctx.file)) {
		snprintf(err, errlen, "%s:%d: read error", path, ctx.lineno);
		ctx.failed = true;
	}
	fclose(ctx.file);
	if (!ctx.failed && r > 0) {
		ctx.lineno = r;
		fail(&ctx, "syntax error — expected [section], key = value, or a comment "
		     "starting with # or ;");
	} else if (!ctx.failed && r < 0) {
		snprintf(err, errlen, "%s: out of memory while parsing", path);
		return -ENOMEM;
	}
	if (ctx.failed)
		return -EINVAL;
	if (!ctx.filecache_enabled_set && c->filecache.connstr[0] != '\0')
		c->filecache.enabled = true;
	return 0;
}
