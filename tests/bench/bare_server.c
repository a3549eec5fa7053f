/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bare_server.c — the floor for the /health-check benchmark: libmicrohttpd
 * in the daemon's mode (MHD_USE_EPOLL, no internal thread: the caller polls
 * MHD's epoll fd and calls MHD_run), answering every request with
 * 200 {} after reading its body.  No routing, no JSON parsing.
 *
 *   bare-server PORT
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	static int started;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!*req_cls) {
		*req_cls = &started;   /* first call: headers only */
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* the body is read and dropped */
		return MHD_YES;
	}
	resp = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	struct pollfd pfd;

	if (argc != 2) {
		fprintf(stderr, "usage: bare-server PORT\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)bench_parse_u64("PORT", argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, on_request, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1000, MHD_OPTION_END);
	if (!d)
		bench_die("MHD_start_daemon");
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		bench_die("MHD epoll fd");
	pfd.fd = info->epoll_fd;
	pfd.events = POLLIN;
	fprintf(stderr, "bare-server: listening on 127.0.0.1:%s\n", argv[1]);
	for (;;) {
		MHD_UNSIGNED_LONG_LONG to;
		int timeout = -1;

		if (MHD_get_timeout(d, &to) == MHD_YES)
			timeout = to > 1000 ? 1000 : (int)to;
		poll(&pfd, 1, timeout);
		MHD_run(d);
	}
}
