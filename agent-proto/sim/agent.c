/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent.c — the simulated agent's requests to the informant: /register,
 * /health-check, /upscale, /downscale, /unregister (docs/informant-protocol.md §5, §8:
 * 2 s budgets, 1 s for health checks).  Blocking libcurl easy calls, always
 * made without s->lock held.  With --protocol monitor the same requests go
 * over the websocket session instead (monitor.c), with the same budgets,
 * and their answers are noted the same way.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define REPLY_MAX (64 * 1024)
#define REQUEST_TIMEOUT_MS 2000L
#define HEALTH_TIMEOUT_MS 1000L

struct body_buf {
	char *data;
	size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct body_buf *b = userp;
	size_t n = size * nmemb;
	char *grown;

	if (n > REPLY_MAX - b->len)
		return 0;
	grown = realloc(b->data, b->len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->len, data, n);
	b->len += n;
	grown[b->len] = '\0';
	b->data = grown;
	return n;
}

int sim_http_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

void sim_http_cleanup(void)
{
	curl_global_cleanup();
}

void sim_reply_free(struct sim_reply *rep)
{
	free(rep->body);
	rep->body = NULL;
}

/* 0 when the informant answered (any status), -EIO otherwise. */
static int http(struct sim *s, const char *method, const char *path, const char *body,
		long timeout_ms, struct sim_reply *rep)
{
	struct body_buf buf = { 0 };
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	char url[AP_ADDR_MAX + 32], cerr[CURL_ERROR_SIZE] = "";
	CURL *e = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;

	memset(rep, 0, sizeof(*rep));
	snprintf(url, sizeof(url), "http://%s%s", s->cfg.informant, path);
	if (e && hdrs && body) {
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_PROXY, "");
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &buf);
		curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cerr);
		rc = curl_easy_perform(e);
	} else {
		snprintf(cerr, sizeof(cerr), "out of memory");
	}
	if (rc == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &rep->status);
		rep->body = buf.data;
	} else {
		snprintf(rep->err, sizeof(rep->err), "%s %s: %s", method, url,
			 cerr[0] ? cerr : curl_easy_strerror(rc));
		free(buf.data);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(e);
	return rc == CURLE_OK ? 0 : -EIO;
}

/* What to log of an exchange: the informant's body, or why there was none. */
static const char *reply_text(const struct sim_reply *rep, int r)
{
	if (r < 0)
		return rep->err;
	return rep->body ? rep->body : "";
}

uint64_t sim_next_seq(struct sim *s)
{
	return ++s->seq;
}

void sim_restart_locked(struct sim *s, const char *why)
{
	char old[AP_UUID_STRLEN + 1], new[AP_UUID_STRLEN + 1];

	ap_uuid_format(&s->id, old);
	if (ap_uuid_random(&s->id) < 0)
		s->id.b[15] ^= 0x5a; /* still a different ID */
	ap_uuid_format(&s->id, new);
	/* Like the reference restarting its per-VM server: new ID, counter from
	 * 1, suspended, register again after a pause. */
	s->seq = 0;
	s->registered = false;
	s->running = false;
	s->want_register = true;
	s->register_at_ns = sim_now_ns() + s->cfg.register_retry_ms * 1000000u;
	s->health_at_ns = 0;
	pthread_cond_broadcast(&s->wake);
	sim_event(s, "re-registering", "{s:s,s:s,s:s}", "reason", why, "oldID", old, "newID",
		  new);
}

/* The informant's /register answer is acceptable to the reference agent. */
static bool register_reply_ok(const struct sim_reply *rep, char *why, size_t whylen)
{
	struct ap_informant_desc d;

	if (rep->status != 200) {
		snprintf(why, whylen, "status %ld: %s", rep->status, rep->body ? rep->body : "");
		return false;
	}
	if (ap_decode_informant_desc(rep->body, strlen(rep->body), &d, why, whylen) < 0)
		return false;
	if (d.proto_version < AP_PROTO_V1_0 || d.proto_version > AP_PROTO_V2_0) {
		snprintf(why, whylen, "protoVersion %u outside 1..4", d.proto_version);
		return false;
	}
	if (!d.has_prometheus) {
		snprintf(why, whylen, "metricsMethod.prometheus missing");
		return false;
	}
	return true;
}

static bool monitor_protocol(const struct sim *s)
{
	return s->cfg.protocol == SIM_PROTO_MONITOR;
}

