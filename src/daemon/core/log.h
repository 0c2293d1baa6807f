/*
 * log.h — the daemon's logging: one line per event on stderr.
 *
 * log_debug() prints only with --verbose; log_error() and log_info() (the
 * daemon's life: serving, reloaded, exiting, the SIGUSR1 summary; a few
 * lines per run) always print. Never used by src/common or the library
 * (library code never logs).
 */
#pragma once

#include <stdbool.h>

extern bool log_verbose;

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
