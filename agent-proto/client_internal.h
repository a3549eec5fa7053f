/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client_internal.h — the pure part of the agent client, exposed for unit
 * tests: how one finished exchange (status + body) becomes a call result.
 */
#ifndef AGENT_PROTO_CLIENT_INTERNAL_H
#define AGENT_PROTO_CLIENT_INTERNAL_H

#include <stddef.h>

#include "agent_proto.h"

/* Largest response body the client accepts; more fails the call. */
#define AP_CLIENT_MAX_BODY (64 * 1024)

/* Judge a complete HTTP response to one of the agent calls (docs/informant-protocol.md §6.0):
 * success needs status 200, a strictly parsed AgentMessage<AgentIdentification>,
 * sequenceNumber != 0 and data.agentID == *expected, checked in that order.
 * Fills res->err (0, -EPROTO or -EBADMSG), http_status, seq and cause;
 * leaves elapsed_ms alone. */
void ap_client_judge(const struct ap_uuid *expected, long status, const char *body, size_t len,
		     struct ap_call_result *res);

#endif
