/*
 * impair.c — the test impairment hook (impair.h).
 */
#include "daemon/hosts/impair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/dlist.h"

typedef struct held {
        uint64_t at;
        efcp_addr dst;
        uint32_t len;
        uint8_t data[];
} held;

struct impair {
        loop *l;
        conf_impair c;
        impair_out_fn out;
        void *ctx;
        uint64_t rng;
        loop_timer timer;
        held **heap;
        size_t n;
        impair_stats st;
};

static uint64_t rnd(impair *m) {
        m->rng ^= m->rng << 13;
        m->rng ^= m->rng >> 7;
        m->rng ^= m->rng << 17;
        return m->rng;
}

/* True with probability ppm / 10^6. */
static bool chance(impair *m, uint32_t ppm) { return ppm && rnd(m) % 1000000u < ppm; }

static void heap_swap(impair *m, size_t i, size_t j) {
        held *t = m->heap[i];
        m->heap[i] = m->heap[j];
        m->heap[j] = t;
}

static void heap_push(impair *m, held *h) {
        size_t i = m->n++;
        m->heap[i] = h;
        while (i > 0 && m->heap[(i - 1) / 2]->at > m->heap[i]->at) {
                heap_swap(m, i, (i - 1) / 2);
                i = (i - 1) / 2;
        }
}

static held *heap_pop(impair *m) {
        held *top = m->heap[0];
        m->heap[0] = m->heap[--m->n];
        size_t i = 0;
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= m->n)
                        break;
                if (c + 1 < m->n && m->heap[c + 1]->at < m->heap[c]->at)
                        c++;
                if (m->heap[i]->at <= m->heap[c]->at)
                        break;
                heap_swap(m, i, c);
                i = c;
        }
        return top;
}

static void impair_on_timer(loop_timer *t) {
        impair *m = container_of(t, impair, timer);
        uint64_t now = now_ns();
        while (m->n && m->heap[0]->at <= now) {
                held *h = heap_pop(m);
                m->out(m->ctx, h->data, h->len, &h->dst);
                free(h);
        }
        if (m->n)
                loop_timer_arm(m->l, &m->timer, m->heap[0]->at);
}

int impair_new(loop *l, const conf_impair *c, impair_out_fn out, void *ctx, impair **ret) {
        *ret = NULL;
        if (!c->set)
                return 0;
        impair *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->heap = calloc(IMPAIR_HELD_MAX, sizeof(*m->heap));
        if (!m->heap) {
                free(m);
                return -ENOMEM;
        }
        m->l = l;
        m->c = *c;
        m->out = out;
        m->ctx = ctx;
        m->rng = c->seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
        loop_timer_init(&m->timer, impair_on_timer);
        *ret = m;
        return 0;
}

impair *impair_free(impair *m) {
        if (!m)
                return NULL;
        loop_timer_cancel(m->l, &m->timer);
        for (size_t i = 0; i < m->n; i++)
                free(m->heap[i]);
        free(m->heap);
        free(m);
        return NULL;
}

/* Hold a copy of the datagram until at. */
static void hold(impair *m, const uint8_t *buf, size_t len, const efcp_addr *dst, uint64_t at) {
        if (m->n == IMPAIR_HELD_MAX) {
                m->st.overflow++;
                return;
        }
        held *h = malloc(sizeof(*h) + len);
        if (!h) {
                m->st.overflow++;
                return;
        }
        h->at = at;
        h->dst = *dst;
        h->len = (uint32_t)len;
        memcpy(h->data, buf, len);
        heap_push(m, h);
        if (m->heap[0] == h)
                loop_timer_arm(m->l, &m->timer, at);
}

void impair_send(impair *m, const void *buf, size_t len, const efcp_addr *dst, uint64_t now) {
        if (chance(m, m->c.loss_ppm)) {
                m->st.dropped++;
                return;
        }
        int copies = 1;
        if (chance(m, m->c.dup_ppm)) {
                m->st.duplicated++;
                copies = 2;
        }
        uint8_t tmp[2048];
        const uint8_t *p = buf;
        if (len && len <= sizeof(tmp) && chance(m, m->c.corrupt_ppm)) {
                memcpy(tmp, buf, len);
                uint64_t bit = rnd(m) % (len * 8);
                tmp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                p = tmp;
                m->st.corrupted++;
        }
        for (int k = 0; k < copies; k++) {
                uint64_t at = now + (uint64_t)m->c.delay_ms * 1000000u;
                if (chance(m, m->c.reorder_ppm)) {
                        at += 1 + rnd(m) % IMPAIR_REORDER_HOLD_NS;
                        m->st.reordered++;
                }
                if (at > now) {
                        if (m->c.delay_ms)
                                m->st.delayed++;
                        hold(m, p, len, dst, at);
                } else {
                        m->st.passed++;
                        m->out(m->ctx, p, len, dst);
                }
        }
}

const impair_stats *impair_stats_get(const impair *m) { return &m->st; }
