/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_proto.h — the autoscaler-agent <-> informant protocol, v2.0.
 *
 * Messages (encode to the exact bytes of the original Go informant, decode
 * strictly with a message naming the bad field), the websocket monitor
 * protocol v1.0 of current agents (messages only), Kubernetes quantities,
 * version negotiation, the Go-style number format of DownscaleResult
 * texts, and an asynchronous libcurl-multi client for the agent's
 * endpoints.  No I/O except in the client; no logging anywhere.
 *
 * Conventions: functions return 0 or a negative errno.  Decoders return
 * -EINVAL and write a short reason naming the field into err (errlen bytes,
 * always NUL-terminated), leaving their outputs untouched.  Encoders
 * return a malloc'd NUL-terminated string (caller frees) or NULL on
 * allocation failure.
 */
#ifndef AGENT_PROTO_H
#define AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- UUIDs ------------------------------------------------------------ */

#define AP_UUID_STRLEN 36

struct ap_uuid {
	uint8_t b[16];
};

/* Accepts 8-4-4-4-12 (either case), 32 hex digits, {8-4-4-4-12},
 * urn:uuid:8-4-4-4-12.  -EINVAL otherwise. */
int ap_uuid_parse(const char *s, struct ap_uuid *out);
/* Lowercase canonical form into out (at least AP_UUID_STRLEN + 1 bytes). */
void ap_uuid_format(const struct ap_uuid *u, char *out);
bool ap_uuid_equal(const struct ap_uuid *a, const struct ap_uuid *b);
bool ap_uuid_is_zero(const struct ap_uuid *u);
/* A random v4 UUID from getrandom(2). */
int ap_uuid_random(struct ap_uuid *out);

/* ---- protocol versions ------------------------------------------------ */

enum {
	AP_PROTO_INVALID = 0,
	AP_PROTO_V1_0 = 1,
	AP_PROTO_V1_1 = 2,
	AP_PROTO_V1_2 = 3,
	AP_PROTO_V2_0 = 4,
};
#define AP_INFORMANT_PROTO_MIN AP_PROTO_V2_0
#define AP_INFORMANT_PROTO_MAX AP_PROTO_V2_0
#define AP_METRICS_PROMETHEUS_PORT 9100

/* Newest version in both inclusive ranges.  Returns 0 with *chosen set, or
 * -EPROTO with err = "Protocol version mismatch: Need … but got …". */
int ap_negotiate(uint32_t agent_min, uint32_t agent_max, uint32_t informant_min,
		 uint32_t informant_max, uint32_t *chosen, char *err, size_t errlen);
/* "v1.0" … "v2.0", "<invalid: zero>", "<unknown = v2.0 + N>". */
void ap_version_name(uint32_t v, char *out, size_t outlen);

/* ---- quantities --------------------------------------------------------- */

/* Kubernetes quantity ("4Gi", "1536Mi", "250m", "1e3", "3221225472") to a
 * byte/unit count rounded up, computed exactly.  -EINVAL if malformed or
 * negative (or more than 64 significant digits), -ERANGE if > UINT64_MAX. */
int ap_quantity_parse(const char *s, uint64_t *out);
/* Same, in thousandths (for cpu: "250m" -> 250, "2" -> 2000). */
int ap_quantity_parse_milli(const char *s, uint64_t *out);
/* Canonical binary-SI form as the agent sends memory: 4 GiB -> "4Gi". */
void ap_quantity_format_bytes(uint64_t bytes, char *out, size_t outlen);
/* Milli-CPU as the agent sends it: 2000 -> "2", 250 -> "250m". */
void ap_quantity_format_milli(uint64_t milli, char *out, size_t outlen);

/* bytes / MiB as Go's strconv.FormatFloat(x, 'g', -1, 64):
 * 659, 600.25, 559.0000009536743, 1.234567e+06. */
void ap_format_mib(uint64_t bytes, char *out, size_t outlen);
/* Any double the same way ("-0.5", "1e+21", "NaN", "+Inf"). */
void ap_format_float_g(double x, char *out, size_t outlen);

/* ---- messages ------------------------------------------------------------ */

#define AP_ADDR_MAX 256
#define AP_STATUS_MAX 512

/* AgentDesc: body of POST /register and DELETE /unregister. */
struct ap_agent_desc {
	struct ap_uuid agent_id;
	char serve_addr[AP_ADDR_MAX];
	uint32_t min_proto;
	uint32_t max_proto;
};

/* The largest sequenceNumber decoded or encoded: Go's field is a uint64,
 * but jansson's integers are int64.  Agents count from 1; 2^63 is never
 * reached.  Larger values are refused with a message naming this limit. */
#define AP_SEQ_MAX ((uint64_t)INT64_MAX)

/* AgentResourceMessage: body of PUT /upscale and PUT /downscale. */
struct ap_resource_msg {
	bool has_cpu;
	uint64_t cpu_milli;
	bool has_memory;       /* false when missing or null (defect D14) */
	uint64_t memory_bytes; /* rounded up */
	struct ap_uuid agent_id;
	uint64_t seq;
};

