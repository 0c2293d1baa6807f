/*
 * netsim.c — the deterministic network simulator (see netsim.h).
 *
 * Datagrams in flight sit in a binary heap ordered by (delivery time, send
 * order), so equal times resolve the same way every run. A link's bandwidth is
 * a single serialising server: a datagram departs when the previous one has
 * finished, and is tail-dropped when the backlog exceeds queue_bytes; then it
 * propagates for delay (+ jitter, + a reorder delay for the unlucky). The
 * only source of randomness is the xoshiro256** generator seeded from the
 * seed with splitmix64.
 */
#include "support/netsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sim_pkt {
        uint64_t time, order;
        int to;
        size_t len;
        uint8_t data[];
} sim_pkt;

struct netsim {
        uint64_t rng[4];
        netsim_link link[2];
        netsim_link_stats st[2];
        uint64_t busy_until[2]; /* serialiser of each link */
        bool bad[2];            /* Gilbert–Elliott state */
        sim_pkt **heap;
        size_t nheap, capheap;
        uint64_t order;
};

static void *xmalloc(size_t n) {
        void *p = malloc(n);
        if (!p)
                abort();
        return p;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256**: fast, good, and identical on every platform. */
uint64_t netsim_rand(netsim *n) {
        uint64_t *s = n->rng;
        uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return r;
}

double netsim_uniform(netsim *n) { return (double)(netsim_rand(n) >> 11) * 0x1.0p-53; }

netsim *netsim_new(uint64_t seed) {
        netsim *n = calloc(1, sizeof(*n));
        if (!n)
                abort();
        uint64_t x = seed;
        for (int i = 0; i < 4; i++) {
                uint64_t z = (x += 0x9e3779b97f4a7c15ull);
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                n->rng[i] = z ^ (z >> 31);
        }
        return n;
}

void netsim_free(netsim *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->nheap; i++)
                free(n->heap[i]);
        free(n->heap);
        free(n);
}

void netsim_set_link(netsim *n, int from, const netsim_link *l) { n->link[from & 1] = *l; }
netsim_link *netsim_link_of(netsim *n, int from) { return &n->link[from & 1]; }
const netsim_link_stats *netsim_stats(const netsim *n, int from) { return &n->st[from & 1]; }

static bool pkt_before(const sim_pkt *a, const sim_pkt *b) {
        return a->time < b->time || (a->time == b->time && a->order < b->order);
}

/* Binary min-heap on (time, order): ties keep send order, so two runs of a
 * seed deliver identically. */
static void heap_push(netsim *n, sim_pkt *p) {
        if (n->nheap == n->capheap) {
                n->capheap = n->capheap ? 2 * n->capheap : 256;
                n->heap = realloc(n->heap, n->capheap * sizeof(*n->heap));
                if (!n->heap)
                        abort();
        }
        size_t i = n->nheap++;
        while (i > 0 && pkt_before(p, n->heap[(i - 1) / 2])) {
                n->heap[i] = n->heap[(i - 1) / 2];
                i = (i - 1) / 2;
        }
        n->heap[i] = p;
}

static sim_pkt *heap_pop(netsim *n) {
        sim_pkt *top = n->heap[0], *last = n->heap[--n->nheap];
        size_t i = 0;
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= n->nheap)
                        break;
                if (c + 1 < n->nheap && pkt_before(n->heap[c + 1], n->heap[c]))
                        c++;
                if (!pkt_before(n->heap[c], last))
                        break;
                n->heap[i] = n->heap[c];
                i = c;
        }
        if (n->nheap)
                n->heap[i] = last;
        return top;
}

static void enqueue(netsim *n, int to, const void *data, size_t len, uint64_t t) {
        sim_pkt *p = xmalloc(sizeof(*p) + len);
        p->time = t;
        p->order = n->order++;
        p->to = to;
        p->len = len;
        memcpy(p->data, data, len);
        heap_push(n, p);
}

/* The fate of one datagram: MTU, blackout, loss (independent and bursty),
 * the bottleneck queue, delay, jitter, reordering, corruption, duplication.
 * data is copied. */
void netsim_send(netsim *n, int from, const void *data, size_t len, uint64_t now) {
        int d = from & 1;
        const netsim_link *l = &n->link[d];
        netsim_link_stats *st = &n->st[d];
        st->sent++;
        /* draw every random number in a fixed order, whatever the outcome, so
         * that one choice does not shift all the later ones */
        double u_loss = netsim_uniform(n), u_ge = netsim_uniform(n), u_bl = netsim_uniform(n);
        double u_dup = netsim_uniform(n), u_cor = netsim_uniform(n), u_re = netsim_uniform(n);
        uint64_t r_jit = netsim_rand(n), r_bit = netsim_rand(n), r_jit2 = netsim_rand(n);
        if (l->mtu && len > l->mtu) {
                st->mtu_drops++;
                return;
        }
        if (now >= l->down_from && now < l->down_until) {
                st->lost++;
                return;
        }
        /* Gilbert–Elliott state moves once per datagram */
        if (n->bad[d])
                n->bad[d] = !(u_ge < l->burst_exit);
        else
                n->bad[d] = u_ge < l->burst_enter;
        if (u_loss < l->loss || (n->bad[d] && u_bl < l->burst_loss)) {
                st->lost++;
                return;
        }
        uint64_t depart = now;
        if (l->rate_bps) {
                uint64_t start = n->busy_until[d] > now ? n->busy_until[d] : now;
                uint64_t backlog_ns = start - now;
                if (l->queue_bytes && backlog_ns * l->rate_bps / 8000000000ull > l->queue_bytes) {
                        st->queue_drops++;
                        return;
                }
                depart = start + (uint64_t)len * 8000000000ull / l->rate_bps;
                n->busy_until[d] = depart;
        }
        uint64_t t = depart + l->delay_ns + (l->jitter_ns ? r_jit % l->jitter_ns : 0);
        if (u_re < l->reorder) {
                t += l->reorder_ns;
                st->reordered++;
        }
        uint8_t tmp[65536];
        const void *src = data;
        if (u_cor < l->corrupt && len > 0 && len <= sizeof(tmp)) {
                memcpy(tmp, data, len);
                uint64_t bit = r_bit % (len * 8);
                tmp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                src = tmp;
                st->corrupted++;
        }
        enqueue(n, !d, src, len, t);
        if (u_dup < l->dup) {
                st->dups++;
                enqueue(n, !d, src, len, t + (l->jitter_ns ? r_jit2 % l->jitter_ns : 0) + 1);
        }
}

