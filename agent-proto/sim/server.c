/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c — the simulated agent's HTTP server: the endpoints the informant
 * calls (GET /id, POST /suspend, /resume, /try-upscale; answers as in
 * docs/informant-protocol.md §6.5) and the /sim/... control endpoints for tests and the demo.
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"

#define BODY_MAX (64 * 1024)

struct request {
	char *body;
	size_t len;
	bool too_large;
};

struct answer {
	unsigned status;
	char *text; /* malloc'd */
};

static struct MHD_Daemon *daemon_handle;

static struct answer answer_text(unsigned status, const char *text)
{
	return (struct answer){ status, strdup(text) };
}

/* AgentMessage<AgentIdentification> with the next sequence number. */
static struct answer answer_ident_locked(struct sim *s)
{
	struct ap_agent_ident_msg m = { .agent_id = s->id, .seq = sim_next_seq(s) };

	if (s->cfg.wrong_id)
		for (size_t i = 0; i < sizeof(m.agent_id.b); i++)
			m.agent_id.b[i] = (uint8_t)~m.agent_id.b[i];
	if (s->cfg.seq_zero)
		m.seq = 0;
	return (struct answer){ 200, ap_encode_agent_ident_msg(&m) };
}

static struct answer answer_not_found(const struct ap_uuid *id)
{
	char idstr[AP_UUID_STRLEN + 1], text[80];

	ap_uuid_format(id, idstr);
	snprintf(text, sizeof(text), "AgentID \"%s\" not found", idstr);
	return answer_text(404, text);
}

static struct answer handle_id(struct sim *s, const struct request *req)
{
	json_t *v = json_loadb(req->body ? req->body : "", req->len, 0, NULL);
	bool is_object = json_is_object(v);
	struct answer a;

	json_decref(v);
	if (!is_object)
		return answer_text(400, "bad JSON");
	sim_sleep_ms(s, s->cfg.id_delay_ms);
	pthread_mutex_lock(&s->lock);
	s->n.id_requests++;
	a = s->cfg.fail_id ? answer_text(500, "simulated failure") : answer_ident_locked(s);
	pthread_mutex_unlock(&s->lock);
	return a;
}

/* /suspend and /resume: {"expectedID"}, then a state change. */
static struct answer handle_switch(struct sim *s, const struct request *req, bool resume)
{
	struct ap_uuid expected;
	char reason[128];
	struct answer a;

	if (ap_decode_expected_id(req->body, req->len, &expected, reason, sizeof(reason)) < 0)
		return answer_text(400, "bad JSON");
	/* The reference holds /suspend until its scaling operations finish. */
	sim_sleep_ms(s, resume ? s->cfg.resume_delay_ms : s->cfg.suspend_delay_ms);
	pthread_mutex_lock(&s->lock);
	if (!ap_uuid_equal(&expected, &s->id))
		a = answer_not_found(&expected);
	else if (resume && s->cfg.fail_resume)
		a = answer_text(500, "simulated failure");
	else if (resume && s->running)
		a = answer_text(400, "Cannot resume agent that is already running");
	else if (!resume && !s->running)
		a = answer_text(400, "Cannot suspend agent that is already suspended");
	else {
		s->running = resume;
		if (resume)
			s->n.resumes++;
		else
			s->n.suspends++;
		sim_event(s, resume ? "resumed" : "suspended", "{}");
		a = answer_ident_locked(s);
	}
	pthread_mutex_unlock(&s->lock);
	return a;
}

static struct answer handle_try_upscale(struct sim *s, const struct request *req)
{
	struct ap_uuid expected;
	bool cpu = false, memory = false;
	char reason[128];
	struct answer a;

	if (ap_decode_more_resources(req->body, req->len, &cpu, &memory, &expected, reason,
				     sizeof(reason)) < 0)
		return answer_text(400, "bad JSON");
	pthread_mutex_lock(&s->lock);
	if (!ap_uuid_equal(&expected, &s->id)) {
		a = answer_not_found(&expected);
	} else if (!s->running) {
		a = answer_text(400, "Cannot process upscale while suspended");
	} else {
		s->n.try_upscales++;
		sim_event(s, "try-upscale", "{s:b,s:b,s:b}", "cpu", cpu, "memory", memory,
			  "ignored", s->cfg.ignore_try_upscale);
		/* Answer now; the upscale follows after the delay (coalesced). */
		if (memory && !s->cfg.ignore_try_upscale && !s->upscale_at_ns)
			s->upscale_at_ns = sim_now_ns() + s->cfg.upscale_delay_ms * 1000000u + 1;
		pthread_cond_broadcast(&s->wake);
		a = answer_ident_locked(s);
	}
	pthread_mutex_unlock(&s->lock);
	return a;
}

