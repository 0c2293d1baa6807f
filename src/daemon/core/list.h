/*
 * list.h — the LIST request: a snapshot of registrations and flows.
 */
#pragma once

#include "common/ctl.h"

struct client;

int list_handle(struct client *c, const ctl_msg *m);
