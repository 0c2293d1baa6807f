/*
 * group.h — a member's view of a shared-memory group, shared by group.c
 * (join, exit, copies, remapping), lock.c (the group lock, who a taker is)
 * and bbuf.c (the bounded buffer). A group handle is a handle kind of its
 * own (group_kind, group.c).
 */
#pragma once

#include "common/bbufq.h"
#include "common/grplock.h"
#include "lib/core/lib.h"

struct grpshm_ctl;

/* A member's view of a group. The mapping (data, size) changes only under
 * maplock held for writing (remap); accesses hold it for reading. */
typedef struct group {
        uint64_t group_id, member_id;
        uint32_t slot, serial;           /* our member slot and serial, */
        uint64_t token_base;             /* as in our lock tokens (grplock_token(.., 0)) */
        unsigned fork_gen;               /* group_fork_gen() at join (see group_who) */
        char name[IPCF_NAME_MAX + 1];
        int memfd, notice;               /* the group's memory; the ear of our notice channel */
        struct grpshm_ctl *ctl;          /* mapping of the control page */
        pthread_rwlock_t maplock;
        uint8_t *resv;                   /* guard page, data, guard page */
        size_t resv_len;
        uint8_t *pin_resv;               /* the view ipcf_group_ptr handed out, */
        size_t pin_len;                  /* kept until retired (group.c: PINNING) */
        _Atomic bool closed;             /* ipcf_dealloc ran: waiters give up */
        uint8_t *data;
        uint64_t size;                   /* bytes mapped at data */
        uint64_t gen;                    /* the generation the mapping reflects */
        /* bbuf.c: the other side's counter as last seen, per direction (a
         * bound that only grows: read again only when it is not enough).
         * Used under the buffer's own producer / consumer lock. */
        bbufq_seen bb_tail_seen, bb_head_seen;
} group;

/* The kind of group handles: ipcf_dealloc leaves the group, ipcf_fd is the
 * ear of the notice channel. */
extern const handle_kind group_kind;

/* Look up group handle h with a reference (handle_put it), or NULL. */
static inline group *handle_get_group(int h) {
        return handle_get(h, &group_kind);
}

/* Resolve [off, off + len) of g to an address, remapping first if the group
 * changed. On success maplock is held for reading: group_access_end(). Returns
 * 0, -ERANGE, -EIDRM. */
int group_access(group *g, uint64_t off, uint64_t len, uint8_t **ret_ptr);
void group_access_end(group *g);
/* The calling thread as a taker of g's locks: its token, the roster, and a
 * stop callback (-EBADF once the handle is left, -EIDRM once dissolved).
 * -EPERM in a process that did not join g itself (a child after fork). */
int group_who(group *g, grplock_who *ret);
/* Has the group been marked dissolved? (group.c) */
bool group_dissolved(const group *g);
/* How many times this process was a child of fork() since its first join
 * (lock.c): a handle joined under another count was inherited. */
unsigned group_fork_gen(void);