static struct answer answer_json(unsigned status, json_t *obj)
{
	struct answer a = { status, NULL };

	if (obj)
		a.text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	return a;
}

static struct answer handle_state(struct sim *s)
{
	char idstr[AP_UUID_STRLEN + 1];
	json_t *o;

	pthread_mutex_lock(&s->lock);
	ap_uuid_format(&s->id, idstr);
	o = json_pack("{s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,"
		      "s:I,s:I}",
		      "protocol", s->cfg.protocol == SIM_PROTO_MONITOR ? "monitor" : "informant",
		      "agentID", idstr, "registered", s->registered, "running", s->running,
		      "memoryBytes", (json_int_t)s->memory, "tryUpscales",
		      (json_int_t)s->n.try_upscales, "upscalesSent",
		      (json_int_t)s->n.upscales_sent, "upscalesOk", (json_int_t)s->n.upscales_ok,
		      "downscalesSent", (json_int_t)s->n.downscales_sent, "downscalesAccepted",
		      (json_int_t)s->n.downscales_accepted, "downscalesRejected",
		      (json_int_t)s->n.downscales_rejected, "lastDownscaleHTTP",
		      (json_int_t)s->last_downscale_http, "lastDownscaleStatus",
		      s->last_downscale_status, "healthChecksOk", (json_int_t)s->n.health_ok,
		      "healthChecksFailed", (json_int_t)s->n.health_failed, "idRequests",
		      (json_int_t)s->n.id_requests, "suspends", (json_int_t)s->n.suspends,
		      "resumes", (json_int_t)s->n.resumes, "seq", (json_int_t)s->seq,
		      "sessions", (json_int_t)s->n.sessions, "invalidMessages",
		      (json_int_t)s->n.invalid_messages);
	pthread_mutex_unlock(&s->lock);
	return answer_json(200, o);
}

/* The informant's answer passed through, or 502 when there was none. */
static struct answer answer_relay(const struct sim_reply *rep, int r)
{
	struct answer a;

	if (r < 0)
		return answer_json(502, json_pack("{s:s}", "error", rep->err));
	a = answer_text((unsigned)rep->status, rep->body ? rep->body : "");
	return a;
}

/* ?memory=Q, or the default: one step up (capped) or down (floored). */
static int target_memory(struct sim *s, struct MHD_Connection *conn, bool up, uint64_t *to)
{
	const char *q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "memory");

	if (q)
		return ap_quantity_parse(q, to) < 0 || *to == 0 ? -EINVAL : 0;
	pthread_mutex_lock(&s->lock);
	if (up)
		*to = s->memory + s->cfg.step < s->cfg.max_memory ? s->memory + s->cfg.step
								   : s->cfg.max_memory;
	else
		*to = s->memory > s->cfg.min_memory + s->cfg.step ? s->memory - s->cfg.step
								  : s->cfg.min_memory;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static struct answer handle_control(struct sim *s, struct MHD_Connection *conn,
				    const char *path)
{
	struct sim_reply rep = { 0 };
	struct answer a;
	uint64_t to;
	int r;

	if (strcmp(path, "/sim/quit") == 0) {
		sim_request_quit(s);
		return answer_json(200, json_pack("{s:b}", "quitting", 1));
	}
	if (strcmp(path, "/sim/register") == 0) {
		r = sim_register(s);
		return answer_json(r == 0 ? 200 : 502, json_pack("{s:b}", "registered", r == 0));
	}
	if (strcmp(path, "/sim/unregister") == 0)
		r = sim_unregister(s, &rep);
	else if (strcmp(path, "/sim/upscale") == 0 || strcmp(path, "/sim/downscale") == 0) {
		bool up = strcmp(path, "/sim/upscale") == 0;

		if (target_memory(s, conn, up, &to) < 0)
			return answer_text(400, "memory must be a positive quantity, e.g. 2Gi");
		r = up ? sim_upscale(s, to, &rep) : sim_downscale(s, to, &rep);
	} else
		return answer_text(404, "404 page not found\n");
	a = answer_relay(&rep, r);
	sim_reply_free(&rep);
	return a;
}

