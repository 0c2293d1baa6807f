/*
 * bbuf.c — the bounded buffer's public API: ipcf_bbuf_init/put/get/stat on
 * a group handle. The queue itself (layout, two-lock protocol, validation,
 * waits) is common/bbufq.c; this file resolves the region through the
 * group's current mapping (group_access: remapped after a resize, -EIDRM
 * after a dissolve), supplies the caller's lock token (group_who), and
 * loops attempt / wait until the deadline.
 *
 * TIMEOUTS: 0 tries (a lock held by another producer or consumer is waited
 * for one lock spin window, BBUFQ_LOCK_SPIN_NS, then -EAGAIN); n waits up
 * to n ms (-ETIMEDOUT), whoever holds the lock and whatever the shared
 * header says; -1 waits for ever. Each sleep lasts at most one slice
 * (GRPLOCK_SLICE_MS), so an exit of the handle (-EBADF) or a dissolve
 * (-EIDRM) by another thread is seen within a slice, and the handle's map
 * lock is never held across a long sleep.
 */
#include <errno.h>
#include <unistd.h>

#include "common/bbufq.h"
#include "common/util.h"
#include "lib/core/lib.h"
#include "lib/groups/group.h"

/* The buffer at off, through the current mapping (maplock held on success:
 * bview_end). */
static int bview_begin(group *g, uint64_t off, bbufq *q) {
        uint8_t *p;
        if (off % 64)
                return -EINVAL;
        if (atomic_load(&g->closed))
                return -EBADF; /* exited while we waited */
        int r = group_access(g, off, IPCF_BBUF_HDR, &p);
        if (r < 0)
                return r;
        /* off + HDR <= size holds (group_access checked it). */
        r = bbufq_open(p, g->size - off, q);
        if (r < 0)
                group_access_end(g);
        return r;
}

ssize_t ipcf_bbuf_init(int h, uint64_t offset, uint64_t len) {
        if (len <= IPCF_BBUF_HDR || offset % 64)
                return -EINVAL;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint8_t *p;
        int r = group_access(g, offset, len, &p);
        if (r == 0) {
                bbufq_init(p, len, now_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)p);
                group_access_end(g);
        }
        handle_put(g);
        return r < 0 ? r : (ssize_t)(len - IPCF_BBUF_HDR);
}

/* A lock wait that timed out with timeout 0 is a try that failed. */
static ssize_t try_result(ssize_t r, int timeout_ms) {
        return r == -ETIMEDOUT && timeout_ms == 0 ? -EAGAIN : r;
}

ssize_t ipcf_bbuf_put(int h, uint64_t offset, const void *buf, size_t len, int timeout_ms) {
        if ((!buf && len) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        bbufq_when when = { timeout_ms, 0 };
        grplock_who w;
        ssize_t r = group_who(g, &w);
        for (bool again = r == 0; again;) {
                bbufq q;
                uint64_t seen = 0;
                if ((r = bview_begin(g, offset, &q)) < 0)
                        break;
                r = bbufq_put_once(&q, &w, &when, buf, len, &g->bb_tail_seen, offset, &seen);
                again = false;
                if (r == 1) {
                        r = (ssize_t)len;
                } else if (r == 0 && timeout_ms == 0) {
                        r = -EAGAIN;
                } else if (r == 0) {
                        r = bbufq_wait_room(&q, seen, &when);
                        again = r == 0; /* look again */
                }
                group_access_end(g);
        }
        handle_put(g);
        return try_result(r, timeout_ms);
}

ssize_t ipcf_bbuf_get(int h, uint64_t offset, void *buf, size_t cap, int timeout_ms) {
        if ((!buf && cap) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        bbufq_when when = { timeout_ms, 0 };
        grplock_who w;
        ssize_t r = group_who(g, &w);
        for (bool wait = r == 0; wait;) {
                bbufq q;
                uint64_t seen = 0;
                if ((r = bview_begin(g, offset, &q)) < 0)
                        break;
                r = bbufq_get_once(&q, &w, &when, buf, cap, &g->bb_head_seen, offset, &seen, &wait);
                if (wait && timeout_ms == 0)
                        r = -EAGAIN;
                else if (wait)
                        r = bbufq_wait_items(&q, seen, &when);
                group_access_end(g);
                wait = wait && r == 0;
        }
        handle_put(g);
        return try_result(r, timeout_ms);
}

int ipcf_bbuf_stat(int h, uint64_t offset, uint64_t *ret_bytes, uint64_t *ret_items) {
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        bbufq q;
        int r = bview_begin(g, offset, &q);
        if (r == 0) {
                r = bbufq_stat(&q, ret_bytes, ret_items);
                group_access_end(g);
        }
        handle_put(g);
        return r;
}