uint64_t netsim_next(const netsim *n) { return n->nheap ? n->heap[0]->time : UINT64_MAX; }

/* Delivers in time order; a datagram longer than cap is truncated (callers
 * use 64 KiB buffers). */
size_t netsim_recv(netsim *n, uint64_t now, int *ret_to, void *buf, size_t cap) {
        if (!n->nheap || n->heap[0]->time > now)
                return 0;
        sim_pkt *p = heap_pop(n);
        size_t len = p->len < cap ? p->len : cap;
        memcpy(buf, p->data, len);
        *ret_to = p->to;
        n->st[!p->to].delivered++;
        free(p);
        return len;
}

bool netsim_quick(void) {
        const char *q = getenv("IPCF_TEST_QUICK");
        return q && *q && strcmp(q, "0") != 0;
}

netsim_seeds netsim_seed_range(uint64_t base, uint64_t count) {
        const char *s = getenv("NETSIM_SEED");
        if (s && *s)
                return (netsim_seeds){strtoull(s, NULL, 0), 1};
        /* NETSIM_SEEDS=N (soak testing) runs N seeds from NETSIM_BASE (or base) */
        const char *n = getenv("NETSIM_SEEDS");
        if (n && *n) {
                const char *b = getenv("NETSIM_BASE");
                return (netsim_seeds){b && *b ? strtoull(b, NULL, 0) : base, strtoull(n, NULL, 0)};
        }
        if (netsim_quick())
                count = count / 4 < 3 ? (count < 3 ? count : 3) : count / 4;
        return (netsim_seeds){base, count};
}

/* ---- the pair driver -------------------------------------------------- */

void netsim_pair_init(netsim_pair *p, uint64_t seed, const efcp_config *cfg) {
        netsim_pair_init2(p, seed, cfg, cfg);
}

void netsim_pair_init2(netsim_pair *p, uint64_t seed, const efcp_config *cfg0,
                       const efcp_config *cfg1) {
        memset(p, 0, offsetof(netsim_pair, buf));
        p->seed = seed;
        p->net = netsim_new(seed);
        for (int i = 0; i < 2; i++) {
                efcp_config c = i ? *cfg1 : *cfg0;
                c.local_index = (uint32_t)i;
                c.remote_index = (uint32_t)!i;
                c.seed = seed * 2 + (uint64_t)i;
                if (efcp_assoc_new(&c, 0, &p->a[i]) < 0) {
                        fprintf(stderr, "netsim_pair_init: efcp_assoc_new failed\n");
                        abort();
                }
        }
}

void netsim_pair_deinit(netsim_pair *p) {
        for (int i = 0; i < 2; i++)
                p->a[i] = efcp_assoc_free(p->a[i]);
        netsim_free(p->net);
        p->net = NULL;
}

/* Sends everything both engines have to send now. */
static void pair_pump(netsim_pair *p) {
        for (int i = 0; i < 2; i++) {
                int len;
                while ((len = efcp_output(p->a[i], p->buf, sizeof(p->buf), p->now)) > 0)
                        netsim_send(p->net, i, p->buf, (size_t)len, p->now);
        }
}

/* The event loop of a test: send what the engines have, let the application
 * act, jump the virtual clock to the next event (a delivery, an engine
 * deadline, the application's wake-up), deliver, run timers. Nothing here
 * reads the real clock, so a run depends on the seed alone. */
bool netsim_pair_run(netsim_pair *p, uint64_t until, netsim_app_fn app, void *arg) {
        for (;;) {
                pair_pump(p);
                uint64_t wake = app ? app(p, arg) : UINT64_MAX;
                if (wake == 0)
                        return true;
                pair_pump(p);
                uint64_t t = netsim_next(p->net);
                for (int i = 0; i < 2; i++) {
                        uint64_t d = efcp_next_deadline(p->a[i]);
                        if (d < t)
                                t = d;
                }
                if (wake < t)
                        t = wake;
                /* never stand still: an engine asking for "now" after it was
                 * pumped dry would otherwise spin the clock */
                if (t <= p->now)
                        t = p->now + 1000;
                if (t > until) {
                        p->now = until;
                        return false;
                }
                p->now = t;
                p->steps++;
                int to;
                size_t len;
                while ((len = netsim_recv(p->net, p->now, &to, p->buf, sizeof(p->buf))) > 0)
                        if (!p->tap || p->tap(p, to, p->buf, &len, p->tap_arg))
                                efcp_input(p->a[to], p->buf, len, p->now);
                for (int i = 0; i < 2; i++)
                        efcp_timeout(p->a[i], p->now);
        }
}
