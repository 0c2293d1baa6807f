/*
 * hostwire.c — encoding and checking the control messages between daemons
 * (hostwire.h). A reader over (pointer, remaining) that fails sticky: once a
 * read runs past the end, every later read yields zeros and the parse fails,
 * so each field is read without its own length check and nothing is used
 * before the whole message passed.
 */
#include "common/hostwire.h"

#include <errno.h>
#include <string.h>

#include "common/ctl.h"

typedef struct rd {
        const uint8_t *p;
        size_t n;
        bool bad;
} rd;

static const uint8_t *rd_take(rd *r, size_t k) {
        static const uint8_t zeros[8];
        if (r->bad || r->n < k) {
                r->bad = true;
                return zeros;
        }
        const uint8_t *p = r->p;
        r->p += k;
        r->n -= k;
        return p;
}

static uint8_t rd_u8(rd *r) { return rd_take(r, 1)[0]; }

static uint32_t rd_u32(rd *r) {
        const uint8_t *p = rd_take(r, 4);
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd_u64(rd *r) {
        uint64_t hi = rd_u32(r);
        return hi << 32 | rd_u32(r);
}

static bool printable(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < ' ' || s[i] > '~')
                        return false;
        return true;
}

bool hw_name_valid(const char *s, size_t n) {
        if (n == 0 || n > IPCF_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= ' ' || s[i] > '~')
                        return false;
        return true;
}

/* A string into out (cap bytes with its NUL): at most cap - 1 bytes, all
 * printable; names (is_name) also without blanks and not empty. */
static void rd_str(rd *r, char *out, size_t cap, bool is_name) {
        size_t len = rd_u8(r);
        const uint8_t *p = rd_take(r, len);
        if (r->bad || len >= cap || !printable((const char *)p, len) ||
            (is_name && !hw_name_valid((const char *)p, len))) {
                r->bad = true;
                out[0] = 0;
                return;
        }
        memcpy(out, p, len);
        out[len] = 0;
}

static void rd_qos(rd *r, ipcf_qos *q) {
        memset(q, 0, sizeof(*q));
        q->size = sizeof(*q);
        q->capacity = rd_u8(r);
        q->mode = rd_u8(r);
        q->full = rd_u8(r);
        if (rd_u8(r) != 0)
                r->bad = true;
        q->max_msgs = rd_u32(r);
        q->max_bytes = rd_u64(r);
        q->max_msg_size = rd_u32(r);
        q->spin_us = rd_u32(r);
        q->cache_msgs = rd_u32(r);
        /* the same rules as a local ALLOC's qos (defaults filled in) */
        if (!r->bad && ctl_qos_normalize(q) < 0)
                r->bad = true;
}

static void rd_ident(rd *r, hw_ident *w) {
        w->pid = rd_u32(r);
        w->uid = rd_u32(r);
        w->gid = rd_u32(r);
}

int hw_parse(const void *buf, size_t len, hw_msg *ret) {
        rd r = { buf, len, false };
        hw_msg m;
        memset(&m, 0, sizeof(m));
        if (len > HW_MSG_MAX)
                return -EBADMSG;
        m.type = rd_u8(&r);
        uint8_t version = rd_u8(&r);
        uint32_t flags = (uint32_t)rd_u8(&r) << 8;
        flags |= rd_u8(&r);
        if (r.bad || m.type == 0 || m.type >= HW_TYPE_MAX_)
                return -EBADMSG;
        if (version != HW_VERSION)
                return -EPROTONOSUPPORT;
        if (flags)
                return -EBADMSG;
        switch (m.type) {
        case HW_HELLO:
                m.boot = rd_u64(&r);
                rd_str(&r, m.name, sizeof(m.name), true);
                break;
        case HW_ALLOC:
                m.req = rd_u64(&r);
                m.port = rd_u32(&r);
                m.timeout_ms = rd_u32(&r);
                m.role = rd_u8(&r);
                if (rd_u8(&r) | rd_u8(&r) | rd_u8(&r))
                        r.bad = true;
                if (m.role >= CTL_ROLE_MAX_)
                        r.bad = true;
                rd_qos(&r, &m.qos);
                rd_ident(&r, &m.who);
                rd_str(&r, m.name, sizeof(m.name), true);
                rd_str(&r, m.who.prog, sizeof(m.who.prog), true);
                rd_str(&r, m.user, sizeof(m.user), false);
                break;
        case HW_ACCEPT:
                m.req = rd_u64(&r);
                m.port = rd_u32(&r);
                rd_ident(&r, &m.who);
                rd_qos(&r, &m.qos);
                rd_str(&r, m.who.prog, sizeof(m.who.prog), true);
                break;
        case HW_REFUSE:
                m.req = rd_u64(&r);
                m.err = rd_u32(&r);
                m.code = rd_u32(&r);
                rd_str(&r, m.reason, sizeof(m.reason), false);
                if (m.err == 0 || m.err > 4095)
                        r.bad = true;
                break;
        case HW_CANCEL:
                m.req = rd_u64(&r);
                break;
        case HW_DEALLOC:
                m.port = rd_u32(&r);
                m.code = rd_u32(&r);
                rd_str(&r, m.reason, sizeof(m.reason), false);
                break;
        case HW_CONSUMED:
        case HW_DELIVERED:
                m.port = rd_u32(&r);
                m.count = rd_u64(&r);
                break;
        }
        /* ports are never 0 (nor the control port) where they name a flow */
        if ((m.type == HW_ALLOC || m.type == HW_ACCEPT || m.type == HW_DEALLOC || m.type == HW_CONSUMED ||
             m.type == HW_DELIVERED) &&
            (m.port == 0 || m.port == HW_CONTROL_PORT))
                r.bad = true;
        if (r.bad || r.n != 0)
                return -EBADMSG;
        *ret = m;
        return 0;
}

