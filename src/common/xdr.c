/*
 * xdr.c — XDR streams (RFC 4506) for the code ipcf-idl generates: the
 * primitives of ipcf.h's "XDR streams" section.
 *
 * Rules: errors are sticky (the first one is kept, later calls do nothing
 * and return it). Decoding reads only inside [buf, buf + cap); every length
 * from the input is checked against its declared bound and against what is
 * left before anything is allocated; what it allocates is charged to
 * x->budget; padding must be zero. Pure code: no I/O, no globals.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xdr.h"
#include "ipcf.h"

enum {
        XDR_OWNED = 1u, /* buf is ours (heap), grown by realloc */
        XDR_SG = 2u,    /* scatter-gather encoding */
        XDR_DECODE = 4u,
        XDR_BORROW = 8u, /* decoding: large opaque data stays in the input */
};

/* The input whose opaque data this thread's decoders may have lent out
 * (xdr_borrow_region): ipcf_xdr_free leaves pointers into it alone. */
static _Thread_local const uint8_t *borrow_lo, *borrow_hi;

void xdr_borrow_region(const void *p, size_t len) {
        borrow_lo = p;
        borrow_hi = p ? (const uint8_t *)p + len : NULL;
}

/* A decoder that borrows marks its input lent out on this thread (until
 * another borrows, or it is released): what T_free frees there is not the
 * decoder's. */
void ipcf_xdr_borrow(ipcf_xdr *x, size_t min) {
        x->flags |= XDR_BORROW;
        x->sg_min = min ? min : 1;
        if (x->flags & XDR_DECODE)
                xdr_borrow_region(x->buf, x->cap);
}

void ipcf_xdr_free(void *p) {
        const uint8_t *q = p;
        if (q && borrow_lo && q >= borrow_lo && q < borrow_hi)
                return;
        free(p);
}

static void init(ipcf_xdr *x, void *buf, size_t cap, uint32_t flags) {
        *x = (ipcf_xdr){ .buf = buf, .cap = buf ? cap : 0, .flags = flags,
                         .max_depth = IPCF_XDR_MAX_DEPTH };
}

void ipcf_xdr_encoder(ipcf_xdr *x, void *buf, size_t cap) {
        init(x, buf, cap, 0);
}

void ipcf_xdr_encoder_sg(ipcf_xdr *x, void *buf, size_t cap, size_t sg_min) {
        init(x, buf, cap, XDR_SG);
        x->sg_min = sg_min ? sg_min : 1;
}

void ipcf_xdr_decoder(ipcf_xdr *x, const void *buf, size_t len) {
        init(x, (void *)buf, len, XDR_DECODE);
        x->cap = len;
        uint64_t b = (uint64_t)len * IPCF_XDR_BUDGET_FACTOR + 65536u;
        x->budget = b;
}

void ipcf_xdr_release(ipcf_xdr *x) {
        if ((x->flags & XDR_DECODE) && (x->flags & XDR_BORROW) && x->buf && borrow_lo == x->buf)
                xdr_borrow_region(NULL, 0);
        if (x->flags & XDR_OWNED)
                free(x->buf);
        free(x->segs);
        x->buf = NULL;
        x->segs = NULL;
        x->cap = x->pos = 0;
        x->n_segs = x->cap_segs = 0;
        x->flags &= ~(uint32_t)XDR_OWNED;
}

int ipcf_xdr_fail(ipcf_xdr *x, int err) {
        if (!x->err)
                x->err = err;
        return x->err;
}

/* ---- encoding ------------------------------------------------------------ */

/* Room for n more bytes at x->pos, growing into memory of our own. */
static uint8_t *room(ipcf_xdr *x, size_t n) {
        if (x->err)
                return NULL;
        if (x->cap - x->pos >= n)
                return x->buf + x->pos;
        size_t want = x->pos + n;
        if (want < x->pos) {
                ipcf_xdr_fail(x, -ENOMEM);
                return NULL;
        }
        size_t cap = x->cap > 256 ? x->cap : 256;
        while (cap < want)
                cap = cap > SIZE_MAX / 2 ? want : cap * 2;
        uint8_t *b;
        if (x->flags & XDR_OWNED) {
                b = realloc(x->buf, cap);
        } else {
                b = malloc(cap);
                if (b && x->pos)
                        memcpy(b, x->buf, x->pos);
        }
        if (!b) {
                ipcf_xdr_fail(x, -ENOMEM);
                return NULL;
        }
        x->buf = b;
        x->cap = cap;
        x->flags |= XDR_OWNED;
        return b + x->pos;
}

static void be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int ipcf_xdr_put_u32(ipcf_xdr *x, uint32_t v) {
        uint8_t *p = room(x, 4);
        if (!p)
                return x->err;
        be32(p, v);
        x->pos += 4;
        return 0;
}

int ipcf_xdr_put_u64(ipcf_xdr *x, uint64_t v) {
        uint8_t *p = room(x, 8);
        if (!p)
                return x->err;
        be32(p, (uint32_t)(v >> 32));
        be32(p + 4, (uint32_t)v);
        x->pos += 8;
        return 0;
}

