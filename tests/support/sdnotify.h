/*
 * sdnotify.h — a notification socket like systemd's, for tests of what ipcfd
 * tells systemd (READY=1, RELOADING=1, STOPPING=1): AF_UNIX datagrams at a
 * path, exported as NOTIFY_SOCKET to the daemons the test starts after it.
 */
#pragma once

#include <stddef.h>

/* Bind a datagram socket at path and set NOTIFY_SOCKET to it; returns it. */
int test_notify_open(const char *path);

/* The next notification (waiting at most 10 s, else the case fails),
 * NUL-terminated in buf; returns buf. */
const char *test_notify_next(int fd, char *buf, size_t size);
