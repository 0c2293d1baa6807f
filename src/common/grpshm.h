/*
 * grpshm.h — the layout of a shared-memory group's memfd, shared by the
 * daemon (which creates and resizes it) and libipcf (which maps it).
 *
 *   0                 control page (struct grpshm_ctl), GRPSHM_CTL_SIZE bytes
 *   GRPSHM_CTL_SIZE   data: `size` bytes (a multiple of the page size)
 *
 * TRUST: every member can write the control page. Nothing in it is trusted
 * for memory safety: the library takes the size it maps from fstat() of the
 * memfd (the kernel's word; the file is sealed against shrinking, so a size
 * seen once stays backed for ever) and clamps the published logical size to
 * it. A hostile member can corrupt the group's data and lock — it shares them
 * by definition — but can never make another member fault.
 *
 * WHO WRITES WHAT: the daemon writes magic, version, size, gen and dissolved
 * (size before gen, release order; readers load gen with acquire first);
 * members take and release the robust lock.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define GRPSHM_MAGIC 0x49475250u /* "PRGI" */
#define GRPSHM_VERSION 1u
#define GRPSHM_CTL_SIZE 4096u
/* Hard bound of one group's data size (the per-user quota is lower). */
#define GRPSHM_SIZE_MAX (1ull << 34)

struct grpshm_ctl {
        uint32_t magic, version;
        _Atomic uint64_t gen;        /* bumped on every change (resize, dissolve) */
        _Atomic uint64_t size;       /* logical data size of generation gen */
        _Atomic uint32_t dissolved;  /* 1 once dissolved: API calls fail -EIDRM */
        uint32_t reserved;
        /* The group lock: process-shared and robust (EOWNERDEAD when its
         * holder died). Own cache line. */
        pthread_mutex_t lock __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct grpshm_ctl) <= GRPSHM_CTL_SIZE, "control page overflow");

/* Initialise a fresh control page (the daemon, on a zeroed memfd). Returns 0
 * or -errno from the mutex attribute calls. */
int grpshm_ctl_init(struct grpshm_ctl *c, uint64_t size);
/* Initialise a process-shared robust mutex in shared memory (also used by
 * the bounded buffer). */
int grpshm_mutex_init(pthread_mutex_t *m);