static struct answer dispatch(struct sim *s, struct MHD_Connection *conn, const char *method,
			      const char *path, const struct request *req)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

	if (req->too_large)
		return answer_text(413, "request body too large");
	if (strcmp(path, "/id") == 0)
		return get ? handle_id(s, req) : answer_text(405, "request method must be GET");
	if (strcmp(path, "/suspend") == 0 || strcmp(path, "/resume") == 0 ||
	    strcmp(path, "/try-upscale") == 0) {
		if (!post)
			return answer_text(405, "request method must be POST");
		if (strcmp(path, "/try-upscale") == 0)
			return handle_try_upscale(s, req);
		return handle_switch(s, req, strcmp(path, "/resume") == 0);
	}
	if (strcmp(path, "/sim/state") == 0)
		return get ? handle_state(s) : answer_text(405, "request method must be GET");
	if (strncmp(path, "/sim/", 5) == 0 && !post)
		return answer_text(405, "request method must be POST");
	return handle_control(s, conn, path);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct request *req = *con_cls;
	struct MHD_Response *resp;
	struct answer a;
	enum MHD_Result ret;
	char *grown;

	if (!req) {
		req = calloc(1, sizeof(*req));
		*con_cls = req;
		return req ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size) {
		if (*upload_data_size > BODY_MAX - req->len) {
			req->too_large = true;
		} else if ((grown = realloc(req->body, req->len + *upload_data_size + 1))) {
			memcpy(grown + req->len, upload_data, *upload_data_size);
			req->len += *upload_data_size;
			grown[req->len] = '\0';
			req->body = grown;
		} else {
			return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	a = dispatch(cls, conn, method, url, req);
	if (!a.text)
		a = (struct answer){ 500, strdup("Internal error") };
	resp = MHD_create_response_from_buffer(a.text ? strlen(a.text) : 0, a.text,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(a.text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	ret = MHD_queue_response(conn, a.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *req = *con_cls;

	if (req) {
		free(req->body);
		free(req);
		*con_cls = NULL;
	}
}

/* Bind HOST:PORT ourselves so that port 0 works and we can print the port. */
static int bind_listener(struct sim *s, char *bound, size_t boundlen, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[AP_ADDR_MAX], port[16], *colon;
	struct addrinfo *ai = NULL;
	int fd = -1, one = 1, r;

	snprintf(host, sizeof(host), "%s", s->cfg.listen);
	colon = strrchr(host, ':');
	if (!colon) {
		snprintf(err, errlen, "--listen %s: expected HOST:PORT", s->cfg.listen);
		return -EINVAL;
	}
	*colon = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (r != 0) {
		snprintf(err, errlen, "--listen %s: %s", s->cfg.listen, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", s->cfg.listen, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return r;
	}
	freeaddrinfo(ai);
	if (getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		close(fd);
		snprintf(err, errlen, "cannot name the address bound for %s", s->cfg.listen);
		return -EINVAL;
	}
	r = snprintf(bound, boundlen, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
	if (r < 0 || (size_t)r >= boundlen) {
		close(fd);
		snprintf(err, errlen, "bound address of %s is too long", s->cfg.listen);
		return -ENAMETOOLONG;
	}
	return fd;
}

int sim_server_start(struct sim *s, char *err, size_t errlen)
{
	char bound[AP_ADDR_MAX], idstr[AP_UUID_STRLEN + 1];
	int fd = bind_listener(s, bound, sizeof(bound), err, errlen);

	if (fd < 0)
		return fd;
	snprintf(s->serve_addr, sizeof(s->serve_addr), "%s",
		 s->cfg.advertise[0] ? s->cfg.advertise : bound);
	daemon_handle = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
						 MHD_USE_INTERNAL_POLLING_THREAD,
					 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET,
					 fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
					 MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
	if (!daemon_handle) {
		close(fd);
		snprintf(err, errlen, "cannot start the HTTP server on %s", bound);
		return -EIO;
	}
	ap_uuid_format(&s->id, idstr);
	sim_event(s, "listening", "{s:s,s:s,s:s}", "addr", bound, "agentServeAddr", s->serve_addr,
		  "agentID", idstr);
	return 0;
}

void sim_server_stop(void)
{
	if (daemon_handle)
		MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
}
