/*
 * ctl.c — control-protocol framing: the strict parser (untrusted input: it is
 * fuzzed by fuzz/fuzz-ctl.c), the builder, and SCM_RIGHTS I/O. See ctl.h.
 */
#include "common/ctl.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

int ctl_msg_parse(const void *buf, size_t len, ctl_msg *ret) {
        const uint8_t *p = buf;

        if (!buf || len < CTL_HDR_SIZE || len > CTL_MSG_MAX)
                return -EBADMSG;
        uint16_t type = rd16(p), flags = rd16(p + 2);
        uint32_t mlen = rd32(p + 4), reserved = rd32(p + 12);
        if (mlen != len || flags != 0 || reserved != 0 || type == 0 || type >= CTL_TYPE_MAX_)
                return -EBADMSG;
        /* Walk every attribute once so getters can trust the framing. */
        for (size_t off = CTL_HDR_SIZE; off < len;) {
                if (len - off < 4)
                        return -EBADMSG;
                size_t vlen = rd16(p + off + 2);
                size_t padded = (4 + vlen + 3) & ~(size_t)3;
                if (rd16(p + off) == 0 || padded > len - off)
                        return -EBADMSG;
                off += padded;
        }
        ret->type = type;
        ret->seq = rd32(p + 8);
        ret->attrs = p + CTL_HDR_SIZE;
        ret->attrs_len = len - CTL_HDR_SIZE;
        return 0;
}

int ctl_attr_next(const ctl_msg *m, size_t *cursor, uint16_t *ret_type, const void **ret_val,
                  uint16_t *ret_len) {
        if (*cursor >= m->attrs_len)
                return 0;
        const uint8_t *a = m->attrs + *cursor;
        uint16_t vlen = rd16(a + 2);
        *ret_type = rd16(a);
        *ret_len = vlen;
        *ret_val = a + 4;
        *cursor += (4 + (size_t)vlen + 3) & ~(size_t)3;
        return 1;
}

static int find(const ctl_msg *m, uint16_t type, const void **val, uint16_t *len) {
        size_t c = 0;
        uint16_t t;
        while (ctl_attr_next(m, &c, &t, val, len))
                if (t == type)
                        return 0;
        return -ENOENT;
}

int ctl_get_fixed(const ctl_msg *m, uint16_t type, void *ret, size_t size) {
        const void *v;
        uint16_t len;
        int r = find(m, type, &v, &len);
        if (r < 0)
                return r;
        if (len != size)
                return -EBADMSG;
        memcpy(ret, v, size);
        return 0;
}

int ctl_get_u32(const ctl_msg *m, uint16_t type, uint32_t *ret) {
        uint8_t b[4];
        int r = ctl_get_fixed(m, type, b, 4);
        if (r == 0)
                *ret = rd32(b);
        return r;
}

int ctl_get_u64(const ctl_msg *m, uint16_t type, uint64_t *ret) {
        uint8_t b[8];
        int r = ctl_get_fixed(m, type, b, 8);
        if (r == 0)
                *ret = (uint64_t)rd32(b) | (uint64_t)rd32(b + 4) << 32;
        return r;
}

int ctl_get_str(const ctl_msg *m, uint16_t type, size_t max_len, const char **ret) {
        const void *v;
        uint16_t len;
        int r = find(m, type, &v, &len);
        if (r < 0)
                return r;
        /* Exactly one NUL, at the end. */
        if (len == 0 || (size_t)len - 1 > max_len || memchr(v, 0, len) != (const char *)v + len - 1)
                return -EBADMSG;
        *ret = v;
        return 0;
}

void ctl_begin(ctl_builder *b, uint16_t type, uint32_t seq) {
        memset(b->buf, 0, CTL_HDR_SIZE);
        wr16(b->buf, type);
        wr32(b->buf + 8, seq);
        b->len = CTL_HDR_SIZE;
        b->err = 0;
}

void ctl_put(ctl_builder *b, uint16_t type, const void *val, size_t len) {
        size_t padded = (4 + len + 3) & ~(size_t)3;
        if (b->err)
                return;
        if (len > UINT16_MAX || padded > CTL_MSG_MAX - b->len) {
                b->err = -EMSGSIZE;
                return;
        }
        uint8_t *a = b->buf + b->len;
        wr16(a, type);
        wr16(a + 2, (uint16_t)len);
        if (len)
                memcpy(a + 4, val, len);
        memset(a + 4 + len, 0, padded - 4 - len);
        b->len += padded;
}

void ctl_put_u32(ctl_builder *b, uint16_t type, uint32_t v) {
        uint8_t x[4];
        wr32(x, v);
        ctl_put(b, type, x, 4);
}

void ctl_put_u64(ctl_builder *b, uint16_t type, uint64_t v) {
        uint8_t x[8];
        wr32(x, (uint32_t)v);
        wr32(x + 4, (uint32_t)(v >> 32));
        ctl_put(b, type, x, 8);
}

void ctl_put_str(ctl_builder *b, uint16_t type, const char *s) {
        ctl_put(b, type, s, strlen(s) + 1);
}

