/*
 * wake.h — a wake-up channel that no other holder can block or fool: the
 * one way the facility makes a descriptor readable for a process that sleeps
 * in poll()/epoll (flows, mailbox and multicast channels, group notices).
 *
 * A channel is a Unix stream socketpair. One end, the EAR, belongs to the
 * side that waits: it polls it (POLLIN) and drains it, and never hands it to
 * anyone else. The other end, the BELL, is shared by everyone allowed to wake
 * that side (the peer process, the daemon, the waiter itself); ringing sends
 * one byte.
 *
 * WHY NOT AN EVENTFD. A descriptor passed to another process shares its open
 * file description, so that process can clear O_NONBLOCK on it or fill an
 * eventfd's counter to 2^64-2, and the next write(2) or read(2) of anyone
 * else holding it blocks for good. Here every operation is non-blocking PER
 * CALL (MSG_DONTWAIT | MSG_NOSIGNAL), which no file-status flag can undo, and
 * no value read from the channel means anything — only "readable or not":
 *   - a ring that finds the ear's queue full (a holder flooded it, or shrank
 *     the buffer) is not needed: the ear is readable already;
 *   - a drain reads at most WAKE_DRAIN_MAX bytes in at most WAKE_DRAIN_CALLS
 *     calls, so a flooding holder costs the waiter bounded work per wake-up
 *     (and the waiter's own loops bound how many fruitless wake-ups they take);
 *   - a bell holder that shuts the socket down makes the ear hang up (end of
 *     stream): wake_drain() says -EPIPE and the waiter treats its peer as gone.
 *     A plain close never does while the waiter holds a bell itself.
 *   - descriptors a holder sends along (SCM_RIGHTS) are discarded by the
 *     kernel, because a drain passes no control buffer.
 *
 * Who may call: anyone; pure system calls, no state. Every function returns
 * at once.
 */
#pragma once

#include <stdbool.h>

/* A drain reads at most this much (an honest channel holds a few bytes). */
#define WAKE_DRAIN_BUF 64
#define WAKE_DRAIN_CALLS 4

/* Make a channel: *ret_ear (poll and drain it; keep it) and *ret_bell (hand
 * copies to whoever may wake you). Both close-on-exec. Returns 0 or -errno
 * (-EMFILE when out of descriptors, process-wide or system-wide). */
int wake_new(int *ret_ear, int *ret_bell);

/* Make the ear readable. Never blocks and never raises SIGPIPE, whatever
 * another holder did to the socket. Returns 0 (rung, or the ear is readable
 * already), -EPIPE (nobody can hear: the ear is closed or the channel was
 * shut down) or another -errno (-EBADF). Callers usually ignore it. */
int wake_ring(int bell);

/* Consume the rings queued at ear, with bounded work. Returns 1 if any were
 * queued, 0 if none, -EPIPE if the channel hung up (a bell holder shut it
 * down, or every bell is closed: the peer is gone), another -errno (-EBADF,
 * -ENOTSOCK: not an ear). The ear may still be readable afterwards if a
 * holder flooded it. */
int wake_drain(int ear);

/* Is ear readable now (a ring queued, or hung up)? Never blocks. */
bool wake_pending(int ear);
