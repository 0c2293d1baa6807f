/*
 * server.c — the server's side of RPC (ipcf.h): a service (ipcf_service)
 * whose requests are RPC messages (wire.h), sessions with slot tables and
 * reply caches, arguments reassembled from pieces, dispatch to generated
 * handler tables, and the persistent reply cache (cache.c).
 *
 * The slot rules (NFSv4.1's): a CALL with the slot's current seq is a copy —
 * dropped with IN_PROGRESS while the call runs, answered from the reply
 * cache when done, added to the arguments while they arrive; a CALL with
 * seq + 1 is a new call (the cached reply of the last one, or the pieces
 * of one never completed, freed); a later seq is a new call too (the
 * numbers between were never taken: their calls were given up, and a late
 * copy of one is MISORDERED, never run); an earlier
 * seq is MISORDERED. A new call
 * while the slot still runs the last one is SLOT_BUSY (the client tries
 * again). Every reply carries the server's incarnation (random per run).
 * A CANCEL of (slot, seq) is answered with the call's verdict (on_cancel):
 * a call not yet started — queued, or in pieces — is recorded finished
 * CANCELLED there and then, so it never runs.
 *
 * With a persistent cache, the reply of every non-idempotent call is
 * written (and, with cache_sync, synced) before it is sent; at start the
 * sessions and the last reply of each slot are loaded. A RETRY of a seq the
 * cache does not know (the previous run died while running it, or before it
 * came) is answered UNKNOWN and never run. A loaded slot may be behind
 * the caller (idempotent calls are not recorded, and a call sent to the
 * last run may have been given up before this one started): like any slot
 * it takes a later seq as the next call.
 *
 * Bounds: sessions (max_sessions; the least recently used idle one goes
 * first), slots per session (max_slots), one call's arguments or result
 * (max_msg), and the memory of arguments being received plus cached
 * replies (max_memory: a call that would pass it is BUSY, not run).
 *
 * Locking: s->lock guards versions, sessions and slots; it is never held
 * while a handler runs or while a reply is sent. Workers are threads of
 * ipcf_rpc_server_run, each with its own request and reply buffers. A call
 * whose arguments came in one piece runs from the worker's request buffer
 * (no copy; the worker takes no other request until it is done), its
 * version looked up under the lock that marked its slot running; the
 * clock is read before and after the wait for a request, and that second
 * reading is the request's time (its deadline, its session's last use).
 *
 * Workers take turns (leader/followers): one, the leader, waits for the next
 * request in ipcf_service_next; the others wait on the run's condition
 * variable, outside the service. The leader answers what the runtime answers
 * alone (the null procedure, copies, pieces, fetches, errors) and takes the
 * next request itself; before it runs a handler or writes the persistent
 * cache (which may take long) it gives the role up (worker_yield) and takes
 * it back when done if no follower took it meanwhile. Followers look for a
 * role given up every YIELD_POLL_NS while the server is busy (the first
 * yield after a quiet second wakes one at once), so a handler that blocks
 * keeps others waiting that long at most, and one that does not costs no
 * wake-up at all. When several callers' requests queue (QUEUED_RUN), the
 * leader wakes a follower for the next request before it answers the one
 * it has: then the workers answer in parallel. Why: a
 * worker asleep inside the service while another works makes the service
 * look asleep to its callers, who then sleep instead of spinning for the
 * reply (lib/core/wait.c) — a system call each way on every call; and a
 * follower woken for every request competes for the CPU with the worker
 * that answers.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "common/xdr.h"
#include "lib/models/service.h"
#include "lib/rpc/rpc.h"

enum { SL_IDLE, SL_RECV, SL_RUN, SL_DONE };

struct sslot {
        uint32_t seq;
        int state;
        /* SL_RECV: the arguments so far */
        uint8_t *args;
        size_t args_cap;
        uint64_t total;
        uint32_t piece;
        uint8_t *have;          /* per piece */
        uint64_t n_pieces, got;
        uint64_t recv_deadline; /* the call's deadline (ns; UINT64_MAX none): past it, it can never run */
        /* SL_DONE: the reply */
        uint32_t status, a, b;
        uint8_t *reply;
        size_t reply_len;
        bool restored;          /* loaded from the persistent cache */
        atomic_bool cancel;     /* the caller sent CANCEL for seq (its handler is told) */
};

struct sess {
        uint8_t id[16];
        uint32_t nslots;
        struct sslot *slots;
        uint64_t used_ns;
        struct sess *next;
};

struct served {
        const ipcf_rpc_version *v;
        const void *handlers;
        void *user;
};

struct ipcf_rpc_server {
        int svc;
        pthread_mutex_t lock;
        struct served *versions;
        size_t n_versions;
        struct sess *sessions;
        uint32_t n_sessions;
        uint64_t incarnation;
        uint64_t mem;
        atomic_bool stop;
        ipcf_rpc_server_opts o;
        rpc_cache *cache;
        rpc_impair impair;
        atomic_uint_fast64_t committed;
        uint8_t *spare;         /* a large arguments buffer kept for the next (its pages stay mapped) */
        size_t spare_cap;
        char host[IPCF_NAME_MAX + 1];
};

/* What a handler's context points to. */
struct ctx_internal {
        int svc;
        const ipcf_call_req *req;
        const atomic_bool *cancel; /* its slot's: set by a CANCEL (also from another host) */
};

/* Where the caller is, as the facility stamped its channel: ctx->host is
 * its host (this host's name for a local caller; gethostname() if the
 * daemon did not say), and for a caller on another host the "@host" the
 * daemon added to its program's name is taken off ctx->caller.name. */