int ctl_end(ctl_builder *b) {
        if (b->err)
                return b->err;
        wr32(b->buf + 4, (uint32_t)b->len);
        return (int)b->len;
}

/* MSG_DONTWAIT once ctl_sends_never_wait() was called (set before any thread). */
static int send_flags = MSG_NOSIGNAL;

void ctl_sends_never_wait(void) { send_flags |= MSG_DONTWAIT; }

int ctl_send(int sock, const ctl_builder *b, const int *fds, unsigned n_fds) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
        } cbuf;
        struct iovec iov = { .iov_base = (void *)b->buf, .iov_len = b->len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (b->err)
                return b->err;
        if (n_fds > CTL_FDS_MAX)
                return -EINVAL;
        if (n_fds) {
                memset(&cbuf, 0, sizeof(cbuf));
                mh.msg_control = cbuf.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        for (;;) {
                ssize_t n = sendmsg(sock, &mh, send_flags);
                if (n >= 0)
                        return (size_t)n == b->len ? 0 : -EMSGSIZE;
                if (errno != EINTR)
                        return -errno;
        }
}

ssize_t ctl_recv(int sock, void *buf, size_t cap, int *fds, unsigned *ret_n_fds, int flags) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
        } cbuf;
        struct iovec iov = { .iov_base = buf, .iov_len = cap };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
                             .msg_controllen = sizeof(cbuf.buf) };
        ssize_t n;
        unsigned got = 0;

        *ret_n_fds = 0;
        do
                n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int tmp[CTL_FDS_MAX];
                if (k > CTL_FDS_MAX)
                        k = CTL_FDS_MAX; /* cannot happen: the buffer holds at most that */
                memcpy(tmp, CMSG_DATA(c), k * sizeof(int));
                for (size_t i = 0; i < k; i++) {
                        if (got < CTL_FDS_MAX && fds)
                                fds[got++] = tmp[i];
                        else
                                close(tmp[i]);
                }
        }
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
                for (unsigned i = 0; i < got; i++)
                        close(fds[i]);
                return -EBADMSG;
        }
        *ret_n_fds = got;
        return n;
}

bool ctl_name_valid(const char *name) {
        size_t n = 0;
        if (!name)
                return false;
        for (; name[n]; n++)
                if (n >= IPCF_NAME_MAX || name[n] <= ' ' || name[n] > '~')
                        return false;
        return n > 0;
}

void ctl_qos_to_wire(const ipcf_qos *q, struct ctl_qos_wire *w) {
        memset(w, 0, sizeof(*w));
        w->capacity = q->capacity;
        w->mode = q->mode;
        w->full = q->full;
        w->max_msgs = htole32(q->max_msgs);
        w->max_bytes = htole64(q->max_bytes);
        w->max_msg_size = htole32(q->max_msg_size);
        w->spin_us = htole32(q->spin_us);
        w->cache_msgs = htole32(q->cache_msgs);
}

void ctl_qos_from_wire(const struct ctl_qos_wire *w, ipcf_qos *q) {
        memset(q, 0, sizeof(*q));
        q->size = sizeof(*q);
        q->capacity = w->capacity;
        q->mode = w->mode;
        q->full = w->full;
        q->max_msgs = le32toh(w->max_msgs);
        q->max_bytes = le64toh(w->max_bytes);
        q->max_msg_size = le32toh(w->max_msg_size);
        q->spin_us = le32toh(w->spin_us);
        q->cache_msgs = le32toh(w->cache_msgs);
}

int ctl_qos_normalize(ipcf_qos *q) {
        /* reserved is no role (that is the ALLOC's ROLE attribute): a caller
         * that sets it gets EINVAL, as for any other bad value. */
        if (q->capacity > IPCF_CAPACITY_UNBOUNDED || q->mode > IPCF_MODE_STREAM ||
            q->full > IPCF_FULL_CACHE || q->reserved != 0)
                return -EINVAL;
        if (q->max_msg_size == 0)
                q->max_msg_size = QOS_DEFAULT_MAX_MSG;
        if (q->max_msg_size > QOS_LIMIT_MAX_MSG)
                return -EINVAL;
        if (q->spin_us > QOS_LIMIT_SPIN_US)
                return -EINVAL;
        if (q->full == IPCF_FULL_CACHE && q->cache_msgs == 0)
                q->cache_msgs = 1;
        if (q->cache_msgs > QOS_LIMIT_CACHE_MSGS)
                return -EINVAL;
        switch (q->capacity) {
        case IPCF_CAPACITY_BOUNDED:
                if (q->max_bytes == 0)
                        q->max_bytes = QOS_DEFAULT_RING;
                if (q->max_bytes > QOS_LIMIT_RING)
                        return -EINVAL;
                break;
        case IPCF_CAPACITY_UNBOUNDED:
                if (q->max_bytes == 0)
                        q->max_bytes = QOS_DEFAULT_UNBOUNDED;
                if (q->max_bytes > QOS_LIMIT_UNBOUNDED)
                        return -EINVAL;
                q->max_msgs = 0;
                break;
        case IPCF_CAPACITY_ZERO:
                q->max_bytes = 0;
                q->max_msgs = 1;
                break;
        }
        return 0;
}
