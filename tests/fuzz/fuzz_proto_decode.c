/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_proto_decode.c — every agent-proto message decoder on untrusted
 * bytes (the HTTP bodies the informant and the agent exchange).
 *
 * Input: one mode byte, then the body.  Mode 'a' + k picks decoder k of
 * codecs[] below; bytes past the table also shrink the error buffer to
 * 1..25 bytes so truncation of messages is exercised.  Invariants, all
 * promised by agent_proto.h:
 *   - a failure returns -EINVAL, leaves the outputs untouched and writes a
 *     non-empty, NUL-terminated reason that fits in errlen;
 *   - a decoded message encodes (never NULL: decoded strings are valid
 *     UTF-8 and sequence numbers fit jansson's integers), and the encoding
 *     decodes to the same message (round trip).
 */
#include <errno.h>
#include <stdbool.h>

#include "agent_proto.h"
#include "fuzz.h"

#define ERR_FULL 256

struct codec {
	int (*decode)(const char *body, size_t len, union ap_any_msg *m, char *err, size_t errlen);
	char *(*encode)(const union ap_any_msg *m);
	bool (*equal)(const union ap_any_msg *a, const union ap_any_msg *b);
};

static bool uuid_eq(const struct ap_uuid *a, const struct ap_uuid *b)
{
	return ap_uuid_equal(a, b);
}

/* ---- AgentDesc (/register, /unregister) ---- */

static int dec_desc(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_agent_desc(b, n, &m->desc, e, el);
}

static char *enc_desc(const union ap_any_msg *m)
{
	return ap_encode_agent_desc(&m->desc);
}

static bool eq_desc(const union ap_any_msg *a, const union ap_any_msg *b)
{
	return uuid_eq(&a->desc.agent_id, &b->desc.agent_id) &&
	       strcmp(a->desc.serve_addr, b->desc.serve_addr) == 0 &&
	       a->desc.min_proto == b->desc.min_proto && a->desc.max_proto == b->desc.max_proto;
}

/* ---- bare AgentIdentification (/health-check) and expectedID ---- */

static int dec_ident(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_agent_ident(b, n, &m->id, e, el);
}

static char *enc_ident(const union ap_any_msg *m)
{
	return ap_encode_agent_ident(&m->id);
}

static int dec_expected(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_expected_id(b, n, &m->id, e, el);
}

static char *enc_expected(const union ap_any_msg *m)
{
	return ap_encode_expected_id(&m->id);
}

static bool eq_id(const union ap_any_msg *a, const union ap_any_msg *b)
{
	return uuid_eq(&a->id, &b->id);
}

/* ---- AgentResourceMessage (/upscale, /downscale) ---- */

static int dec_res(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_resource_msg(b, n, &m->res, e, el);
}

static char *enc_res(const union ap_any_msg *m)
{
	return ap_encode_resource_msg(&m->res);
}

static bool eq_res(const union ap_any_msg *a, const union ap_any_msg *b)
{
	const struct ap_resource_msg *x = &a->res, *y = &b->res;

	return x->has_cpu == y->has_cpu && (!x->has_cpu || x->cpu_milli == y->cpu_milli) &&
	       x->has_memory == y->has_memory &&
	       (!x->has_memory || x->memory_bytes == y->memory_bytes) &&
	       uuid_eq(&x->agent_id, &y->agent_id) && x->seq == y->seq;
}

/* ---- AgentMessage<AgentIdentification> (agent's replies) ---- */

static int dec_ident_msg(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_agent_ident_msg(b, n, &m->ident, e, el);
}

static char *enc_ident_msg(const union ap_any_msg *m)
{
	return ap_encode_agent_ident_msg(&m->ident);
}

static bool eq_ident_msg(const union ap_any_msg *a, const union ap_any_msg *b)
{
	return uuid_eq(&a->ident.agent_id, &b->ident.agent_id) && a->ident.seq == b->ident.seq;
}

/* ---- InformantDesc (200 of /register) ---- */

static int dec_inf(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_informant_desc(b, n, &m->inf, e, el);
}

static char *enc_inf(const union ap_any_msg *m)
{
	return ap_encode_informant_desc(&m->inf);
}

static bool eq_inf(const union ap_any_msg *a, const union ap_any_msg *b)
{
	return a->inf.proto_version == b->inf.proto_version &&
	       a->inf.has_prometheus == b->inf.has_prometheus &&
	       (!a->inf.has_prometheus || a->inf.prometheus_port == b->inf.prometheus_port);
}

/* ---- DownscaleResult (200 of /downscale) ---- */

static int dec_down(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_downscale_result(b, n, &m->down, e, el);
}

static char *enc_down(const union ap_any_msg *m)
{
	return ap_encode_downscale_result(&m->down);
}

static bool eq_down(const union ap_any_msg *a, const union ap_any_msg *b)
{
	return a->down.ok == b->down.ok && strcmp(a->down.status, b->down.status) == 0;
}

/* ---- {"wasActive":…} (200 of /unregister) ---- */

static int dec_unreg(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_unregister_result(b, n, &m->flag, e, el);
}

static char *enc_unreg(const union ap_any_msg *m)
{
	return ap_encode_unregister_result(m->flag);
}

static bool eq_flag(const union ap_any_msg *a, const union ap_any_msg *b)
{
	return a->flag == b->flag;
}

/* ---- MoreResourcesRequest (/try-upscale) ---- */

static int dec_more(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	return ap_decode_more_resources(b, n, &m->more.cpu, &m->more.memory, &m->more.expected,
					e, el);
}

static char *enc_more(const union ap_any_msg *m)
{
	return ap_encode_more_resources(m->more.cpu, m->more.memory, &m->more.expected);
}

static bool eq_more(const union ap_any_msg *a, const union ap_any_msg *b)
{
	return a->more.cpu == b->more.cpu && a->more.memory == b->more.memory &&
	       uuid_eq(&a->more.expected, &b->more.expected);
}

/* ---- Empty ({} bodies) ---- */

static int dec_empty(const char *b, size_t n, union ap_any_msg *m, char *e, size_t el)
{
	(void)m;
	return ap_decode_empty(b, n, e, el);
}

static char *enc_empty(const union ap_any_msg *m)
{
	(void)m;
	return ap_encode_empty();
}

static bool eq_none(const union ap_any_msg *a, const union ap_any_msg *b)
{
	(void)a;
	(void)b;
	return true;
}

/* Mode letters: a desc, b ident, c resource, d ident_msg, e informant,
 * f downscale, g unregister, h expected, i more, j empty. */
static const struct codec codecs[] = {
	{ dec_desc, enc_desc, eq_desc },
	{ dec_ident, enc_ident, eq_id },
	{ dec_res, enc_res, eq_res },
	{ dec_ident_msg, enc_ident_msg, eq_ident_msg },
	{ dec_inf, enc_inf, eq_inf },
	{ dec_down, enc_down, eq_down },
	{ dec_unreg, enc_unreg, eq_flag },
	{ dec_expected, enc_expected, eq_id },
	{ dec_more, enc_more, eq_more },
	{ dec_empty, enc_empty, eq_none },
};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/* The encoding of m decodes back to m. */
static void check_round_trip(const struct codec *c, const union ap_any_msg *m)
{
	char err[ERR_FULL];
	union ap_any_msg again;
	char *text = c->encode(m);

	FUZZ_CHECK(text != NULL);
	memset(&again, 0, sizeof(again));
	int r = c->decode(text, strlen(text), &again, err, sizeof(err));
	if (r != 0)
		fprintf(stderr, "re-decoding %s failed: %s\n", text, err);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(c->equal(m, &again));
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode = fuzz_mode(data, size, NCODECS);

	if (mode < 0)
		return 0;
	const struct codec *c = &codecs[mode];
	unsigned sel = (uint8_t)(data[0] - 'a') / NCODECS;
	size_t errlen = sel == 0 ? ERR_FULL : sel;
	/* Exactly errlen bytes on the heap so an overflow is caught. */
	char *err = malloc(errlen);
	union ap_any_msg out, untouched;

	FUZZ_CHECK(err != NULL);
	memset(&out, 0xa5, sizeof(out));
	untouched = out;
	/* The body is the fuzzer's own buffer: not NUL-terminated, exact size. */
	int r = c->decode((const char *)data + 1, size - 1, &out, err, errlen);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(memcmp(&out, &untouched, sizeof(out)) == 0);
		FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
		FUZZ_CHECK(errlen == 1 || err[0] != '\0');
	} else {
		FUZZ_CHECK(r == 0);
		check_round_trip(c, &out);
	}
	free(err);
	return 0;
}