int sim_register(struct sim *s)
{
	struct ap_agent_desc desc = { .min_proto = AP_PROTO_V1_0, .max_proto = AP_PROTO_V2_0 };
	struct sim_reply rep;
	char idstr[AP_UUID_STRLEN + 1], why[sizeof(rep.err)] = "";
	char *body;
	bool ok;

	if (monitor_protocol(s))
		return sim_monitor_register(s);
	pthread_mutex_lock(&s->lock);
	s->registering = true;
	desc.agent_id = s->id;
	pthread_mutex_unlock(&s->lock);
	snprintf(desc.serve_addr, sizeof(desc.serve_addr), "%s", s->serve_addr);
	body = ap_encode_agent_desc(&desc);
	ok = http(s, "POST", "/register", body, REQUEST_TIMEOUT_MS, &rep) == 0 &&
	     register_reply_ok(&rep, why, sizeof(why));
	free(body);
	if (rep.err[0])
		snprintf(why, sizeof(why), "%s", rep.err);
	ap_uuid_format(&desc.agent_id, idstr);

	pthread_mutex_lock(&s->lock);
	s->registering = false;
	/* An ID change while we waited (a restart) makes this answer stale. */
	if (ok && ap_uuid_equal(&desc.agent_id, &s->id)) {
		s->registered = true;
		s->want_register = false;
		s->health_at_ns = sim_now_ns() + s->cfg.health_interval_ms * 1000000u;
		if (s->cfg.downscale_every_ms)
			s->downscale_at_ns = sim_now_ns() + s->cfg.downscale_every_ms * 1000000u;
		sim_event(s, "registered", "{s:s,s:s,s:s}", "agentID", idstr, "informant",
			  s->cfg.informant, "agentServeAddr", s->serve_addr);
	} else {
		ok = false;
		s->register_at_ns = sim_now_ns() + s->cfg.register_retry_ms * 1000000u;
		sim_event(s, "register-failed", "{s:s,s:s}", "agentID", idstr, "error", why);
	}
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	sim_reply_free(&rep);
	return ok ? 0 : -EPROTO;
}

void sim_health_check(struct sim *s)
{
	struct sim_reply rep = { 0 };
	struct ap_uuid id;
	char *body;
	int r;

	pthread_mutex_lock(&s->lock);
	id = s->id;
	s->health_at_ns = sim_now_ns() + s->cfg.health_interval_ms * 1000000u;
	pthread_mutex_unlock(&s->lock);
	if (monitor_protocol(s)) {
		r = sim_monitor_request(s, AP_MON_HEALTH_CHECK, 0, HEALTH_TIMEOUT_MS, &rep);
	} else {
		body = ap_encode_agent_ident(&id);
		r = body ? http(s, "PUT", "/health-check", body, HEALTH_TIMEOUT_MS, &rep) : -ENOMEM;
		free(body);
	}

	pthread_mutex_lock(&s->lock);
	if (r == 0 && rep.status == 200) {
		s->n.health_ok++;
	} else {
		s->n.health_failed++;
		sim_event(s, "health-check-failed", "{s:I,s:s}", "status",
			  (json_int_t)(r == 0 ? rep.status : 0), "answer", reply_text(&rep, r));
		/* The informant forgot us: the reference restarts with a new ID. */
		if (r == 0 && rep.status == 404 && ap_uuid_equal(&id, &s->id) &&
		    !monitor_protocol(s))
			sim_restart_locked(s, "health check answered 404");
	}
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		sim_reply_free(&rep);
}

