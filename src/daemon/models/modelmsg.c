/*
 * modelmsg.c — frames in and out of broker ports (see modelmsg.h).
 */
#include "daemon/models/modelmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/modelwire.h"

int model_msg_take(bport *b, uint32_t max_msg, model_msg **ret) {
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
                model_msg *m = malloc(sizeof(*m) + plen);
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
                memcpy(m->data, (const uint8_t *)p + sizeof(h), plen);
                bport_consume(b);
                *ret = m;
                return 1;
        }
}

int model_msg_put(bport *b, const model_msg *m, uint64_t seq, uint32_t flags, uint64_t *ret_pos) {
        void *p;
        size_t n = sizeof(struct mw_hdr) + m->len;
        int e = bport_reserve(b, n, &p);
        if (e < 0)
                return e;
        struct mw_hdr h = { .kind = MW_DATA, .flags = flags, .seq = seq, .pid = m->pid, .uid = m->uid,
                            .gid = m->gid };
        memcpy(p, &h, sizeof(h));
        memcpy((uint8_t *)p + sizeof(h), m->data, m->len);
        uint64_t pos = bport_commit(b, n);
        if (ret_pos)
                *ret_pos = pos;
        return 0;
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
