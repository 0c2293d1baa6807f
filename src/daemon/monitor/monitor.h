/*
 * monitor.h — the traffic monitor module (`ipcf monitor`): MONITOR_OPEN
 * gives a client a socket on which the daemon pushes MONITOR_EVENT messages
 * about allocations, their outcomes, flow ends and names (monitor.c).
 */
#pragma once

#include "daemon/core/module.h"

extern const daemon_module monitor_module;
