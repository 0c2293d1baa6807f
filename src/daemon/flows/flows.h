/*
 * flows.h — the flows module (module.h): flows and their ends (flow.c,
 * clientend.c, broker.c), allocation and the resolver list (alloc.c,
 * resolve.c), LIST (list.c). The modules that find names (names/, models/)
 * plug into it through the resolvers and the flow-end ops.
 */
#pragma once

#include "daemon/core/module.h"

extern const daemon_module flows_module;

/* list.c: the LIST request. */
int list_init(ipcfd *d);