/* AgentMessage<AgentIdentification>: the agent's reply to /id, /suspend,
 * /resume, /try-upscale. */
struct ap_agent_ident_msg {
	struct ap_uuid agent_id;
	uint64_t seq;
};

/* InformantDesc: 200 body of /register. */
struct ap_informant_desc {
	uint32_t proto_version;
	bool has_prometheus;
	uint16_t prometheus_port;
};

/* DownscaleResult: 200 body of /downscale ("Ok", "Status"). */
struct ap_downscale_result {
	bool ok;
	char status[AP_STATUS_MAX];
};

/* MoreResourcesRequest: body of the agent's POST /try-upscale. */
struct ap_more_resources {
	bool cpu, memory;
	struct ap_uuid expected;
};

/* Room for any message below: what a decoder fills while it works, and
 * what a caller dispatching on the message kind (the fuzz harness) holds. */
union ap_any_msg {
	struct ap_agent_desc desc;
	struct ap_uuid id;
	struct ap_resource_msg res;
	struct ap_agent_ident_msg ident;
	struct ap_informant_desc inf;
	struct ap_downscale_result down;
	struct ap_more_resources more;
	bool flag;
};

/* Requests (informant side): strict, trailing data rejected. */
int ap_decode_agent_desc(const char *body, size_t len, struct ap_agent_desc *out, char *err,
			 size_t errlen);
int ap_decode_agent_ident(const char *body, size_t len, struct ap_uuid *out, char *err,
			  size_t errlen); /* bare {"agentID":…}: /health-check */
int ap_decode_resource_msg(const char *body, size_t len, struct ap_resource_msg *out, char *err,
			   size_t errlen);
/* Responses (both sides). */
int ap_decode_agent_ident_msg(const char *body, size_t len, struct ap_agent_ident_msg *out,
			      char *err, size_t errlen);
int ap_decode_informant_desc(const char *body, size_t len, struct ap_informant_desc *out,
			     char *err, size_t errlen);
int ap_decode_downscale_result(const char *body, size_t len, struct ap_downscale_result *out,
			       char *err, size_t errlen);
int ap_decode_unregister_result(const char *body, size_t len, bool *was_active, char *err,
				size_t errlen);
/* {"expectedID":…} of /suspend and /resume; MoreResourcesRequest of /try-upscale. */
int ap_decode_expected_id(const char *body, size_t len, struct ap_uuid *out, char *err,
			  size_t errlen);
int ap_decode_more_resources(const char *body, size_t len, bool *cpu, bool *memory,
			     struct ap_uuid *expected, char *err, size_t errlen);

/* Empty: a JSON object (members ignored), e.g. the 200 body of
 * /health-check and /upscale and the request body of GET /id. */
int ap_decode_empty(const char *body, size_t len, char *err, size_t errlen);

/* Encoders: exact wire bytes, Go escaping (\u003c for '<', …).  NULL also
 * when a string is not valid UTF-8 or a sequence number exceeds INT64_MAX
 * (jansson's integers are signed). */
char *ap_encode_empty(void);                                  /* {} */
char *ap_encode_agent_desc(const struct ap_agent_desc *d);
char *ap_encode_agent_ident(const struct ap_uuid *id);       /* bare, /health-check */
char *ap_encode_agent_ident_msg(const struct ap_agent_ident_msg *m);
char *ap_encode_resource_msg(const struct ap_resource_msg *m);
char *ap_encode_informant_desc(const struct ap_informant_desc *d);
char *ap_encode_downscale_result(const struct ap_downscale_result *r);
char *ap_encode_unregister_result(bool was_active);
char *ap_encode_expected_id(const struct ap_uuid *id);       /* /suspend, /resume */
char *ap_encode_more_resources(bool cpu, bool memory, const struct ap_uuid *expected);

/* ---- the websocket monitor protocol v1.0 (current agents) ----------------
 *
 * What autoscaler-agents since v0.18.0 speak over ws://<VM>:10301/monitor
 * (docs/monitor-protocol.md).  One JSON object per text message.
 * The first message each way is the version handshake; after it every
 * message has a type and an id (agent even, monitor odd; a reply carries
 * the id of the request).  The two directions are shaped differently:
 *   agent -> monitor  {"content":{...},"type":"<T>","id":N}
 *   monitor -> agent  {"type":"<T>", <payload fields>, "id":N}
 * Pure encode/decode, no I/O.  Encoders give exact bytes (the agent's are
 * Go's encoding/json output: floats in its notation, Go string escaping).
 */
#define AP_MONITOR_PROTO_MIN 1 /* v1.0 */
#define AP_MONITOR_PROTO_MAX 1

enum ap_mon_type {
	AP_MON_HEALTH_CHECK,          /* either way: {} */
	AP_MON_UPSCALE_NOTIFICATION,  /* agent: {"granted":Allocation} */
	AP_MON_DOWNSCALE_REQUEST,     /* agent: {"target":Allocation} */
	AP_MON_UPSCALE_REQUEST,       /* monitor: {} */
	AP_MON_UPSCALE_CONFIRMATION,  /* monitor: {} */
	AP_MON_DOWNSCALE_RESULT,      /* monitor: {"Ok","Status"} */
	AP_MON_INVALID_MESSAGE,       /* either way: {"error"} */
	AP_MON_INTERNAL_ERROR,        /* either way: {"error"} */
	AP_MON__COUNT
};

