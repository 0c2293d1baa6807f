/*
 * modelmsg.c — frames in and out of broker ports, and the blocks messages
 * live in (see modelmsg.h). The pool is the daemon's (one thread): a LIFO
 * list per size class, threaded through model_msg.next.
 */
#include "daemon/models/modelmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/modelwire.h"

/* Size classes: from 2^POOL_MIN_SHIFT bytes up, four per octave (base,
 * 5/4, 6/4, 7/4 of a power of two), enough for a header and MW_MSG_MAX. */
#define POOL_MIN_SHIFT 12
#define POOL_CLASSES 32

static model_msg *pool[POOL_CLASSES + 1]; /* [class]: free blocks; class 0 unused */
static size_t pool_bytes;

/* The class of a block of at least n bytes (0: too small to keep), and its
 * size. */
static uint32_t size_class_of(size_t n, size_t *ret_size) {
        *ret_size = n;
        if (n < (1u << POOL_MIN_SHIFT))
                return 0;
        unsigned k = 63 - (unsigned)__builtin_clzll((unsigned long long)n); /* 2^k <= n */
        size_t base = (size_t)1 << k, step = base / 4;
        size_t i = (n - base + step - 1) / step; /* 0..4 */
        size_t size = base + i * step;
        uint32_t c = 1 + (k - POOL_MIN_SHIFT) * 4 + (uint32_t)i;
        if (c > POOL_CLASSES)
                return 0;
        *ret_size = size;
        return c;
}

static size_t size_of_class(uint32_t c) {
        unsigned k = POOL_MIN_SHIFT + (c - 1) / 4, i = (c - 1) % 4;
        size_t base = (size_t)1 << k;
        return base + i * (base / 4);
}

/* A block for a message of plen payload bytes, its class set. */
static model_msg *msg_block(size_t plen) {
        size_t size;
        uint32_t c = size_class_of(sizeof(model_msg) + plen, &size);
        model_msg *m = c ? pool[c] : NULL;
        if (m) {
                pool[c] = m->next;
                pool_bytes -= size;
        } else {
                m = malloc(size);
                if (!m)
                        return NULL;
        }
        m->size_class = c;
        return m;
}

void model_msg_free(model_msg *m) {
        if (!m)
                return;
        uint32_t c = m->size_class;
        if (c && pool_bytes + size_of_class(c) <= MODEL_MSG_POOL_BYTES) {
                m->next = pool[c];
                pool[c] = m;
                pool_bytes += size_of_class(c);
                return;
        }
        free(m);
}

size_t model_msg_pool_bytes(void) { return pool_bytes; }

int model_msg_peek(bport *b, uint32_t max_msg, model_msg **ret, const void **ret_data) {
        for (;;) {
                const void *p;
                ssize_t len = bport_peek(b, &p);
                if (len == -EAGAIN) {
                        if (bport_arm_rx(b))
                                continue; /* data came meanwhile */
                        return 0;
                }
                if (len < (ssize_t)sizeof(struct mw_hdr))
                        return -EPROTO;
                struct mw_hdr h;
                memcpy(&h, p, sizeof(h));
                size_t plen = (size_t)len - sizeof(h);
                if (h.kind != MW_DATA || plen > max_msg)
                        return -EPROTO;
                model_msg *m = msg_block(plen);
                if (!m)
                        return -ENOMEM;
                m->next = NULL;
                m->sender = b->flow_id;
                m->seq = h.seq;
                m->flags = h.flags & MW_F_RECEIPT;
                m->pid = (uint32_t)b->peer.pid;
                m->uid = b->peer.uid;
                m->gid = b->peer.gid;
                m->len = (uint32_t)plen;
                *ret = m;
                *ret_data = (const uint8_t *)p + sizeof(h);
                return 1;
        }
}

int model_msg_take(bport *b, uint32_t max_msg, model_msg **ret) {
        const void *data;
        int k = model_msg_peek(b, max_msg, ret, &data);
        if (k <= 0)
                return k;
        memcpy((*ret)->data, data, (*ret)->len);
        bport_consume(b);
        return 1;
}

int model_msg_put_data(bport *b, const model_msg *m, const void *data, uint64_t seq, uint32_t flags,
                       uint64_t *ret_pos) {
        void *p;
        size_t n = sizeof(struct mw_hdr) + m->len;
        int e = bport_reserve(b, n, &p);
        if (e < 0)
                return e;
        struct mw_hdr h = { .kind = MW_DATA, .flags = flags, .seq = seq, .pid = m->pid, .uid = m->uid,
                            .gid = m->gid };
        memcpy(p, &h, sizeof(h));
        memcpy((uint8_t *)p + sizeof(h), data, m->len);
        uint64_t pos = bport_commit(b, n);
        if (ret_pos)
                *ret_pos = pos;
        return 0;
}

int model_msg_put(bport *b, const model_msg *m, uint64_t seq, uint32_t flags, uint64_t *ret_pos) {
        return model_msg_put_data(b, m, m->data, seq, flags, ret_pos);
}

bool model_frame_put(bport *b, uint32_t kind, uint64_t seq, uint32_t pid) {
        void *p;
        if (bport_reserve(b, sizeof(struct mw_hdr), &p) < 0)
                return false;
        struct mw_hdr h = { .kind = kind, .seq = seq, .pid = pid };
        memcpy(p, &h, sizeof(h));
        bport_commit(b, sizeof(h));
        return true;
}
