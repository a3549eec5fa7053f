/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kinds.h — one decoder/encoder pair per message kind, so table-driven
 * agent-proto tests can name the message type of each row.
 */
#ifndef AGENT_PROTO_TEST_KINDS_H
#define AGENT_PROTO_TEST_KINDS_H

#include "agent_proto.h"

enum kind {
	K_EMPTY,
	K_AGENT_DESC,
	K_AGENT_IDENT,
	K_AGENT_IDENT_MSG,
	K_RESOURCE_MSG,
	K_INFORMANT_DESC,
	K_DOWNSCALE_RESULT,
	K_UNREGISTER_RESULT,
	K_EXPECTED_ID,
	K_MORE_RESOURCES,
};

/* Any decoded message; the member used depends on the kind. */
union msg {
	struct ap_agent_desc desc;
	struct ap_uuid id; /* K_AGENT_IDENT, K_EXPECTED_ID */
	struct ap_agent_ident_msg ident;
	struct ap_resource_msg res;
	struct ap_informant_desc inf;
	struct ap_downscale_result down;
	bool was_active;
	struct {
		bool cpu, memory;
		struct ap_uuid expected;
	} more;
};

int kind_decode(enum kind kind, const char *body, size_t len, union msg *out, char *err,
		size_t errlen);
char *kind_encode(enum kind kind, const union msg *m);

#endif