int ipcf_xdr_put_float(ipcf_xdr *x, float v) {
        uint32_t u;
        memcpy(&u, &v, 4);
        return ipcf_xdr_put_u32(x, u);
}

int ipcf_xdr_put_double(ipcf_xdr *x, double v) {
        uint64_t u;
        memcpy(&u, &v, 8);
        return ipcf_xdr_put_u64(x, u);
}

/* Add a segment (scatter-gather). */
static int add_seg(ipcf_xdr *x, const void *ptr, size_t off, size_t len) {
        if (x->n_segs && !ptr && !x->segs[x->n_segs - 1].ptr &&
            x->segs[x->n_segs - 1].off + x->segs[x->n_segs - 1].len == off) {
                x->segs[x->n_segs - 1].len += len;
                return 0;
        }
        if (x->n_segs == x->cap_segs) {
                uint32_t cap = x->cap_segs ? x->cap_segs * 2 : 8;
                ipcf_xdr_seg *s = realloc(x->segs, cap * sizeof(*s));
                if (!s)
                        return ipcf_xdr_fail(x, -ENOMEM);
                x->segs = s;
                x->cap_segs = cap;
        }
        x->segs[x->n_segs++] = (ipcf_xdr_seg){ .ptr = ptr, .off = off, .len = len };
        return 0;
}

/* Where the bytes of the buffer not yet in a segment start. */
static size_t sg_linear_start(const ipcf_xdr *x) {
        size_t start = 0;
        for (uint32_t i = 0; i < x->n_segs; i++)
                if (!x->segs[i].ptr)
                        start = x->segs[i].off + x->segs[i].len;
        return start;
}

static int put_bytes(ipcf_xdr *x, const void *p, size_t n) {
        size_t pad = (4 - (n & 3)) & 3;
        if ((x->flags & XDR_SG) && n >= x->sg_min) {
                size_t start = sg_linear_start(x);
                if (x->pos > start && add_seg(x, NULL, start, x->pos - start) < 0)
                        return x->err;
                if (add_seg(x, p, 0, n) < 0)
                        return x->err;
                static const uint8_t zero[4];
                if (pad) {
                        uint8_t *q = room(x, pad);
                        if (!q)
                                return x->err;
                        memcpy(q, zero, pad);
                        x->pos += pad;
                }
                return 0;
        }
        uint8_t *q = room(x, n + pad);
        if (!q)
                return x->err;
        if (n)
                memcpy(q, p, n);
        memset(q + n, 0, pad);
        x->pos += n + pad;
        return 0;
}

int ipcf_xdr_put_fixed(ipcf_xdr *x, const void *p, size_t n) {
        if (x->err)
                return x->err;
        if (n && !p)
                return ipcf_xdr_fail(x, -EINVAL);
        return put_bytes(x, p, n);
}

int ipcf_xdr_put_count(ipcf_xdr *x, uint32_t n, uint32_t bound) {
        if (x->err)
                return x->err;
        if (n > bound)
                return ipcf_xdr_fail(x, -EINVAL);
        return ipcf_xdr_put_u32(x, n);
}

int ipcf_xdr_put_var(ipcf_xdr *x, const void *p, uint32_t n, uint32_t bound) {
        if (ipcf_xdr_put_count(x, n, bound) < 0)
                return x->err;
        return ipcf_xdr_put_fixed(x, p, n);
}

int ipcf_xdr_put_string(ipcf_xdr *x, const char *s, uint32_t bound) {
        if (x->err)
                return x->err;
        if (!s)
                return ipcf_xdr_fail(x, -EINVAL);
        size_t n = strlen(s);
        if (n > bound)
                return ipcf_xdr_fail(x, -EINVAL);
        return ipcf_xdr_put_var(x, s, (uint32_t)n, bound);
}

const ipcf_xdr_seg *ipcf_xdr_segments(ipcf_xdr *x, size_t *ret_n) {
        size_t start = sg_linear_start(x);
        if (!x->err && x->pos > start)
                add_seg(x, NULL, start, x->pos - start);
        x->total = 0;
        for (uint32_t i = 0; i < x->n_segs; i++)
                x->total += x->segs[i].len;
        *ret_n = x->err ? 0 : x->n_segs;
        return x->segs;
}

/* ---- decoding ------------------------------------------------------------ */

static const uint8_t *take(ipcf_xdr *x, size_t n) {
        if (x->err)
                return NULL;
        if (x->cap - x->pos < n) {
                ipcf_xdr_fail(x, -EBADMSG);
                return NULL;
        }
        const uint8_t *p = x->buf + x->pos;
        x->pos += n;
        return p;
}

int ipcf_xdr_get_u32(ipcf_xdr *x, uint32_t *ret) {
        const uint8_t *p = take(x, 4);
        if (!p)
                return x->err;
        *ret = rd32(p);
        return 0;
}

int ipcf_xdr_get_u64(ipcf_xdr *x, uint64_t *ret) {
        const uint8_t *p = take(x, 8);
        if (!p)
                return x->err;
        *ret = (uint64_t)rd32(p) << 32 | rd32(p + 4);
        return 0;
}

