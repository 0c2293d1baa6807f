/*
 * flowpair.h — make both ends of a flow inside one process, without a daemon,
 * exactly as ipcfd makes a flow (common/flowmem.h: sealed memfd, four wake-up
 * channels). For data-path tests and benchmarks that must not depend on the
 * control plane; fork() afterwards to put the ends in two processes.
 */
#pragma once

#include "ipcf.h"

/* Returns 0 and the two port handles (side 0, side 1), or -errno.
 * peer_pid_0/1: the pid each side believes its peer to be (0: none, so no
 * pidfd is watched). */
int flowpair_make(const ipcf_qos *qos, pid_t peer_of_0, pid_t peer_of_1, int *ret_port0,
                  int *ret_port1);

/* Make port watch pid as its peer process (opens a pidfd), as the daemon's
 * PEER attribute would. For tests that fork after flowpair_make(). */
int flowpair_watch(int port, pid_t pid);

/* The shared memory of port and its size (tests that play a hostile peer). */
void *flowpair_mem(int port, size_t *ret_size);