struct ap_mon_msg {
	enum ap_mon_type type;
	uint64_t id;
	double cpu;           /* Allocation.cpu (vCPUs; informational) */
	uint64_t mem;         /* Allocation.mem, bytes */
	bool ok;              /* DownscaleResult.Ok */
	char text[AP_STATUS_MAX]; /* DownscaleResult.Status, or the error */
};

/* "HealthCheck", "UpscaleNotification", …; "?" out of range. */
const char *ap_mon_type_name(enum ap_mon_type t);

/* Handshake.  The agent's range {"min":N,"max":M} (1 <= N <= M); -EINVAL
 * for anything else.  Encoders: the agent's range, the monitor's chosen
 * {"version":N} and its refusal {"error":"…"}; the agent side decodes the
 * answer: 0 with *version, or -EPROTO with the monitor's error in err. */
int ap_mon_decode_range(const char *msg, size_t len, uint32_t *min, uint32_t *max, char *err,
			size_t errlen);
char *ap_mon_encode_range(uint32_t min, uint32_t max);
/* The highest version in both the agent's range and ours; -EPROTO with
 * the refusal's text otherwise. */
int ap_mon_negotiate(uint32_t agent_min, uint32_t agent_max, uint32_t *chosen, char *err,
		     size_t errlen);
char *ap_mon_encode_version(uint32_t version);
char *ap_mon_encode_refusal(const char *why);
int ap_mon_decode_version(const char *msg, size_t len, uint32_t *version, char *err,
			  size_t errlen);

/* A message of the agent (monitor side).  0: *out filled.  -EINVAL: not
 * a message (not one JSON object, a bad member, a type the agent does not
 * send); -ENOMSG: an unknown "type".  On failure *id_known says whether
 * out->id holds the message's id anyway (for the InvalidMessage answer). */
int ap_mon_decode_agent(const char *msg, size_t len, struct ap_mon_msg *out, bool *id_known,
			char *err, size_t errlen);
/* The agent's message as its Go code writes it (agent-sim, tests). */
char *ap_mon_encode_agent(const struct ap_mon_msg *m);
/* A message of the monitor; and its decoding on the agent side. */
char *ap_mon_encode_monitor(const struct ap_mon_msg *m);
int ap_mon_decode_monitor(const char *msg, size_t len, struct ap_mon_msg *out, char *err,
			  size_t errlen);

/* A double as Go's encoding/json writes it: 1, 1.5, 0.25, 1e-7, 1e+21. */
void ap_format_json_float(double x, char *out, size_t outlen);

/* ---- asynchronous client for the agent's endpoints ---------------------- */

enum ap_call_kind { AP_CALL_ID, AP_CALL_SUSPEND, AP_CALL_RESUME, AP_CALL_TRY_UPSCALE };

struct ap_call_result {
	int err;            /* 0 = success (200, valid body, seq != 0, ID matches) */
	long http_status;   /* 0 if no response */
	uint64_t seq;       /* sequenceNumber of a parsed reply */
	double elapsed_ms;
	/* On failure, the cause in the original's words, e.g.
	 * "Bad agent identification: expected \"…\" but got \"…\"",
	 * "Got invalid sequence number 0",
	 * "Unsuccessful response status 404: Server has already exited",
	 * "Error reading response as JSON: …", or the HTTP client's error. */
	char cause[AP_STATUS_MAX];
};

typedef void (*ap_call_cb)(void *arg, const struct ap_call_result *res);

struct ap_client;

int ap_client_new(struct ap_client **out);
void ap_client_free(struct ap_client *c); /* cancels all calls; callbacks not run */
/* One epoll fd covering all sockets and the timeout; when readable, call
 * ap_client_process(), which completes finished calls (runs callbacks). */
int ap_client_fd(const struct ap_client *c);
int ap_client_process(struct ap_client *c);
/* Start a call to http://<serve_addr><path>; never blocks.  The callback
 * runs exactly once from ap_client_process() unless cancelled.  *call_id
 * (optional) identifies the call for ap_client_cancel().  -ELIBACC when
 * libcurl, loaded on the first call, cannot be loaded. */
int ap_client_call(struct ap_client *c, enum ap_call_kind kind, const char *serve_addr,
		   const struct ap_uuid *agent_id, uint64_t timeout_ms, ap_call_cb cb, void *arg,
		   uint64_t *call_id);
/* Abort a call in flight; its callback will not run.  -ENOENT if done. */
int ap_client_cancel(struct ap_client *c, uint64_t call_id);
/* Why libcurl could not be loaded (after -ELIBACC), else "". */
const char *ap_client_load_error(void);
/* Number of calls in flight. */
size_t ap_client_pending(const struct ap_client *c);

#endif
