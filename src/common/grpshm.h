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
 * it. The lock and the roster are plain integers that are validated, never
 * pointers that are followed (common/grplock.h). A hostile member can corrupt
 * the group's data and lock — it shares them by definition — but can never
 * make another member fault, nor wait past its timeout.
 *
 * WHO WRITES WHAT: the daemon writes magic, version, size, gen, dissolved
 * (size before gen, release order; readers load gen with acquire first) and
 * the roster, and never reads any of it back; members take and release the
 * lock.
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include "common/grplock.h"

#define GRPSHM_MAGIC 0x49475250u /* "PRGI" */
#define GRPSHM_VERSION 2u
#define GRPSHM_CTL_SIZE 4096u
/* Hard bound of one group's data size (the per-user quota is lower). */
#define GRPSHM_SIZE_MAX (1ull << 34)

struct grpshm_ctl {
        uint32_t magic, version;
        _Atomic uint64_t gen;        /* bumped on every change (resize, dissolve) */
        _Atomic uint64_t size;       /* logical data size of generation gen */
        _Atomic uint32_t dissolved;  /* 1 once dissolved: API calls fail -EIDRM */
        uint32_t reserved;
        /* The group lock (own cache line). */
        struct grplock lock __attribute__((aligned(64)));
        /* Who is a member now: roster[slot] is the serial of the member the
         * daemon admitted into that slot, 0 while the slot is free. A lock
         * whose holder's slot no longer carries its serial was left by a
         * member that died or exited (grplock.h). */
        _Atomic uint32_t roster[GRPLOCK_SLOTS] __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct grpshm_ctl) <= GRPSHM_CTL_SIZE, "control page overflow");

/* Initialise a fresh control page (the daemon, on a zeroed memfd). */
void grpshm_ctl_init(struct grpshm_ctl *c, uint64_t size);

/* The data size a member maps: the published (untrusted) size clamped to
 * what the file backs (file_size from fstat, control page excluded) and to
 * GRPSHM_SIZE_MAX, in whole pages of page bytes (a power of two). */
uint64_t grpshm_map_size(uint64_t published, uint64_t file_size, uint64_t page);

/* A member id from the JOIN reply is serial << 8 | slot (ctl.h): split it.
 * 0, or -EPROTO if it names no valid slot and serial. */
int grpshm_member_decode(uint64_t member_id, uint32_t *ret_slot, uint32_t *ret_serial);
/* The member id of slot and serial (the daemon). */
uint64_t grpshm_member_id(uint32_t slot, uint32_t serial);