static void caller_stamp(const ipcf_rpc_server *s, const ipcf_call_req *req, ipcf_rpc_ctx *ctx) {
        int remote = service_caller_host(s->svc, req, ctx->host, sizeof(ctx->host));
        if (remote < 0 || !ctx->host[0])
                memcpy(ctx->host, s->host, sizeof(ctx->host));
        if (remote != 1)
                return;
        size_t n = strlen(ctx->caller.name), k = strlen(ctx->host);
        if (n > k && ctx->caller.name[n - k - 1] == '@' && !strcmp(ctx->caller.name + n - k, ctx->host))
                ctx->caller.name[n - k - 1] = 0;
}

int ipcf_rpc_cancelled(const ipcf_rpc_ctx *ctx) {
        if (!ctx || !ctx->internal)
                return 0;
        if (ctx->deadline_ns != UINT64_MAX && now_ns() >= ctx->deadline_ns)
                return 1;
        const struct ctx_internal *in = ctx->internal;
        return atomic_load(in->cancel) || ipcf_service_cancelled(in->svc, in->req) == 1;
}

/* ---- sessions ---------------------------------------------------------- */

static struct sess *sess_find(ipcf_rpc_server *s, const uint8_t id[16]) {
        for (struct sess *x = s->sessions; x; x = x->next)
                if (!memcmp(x->id, id, 16))
                        return x;
        return NULL;
}

static void slot_clear(ipcf_rpc_server *s, struct sslot *sl) {
        s->mem -= MIN(s->mem, sl->total + sl->reply_len);
        free(sl->args); /* (a buffer being filled: rare, not worth the spare) */
        free(sl->have);
        free(sl->reply);
        sl->args = sl->have = sl->reply = NULL;
        sl->total = sl->reply_len = 0;
}

static void sess_free(ipcf_rpc_server *s, struct sess *x) {
        for (uint32_t i = 0; i < x->nslots; i++)
                slot_clear(s, &x->slots[i]);
        free(x->slots);
        free(x);
}

static void sess_unlink(ipcf_rpc_server *s, struct sess *x) {
        for (struct sess **p = &s->sessions; *p; p = &(*p)->next)
                if (*p == x) {
                        *p = x->next;
                        s->n_sessions--;
                        return;
                }
}

static bool sess_busy(const struct sess *x) {
        for (uint32_t i = 0; i < x->nslots; i++)
                if (x->slots[i].state == SL_RUN || x->slots[i].state == SL_RECV)
                        return true;
        return false;
}

/* Drop the pieces of every call whose deadline has passed while they came
 * (its caller gave it up, or died mid-upload: it can never run); their
 * memory is free again and their sessions idle. A late piece of such a call
 * is misordered (on_call). Under s->lock. */
static void reclaim_expired(ipcf_rpc_server *s, uint64_t now) {
        for (struct sess *x = s->sessions; x; x = x->next)
                for (uint32_t i = 0; i < x->nslots; i++) {
                        struct sslot *sl = &x->slots[i];
                        if (sl->state == SL_RECV && sl->recv_deadline <= now) {
                                slot_clear(s, sl);
                                sl->state = SL_IDLE;
                        }
                }
}

/* A new session (evicting the least recently used idle one when full). */
static struct sess *sess_new(ipcf_rpc_server *s, const uint8_t id[16], uint32_t nslots) {
        if (s->n_sessions >= s->o.max_sessions)
                reclaim_expired(s, now_ns());
        if (s->n_sessions >= s->o.max_sessions) {
                struct sess *lru = NULL;
                for (struct sess *x = s->sessions; x; x = x->next)
                        if (!sess_busy(x) && (!lru || x->used_ns < lru->used_ns))
                                lru = x;
                if (!lru)
                        return NULL;
                sess_unlink(s, lru);
                if (s->cache)
                        cache_drop_session(s->cache, lru->id);
                sess_free(s, lru);
        }
        struct sess *x = calloc(1, sizeof(*x));
        if (!x)
                return NULL;
        x->slots = calloc(nslots, sizeof(*x->slots));
        if (!x->slots) {
                free(x);
                return NULL;
        }
        memcpy(x->id, id, 16);
        x->nslots = nslots;
        x->used_ns = now_ns();
        x->next = s->sessions;
        s->sessions = x;
        s->n_sessions++;
        return x;
}

static void load_entry(void *arg, const rpc_cached *e) {
        ipcf_rpc_server *s = arg;
        struct sess *x = sess_find(s, e->session);
        if (!x && e->nslots && e->nslots <= RPC_MAX_SLOTS) {
                x = sess_new(s, e->session, e->nslots);
                /* every slot as the cache has it, which may be behind the
                 * caller's (see on_call) */
                for (uint32_t i = 0; x && i < x->nslots; i++)
                        x->slots[i].restored = true;
        }
        if (!x || e->slot == UINT32_MAX || e->slot >= x->nslots)
                return;
        struct sslot *sl = &x->slots[e->slot];
        if (sl->state == SL_DONE && sl->seq >= e->seq)
                return;
        slot_clear(s, sl);
        sl->seq = e->seq;
        sl->state = SL_DONE;
        sl->status = e->status;
        sl->a = e->a;
        sl->b = e->b;
        if (e->len && (sl->reply = malloc(e->len))) {
                memcpy(sl->reply, e->reply, e->len);
                sl->reply_len = e->len;
                s->mem += e->len;
        }
        sl->restored = true;
}

/* A buffer for n bytes of arguments (the spare one if it fits); its
 * capacity in *ret_cap. Under s->lock. */
static uint8_t *args_get(ipcf_rpc_server *s, size_t n, size_t *ret_cap) {
        if (s->spare && s->spare_cap >= n) {
                uint8_t *p = s->spare;
                *ret_cap = s->spare_cap;
                s->spare = NULL;
                return p;
        }
        *ret_cap = n;
        return malloc(n ? n : 1);
}

/* Give back an arguments buffer: a large one becomes the spare (a fresh
 * mapping of tens of MiB costs a page fault per page on every call). A cap
 * of 0 is a buffer borrowed from the worker (a call in one piece, run from
 * the request as it came): nothing to give back. */
