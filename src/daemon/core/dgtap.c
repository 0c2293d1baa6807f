/*
 * dgtap.c — the UDP socket's tap (dgtap.h): the hook, NULL until a module
 * (the monitor) sets it.
 */
#include "daemon/core/dgtap.h"

dgtap_fn dgtap_hook;
