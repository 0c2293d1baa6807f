/*
 * sdglue.h — ipcfd under systemd: the listening socket it may be handed
 * (socket activation, LISTEN_FDS) and the state it reports (sd_notify).
 *
 * Both work without systemd: with no LISTEN_FDS the daemon binds its own
 * socket, and with no NOTIFY_SOCKET the notifications are no-ops. Only
 * main.c calls these, each once at its point of the start-up or shut-down.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * sdglue_take — take what systemd handed over: the listening socket, if any,
 * and the notification socket (NOTIFY_SOCKET), kept for the calls below.
 * Both are removed from the environment, so that programs the daemon starts
 * neither see a socket that is not theirs nor report to systemd as if they
 * were ipcfd. Returns 0 when no listening socket was handed over (bind our
 * own), 1 when *ret_fd is the handed socket, made non-blocking, and ret_path
 * (path_size bytes) its path. A handed socket ipcfd cannot serve is an error,
 * printed on stderr: -EINVAL more than one descriptor, or not a listening
 * AF_UNIX SOCK_SEQPACKET socket bound to an absolute path; -ENAMETOOLONG.
 */
int sdglue_take(int *ret_fd, char *ret_path, size_t path_size);

/* READY=1 with a status line: the socket accepts and the loop is about to run. */
void sdglue_ready(const char *runtime_dir, bool shared);
/* RELOADING=1 before a SIGHUP reload; sdglue_ready again after it. */
void sdglue_reloading(void);
/* STOPPING=1 when the loop has ended. */
void sdglue_stopping(void);
