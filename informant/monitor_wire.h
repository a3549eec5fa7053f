/* SPDX-License-Identifier: Apache-2.0 */
/*
 * monitor_wire.h — struct monitor_ops for the daemon: scaling through the
 * memory policy, sessions into the agent set (monitor_wire.c).
 */
#ifndef VMI_MONITOR_WIRE_H
#define VMI_MONITOR_WIRE_H

#include "agents.h"
#include "memory.h"
#include "monitor.h"

/* Owned by the daemon; memory and agents become NULL at shutdown (requests
 * are then refused with InternalError "Service shutting down"). */
struct monitor_wire {
	struct memory *memory;
	struct agents *agents;
};

void monitor_wire_ops(struct monitor_wire *w, struct monitor_ops *ops);

#endif
