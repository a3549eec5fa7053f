/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_upgrade.c — the websocket upgrade hook of server.c.
 *
 * GET on the upgrade path: ws_handshake.c judges the headers; a 101 is an
 * MHD upgrade response, after which MHD hands us the socket (on_upgraded)
 * and we pass it on to s->upgrade->take.  The socket stays MHD's: it is
 * closed by MHD after server_upgraded_release().  The request ends for
 * the server's accounting at the hand-over (a session is no request in
 * flight); MHD calls on_completed only when the connection is cleaned up.
 */
#include <stdlib.h>

#include <microhttpd.h>

#include "server_internal.h"
#include "ws_handshake.h"

struct server_upgraded {
	struct server *srv;
	struct MHD_UpgradeResponseHandle *urh;
};

static void on_upgraded(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra,
			size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct server *s = cls;
	struct server_req *r = con_cls;
	struct server_upgraded *u = malloc(sizeof(*u));

	(void)c;
	r->upgraded = true;
	s->in_flight--;
	metrics_observe_request(s->metrics, r->ep, 101,
				(double)(loop_now_ns() - r->start_ns) / 1e9);
	if (!u || !s->upgrade) {
		free(u);
		(void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		kick(s);
		return;
	}
	u->srv = s;
	u->urh = urh;
	s->upgrade->take(s->upgrade->arg, sock, extra, extra_len, u);
}

void server_upgraded_release(void *handle)
{
	struct server_upgraded *u = handle;

	(void)MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
	kick(u->srv); /* MHD closes the socket in its next run */
	free(u);
}

static const char *header(struct server_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

bool upgrade_request(struct server *s, struct server_req *r, const char *method,
		     const char *version)
{
	struct ws_handshake_req q = {
		method, version, header(r, MHD_HTTP_HEADER_UPGRADE),
		header(r, MHD_HTTP_HEADER_CONNECTION), header(r, "Sec-WebSocket-Key"),
		header(r, "Sec-WebSocket-Version"),
	};
	struct ws_handshake_answer a;
	struct MHD_Response *resp;

	r->ep = EP_MONITOR;
	ws_handshake_check(&q, &a);
	if (a.status != 101) {
		if (a.hdr_name[0])
			server_req_header(r, a.hdr_name, a.hdr_value);
		server_respond_text(r, a.status, a.text);
		return true;
	}
	/* No Sec-WebSocket-Extensions in the answer: permessage-deflate (and
	 * any other extension) is declined, the client sends plain frames. */
	resp = MHD_create_response_for_upgrade(on_upgraded, s);
	if (!resp || MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket") != MHD_YES ||
	    MHD_add_response_header(resp, "Sec-WebSocket-Accept", a.accept) != MHD_YES) {
		if (resp)
			MHD_destroy_response(resp);
		server_respond_text(r, 500, "Internal error");
		return true;
	}
	r->resp = resp;
	r->status = 101;
	return true;
}

void server_set_upgrade(struct server *s, const struct server_upgrade *u)
{
	s->upgrade = u;
}