/* ---- building -------------------------------------------------------------- */

typedef struct wr {
        uint8_t *p;
        size_t n, cap;
} wr;

static void wr_u8(wr *w, uint8_t v) {
        if (w->n < w->cap)
                w->p[w->n] = v;
        w->n++;
}

static void wr_u32(wr *w, uint32_t v) {
        for (int s = 24; s >= 0; s -= 8)
                wr_u8(w, (uint8_t)(v >> s));
}

static void wr_u64(wr *w, uint64_t v) {
        wr_u32(w, (uint32_t)(v >> 32));
        wr_u32(w, (uint32_t)v);
}

static void wr_str(wr *w, const char *s, size_t max) {
        size_t len = strnlen(s, max);
        wr_u8(w, (uint8_t)len);
        for (size_t i = 0; i < len; i++)
                wr_u8(w, (uint8_t)s[i]);
}

static void wr_qos(wr *w, const ipcf_qos *q) {
        wr_u8(w, q->capacity);
        wr_u8(w, q->mode);
        wr_u8(w, q->full);
        wr_u8(w, 0);
        wr_u32(w, q->max_msgs);
        wr_u64(w, q->max_bytes);
        wr_u32(w, q->max_msg_size);
        wr_u32(w, q->spin_us);
        wr_u32(w, q->cache_msgs);
}

static void wr_ident(wr *w, const hw_ident *id) {
        wr_u32(w, id->pid);
        wr_u32(w, id->uid);
        wr_u32(w, id->gid);
}

int hw_build(const hw_msg *m, void *buf, size_t cap) {
        wr w = { buf, 0, cap };
        if (m->type == 0 || m->type >= HW_TYPE_MAX_)
                return -EINVAL;
        wr_u8(&w, m->type);
        wr_u8(&w, HW_VERSION);
        wr_u8(&w, 0);
        wr_u8(&w, 0);
        switch (m->type) {
        case HW_HELLO:
                wr_u64(&w, m->boot);
                wr_str(&w, m->name, IPCF_NAME_MAX);
                break;
        case HW_ALLOC:
                wr_u64(&w, m->req);
                wr_u32(&w, m->port);
                wr_u32(&w, m->timeout_ms);
                wr_u8(&w, m->role);
                wr_u8(&w, 0);
                wr_u8(&w, 0);
                wr_u8(&w, 0);
                wr_qos(&w, &m->qos);
                wr_ident(&w, &m->who);
                wr_str(&w, m->name, IPCF_NAME_MAX);
                wr_str(&w, m->who.prog, HW_PROG_MAX);
                wr_str(&w, m->user, HW_USER_MAX);
                break;
        case HW_ACCEPT:
                wr_u64(&w, m->req);
                wr_u32(&w, m->port);
                wr_ident(&w, &m->who);
                wr_qos(&w, &m->qos);
                wr_str(&w, m->who.prog, HW_PROG_MAX);
                break;
        case HW_REFUSE:
                wr_u64(&w, m->req);
                wr_u32(&w, m->err);
                wr_u32(&w, m->code);
                wr_str(&w, m->reason, IPCF_REASON_MAX);
                break;
        case HW_CANCEL:
                wr_u64(&w, m->req);
                break;
        case HW_DEALLOC:
                wr_u32(&w, m->port);
                wr_u32(&w, m->code);
                wr_str(&w, m->reason, IPCF_REASON_MAX);
                break;
        case HW_CONSUMED:
        case HW_DELIVERED:
                wr_u32(&w, m->port);
                wr_u64(&w, m->count);
                break;
        }
        if (w.n > cap)
                return -ENOBUFS;
        /* never send what the peer would refuse */
        hw_msg check;
        if (hw_parse(buf, w.n, &check) < 0)
                return -EINVAL;
        return (int)w.n;
}