static void args_put(ipcf_rpc_server *s, uint8_t *p, size_t cap) {
        if (!p || !cap)
                return;
        pthread_mutex_lock(&s->lock);
        if (cap >= (1u << 20) && (!s->spare || s->spare_cap < cap)) {
                free(s->spare);
                s->spare = p;
                s->spare_cap = cap;
                p = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        free(p);
}

/* ---- the server object ----------------------------------------------- */

int ipcf_rpc_server_new(const char *name, const ipcf_rpc_server_opts *opts, ipcf_rpc_server **ret) {
        if (!name || !ret)
                return -EINVAL;
        ipcf_rpc_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (opts)
                s->o = *opts;
        if (!s->o.max_sessions)
                s->o.max_sessions = 1024;
        if (!s->o.max_slots || s->o.max_slots > RPC_MAX_SLOTS)
                s->o.max_slots = RPC_MAX_SLOTS;
        if (!s->o.max_msg)
                s->o.max_msg = RPC_DEFAULT_MAX_MSG;
        if (!s->o.max_memory)
                s->o.max_memory = 256ull << 20;
        pthread_mutex_init(&s->lock, NULL);
        impair_init(&s->impair);
        while (!s->incarnation)
                if (getrandom(&s->incarnation, sizeof(s->incarnation), 0) != sizeof(s->incarnation))
                        s->incarnation = now_ns() ^ (uint64_t)getpid() << 32;
        if (gethostname(s->host, sizeof(s->host) - 1) < 0)
                strcpy(s->host, "localhost");
        int r = 0;
        if (s->o.cache_path) {
                r = cache_open(s->o.cache_path, s->o.cache_sync, &s->cache);
                if (r == 0)
                        r = cache_load(s->cache, load_entry, s);
        }
        if (r == 0) {
                s->svc = ipcf_service(name, s->o.reg);
                r = s->svc < 0 ? s->svc : 0;
        }
        if (r < 0) {
                s->svc = -1;
                ipcf_rpc_server_free(s);
                return r;
        }
        s->o.cache_path = NULL; /* not kept: the caller's string */
        *ret = s;
        return 0;
}

int ipcf_rpc_server_add(ipcf_rpc_server *s, const ipcf_rpc_version *v, const void *handlers, void *user) {
        if (!s || !v || !handlers)
                return -EINVAL;
        pthread_mutex_lock(&s->lock);
        int r = 0;
        for (size_t i = 0; i < s->n_versions; i++)
                if (s->versions[i].v->prog == v->prog && s->versions[i].v->vers == v->vers)
                        r = -EEXIST;
        struct served *a = r ? NULL : realloc(s->versions, (s->n_versions + 1) * sizeof(*a));
        if (!r && !a)
                r = -ENOMEM;
        if (!r) {
                s->versions = a;
                s->versions[s->n_versions++] = (struct served){ v, handlers, user };
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

void ipcf_rpc_server_stop(ipcf_rpc_server *s) {
        if (s)
                atomic_store(&s->stop, true);
}

ipcf_rpc_server *ipcf_rpc_server_free(ipcf_rpc_server *s) {
        if (!s)
                return NULL;
        if (s->svc >= 0)
                ipcf_dealloc(s->svc, "server closed");
        while (s->sessions) {
                struct sess *x = s->sessions;
                s->sessions = x->next;
                sess_free(s, x);
        }
        if (s->cache)
                cache_close(s->cache);
        free(s->spare);
        free(s->versions);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

/* ---- answering ----------------------------------------------------------- */

struct run_args;

typedef struct worker {
        ipcf_rpc_server *s;
        uint8_t *in, *out;
        ipcf_call_req req;
        struct run_args *run;
        bool leader;    /* this worker holds the run's leader role */
        uint64_t now;   /* the clock when the request in hand was taken */
} worker;

static void worker_yield(worker *w);

/* Write a reply into the worker's buffer: header fields, and bytes
 * [offset, offset + piece) of body. Its length. */
static size_t answer_put(worker *w, uint32_t status, uint32_t slot, uint32_t seq, const uint8_t *body,
                         uint64_t total, uint64_t offset, uint32_t a, uint32_t b) {
        size_t n = body ? (size_t)MIN((uint64_t)RPC_REP_PIECE, total - offset) : 0;
        rpc_rep rp = { .status = status, .incarnation = w->s->incarnation, .slot = slot, .seq = seq,
                       .total = body ? total : 0, .offset = body ? offset : 0, .a = a, .b = b };
        wire_put_rep(w->out, &rp);
        if (n)
                memcpy(w->out + RPC_REP_HDR, body + offset, n);
        return RPC_REP_HDR + n;
}

/* Send the len bytes answer_put wrote. */
static void answer_send(worker *w, size_t len) {
        if (impair_chance(&w->s->impair, w->s->impair.drop_reply))
                return;
        ipcf_service_reply(w->s->svc, &w->req, w->out, len, 1000);
}

/* Send a reply: header fields, and bytes [offset, offset + piece) of body. */
static void answer(worker *w, uint32_t status, uint32_t slot, uint32_t seq, const uint8_t *body, uint64_t total,
                   uint64_t offset, uint32_t a, uint32_t b) {
        answer_send(w, answer_put(w, status, slot, seq, body, total, offset, a, b));
}

static const struct served *find_version(ipcf_rpc_server *s, uint32_t prog, uint32_t vers, uint32_t *lo,
                                         uint32_t *hi) {
        *lo = UINT32_MAX;
        *hi = 0;
        const struct served *hit = NULL;
        for (size_t i = 0; i < s->n_versions; i++) {
                const ipcf_rpc_version *v = s->versions[i].v;
                if (v->prog != prog)
                        continue;
                *lo = MIN(*lo, v->vers);
                *hi = MAX(*hi, v->vers);
                if (v->vers == vers)
                        hit = &s->versions[i];
        }
        if (*lo == UINT32_MAX)
                *lo = 0;
        return hit;
}

/* Store the outcome in the slot (and the persistent cache), then send it.
 * The reply is written into the worker's buffer before the lock goes: once
 * it is in the slot, a copy of the call answered from the cache by another
 * worker lets the caller go on, and its next call on the slot frees it. */
static void finish(worker *w, struct sess *x, uint32_t slot, uint32_t seq, uint32_t status, uint32_t a, uint32_t b,
                   uint8_t *reply, size_t len, bool persist, bool send) {
        ipcf_rpc_server *s = w->s;
        if (persist && s->cache) {
                worker_yield(w); /* a write, maybe a sync */
                cache_put_reply(s->cache, x->id, slot, seq, status, a, b, reply, len);
        }
        pthread_mutex_lock(&s->lock);
        struct sslot *sl = &x->slots[slot];
        bool mine = sl->seq == seq;
        if (mine) {
                sl->state = SL_DONE;
                sl->status = status;
                sl->a = a;
                sl->b = b;
                sl->reply = reply;
                sl->reply_len = len;
                s->mem += len;
        }
        size_t msg = send ? answer_put(w, status, slot, seq, reply, len, 0, a, b) : 0;
        pthread_mutex_unlock(&s->lock);
        if (s->impair.kill_after && atomic_fetch_add(&s->committed, 1) + 1 == s->impair.kill_after)
                raise(SIGKILL); /* test impairment: dead after caching, before answering */
        if (send)
                answer_send(w, msg);
        if (!mine)
                free(reply);
}

/* What a call's version is served by: found is false when not served
 * (lo, hi: the versions of its program that are). */
struct lookup {
        struct served v;
        bool found;
        uint32_t lo, hi;
};

/* Look up the version of call rq (under s->lock). */
static void lookup_version(ipcf_rpc_server *s, const rpc_req *rq, struct lookup *ret) {
        const struct served *sv = find_version(s, rq->prog, rq->vers, &ret->lo, &ret->hi);
        ret->found = sv != NULL;
        ret->v = sv ? *sv : (struct served){ 0 };
}

/* Run call (slot, seq) of x with its arguments args (len bytes in a buffer
 * of cap, given back here; cap 0: the worker's request buffer, which stays
 * until this returns). lk is its version as looked up under the lock that
 * made the slot SL_RUN, or NULL to look it up here. Large opaque arguments
 * are not copied: the handler sees them in place (ipcf_xdr_borrow), which
 * stays until it and the freeing of its arguments are done. */
static void execute(worker *w, struct sess *x, const rpc_req *rq, uint8_t *args, uint64_t len, size_t cap,
                    const struct lookup *lk) {
        ipcf_rpc_server *s = w->s;
        bool persist = !(rq->flags & RPCF_IDEMPOTENT);
        struct lookup here;
        if (!lk) {
                pthread_mutex_lock(&s->lock);
                lookup_version(s, rq, &here);
                pthread_mutex_unlock(&s->lock);
                lk = &here;
        }
        const struct served *sv = lk->found ? &lk->v : NULL;
        struct served copy = lk->v;
        uint32_t lo = lk->lo, hi = lk->hi;
        const ipcf_rpc_proc *p = NULL;
        for (size_t i = 0; sv && i < copy.v->n_procs; i++)
                if (copy.v->procs[i].number == rq->proc)
                        p = &copy.v->procs[i];
        uint32_t status = RS_OK, a = 0;
        uint8_t *reply = NULL;
        size_t reply_len = 0;
        uint64_t deadline = rq->timeout_ms == RPC_NO_TIMEOUT ? UINT64_MAX
                                                              : w->now + (uint64_t)rq->timeout_ms * 1000000u;
        if (!sv) {
                finish(w, x, rq->slot, rq->seq, RS_PROG_UNAVAIL, lo, hi, NULL, 0, persist, true);
                args_put(s, args, cap);
                return;
        }
        if (!p && rq->proc == 0) { /* the null procedure of every version */
                args_put(s, args, cap);
                finish(w, x, rq->slot, rq->seq, len ? RS_GARBAGE_ARGS : RS_OK, 0, 0, NULL, 0, false, true);
                return;
        }
        if (!p || p->invoke(copy.handlers, NULL, NULL, NULL, NULL) < 0) {
                args_put(s, args, cap);
                finish(w, x, rq->slot, rq->seq, RS_PROC_UNAVAIL, 0, 0, NULL, 0, persist, true);
                return;
        }
        const atomic_bool *cancel = &x->slots[rq->slot].cancel; /* x is busy: it stays */
        if (atomic_load(cancel) || ipcf_service_cancelled(s->svc, &w->req) == 1) {
                args_put(s, args, cap);
                finish(w, x, rq->slot, rq->seq, RS_CANCELLED, 0, 0, NULL, 0, persist, true);
                return;
        }
        if (now_ns() >= deadline) {
                args_put(s, args, cap);
                finish(w, x, rq->slot, rq->seq, RS_DEADLINE, 0, 0, NULL, 0, persist, true);
                return;
        }
        void *in = p->arg_size ? calloc(1, p->arg_size) : NULL;
        void *out = p->res_size ? calloc(1, p->res_size) : NULL;
        if ((p->arg_size && !in) || (p->res_size && !out)) {
                status = RS_BUSY;
        } else if (p->decode_arg) {
                ipcf_xdr d;
                ipcf_xdr_decoder(&d, args, len);
                ipcf_xdr_borrow(&d, 65536);
                xdr_borrow_region(args, len);
                /* a failed decode freed its value; one that worked but
                 * left bytes over (ipcf_xdr_end) has a value to free */
                if (p->decode_arg(&d, in) < 0) {
                        status = RS_GARBAGE_ARGS;
                } else if (ipcf_xdr_end(&d) < 0) {
                        p->free_arg(in);
                        status = RS_GARBAGE_ARGS;
                }
                xdr_borrow_region(NULL, 0);
        } else if (len) {
                status = RS_GARBAGE_ARGS;
        }
        if (status != RS_OK) {
                args_put(s, args, cap);
                free(in);
                free(out);
                finish(w, x, rq->slot, rq->seq, status, 0, 0, NULL, 0, persist, true);
                return;
        }
        worker_yield(w); /* the handler may take long, or block */
        bool oneway = rq->flags & RPCF_ONEWAY;
        if (oneway) /* the caller waits only for this: the call is taken */
                answer(w, RS_IN_PROGRESS, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
        struct ctx_internal ci = { s->svc, &w->req, cancel };
        ipcf_rpc_ctx ctx = { .caller = w->req.from, .deadline_ns = deadline, .prog = rq->prog, .vers = rq->vers,
                             .proc = rq->proc, .internal = &ci };
        caller_stamp(s, &w->req, &ctx);
        xdr_borrow_region(args, len);
        int r = p->invoke(copy.handlers, &ctx, in, out, copy.user);
        if (in) {
                p->free_arg(in);
                free(in);
        }
        xdr_borrow_region(NULL, 0);
        args_put(s, args, cap);
        if (r < 0) {
                status = RS_SYSTEM_ERR;
                a = (uint32_t)r;
        } else if (p->encode_res) {
                ipcf_xdr e;
                ipcf_xdr_encoder(&e, NULL, 0);
                if (p->encode_res(&e, out) < 0 || e.pos > s->o.max_msg) {
                        status = RS_SYSTEM_ERR;
                        a = (uint32_t)(e.err ? e.err : -EMSGSIZE);
                        ipcf_xdr_release(&e);
                } else {
                        reply = e.buf; /* ours now */
                        reply_len = e.pos;
                }
                p->free_res(out);
        }
        free(out);
        finish(w, x, rq->slot, rq->seq, status, a, 0, reply, reply_len, persist, !oneway);
}

/* Answer request rq (a copy of call (slot, seq), or a CANCEL of it) with the
 * outcome of the finished call in sl: its status and the first piece of its
 * reply (the caller fetches the rest). Called under s->lock, which it lets go. */
static void answer_done(worker *w, struct sslot *sl, const rpc_req *rq) {
        ipcf_rpc_server *s = w->s;
        uint32_t st = sl->status, a = sl->status == RS_OK ? 1 : sl->a, b = sl->b;
        size_t n = (size_t)MIN((uint64_t)RPC_REP_PIECE, sl->reply_len);
        uint8_t *copy = n ? malloc(n) : NULL;
        if (copy)
                memcpy(copy, sl->reply, n);
        uint64_t total = sl->reply_len;
        pthread_mutex_unlock(&s->lock);
        if (n && !copy) {
                answer(w, RS_BUSY, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        rpc_rep rp = { .status = st, .incarnation = s->incarnation, .slot = rq->slot, .seq = rq->seq,
                       .total = st == RS_OK ? total : 0, .a = a, .b = b };
        wire_put_rep(w->out, &rp);
        if (n && st == RS_OK)
                memcpy(w->out + RPC_REP_HDR, copy, n);
        free(copy);
        if (!impair_chance(&s->impair, s->impair.drop_reply))
                ipcf_service_reply(s->svc, &w->req, w->out, RPC_REP_HDR + (st == RS_OK ? n : 0), 1000);
}

/* A piece of a call's arguments. */
static void on_call(worker *w, const rpc_req *rq, const uint8_t *body, size_t len) {
        ipcf_rpc_server *s = w->s;
        pthread_mutex_lock(&s->lock);
        struct sess *x = sess_find(s, rq->session);
        if (!x) {
                pthread_mutex_unlock(&s->lock);
                answer(w, RS_BADSESSION, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        x->used_ns = w->now;
        if (rq->slot >= x->nslots) {
                pthread_mutex_unlock(&s->lock);
                answer(w, RS_MISORDERED, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        struct sslot *sl = &x->slots[rq->slot];
        if (rq->seq == sl->seq && sl->state == SL_DONE) {
                answer_done(w, sl, rq); /* a copy of a finished call: from the cache */
                return;
        }
        if (rq->seq == sl->seq && sl->state == SL_RUN) {
                pthread_mutex_unlock(&s->lock);
                answer(w, RS_IN_PROGRESS, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        /* A later seq than the next is the next call too: the numbers
         * between were never taken here (the caller gave those calls up,
         * "outcome unknown": answered SLOT_BUSY only, or lost on the way),
         * and a late copy of one is now MISORDERED, never run. A slot
         * loaded from the cache (no call yet in this run) may be behind the
         * caller's for more reasons: the calls after the one recorded were
         * idempotent (never recorded), or the last run died with one sent
         * that its caller then gave up; a RETRY is answered UNKNOWN below,
         * never run. */
        if (sl->state != SL_RUN && (int32_t)(rq->seq - sl->seq) > 1)
                sl->seq = rq->seq - 1;
        if ((int32_t)(rq->seq - sl->seq) >= 1 && sl->state == SL_RUN) {
                pthread_mutex_unlock(&s->lock);
                answer(w, RS_SLOT_BUSY, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        if (rq->seq == sl->seq + 1) {
                /* (a call still in pieces never ran, and its caller gave it
                 * up to make this one: its pieces are dropped) */
                bool retry_unknown = (rq->flags & RPCF_RETRY) && sl->restored && !(rq->flags & RPCF_IDEMPOTENT);
                slot_clear(s, sl);
                sl->seq = rq->seq;
                sl->restored = false;
                atomic_store(&sl->cancel, false);
                if (retry_unknown) {
                        /* the last run may have been running it when it died */
                        sl->state = SL_RUN;
                        pthread_mutex_unlock(&s->lock);
                        finish(w, x, rq->slot, rq->seq, RS_UNKNOWN, 0, 0, NULL, 0, true, true);
                        return;
                }
                if (rq->total <= s->o.max_msg && s->mem + rq->total > s->o.max_memory)
                        reclaim_expired(s, w->now);
                if (rq->total > s->o.max_msg || s->mem + rq->total > s->o.max_memory) {
                        sl->state = SL_RUN;
                        pthread_mutex_unlock(&s->lock);
                        finish(w, x, rq->slot, rq->seq, rq->total > s->o.max_msg ? RS_TOO_BIG : RS_BUSY, 0, 0,
                               NULL, 0, false, true);
                        return;
                }
                if (rq->offset == 0 && len == rq->total) {
                        /* in one piece: run from the request as it came (the
                         * worker's buffer, which stays until execute returns),
                         * its version looked up under this same lock */
                        sl->state = SL_RUN;
                        struct lookup lk;
                        lookup_version(s, rq, &lk);
                        pthread_mutex_unlock(&s->lock);
                        execute(w, x, rq, (uint8_t *)body, len, 0, &lk);
                        return;
                }
                /* the first piece of several */
                if (rq->piece == 0 || rq->piece > IPCF_CALL_MAX) {
                        sl->state = SL_IDLE;
                        pthread_mutex_unlock(&s->lock);
                        answer(w, RS_MISORDERED, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                        return;
                }
                sl->total = rq->total;
                sl->recv_deadline = rq->timeout_ms == RPC_NO_TIMEOUT ? UINT64_MAX
                                                                      : w->now + (uint64_t)rq->timeout_ms * 1000000u;
                sl->piece = rq->piece;
                sl->n_pieces = (rq->total + rq->piece - 1) / rq->piece;
                sl->args = args_get(s, (size_t)rq->total, &sl->args_cap);
                sl->have = calloc(sl->n_pieces, 1);
                sl->got = 0;
                if (!sl->args || !sl->have) {
                        slot_clear(s, sl);
                        sl->state = SL_RUN;
                        pthread_mutex_unlock(&s->lock);
                        finish(w, x, rq->slot, rq->seq, RS_BUSY, 0, 0, NULL, 0, false, true);
                        return;
                }
                s->mem += rq->total;
                sl->state = SL_RECV;
        }
        /* (offset == total passes the wire's check, offset + 0 bytes being
         * within total, but names no piece: its index is n_pieces) */
        if (rq->seq != sl->seq || sl->state != SL_RECV || rq->total != sl->total || rq->piece != sl->piece ||
            rq->offset >= sl->total || rq->offset % sl->piece != 0 ||
            len != MIN((uint64_t)sl->piece, sl->total - rq->offset)) {
                pthread_mutex_unlock(&s->lock);
                answer(w, RS_MISORDERED, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        uint64_t idx = rq->offset / sl->piece;
        if (!sl->have[idx]) {
                sl->have[idx] = 1;
                sl->got++;
                memcpy(sl->args + rq->offset, body, len);
        }
        if (sl->got < sl->n_pieces) {
                pthread_mutex_unlock(&s->lock);
                answer(w, RS_PIECE_OK, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        /* complete: run it (the arguments move to the call) */
        uint8_t *args = sl->args;
        uint64_t total = sl->total;
        size_t cap = sl->args_cap;
        sl->args = NULL;
        free(sl->have);
        sl->have = NULL;
        s->mem -= MIN(s->mem, total);
        sl->total = 0;
        sl->state = SL_RUN;
        pthread_mutex_unlock(&s->lock);
        execute(w, x, rq, args, total, cap, NULL);
}

static void on_fetch(worker *w, const rpc_req *rq) {
        ipcf_rpc_server *s = w->s;
        pthread_mutex_lock(&s->lock);
        struct sess *x = sess_find(s, rq->session);
        struct sslot *sl = x && rq->slot < x->nslots ? &x->slots[rq->slot] : NULL;
        if (!sl || sl->seq != rq->seq || sl->state != SL_DONE || (rq->offset && rq->offset >= sl->reply_len)) {
                pthread_mutex_unlock(&s->lock);
                answer(w, x ? RS_MISORDERED : RS_BADSESSION, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        size_t n = (size_t)MIN((uint64_t)RPC_REP_PIECE, sl->reply_len - rq->offset);
        rpc_rep rp = { .status = sl->status, .incarnation = s->incarnation, .slot = rq->slot, .seq = rq->seq,
                       .total = sl->status == RS_OK ? sl->reply_len : 0, .offset = sl->status == RS_OK ? rq->offset : 0,
                       .a = sl->status == RS_OK ? 1 : sl->a, .b = sl->b };
        wire_put_rep(w->out, &rp);
        if (sl->status == RS_OK && n)
                memcpy(w->out + RPC_REP_HDR, sl->reply + rq->offset, n);
        else
                n = 0;
        pthread_mutex_unlock(&s->lock);
        ipcf_service_reply(s->svc, &w->req, w->out, RPC_REP_HDR + n, 1000);
}

static void on_create(worker *w, const rpc_req *rq) {
        ipcf_rpc_server *s = w->s;
        uint32_t n = rq->slot ? MIN(rq->slot, s->o.max_slots) : 1;
        pthread_mutex_lock(&s->lock);
        struct sess *x = sess_find(s, rq->session);
        bool made = false;
        if (!x) {
                x = sess_new(s, rq->session, n);
                made = x != NULL;
        }
        size_t len = 0;
        uint32_t nslots = x ? x->nslots : 0;
        /* the versions served: (prog, low, high) */
        uint8_t *o = w->out + RPC_REP_HDR;
        for (size_t i = 0; x && i < s->n_versions && len + 12 <= 12 * 32; i++) {
                uint32_t prog = s->versions[i].v->prog, lo, hi;
                bool seen = false;
                for (size_t k = 0; k < i; k++)
                        seen |= s->versions[k].v->prog == prog;
                if (seen)
                        continue;
                find_version(s, prog, 0, &lo, &hi);
                uint32_t t[3] = { htobe32(prog), htobe32(lo), htobe32(hi) };
                memcpy(o + len, t, 12);
                len += 12;
        }
        pthread_mutex_unlock(&s->lock);
        if (made && s->cache)
                cache_put_session(s->cache, rq->session, n);
        rpc_rep rp = { .status = x ? RS_OK : RS_BUSY, .incarnation = s->incarnation, .a = nslots,
                       .b = s->cache ? 1 : 0, .total = len };
        wire_put_rep(w->out, &rp);
        if (!impair_chance(&s->impair, s->impair.drop_reply))
                ipcf_service_reply(s->svc, &w->req, w->out, RPC_REP_HDR + len, 1000);
}

static void on_destroy(worker *w, const rpc_req *rq) {
        ipcf_rpc_server *s = w->s;
        pthread_mutex_lock(&s->lock);
        struct sess *x = sess_find(s, rq->session);
        if (x && !sess_busy(x)) {
                sess_unlink(s, x);
                sess_free(s, x);
                if (s->cache)
                        cache_drop_session(s->cache, rq->session);
        }
        pthread_mutex_unlock(&s->lock);
        answer(w, RS_OK, 0, 0, NULL, 0, 0, 0, 0);
}

/* The caller cancelled call (slot, seq) and asks for its verdict (it asks
 * again until it has one; every CANCEL is answered, none changes a verdict
 * given). Finished: its outcome, as a copy of the call would get it (not
 * run: CANCELLED or DEADLINE; ran: the result or the handler's error).
 * Running: its handler sees ipcf_rpc_cancelled() (a call whose handler has
 * not started yet is answered CANCELLED by execute), IN_PROGRESS. Not
 * started — its pieces partly here, or none of it here yet (still queued,
 * or lost) — it never will be: the slot records it finished CANCELLED, so
 * a copy that comes later is answered that. A slot loaded from the
 * persistent cache and not used since cannot tell whether the last run had
 * the call: UNKNOWN. */
static void on_cancel(worker *w, const rpc_req *rq) {
        ipcf_rpc_server *s = w->s;
        pthread_mutex_lock(&s->lock);
        struct sess *x = sess_find(s, rq->session);
        if (!x || rq->slot >= x->nslots) {
                pthread_mutex_unlock(&s->lock);
                answer(w, x ? RS_MISORDERED : RS_BADSESSION, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
                return;
        }
        x->used_ns = w->now;
        struct sslot *sl = &x->slots[rq->slot];
        uint32_t st;
        if (sl->seq == rq->seq && sl->state == SL_DONE) {
                answer_done(w, sl, rq);
                return;
        }
        if (sl->seq == rq->seq && sl->state == SL_RUN) {
                atomic_store(&sl->cancel, true);
                st = RS_IN_PROGRESS;
        } else if (sl->state == SL_RUN) {
                st = RS_IN_PROGRESS; /* the slot's last call still runs: this one waits behind it */
        } else if (sl->restored && (int32_t)(rq->seq - sl->seq) > 0) {
                st = RS_UNKNOWN;
        } else if ((sl->seq == rq->seq && sl->state == SL_RECV) || rq->seq == sl->seq + 1) {
                slot_clear(s, sl);
                sl->seq = rq->seq;
                sl->state = SL_DONE;
                sl->status = RS_CANCELLED;
                sl->a = sl->b = 0;
                atomic_store(&sl->cancel, false);
                st = RS_CANCELLED;
        } else {
                st = RS_MISORDERED;
        }
        pthread_mutex_unlock(&s->lock);
        answer(w, st, rq->slot, rq->seq, NULL, 0, 0, 0, 0);
}

/* The interface texts of the versions served, each once, in one reply; if
 * they do not all fit, RS_TOO_BIG and none (the caller could not tell a
 * procedure left out from one not served). */
static void on_describe(worker *w) {
        ipcf_rpc_server *s = w->s;
        size_t len = 0, cap = IPCF_CALL_MAX - RPC_REP_HDR;
        uint8_t *o = w->out + RPC_REP_HDR;
        bool whole = true;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_versions && whole; i++) {
                const char *d = s->versions[i].v->description;
                bool seen = false;
                for (size_t k = 0; k < i; k++)
                        seen |= s->versions[k].v->description == d;
                size_t n = d ? strlen(d) : 0;
                if (seen || !n)
                        continue;
                whole = n < cap - len; /* and its newline */
                if (whole) {
                        memcpy(o + len, d, n);
                        len += n;
                        o[len++] = '\n';
                }
        }
        pthread_mutex_unlock(&s->lock);
        if (!whole)
                len = 0;
        rpc_rep rp = { .status = whole ? RS_OK : RS_TOO_BIG, .incarnation = s->incarnation, .total = len };
        wire_put_rep(w->out, &rp);
        ipcf_service_reply(s->svc, &w->req, w->out, RPC_REP_HDR + len, 1000);
}

static void handle(worker *w, size_t n) {
        rpc_req rq;
        if (wire_parse_req(w->in, n, &rq) < 0) {
                rpc_rep rp = { .status = RS_MISORDERED, .incarnation = w->s->incarnation };
                wire_put_rep(w->out, &rp);
                ipcf_service_reply(w->s->svc, &w->req, w->out, RPC_REP_HDR, 1000);
                return;
        }
        switch (rq.kind) {
        case RPC_CALL:
                on_call(w, &rq, w->in + RPC_REQ_HDR, n - RPC_REQ_HDR);
                break;
        case RPC_FETCH:
                on_fetch(w, &rq);
                break;
        case RPC_CREATE:
                on_create(w, &rq);
                break;
        case RPC_DESTROY:
                on_destroy(w, &rq);
                break;
        case RPC_CANCEL:
                on_cancel(w, &rq);
                break;
        default:
                on_describe(w);
                break;
        }
}

/* How often followers look for a role given up while the server is busy,
 * and how long after the last yield it counts as busy. */
#define YIELD_POLL_NS 2000000ull       /* 2 ms */
#define BUSY_NS 1000000000ull          /* 1 s */
/* A request from another caller than the last that ipcf_service_next gave
 * within QUEUED_NS was waiting: after QUEUED_RUN of those in a row, callers
 * queue, and the leader wakes a follower for the next request at once. */
#define QUEUED_NS 2000u
#define QUEUED_RUN 4u

struct run_args {
        ipcf_rpc_server *s;
        uint64_t until;
        _Atomic int err;
        pthread_mutex_t lock;   /* guards the rest */
        pthread_cond_t cond;    /* followers wait here for the role */
        bool has_leader;
        bool busy;              /* followers poll every YIELD_POLL_NS */
        uint64_t last_yield;
};

/* Give the leader role up (if this worker holds it): a follower takes it
 * at its next look, or this worker again when it is done. */
static void worker_give(worker *w, bool wake) {
        if (!w->leader)
                return;
        struct run_args *ra = w->run;
        w->leader = false;
        pthread_mutex_lock(&ra->lock);
        ra->has_leader = false;
        ra->last_yield = w->now; /* (the request's time: BUSY_NS is a second) */
        if (!ra->busy || wake) { /* the followers sleep long, or there is work now */
                ra->busy = true;
                pthread_cond_signal(&ra->cond);
        }
        pthread_mutex_unlock(&ra->lock);
}

static void worker_yield(worker *w) {
        worker_give(w, false);
}

static bool run_over_at(struct run_args *ra, uint64_t now) {
        return ra->err || atomic_load(&ra->s->stop) || now >= ra->until;
}

/* Become the leader; false when the run is over. Followers look at the
 * run's end every 100 ms (as the leader does in ipcf_service_next), and
 * for a role given up every YIELD_POLL_NS while the server is busy. *now:
 * the clock's reading for a worker that leads already; a worker that waits
 * for the role reads it again there. */
static bool worker_lead(worker *w, uint64_t *now) {
        struct run_args *ra = w->run;
        if (w->leader)
                return !run_over_at(ra, *now);
        pthread_mutex_lock(&ra->lock);
        for (;;) {
                *now = now_ns();
                if (!ra->has_leader || run_over_at(ra, *now))
                        break;
                if (ra->busy && *now - ra->last_yield > BUSY_NS)
                        ra->busy = false;
                uint64_t until = MIN(*now + (ra->busy ? YIELD_POLL_NS : 100000000u), ra->until);
                struct timespec ts = { (time_t)(until / 1000000000u), (long)(until % 1000000000u) };
                pthread_cond_timedwait(&ra->cond, &ra->lock, &ts);
        }
        bool over = run_over_at(ra, *now);
        if (!over)
                ra->has_leader = w->leader = true;
        pthread_mutex_unlock(&ra->lock);
        return !over;
}

static void *work(void *arg) {
        struct run_args *ra = arg;
        ipcf_rpc_server *s = ra->s;
        worker w = { .s = s, .in = malloc(IPCF_CALL_MAX), .out = malloc(IPCF_CALL_MAX), .run = ra };
        if (!w.in || !w.out)
                ra->err = -ENOMEM;
        unsigned queued = 0;   /* requests in a row from other callers that were there at once */
        uint64_t last_chan = 0;
        for (;;) {
                /* one reading of the clock before the wait and one after (the
                 * request's time: its deadline, its session's use) */
                uint64_t now = w.leader ? now_ns() : 0;
                if (!worker_lead(&w, &now))
                        break;
                int t = (int)MIN((ra->until - now) / 1000000u + 1, 100u);
                ssize_t n = ipcf_service_next(s->svc, w.in, IPCF_CALL_MAX, t, &w.req);
                w.now = now_ns();
                if (n >= 0) {
                        queued = w.now - now < QUEUED_NS && w.req.token != last_chan ? queued + 1 : 0;
                        last_chan = w.req.token;
                        if (queued >= QUEUED_RUN)
                                worker_give(&w, true); /* callers queue: a follower takes the next */
                }
                if (n == -ETIMEDOUT || n == -EAGAIN)
                        continue;
                if (n == -EMSGSIZE)
                        continue; /* cannot happen: our buffer takes the largest call */
                if (n < 0) {
                        ra->err = (int)n;
                        break;
                }
                handle(&w, (size_t)n);
        }
        worker_yield(&w); /* the others see the end */
        pthread_mutex_lock(&ra->lock);
        pthread_cond_broadcast(&ra->cond);
        pthread_mutex_unlock(&ra->lock);
        free(w.in);
        free(w.out);
        return NULL;
}

int ipcf_rpc_server_run(ipcf_rpc_server *s, unsigned threads, int timeout_ms) {
        if (!s || timeout_ms < -1)
                return -EINVAL;
        if (threads == 0)
                threads = 1;
        if (threads > 64)
                threads = 64;
        atomic_store(&s->stop, false);
        struct run_args ra = { .s = s, .until = deadline_from_timeout(timeout_ms) };
        pthread_mutex_init(&ra.lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&ra.cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_t tid[64];
        unsigned started = 0;
        for (unsigned i = 1; i < threads; i++)
                if (pthread_create(&tid[started], NULL, work, &ra) == 0)
                        started++;
        work(&ra);
        atomic_store(&s->stop, true);
        for (unsigned i = 0; i < started; i++)
                pthread_join(tid[i], NULL);
        pthread_cond_destroy(&ra.cond);
        pthread_mutex_destroy(&ra.lock);
        return ra.err;
}