int ipcf_xdr_get_float(ipcf_xdr *x, float *ret) {
        uint32_t u;
        if (ipcf_xdr_get_u32(x, &u) < 0)
                return x->err;
        memcpy(ret, &u, 4);
        return 0;
}

int ipcf_xdr_get_double(ipcf_xdr *x, double *ret) {
        uint64_t u;
        if (ipcf_xdr_get_u64(x, &u) < 0)
                return x->err;
        memcpy(ret, &u, 8);
        return 0;
}

int ipcf_xdr_get_bool(ipcf_xdr *x, int32_t *ret) {
        uint32_t u;
        if (ipcf_xdr_get_u32(x, &u) < 0)
                return x->err;
        if (u > 1)
                return ipcf_xdr_fail(x, -EBADMSG);
        *ret = (int32_t)u;
        return 0;
}

/* n bytes and their padding, which must be zero. */
static const uint8_t *take_padded(ipcf_xdr *x, size_t n) {
        size_t pad = (4 - (n & 3)) & 3;
        if (n > SIZE_MAX - 3)
                return ipcf_xdr_fail(x, -EBADMSG), NULL;
        const uint8_t *p = take(x, n + pad);
        if (!p)
                return NULL;
        for (size_t i = 0; i < pad; i++)
                if (p[n + i]) {
                        ipcf_xdr_fail(x, -EBADMSG);
                        return NULL;
                }
        return p;
}

int ipcf_xdr_get_fixed(ipcf_xdr *x, void *p, size_t n) {
        const uint8_t *q = take_padded(x, n);
        if (!q)
                return x->err;
        if (n)
                memcpy(p, q, n);
        return 0;
}

int ipcf_xdr_get_count(ipcf_xdr *x, uint32_t *ret_n, uint32_t bound, uint64_t min_wire) {
        uint32_t n;
        if (ipcf_xdr_get_u32(x, &n) < 0)
                return x->err;
        if (n > bound)
                return ipcf_xdr_fail(x, -EBADMSG);
        uint64_t left = x->cap - x->pos;
        if (min_wire && (uint64_t)n > left / min_wire)
                return ipcf_xdr_fail(x, -EBADMSG);
        *ret_n = n;
        return 0;
}

void *ipcf_xdr_alloc(ipcf_xdr *x, size_t n, size_t size) {
        if (x->err || n == 0 || size == 0)
                return NULL;
        if (n > SIZE_MAX / size || (uint64_t)n * size > x->budget) {
                ipcf_xdr_fail(x, -ENOBUFS);
                return NULL;
        }
        void *p = calloc(n, size);
        if (!p) {
                ipcf_xdr_fail(x, -ENOMEM);
                return NULL;
        }
        x->budget -= (uint64_t)n * size;
        return p;
}

int ipcf_xdr_get_var(ipcf_xdr *x, char **ret_p, uint32_t *ret_n, uint32_t bound) {
        uint32_t n;
        if (ipcf_xdr_get_count(x, &n, bound, 1) < 0)
                return x->err;
        char *p = NULL;
        if (n && (x->flags & XDR_BORROW) && n >= x->sg_min) {
                const uint8_t *q = take_padded(x, n);
                if (!q)
                        return x->err;
                *ret_p = (char *)q;
                *ret_n = n;
                return 0;
        }
        if (n) {
                if (x->cap - x->pos < n)
                        return ipcf_xdr_fail(x, -EBADMSG);
                p = ipcf_xdr_alloc(x, n, 1);
                if (!p)
                        return x->err;
                if (ipcf_xdr_get_fixed(x, p, n) < 0) {
                        free(p);
                        return x->err;
                }
        }
        *ret_p = p;
        *ret_n = n;
        return 0;
}

int ipcf_xdr_get_string(ipcf_xdr *x, char **ret_s, uint32_t bound) {
        uint32_t n;
        if (ipcf_xdr_get_count(x, &n, bound, 1) < 0)
                return x->err;
        if (x->cap - x->pos < n)
                return ipcf_xdr_fail(x, -EBADMSG);
        if (n && memchr(x->buf + x->pos, 0, n))
                return ipcf_xdr_fail(x, -EBADMSG);
        char *s = ipcf_xdr_alloc(x, (size_t)n + 1, 1);
        if (!s)
                return x->err;
        if (ipcf_xdr_get_fixed(x, s, n) < 0) {
                free(s);
                return x->err;
        }
        *ret_s = s;
        return 0;
}

int ipcf_xdr_end(ipcf_xdr *x) {
        if (!x->err && x->pos != x->cap)
                ipcf_xdr_fail(x, -EBADMSG);
        return x->err;
}

int ipcf_xdr_enter(ipcf_xdr *x) {
        if (x->err)
                return x->err;
        if (++x->depth > x->max_depth)
                return ipcf_xdr_fail(x, -ELOOP);
        return 0;
}

void ipcf_xdr_leave(ipcf_xdr *x) {
        if (x->depth)
                x->depth--;
}