int sim_unregister(struct sim *s, struct sim_reply *rep)
{
	struct ap_agent_desc desc = { .min_proto = AP_PROTO_V1_0, .max_proto = AP_PROTO_V2_0 };
	char idstr[AP_UUID_STRLEN + 1];
	char *body;
	int r;

	if (monitor_protocol(s)) {
		memset(rep, 0, sizeof(*rep));
		sim_monitor_unregister(s);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	desc.agent_id = s->id;
	s->want_register = false;
	pthread_mutex_unlock(&s->lock);
	snprintf(desc.serve_addr, sizeof(desc.serve_addr), "%s", s->serve_addr);
	body = ap_encode_agent_desc(&desc);
	r = body ? http(s, "DELETE", "/unregister", body, REQUEST_TIMEOUT_MS, rep) : -ENOMEM;
	free(body);
	ap_uuid_format(&desc.agent_id, idstr);

	pthread_mutex_lock(&s->lock);
	s->registered = false;
	s->running = false;
	sim_event(s, "unregistered", "{s:s,s:I,s:s}", "agentID", idstr, "status",
		  (json_int_t)rep->status, "answer", reply_text(rep, r));
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Encode a resource message for the current ID with a fresh sequence number
 * (NULL with the monitor protocol, which has no body of this kind). */
static char *resource_msg_locked(struct sim *s, uint64_t to)
{
	struct ap_resource_msg m = {
		.has_cpu = true,
		.cpu_milli = s->cfg.cpu_milli,
		.has_memory = true,
		.memory_bytes = to,
		.agent_id = s->id,
	};

	if (monitor_protocol(s))
		return NULL;
	m.seq = sim_next_seq(s);
	return ap_encode_resource_msg(&m);
}

/* PUT /upscale or /downscale, or the monitor protocol's message. */
static int send_scale(struct sim *s, bool up, uint64_t to, const char *body,
		      struct sim_reply *rep)
{
	if (monitor_protocol(s))
		return sim_monitor_request(s, up ? AP_MON_UPSCALE_NOTIFICATION
						 : AP_MON_DOWNSCALE_REQUEST, to,
					   REQUEST_TIMEOUT_MS, rep);
	if (!body) {
		memset(rep, 0, sizeof(*rep));
		snprintf(rep->err, sizeof(rep->err), "out of memory");
		return -ENOMEM;
	}
	return http(s, "PUT", up ? "/upscale" : "/downscale", body, REQUEST_TIMEOUT_MS, rep);
}

static void grow_meminfo(struct sim *s, uint64_t from, uint64_t to)
{
	char err[256];

	if (s->cfg.meminfo && from != to &&
	    meminfo_adjust(s->cfg.meminfo, (int64_t)to - (int64_t)from, err, sizeof(err)) < 0)
		sim_event(s, "meminfo-error", "{s:s}", "error", err);
}

int sim_upscale(struct sim *s, uint64_t to, struct sim_reply *rep)
{
	char qfrom[32], qto[32];
	uint64_t from;
	char *body;
	int r;

	pthread_mutex_lock(&s->lock);
	from = s->memory;
	s->memory = to; /* the VM has the memory before the informant hears of it */
	s->n.upscales_sent++;
	body = resource_msg_locked(s, to);
	pthread_mutex_unlock(&s->lock);
	grow_meminfo(s, from, to);
	r = send_scale(s, true, to, body, rep);
	free(body);
	ap_quantity_format_bytes(from, qfrom, sizeof(qfrom));
	ap_quantity_format_bytes(to, qto, sizeof(qto));

	pthread_mutex_lock(&s->lock);
	if (r == 0 && rep->status == 200)
		s->n.upscales_ok++;
	sim_event(s, "upscale-sent", "{s:s,s:s,s:I,s:s}", "from", qfrom, "to", qto, "status",
		  (json_int_t)rep->status, "answer", reply_text(rep, r));
	if (r == 0 && rep->status == 400 && !monitor_protocol(s))
		sim_restart_locked(s, "upscale answered 400");
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Record the informant's answer; true if it accepted. */
static bool note_downscale_locked(struct sim *s, uint64_t to, const struct sim_reply *rep)
{
	struct ap_downscale_result res = { 0 };
	char qto[32], why[256];
	bool parsed = rep->status == 200 && rep->body &&
		      ap_decode_downscale_result(rep->body, strlen(rep->body), &res, why,
						 sizeof(why)) == 0;

	s->last_downscale_http = rep->status;
	if (parsed && res.ok) {
		s->n.downscales_accepted++;
		s->memory = to;
	} else {
		s->n.downscales_rejected++;
	}
	snprintf(s->last_downscale_status, sizeof(s->last_downscale_status), "%s",
		 parsed ? res.status : rep->err[0] ? rep->err : rep->body ? rep->body : "");
	ap_quantity_format_bytes(to, qto, sizeof(qto));
	sim_event(s, "downscale-proposed", "{s:s,s:I,s:b,s:s}", "to", qto, "status",
		  (json_int_t)rep->status, "Ok", parsed && res.ok, "Status",
		  s->last_downscale_status);
	if (rep->status == 400 && !monitor_protocol(s))
		sim_restart_locked(s, "downscale answered 400");
	return parsed && res.ok;
}

int sim_downscale(struct sim *s, uint64_t to, struct sim_reply *rep)
{
	uint64_t from;
	bool accepted;
	char *body;
	int r;

	pthread_mutex_lock(&s->lock);
	from = s->memory;
	s->n.downscales_sent++;
	body = resource_msg_locked(s, to);
	pthread_mutex_unlock(&s->lock);
	r = send_scale(s, false, to, body, rep);
	free(body);

	pthread_mutex_lock(&s->lock);
	accepted = note_downscale_locked(s, to, rep);
	pthread_mutex_unlock(&s->lock);
	/* The guest gives the memory back only after the informant agreed. */
	if (accepted)
		grow_meminfo(s, from, to);
	return r;
}
