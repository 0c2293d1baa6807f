/*
 * hostile.h — what a hostile local process does to the objects it shares
 * with an honest one, for the tests that play it (tests/test-hostile.c):
 * find the descriptors and shared memory the library gave it, and tamper
 * with them — open file description flags, eventfd counters or socket
 * queues, shutdowns — as any process may do to what it holds.
 *
 * Every helper only touches this process's own descriptors and mappings.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTILE_FDS_MAX 1024

/* The set of open descriptors of this process. */
typedef struct fdset {
        bool open[HOSTILE_FDS_MAX];
} fdset;

void fdset_snapshot(fdset *s);
/* Descriptors open now that were not in before; returns how many (<= max). */
int fdset_new_since(const fdset *before, int *ret_fds, int max);

enum hostile_fd_mode {
        /* Clear O_NONBLOCK on the shared open file description. */
        HOSTILE_CLEAR_NONBLOCK = 1u << 0,
        /* Make a write block: an eventfd's counter to 2^64-2, a socket's
         * queue full (with its send buffer shrunk). */
        HOSTILE_FILL = 1u << 1,
        /* Make a read block: empty an eventfd or socket. */
        HOSTILE_DRAIN = 1u << 2,
        /* Shut a socket down (both directions). */
        HOSTILE_SHUTDOWN = 1u << 3,
};

/* Tamper with fd as mode says (combined; the flags are cleared last so that
 * this process itself never blocks). Returns 0, or -errno of a step that
 * did not apply to this kind of descriptor (ignored by callers). */
int hostile_fd(int fd, unsigned mode);
/* Make whoever polls fd wake up, as a peer ringing it would (an eventfd:
 * add 1; a socket: send a byte), without ever blocking. */
void hostile_ring(int fd);
/* hostile_fd() on every descriptor of fds. */
void hostile_fds(const int *fds, int n, unsigned mode);

/* Is fd an eventfd / a socket? */
bool fd_is_eventfd(int fd);
bool fd_is_socket(int fd);

/* The shared mappings of this process whose /proc/self/maps line contains
 * a name (e.g. "memfd:ipcf-flow"). */
#define HOSTILE_MAPS_MAX 256
typedef struct mapset {
        uintptr_t lo[HOSTILE_MAPS_MAX];
        size_t len[HOSTILE_MAPS_MAX];
        int n;
} mapset;

void mapset_snapshot(mapset *s, const char *name);
/* A mapping named name that is not in before (the one an object made since
 * then): its address and length, or NULL. */
void *mapset_new_since(const mapset *before, const char *name, size_t *ret_len);
