/*
 * client.c — the caller's side of RPC (ipcf.h, "Remote procedure calls"):
 * sessions, slots, transmissions over service calls, retransmission,
 * arguments and results in pieces, and the outcome of every call.
 *
 * A call takes a free slot of the client's session (made by the first call:
 * RPC_CREATE), uses the slot's next sequence number, and sends its
 * arguments' XDR in pieces of at most RPC_PIECE bytes, each an ipcf call
 * (a "transmission", tx). Any transmission of a call may bring its final
 * reply; the others get PIECE_OK / IN_PROGRESS. Until the final reply the
 * call retransmits what got no answer every RTO (doubling, at most 1 s);
 * the server drops copies of a call in progress and answers copies of a
 * finished one from its reply cache, so nothing runs twice. A result longer
 * than one piece is fetched in pieces (RPC_FETCH) from that cache.
 *
 * When the channel to the server breaks after something was sent: an
 * idempotent call is simply made again (on a new session if the server
 * restarted); a call to a server with a persistent cache waits (within its
 * deadline) for the server to come back and asks again (RPCF_RETRY); any
 * other call ends with -IPCF_EUNKNOWN. Every transmission of a call goes on
 * the channel its first went on (call_start_on): one that finds that
 * channel broken (replaced by a later call, maybe to a restarted server)
 * is a break too, so a copy sent without RETRY never reaches a restarted
 * server, whose restored slot would run it as a new call. A deadline that passes after sending
 * is -IPCF_EUNKNOWN too; -ETIMEDOUT only when nothing was sent (or the
 * server said it did not start the call). Likewise a cancelled call is
 * -ECANCELED only when nothing was sent or the server says it did not start
 * it (verdict(): asked with CANCEL messages); a call that ran ends with its
 * handler's outcome, and one with no verdict in time with -IPCF_EUNKNOWN.
 * A call cancelled while it waits to be sent again (restart_call, ask_cache)
 * is not sent again (unsent_cancel). A wait of 0 reads what the channel
 * holds: a result already there is the call's.
 *
 * Locking: c->lock guards the session and the slots (never held while
 * waiting for the server, except while making the session); call->lock
 * guards its transmissions, so a cancel from another thread can reach them.
 * A call keeps a copy of its session's id, taken with its slot: its
 * messages, a lost session's forgetting and a cancel use that, never the
 * client's under no lock, and a cancel never waits for c->lock while
 * another call makes a session.
 * A call waiting for a slot sleeps on the client's slot_ev (event.h), not
 * a pthread_cond_t: glibc's signal waits, under c->lock, for a woken waiter
 * that does not run (stopped, in a signal handler), and every call waits for
 * c->lock meanwhile; a slot given back wakes them after the unlock.
 * Ownership: a call is the caller's until ipcf_rpc_call_free; its slot's
 * reply buffer is the slot's.
 *
 * Speed: a call costs no allocation once the client has made one. A freed
 * call keeps its buffers (transmissions, the arguments' encoding, the piece
 * being sent) and becomes the client's spare, which the next call takes; the
 * slot's reply buffer is made once. A small call is one service call each
 * way and nothing else: its wait is the raw ipcf_call's (spin, then sleep).
 * It reads the clock once where it starts (deadline, the request's timeout,
 * the retransmission timer), once per wait and once per answer, and takes
 * the client's lock three times (the spare call, a slot, both given back
 * together) and the call's lock three times: a transmission joins the call's
 * list (where a cancel finds it) under the lock once sent, a one-piece
 * result is decoded and the finished call's transmissions dropped without
 * letting the lock go.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/util.h"
#include "lib/core/event.h"
#include "lib/models/service.h"
#include "lib/rpc/rpc.h"

#define MAX_VERSIONS 32
#define SLOT_SLEEPERS 1u /* slot_ev's only sleepers: calls waiting for a slot */
#define RTO_MIN_NS 2000000ull        /* 2 ms */
#define RTO_MAX_NS 1000000000ull     /* 1 s */
#define FETCH_WINDOW 4
#define RPC_CANCEL_WAIT_MS 100       /* how long ipcf_rpc_cancel waits to tell the server */
#define RPC_CANCEL_VERDICT_MS 5000   /* how long a cancelled call waits for the server's verdict */
#define VERDICT_ASK_MAX_NS 200000000ull /* asked again at most every 200 ms */

/* deadline_poll_ms with the clock already read (now): a call reads the
 * clock once where it sends or where it wakes, not once per use. */
static int timeout_left_ms(uint64_t deadline, uint64_t now) {
        if (deadline == UINT64_MAX)
                return -1;
        if (now >= deadline)
                return 0;
        uint64_t ms = (deadline - now + 999999u) / 1000000u;
        return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

struct cslot {
        uint32_t seq;     /* the last sequence number used */
        bool busy;
        uint8_t *buf;     /* a reply buffer of IPCF_CALL_MAX bytes, made when first needed */
        bool buf_busy;
};

struct ipcf_rpc_client {
        char service[IPCF_NAME_MAX + 1];
        pthread_mutex_t lock;
        event slot_ev; /* a slot given back (under lock: event.h) */
        bool have_session, persistent;
        uint8_t session[16];
        uint32_t nslots, want_slots;
        uint64_t incarnation;
        struct cslot slots[RPC_MAX_SLOTS];
        struct {
                uint32_t prog, low, high;
        } versions[MAX_VERSIONS];
        unsigned n_versions;
        int default_timeout_ms;
        uint32_t max_msg;
        _Atomic uint64_t srtt_ns; /* an estimate every call updates and reads, under no lock (relaxed) */
        rpc_impair impair;
        ipcf_rpc_call *spare; /* a freed call kept for the next (under lock) */
        unsigned calls;       /* calls not yet freed (under lock) */
        bool freed;           /* ipcf_rpc_client_free came: the last call frees it */
};

struct tx {
        struct tx *next_free; /* in the call's list of spare transmissions */
        ipcf_pending pend;
        bool live;
        bool big;          /* buf is the slot's reply buffer */
        uint8_t *buf;
        size_t cap;
        uint64_t piece;    /* which piece (offset) it carried */
        uint64_t sent_ns;
        uint8_t small[RPC_REP_HDR + 16];
};

/* Buffers a call keeps when it is recycled (call_recycle). */
struct call_keep {
        struct tx **txs;            /* each its own allocation: ipcf writes replies into it */
        size_t cap_txs;
        struct tx *free_txs;        /* transmissions done with, for the next */
        uint8_t *acked;             /* per piece: answered */
        size_t cap_acked;
        uint8_t *sendbuf;           /* the message being sent */
        size_t cap_sendbuf;
        uint8_t *encbuf;            /* the last encoding's buffer */
        size_t cap_enc;
        ipcf_xdr_seg *segs;         /* and its segments' array */
        uint32_t cap_segs;
};

/* An encoding buffer larger than this is not kept for the next call. */
#define KEEP_ENC_MAX (64u << 10)

struct ipcf_rpc_call {
        pthread_mutex_t lock;
        struct call_keep keep;
        /* everything from c on is the call's own: zeroed for each call */
        ipcf_rpc_client *c;
        const ipcf_rpc_proc *p;
        uint32_t prog, vers, proc, flags;
        void *out;                  /* typed result, or NULL */
        uint8_t *raw_res;           /* raw mode: the result bytes */
        size_t raw_len;
        bool raw;
        unsigned slot;
        uint32_t seq;
        uint8_t session[16];        /* the session its slot is of (slot_take) */
        uint64_t deadline;
        /* the arguments' encoding */
        ipcf_xdr enc;
        const ipcf_xdr_seg *segs;
        size_t n_segs;
        uint64_t total;
        uint64_t n_pieces;
        uint8_t *acked;             /* keep.acked, n_pieces of it */
        uint8_t *sendbuf;           /* keep.sendbuf */
        /* transmissions */
        struct tx **txs;            /* keep.txs */
        size_t n_txs;
        uint64_t rto_ns;
        uint64_t last_progress;     /* the last send or answer: retransmit after rto_ns of silence */
        uint64_t chan;              /* the channel its transmissions go on (call_start_on; 0: not yet) */
        bool sent, broke_after_send, done, cancelled, retry_flag, told_cancel;
        bool resent;                /* something of it was sent again on this session (RTO) */
        bool heard;                 /* the session answered something of it (not BADSESSION) */
        bool asking;                /* cancelled after sending: asking the server for the verdict */
        uint64_t verdict_by;        /* ... until then (the deadline, at most RPC_CANCEL_VERDICT_MS) */
        int result;
        ipcf_rpc_info info;
        ipcf_rpc_info *info_out;
};

int ipcf_rpc_client_new(const char *service, const ipcf_rpc_client_opts *o, ipcf_rpc_client **ret) {
        if (!service || !ret || strlen(service) == 0 || strlen(service) > IPCF_NAME_MAX)
                return -EINVAL;
        if (o && (o->slots > RPC_MAX_SLOTS || o->default_timeout_ms < -1))
                return -EINVAL;
        ipcf_rpc_client *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        strcpy(c->service, service);
        pthread_mutex_init(&c->lock, NULL);
        c->want_slots = o && o->slots ? o->slots : RPC_DEFAULT_SLOTS;
        c->default_timeout_ms = o && o->default_timeout_ms ? o->default_timeout_ms : RPC_DEFAULT_TIMEOUT_MS;
        c->max_msg = o && o->max_msg ? o->max_msg : RPC_DEFAULT_MAX_MSG;
        impair_init(&c->impair);
        *ret = c;
        return 0;
}

/* What a call that sent nothing returns for err. ipcf_call's allocation of
 * the channel fails -ENOLINK when the directory on etcd cannot be asked
 * where the name is ("directory unreachable"): nothing was sent, but that
 * is IPCF_EUNKNOWN's number, "outcome unknown". Say "host unreachable". */
static int unsent_err(int err) {
        return err == -ENOLINK ? -EHOSTUNREACH : err;
}

/* One request and its answer, synchronously, sent again after 50 ms,
 * 100 ms, ... (RPC_CREATE / DESTROY / DESCRIBE / FETCH: all idempotent). */
static ssize_t plain_call(ipcf_rpc_client *c, const rpc_req *rq, uint8_t *reply, size_t cap, uint64_t deadline) {
        uint8_t msg[RPC_REQ_HDR];
        wire_put_req(msg, rq);
        uint64_t wait_ns = 50000000ull;
        for (;;) {
                uint64_t now = now_ns();
                if (now >= deadline)
                        return -ETIMEDOUT;
                uint64_t until = MIN(deadline, now + wait_ns);
                ssize_t n = ipcf_call(c->service, msg, sizeof(msg), reply, cap, deadline_poll_ms(until), NULL);
                if (n != -ETIMEDOUT || until == deadline)
                        return n;
                wait_ns = MIN(wait_ns * 2, RTO_MAX_NS);
        }
}

static void call_destroy(ipcf_rpc_call *k);

static void client_destroy(ipcf_rpc_client *c) {
        pthread_mutex_destroy(&c->lock);
        free(c);
}

ipcf_rpc_client *ipcf_rpc_client_free(ipcf_rpc_client *c) {
        if (!c)
                return NULL;
        if (c->have_session) {
                rpc_req rq = { .kind = RPC_DESTROY };
                memcpy(rq.session, c->session, 16);
                uint8_t rep[RPC_REP_HDR + 64];
                plain_call(c, &rq, rep, sizeof(rep), deadline_from_timeout(1000));
        }
        for (unsigned i = 0; i < RPC_MAX_SLOTS; i++) {
                free(c->slots[i].buf);
                c->slots[i].buf = NULL;
        }
        pthread_mutex_lock(&c->lock);
        call_destroy(c->spare);
        c->spare = NULL;
        c->freed = true;
        bool last = c->calls == 0; /* else a finished call not yet freed holds it */
        pthread_mutex_unlock(&c->lock);
        if (last)
                client_destroy(c);
        return NULL;
}

int ipcf_rpc_client_versions(ipcf_rpc_client *c, uint32_t prog, uint32_t *ret_low, uint32_t *ret_high) {
        if (!c)
                return -EINVAL;
        int r = -ENOENT;
        pthread_mutex_lock(&c->lock);
        for (unsigned i = 0; i < c->n_versions; i++)
                if (c->versions[i].prog == prog) {
                        if (ret_low)
                                *ret_low = c->versions[i].low;
                        if (ret_high)
                                *ret_high = c->versions[i].high;
                        r = 0;
                }
        pthread_mutex_unlock(&c->lock);
        return r;
}

static void note_version(ipcf_rpc_client *c, uint32_t prog, uint32_t low, uint32_t high) {
        for (unsigned i = 0; i < c->n_versions; i++)
                if (c->versions[i].prog == prog) {
                        c->versions[i].low = low;
                        c->versions[i].high = high;
                        return;
                }
        if (c->n_versions < MAX_VERSIONS)
                c->versions[c->n_versions++] = (typeof(c->versions[0])){ prog, low, high };
}

static uint32_t rd32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Make the session (under c->lock). */
static int session_make(ipcf_rpc_client *c, uint64_t deadline) {
        rpc_req rq = { .kind = RPC_CREATE, .slot = c->want_slots };
        if (getrandom(rq.session, 16, 0) != 16)
                return -EIO;
        uint8_t rep[RPC_REP_HDR + 12 * MAX_VERSIONS];
        ssize_t n = plain_call(c, &rq, rep, sizeof(rep), deadline);
        if (n < 0)
                return n == -EMSGSIZE ? -EPROTO : (int)n;
        rpc_rep rp;
        if (wire_parse_rep(rep, (size_t)n, &rp) < 0)
                return -EPROTO;
        if (rp.status == RS_BUSY)
                return -EBUSY;
        if (rp.status != RS_OK || rp.a == 0 || rp.a > RPC_MAX_SLOTS)
                return -EPROTO;
        memcpy(c->session, rq.session, 16);
        c->nslots = rp.a;
        c->persistent = rp.b & 1;
        c->incarnation = rp.incarnation;
        c->have_session = true;
        for (unsigned i = 0; i < RPC_MAX_SLOTS; i++)
                c->slots[i].seq = 0;
        c->n_versions = 0;
        for (size_t off = RPC_REP_HDR; off + 12 <= (size_t)n; off += 12)
                note_version(c, rd32(rep + off), rd32(rep + off + 4), rd32(rep + off + 8));
        return 0;
}

/* A free slot of a live session, waiting until deadline, its next
 * sequence number and the session's id (a copy: another call may make a new
 * session meanwhile): 0 at once, 1 after a wait (for a slot, or while
 * making the session: the caller's clock reading is old); -ETIMEDOUT. */
static int slot_take(ipcf_rpc_client *c, uint64_t deadline, unsigned *ret, uint32_t *ret_seq,
                     uint8_t ret_session[16]) {
        int waited = 0;
        pthread_mutex_lock(&c->lock);
        for (;;) {
                if (!c->have_session) {
                        waited = 1;
                        int r = session_make(c, deadline);
                        if (r < 0) {
                                pthread_mutex_unlock(&c->lock);
                                return r;
                        }
                }
                for (unsigned i = 0; i < c->nslots; i++)
                        if (!c->slots[i].busy) {
                                c->slots[i].busy = true;
                                *ret = i;
                                *ret_seq = ++c->slots[i].seq;
                                memcpy(ret_session, c->session, 16);
                                pthread_mutex_unlock(&c->lock);
                                return waited;
                        }
                waited = 1;
                if (event_sleep_locked(&c->slot_ev, &c->lock, deadline, SLOT_SLEEPERS) == -ETIMEDOUT) {
                        pthread_mutex_unlock(&c->lock);
                        return -ETIMEDOUT;
                }
        }
}

/* Free a slot for the next call (under c->lock, let go with event_unlock,
 * which wakes the calls waiting for a slot). */
static void slot_free_locked(ipcf_rpc_client *c, unsigned slot) {
        c->slots[slot].busy = false;
        event_note(&c->slot_ev, SLOT_SLEEPERS);
}

static void slot_release(ipcf_rpc_client *c, unsigned slot) {
        pthread_mutex_lock(&c->lock);
        slot_free_locked(c, slot);
        event_unlock(&c->slot_ev, &c->lock);
}

/* A call that took seq on its slot sent nothing of it: give the number back,
 * so the slot's next call is the one the server expects (a gap is taken
 * too, as numbers never used: docs/RPC.md). Not if the session was made anew
 * meanwhile (its numbers start again). The slot is still the call's. */
static void slot_unuse(ipcf_rpc_client *c, unsigned slot, uint32_t seq) {
        pthread_mutex_lock(&c->lock);
        if (c->slots[slot].seq == seq)
                c->slots[slot].seq = seq - 1;
        pthread_mutex_unlock(&c->lock);
}

/* ---- transmissions -------------------------------------------------------- */

/* A transmission to fill, not yet in the call's list (tx_send adds it once
 * sent). Only the call's own thread takes and puts transmissions, so the
 * list of spares needs no lock. */
static struct tx *tx_new(ipcf_rpc_call *k) {
        struct tx *t = k->keep.free_txs;
        if (t) {
                k->keep.free_txs = t->next_free;
                memset(t, 0, offsetof(struct tx, small));
        } else if (!(t = calloc(1, sizeof(*t)))) {
                return NULL;
        }
        return t;
}

/* Room for one more transmission in the call's list. Under k->lock (a
 * cancel from another thread reads the list). */
static int tx_room(ipcf_rpc_call *k) {
        if (k->n_txs < k->keep.cap_txs)
                return 0;
        size_t cap = k->keep.cap_txs ? k->keep.cap_txs * 2 : 4;
        struct tx **a = realloc(k->keep.txs, cap * sizeof(*a));
        if (!a)
                return -ENOMEM;
        k->txs = k->keep.txs = a;
        k->keep.cap_txs = cap;
        return 0;
}

/* t is done with: keep it for the next transmission. */
static void tx_put(ipcf_rpc_call *k, struct tx *t) {
        t->next_free = k->keep.free_txs;
        k->keep.free_txs = t;
}

/* Forget every transmission (cancelling live ones). Under k->lock. */
static void tx_drop_all(ipcf_rpc_call *k);

/* The bytes [off, off + n) of the arguments' encoding, copied to dst. */
static void gather(const ipcf_rpc_call *k, uint64_t off, size_t n, uint8_t *dst) {
        uint64_t at = 0;
        for (size_t i = 0; i < k->n_segs && n; i++) {
                const ipcf_xdr_seg *s = &k->segs[i];
                if (off >= at + s->len) {
                        at += s->len;
                        continue;
                }
                size_t skip = (size_t)(off - at), take = MIN(s->len - skip, n);
                const uint8_t *src = s->ptr ? (const uint8_t *)s->ptr : k->enc.buf + s->off;
                memcpy(dst, src + skip, take);
                dst += take;
                off += take;
                n -= take;
                at += s->len;
        }
}

/* Send one message (header rq + body) as a new transmission with a reply
 * buffer (the slot's if free and wanted, else a small one). now is the
 * clock's reading the request's timeout was taken from. The transmission
 * joins the call's list (under k->lock) only once it is sent: a cancel
 * finds every live one there. */
static int tx_send(ipcf_rpc_call *k, rpc_req *rq, const uint8_t *body, size_t len, bool want_big, uint64_t piece,
                   uint64_t now) {
        ipcf_rpc_client *c = k->c;
        uint8_t *msg = k->sendbuf;
        wire_put_req(msg, rq);
        if (len && body != msg + RPC_REQ_HDR)
                memcpy(msg + RPC_REQ_HDR, body, len);
        int copies = 1 + impair_chance(&c->impair, c->impair.dup);
        for (int i = 0; i < copies; i++) {
                struct tx *t = tx_new(k);
                if (!t)
                        return -ENOMEM;
                if (k->n_txs == k->keep.cap_txs) { /* (only this thread changes either) */
                        pthread_mutex_lock(&k->lock);
                        int r = tx_room(k);
                        pthread_mutex_unlock(&k->lock);
                        if (r < 0) {
                                tx_put(k, t);
                                return r;
                        }
                }
                struct cslot *s = &c->slots[k->slot]; /* the call's own slot: no one else touches it */
                if (want_big && !s->buf_busy && (s->buf || (s->buf = malloc(IPCF_CALL_MAX)))) {
                        s->buf_busy = true;
                        t->big = true;
                        t->buf = s->buf;
                        t->cap = IPCF_CALL_MAX;
                } else {
                        t->buf = t->small;
                        t->cap = sizeof(t->small);
                }
                t->piece = piece;
                t->sent_ns = now;
                int r = now >= k->deadline ? -ETIMEDOUT
                                           : call_start_on(c->service, msg, RPC_REQ_HDR + len, t->buf, t->cap,
                                                           k->deadline, &k->chan, (uint64_t)(uintptr_t)k, &t->pend);
                if (r < 0) {
                        if (t->big)
                                s->buf_busy = false;
                        tx_put(k, t);
                        return r;
                }
                pthread_mutex_lock(&k->lock);
                k->txs[k->n_txs++] = t;
                t->live = true;
                k->sent = true;
                k->info.transmissions++;
                pthread_mutex_unlock(&k->lock);
        }
        return 0;
}

static void tx_finish(ipcf_rpc_call *k, struct tx *t) {
        t->live = false;
        if (t->big) {
                k->c->slots[k->slot].buf_busy = false;
                t->big = false;
        }
}

static void tx_drop_all(ipcf_rpc_call *k) {
        for (size_t i = 0; i < k->n_txs; i++) {
                if (k->txs[i]->live) {
                        ipcf_call_cancel(&k->txs[i]->pend);
                        tx_finish(k, k->txs[i]);
                }
                tx_put(k, k->txs[i]);
        }
        k->n_txs = 0;
}

/* Send piece i of the arguments (flags as the call's); now is the clock's
 * reading just before (0: read it here). */
static int send_piece(ipcf_rpc_call *k, uint64_t i, uint64_t now) {
        uint64_t off = i * RPC_PIECE;
        size_t len = (size_t)MIN((uint64_t)RPC_PIECE, k->total - off);
        rpc_req rq = { .kind = RPC_CALL, .slot = k->slot, .seq = k->seq,
                       .flags = k->flags | (k->retry_flag ? RPCF_RETRY : 0), .prog = k->prog, .vers = k->vers,
                       .proc = k->proc, .piece = RPC_PIECE, .total = k->total, .offset = off };
        memcpy(rq.session, k->session, 16);
        if (!now)
                now = now_ns();
        if (k->deadline == UINT64_MAX) {
                rq.timeout_ms = RPC_NO_TIMEOUT;
        } else {
                int ms = timeout_left_ms(k->deadline, now);
                rq.timeout_ms = ms <= 0 ? 1 : (uint32_t)ms;
        }
        gather(k, off, len, k->sendbuf + RPC_REQ_HDR);
        return tx_send(k, &rq, k->sendbuf + RPC_REQ_HDR, len, i == k->n_pieces - 1, off, now);
}

/* Send every piece; the first with the clock's reading now (0: read it),
 * the others each with its own (a piece may wait for room). */
static int send_all(ipcf_rpc_call *k, uint64_t now) {
        for (uint64_t i = 0; i < k->n_pieces; i++) {
                int r = send_piece(k, i, i == 0 ? now : 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- results -------------------------------------------------------------- */

/* Fetch the rest of a result of total bytes whose first piece is at res. */
static int fetch_rest(ipcf_rpc_call *k, uint8_t *res, uint64_t have, uint64_t total) {
        ipcf_rpc_client *c = k->c;
        struct {
                ipcf_pending pend;
                uint8_t *buf;
                uint64_t off;
                bool live;
        } win[FETCH_WINDOW] = { 0 };
        uint64_t next = have, done = have;
        int err = 0;
        for (unsigned i = 0; i < FETCH_WINDOW; i++)
                if (!(win[i].buf = malloc(IPCF_CALL_MAX)))
                        err = -ENOMEM;
        while (!err && done < total) {
                for (unsigned i = 0; i < FETCH_WINDOW && next < total; i++) {
                        if (win[i].live)
                                continue;
                        rpc_req rq = { .kind = RPC_FETCH, .slot = k->slot, .seq = k->seq, .offset = next,
                                       .prog = k->prog, .vers = k->vers, .proc = k->proc };
                        memcpy(rq.session, k->session, 16);
                        uint8_t msg[RPC_REQ_HDR];
                        wire_put_req(msg, &rq);
                        int tmo = k->deadline == UINT64_MAX ? -1 : deadline_poll_ms(k->deadline);
                        int r = tmo == 0 ? -ETIMEDOUT
                                         : ipcf_call_start(c->service, msg, sizeof(msg), win[i].buf, IPCF_CALL_MAX,
                                                           tmo, &win[i].pend);
                        if (r < 0) {
                                err = r;
                                break;
                        }
                        win[i].off = next;
                        win[i].live = true;
                        next += MIN((uint64_t)RPC_REP_PIECE, total - next);
                }
                for (unsigned i = 0; i < FETCH_WINDOW && !err; i++) {
                        if (!win[i].live)
                                continue;
                        int tmo = k->deadline == UINT64_MAX ? -1 : deadline_poll_ms(k->deadline);
                        ssize_t n = tmo == 0 ? -ETIMEDOUT : ipcf_call_wait(&win[i].pend, tmo, NULL);
                        win[i].live = n == -EAGAIN;
                        if (n < 0) {
                                err = n == -ETIMEDOUT || n == -EAGAIN ? -ETIMEDOUT : (int)n;
                                break;
                        }
                        rpc_rep rp;
                        if (wire_parse_rep(win[i].buf, (size_t)n, &rp) < 0 || rp.status != RS_OK ||
                            rp.total != total || rp.offset != win[i].off ||
                            (size_t)n - RPC_REP_HDR != MIN((uint64_t)RPC_REP_PIECE, total - rp.offset)) {
                                err = -EPROTO;
                                break;
                        }
                        memcpy(res + rp.offset, win[i].buf + RPC_REP_HDR, (size_t)n - RPC_REP_HDR);
                        done += (size_t)n - RPC_REP_HDR;
                }
        }
        for (unsigned i = 0; i < FETCH_WINDOW; i++) {
                if (win[i].live)
                        ipcf_call_cancel(&win[i].pend);
                free(win[i].buf);
        }
        /* The call ran: a result we cannot get is an unknown outcome only in
         * the sense that we cannot tell it; say so. */
        return err == -ETIMEDOUT ? -IPCF_EUNKNOWN : err;
}

/* The final reply rp with its first piece (len bytes at body): decode. */
static int take_result(ipcf_rpc_call *k, const rpc_rep *rp, const uint8_t *body, size_t len) {
        if (rp->total > k->c->max_msg)
                return -EMSGSIZE;
        const uint8_t *res = body;
        uint8_t *whole = NULL;
        if (rp->total > len) {
                whole = malloc(rp->total);
                if (!whole)
                        return -ENOMEM;
                memcpy(whole, body, len);
                int r = fetch_rest(k, whole, len, rp->total);
                if (r < 0) {
                        free(whole);
                        return r;
                }
                res = whole;
        }
        int r = 0;
        if (k->raw) {
                if (!whole && rp->total) {
                        whole = malloc(rp->total);
                        if (!whole)
                                return -ENOMEM;
                        memcpy(whole, body, rp->total);
                }
                k->raw_res = whole;
                k->raw_len = rp->total;
                return 0;
        }
        if (k->p && k->p->decode_res && k->out) {
                ipcf_xdr d;
                ipcf_xdr_decoder(&d, res, rp->total);
                r = k->p->decode_res(&d, k->out);
                if (r == 0 && ipcf_xdr_end(&d) < 0) {
                        k->p->free_res(k->out);
                        r = -EBADMSG;
                }
                if (r < 0)
                        r = -EBADMSG;
        } else if (rp->total != 0) {
                r = -EBADMSG;
        }
        free(whole);
        return r;
}

/* ---- the call's life ------------------------------------------------------ */

static int status_error(ipcf_rpc_call *k, const rpc_rep *rp) {
        switch (rp->status) {
        case RS_PROG_UNAVAIL:
                k->info.vers_low = rp->a;
                k->info.vers_high = rp->b;
                pthread_mutex_lock(&k->c->lock);
                note_version(k->c, k->prog, rp->a, rp->b);
                pthread_mutex_unlock(&k->c->lock);
                return -EPROTONOSUPPORT;
        case RS_PROC_UNAVAIL:
                return -EOPNOTSUPP;
        case RS_GARBAGE_ARGS:
                return -EBADMSG;
        case RS_SYSTEM_ERR:
                k->info.remote_error = (int)rp->a;
                return -EREMOTEIO;
        case RS_DEADLINE:
                return -ETIMEDOUT;
        case RS_CANCELLED:
                return -ECANCELED;
        case RS_UNKNOWN:
                return -IPCF_EUNKNOWN;
        case RS_TOO_BIG:
                return -EMSGSIZE;
        case RS_BUSY:
                return -ENOBUFS;
        default:
                return -EPROTO;
        }
}

/* A transmission's answer: n bytes in t->buf (or n < 0). Returns 1 when
 * the call is finished (k->result set), 0 to go on. Under k->lock. */
static int on_answer(ipcf_rpc_call *k, struct tx *t, ssize_t n) {
        ipcf_rpc_client *c = k->c;
        uint64_t now = now_ns();
        k->last_progress = now;
        if (n == -EMSGSIZE && !t->big) {
                /* a final reply in a small buffer: fetch its first piece */
                tx_finish(k, t);
                uint8_t *first = malloc(IPCF_CALL_MAX);
                if (!first)
                        return k->result = -ENOMEM, 1;
                rpc_req rq = { .kind = RPC_FETCH, .slot = k->slot, .seq = k->seq, .offset = 0 };
                memcpy(rq.session, k->session, 16);
                pthread_mutex_unlock(&k->lock);
                ssize_t m = plain_call(c, &rq, first, IPCF_CALL_MAX, k->deadline);
                pthread_mutex_lock(&k->lock);
                rpc_rep rp;
                if (m < 0)
                        k->result = m == -ETIMEDOUT ? -IPCF_EUNKNOWN : (int)m;
                else if (wire_parse_rep(first, (size_t)m, &rp) < 0)
                        k->result = -EPROTO;
                else if (rp.status != RS_OK)
                        k->result = status_error(k, &rp);
                else {
                        pthread_mutex_unlock(&k->lock);
                        k->result = take_result(k, &rp, first + RPC_REP_HDR, (size_t)m - RPC_REP_HDR);
                        pthread_mutex_lock(&k->lock);
                }
                free(first);
                return 1;
        }
        tx_finish(k, t);
        if (n < 0)
                return 0; /* the caller handles transport errors */
        rpc_rep rp;
        if (wire_parse_rep(t->buf, (size_t)n, &rp) < 0 || rp.slot != k->slot || rp.seq != k->seq) {
                k->result = -EPROTO;
                return 1;
        }
        k->info.incarnation = rp.incarnation;
        uint64_t rtt = now - t->sent_ns;
        uint64_t srtt = atomic_load_explicit(&c->srtt_ns, memory_order_relaxed);
        atomic_store_explicit(&c->srtt_ns, srtt ? (srtt * 7 + rtt) / 8 : rtt, memory_order_relaxed);
        if (rp.status != RS_BADSESSION)
                k->heard = true;
        switch (rp.status) {
        case RS_PIECE_OK:
                if (t->piece / RPC_PIECE < k->n_pieces)
                        k->acked[t->piece / RPC_PIECE] = 1;
                return 0;
        case RS_IN_PROGRESS:
                for (uint64_t i = 0; i < k->n_pieces; i++)
                        k->acked[i] = 1;
                if (k->flags & RPCF_ONEWAY) {
                        k->result = 0;
                        return 1;
                }
                k->rto_ns = MIN(k->rto_ns * 2, RTO_MAX_NS);
                return 0;
        case RS_SLOT_BUSY:
                k->rto_ns = MIN(k->rto_ns * 2, RTO_MAX_NS);
                memset(k->acked, 0, k->n_pieces);
                return 0;
        case RS_BADSESSION:
                return -1; /* handled by the caller */
        case RS_OK:
                k->info.from_cache = rp.a == 1;
                if (rp.total <= (uint64_t)n - RPC_REP_HDR) {
                        /* all here: decoding waits for nothing (a cancel waits for it) */
                        k->result = take_result(k, &rp, t->buf + RPC_REP_HDR, (size_t)n - RPC_REP_HDR);
                        return 1;
                }
                pthread_mutex_unlock(&k->lock); /* the rest is fetched */
                k->result = take_result(k, &rp, t->buf + RPC_REP_HDR, (size_t)n - RPC_REP_HDR);
                pthread_mutex_lock(&k->lock);
                return 1;
        default:
                k->result = status_error(k, &rp);
                return 1;
        }
}

/* Forget the session after the server lost it (a restart). */
static void session_lost(ipcf_rpc_client *c, const uint8_t id[16]) {
        pthread_mutex_lock(&c->lock);
        if (c->have_session && !memcmp(c->session, id, 16))
                c->have_session = false;
        pthread_mutex_unlock(&c->lock);
}

/* A call cancelled before it is sent again (under k->lock): it never ran,
 * -ECANCELED, unless what it sent before reached a server that may have
 * run it (its channel broke after sending): -IPCF_EUNKNOWN. Nothing more
 * of it is sent. */
static int unsent_cancel(ipcf_rpc_call *k) {
        return k->broke_after_send ? -IPCF_EUNKNOWN : -ECANCELED;
}

/* Make the call again from the start on a (new) session (idempotent calls,
 * and calls the server never saw), unless it was cancelled (then
 * unsent_cancel, checked again after waiting for a slot). Under k->lock. */
static int restart_call(ipcf_rpc_call *k) {
        ipcf_rpc_client *c = k->c;
        tx_drop_all(k);
        if (k->slot != UINT32_MAX) /* not after a restart that found no slot */
                slot_release(c, k->slot);
        k->slot = UINT32_MAX;
        if (k->cancelled)
                return unsent_cancel(k);
        pthread_mutex_unlock(&k->lock);
        unsigned slot;
        uint32_t seq;
        uint8_t session[16];
        int r = slot_take(c, k->deadline, &slot, &seq, session);
        pthread_mutex_lock(&k->lock);
        if (r >= 0) {
                k->slot = slot; /* (a cancel reads them under k->lock) */
                k->seq = seq;
                memcpy(k->session, session, 16);
        }
        if (r >= 0 && k->cancelled) {
                /* cancelled while it waited for a slot or its session:
                 * none of it goes */
                slot_unuse(c, slot, seq);
                return unsent_cancel(k);
        }
        pthread_mutex_unlock(&k->lock);
        if (r >= 0) {
                memset(k->acked, 0, k->n_pieces);
                k->broke_after_send = false;
                k->resent = k->heard = false; /* nothing of it reached the new session yet */
                k->retry_flag = false;
                k->chan = 0; /* a new channel if the old one broke */
                r = send_all(k, 0);
                if (r < 0 && !k->n_txs) /* none of it went (only this thread adds) */
                        slot_unuse(c, k->slot, k->seq);
                k->last_progress = now_ns();
        }
        pthread_mutex_lock(&k->lock);
        return r;
}

/* An idempotent call again, from the start, on a new session: the server
 * that had the old one is gone (under k->lock). */
static int rerun(ipcf_rpc_call *k) {
        session_lost(k->c, k->session);
        return restart_call(k);
}

/* A call whose request reached a server with a persistent cache, sent again
 * flagged as a retry: its cache answers, or says it cannot (under k->lock). */
static int ask_cache(ipcf_rpc_call *k) {
        tx_drop_all(k);
        if (k->cancelled)
                return unsent_cancel(k);
        k->retry_flag = true;
        k->chan = 0; /* the new channel: this and every later copy say RETRY */
        memset(k->acked, 0, k->n_pieces);
        pthread_mutex_unlock(&k->lock);
        int r = send_all(k, 0);
        pthread_mutex_lock(&k->lock);
        return r;
}

/* Try again (under k->lock) while the server is gone — no name, or a
 * channel that breaks, or a restarted server with no room for our session
 * yet (-EBUSY) — pausing 5, 10, ... 200 ms between tries: it may be
 * restarting. What the call sent may have run, so the deadline passing
 * meanwhile is "outcome unknown". */
static int until_server_back(ipcf_rpc_call *k, int (*again)(ipcf_rpc_call *k)) {
        uint64_t pause = 5000000ull;
        int r;
        for (;;) {
                r = again(k);
                if (r == 0 || (r != -ENOENT && r != -ECONNRESET && r != -EPIPE && r != -ECONNREFUSED &&
                               r != -EHOSTDOWN && r != -EHOSTUNREACH && r != -EBUSY))
                        break;
                if (now_ns() + pause >= k->deadline) {
                        r = -IPCF_EUNKNOWN;
                        break;
                }
                pthread_mutex_unlock(&k->lock);
                struct timespec ts = { 0, (long)pause };
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&k->lock);
                pause = MIN(pause * 2, 200000000ull);
        }
        k->last_progress = now_ns();
        /* The call went before: whatever stops us asking again (the
         * deadline, a server's host unreachable, a server with no session
         * for us...), its outcome is unknown, never "not run". */
        return r < 0 ? -IPCF_EUNKNOWN : r;
}

/* The channel broke after the call was sent (under k->lock): decide. An
 * idempotent call runs again once the server is back, a call to a server
 * with a persistent cache asks it, within the deadline; any other call's
 * outcome is unknown. */
static int on_broken(ipcf_rpc_call *k, int err) {
        (void)err;
        if (k->flags & RPCF_IDEMPOTENT)
                return until_server_back(k, rerun);
        if (!k->c->persistent)
                return -IPCF_EUNKNOWN;
        return until_server_back(k, ask_cache);
}

static bool transport_broken(ssize_t n) {
        return n == -ECONNRESET || n == -EPIPE || n == -EPROTO || n == -EHOSTDOWN || n == -EBADF;
}

/* An answer (or transport error n) of transmission t, with what follows
 * from it: a lost session, a broken channel. 1 when the call is finished
 * (k->result set). Under k->lock. */
static int settle_answer(ipcf_rpc_call *k, struct tx *t, ssize_t n) {
        int fin = on_answer(k, t, n);
        if (fin < 0) { /* BADSESSION: the server does not know our session */
                pthread_mutex_lock(&k->c->lock);
                bool same_run = k->c->incarnation == k->info.incarnation;
                pthread_mutex_unlock(&k->c->lock);
                session_lost(k->c, k->session);
                /* The server that made our session (same incarnation) no
                 * longer has it: evicted (more clients than max_sessions).
                 * If something of the call was sent again (its reply lost)
                 * or the session answered something of it, the session had
                 * taken it: it may have run. A restarted server (another
                 * incarnation) never had it; what went to the old one broke
                 * its channel (broke_after_send). */
                if ((k->broke_after_send || (same_run && (k->resent || k->heard))) &&
                    !(k->flags & RPCF_IDEMPOTENT)) {
                        k->result = -IPCF_EUNKNOWN;
                        return 1;
                }
                int r = restart_call(k); /* it never reached a server that knew it */
                if (r < 0) {
                        k->result = r;
                        return 1;
                }
                return 0;
        }
        if (!fin && n < 0 && transport_broken(n)) {
                k->broke_after_send = true;
                int r = on_broken(k, (int)n);
                if (r < 0) {
                        k->result = r;
                        return 1;
                }
        }
        return fin;
}

/* A cancelled call's outcome (under k->lock): 1 when known (k->result
 * set), 0 when until passed first. Nothing sent: not run, -ECANCELED.
 * Else the server decides, asked with CANCEL messages on the call's
 * channel (server.c, on_cancel): not started (and now never will be),
 * -ECANCELED; finished, its outcome (the handler's result or error: it
 * ran); running, asked again (5 ms, doubling to 200 ms). No verdict by
 * verdict_by (the deadline, at most RPC_CANCEL_VERDICT_MS after the
 * cancel: a handler that goes on, a server or host that does not answer)
 * or the channel broken (the server died): -IPCF_EUNKNOWN. */
static int verdict(ipcf_rpc_call *k, uint64_t until) {
        if (!k->sent) {
                k->result = -ECANCELED;
                return 1;
        }
        if (!k->asking) {
                tx_drop_all(k); /* the call's own: cancelled, their replies dropped */
                k->asking = true;
                k->rto_ns = 5000000ull;
                k->last_progress = 0;
        }
        for (;;) {
                uint64_t now = now_ns();
                if (now >= k->verdict_by) {
                        k->result = -IPCF_EUNKNOWN;
                        return 1;
                }
                struct tx *w = k->n_txs ? k->txs[k->n_txs - 1] : NULL;
                bool asked = w && w->live;
                if (!k->n_txs || now >= k->last_progress + (asked ? RTO_MAX_NS : k->rto_ns)) {
                        /* A question unanswered is not cancelled when asked
                         * again (a cancel takes one of the channel's few
                         * cancel slots, where the call's own mark must stay
                         * until the server takes it): it is answered when a
                         * worker is free; asked again only if lost (1 s). */
                        k->last_progress = now;
                        rpc_req rq = { .kind = RPC_CANCEL, .slot = k->slot, .seq = k->seq, .flags = k->flags };
                        memcpy(rq.session, k->session, 16);
                        pthread_mutex_unlock(&k->lock);
                        int r = tx_send(k, &rq, NULL, 0, true, 0, now);
                        pthread_mutex_lock(&k->lock);
                        if (r < 0) { /* the channel broke (or the deadline came): no one to ask */
                                k->result = -IPCF_EUNKNOWN;
                                return 1;
                        }
                }
                if (now >= until) /* (asked first: a wait of 0 still sends the question) */
                        return 0;
                w = k->n_txs ? k->txs[k->n_txs - 1] : NULL;
                asked = w && w->live;
                uint64_t next = k->last_progress + (asked ? RTO_MAX_NS : k->rto_ns);
                int ms = timeout_left_ms(MIN(MIN(until, k->verdict_by), next), now);
                if (!w || !w->live) { /* answered IN_PROGRESS: ask again after rto_ns */
                        pthread_mutex_unlock(&k->lock);
                        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
                        if (ms > 0)
                                nanosleep(&ts, NULL);
                        pthread_mutex_lock(&k->lock);
                        continue;
                }
                ipcf_pending pend = w->pend;
                pthread_mutex_unlock(&k->lock);
                ssize_t n = ms == 0 ? -EAGAIN : ipcf_call_wait(&pend, ms, NULL);
                pthread_mutex_lock(&k->lock);
                if (n == -EAGAIN || n == -ETIMEDOUT || !k->n_txs || k->txs[k->n_txs - 1] != w || !w->live)
                        continue;
                if (n < 0 && n != -EMSGSIZE) {
                        tx_finish(k, w);
                        k->result = -IPCF_EUNKNOWN; /* broken: the server is gone, or we cannot ask */
                        return 1;
                }
                int fin = on_answer(k, w, n);
                if (fin < 0) { /* BADSESSION: a restarted server; the old one may have run it */
                        k->result = -IPCF_EUNKNOWN;
                        return 1;
                }
                if (fin) {
                        if (k->result == -EPROTO) /* a verdict we cannot read */
                                k->result = -IPCF_EUNKNOWN;
                        return 1;
                }
                k->rto_ns = MIN(k->rto_ns, VERDICT_ASK_MAX_NS); /* (on_answer doubled it) */
        }
}

/* Drive the call until it finishes or timeout_ms passes (-EAGAIN/-ETIMEDOUT
 * while still running). */
static int drive(ipcf_rpc_call *k, int timeout_ms) {
        uint64_t until = MIN(deadline_from_timeout(timeout_ms), k->deadline);
        pthread_mutex_lock(&k->lock);
        while (!k->done) {
                if (k->cancelled) {
                        if (verdict(k, until)) {
                                k->done = true;
                                break;
                        }
                        pthread_mutex_unlock(&k->lock);
                        return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
                }
                /* 1. answers that are already there (a wait of 0 reads what
                 * the channel holds): of all but the newest transmission,
                 * which step 3 waits for — of that one too when this wait
                 * may not wait (timeout 0, or its time is up): a result
                 * already there is no wait */
                int fin = 0;
                size_t newest = k->n_txs;
                while (newest > 0 && !k->txs[newest - 1]->live)
                        newest--;
                bool up = timeout_ms == 0 || (timeout_ms > 0 && now_ns() >= until);
                size_t upto = up ? newest : newest ? newest - 1 : 0;
                for (size_t i = 0; i < upto && !fin; i++) {
                        struct tx *t = k->txs[i];
                        if (!t->live)
                                continue;
                        ipcf_pending pend = t->pend;
                        pthread_mutex_unlock(&k->lock);
                        ssize_t n = ipcf_call_wait(&pend, 0, NULL);
                        pthread_mutex_lock(&k->lock);
                        if (i >= k->n_txs || k->txs[i] != t || !t->live)
                                break; /* restarted meanwhile */
                        if (n == -EAGAIN)
                                continue;
                        if (k->cancelled)
                                break;
                        fin = settle_answer(k, t, n);
                        if (fin || (n < 0 && transport_broken(n)))
                                break;
                }
                if (fin) {
                        k->done = true;
                        break;
                }
                if (k->cancelled)
                        continue;
                uint64_t now = now_ns();
                if (now >= k->deadline) {
                        k->result = -IPCF_EUNKNOWN;
                        k->done = true;
                        break;
                }
                if (now >= until) {
                        pthread_mutex_unlock(&k->lock);
                        return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
                }
                /* 2. retransmit what got no answer */
                if (now >= k->last_progress + k->rto_ns) {
                        k->rto_ns = MIN(k->rto_ns * 2, RTO_MAX_NS);
                        k->last_progress = now;
                        k->resent = true;
                        pthread_mutex_unlock(&k->lock);
                        int r = 0;
                        bool any = false;
                        for (uint64_t i = 0; i < k->n_pieces && r == 0; i++)
                                if (!k->acked[i]) {
                                        any = true;
                                        r = send_piece(k, i, 0);
                                }
                        /* all taken, no result yet (its reply may be lost):
                         * ask again with the last piece — the server answers
                         * IN_PROGRESS, or the result from its cache */
                        if (!any && r == 0)
                                r = send_piece(k, k->n_pieces - 1, 0);
                        now = now_ns();
                        pthread_mutex_lock(&k->lock);
                        if (r < 0 && transport_broken(r)) {
                                k->broke_after_send = true;
                                r = on_broken(k, r);
                        }
                        if (r < 0 && r != -ETIMEDOUT) {
                                k->result = r == -IPCF_EUNKNOWN ? r : -IPCF_EUNKNOWN;
                                k->done = true;
                                break;
                        }
                }
                /* 3. wait on the newest live transmission */
                struct tx *w = NULL;
                size_t wi = 0;
                for (size_t i = k->n_txs; i-- > 0;)
                        if (k->txs[i]->live) {
                                w = k->txs[i];
                                wi = i;
                                break;
                        }
                if (!w) {
                        /* nothing in flight (all answered, no result yet): sleep till the next retransmission */
                        int ms = deadline_poll_ms(MIN(MIN(until, k->last_progress + k->rto_ns), k->deadline));
                        pthread_mutex_unlock(&k->lock);
                        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
                        if (ms > 0)
                                nanosleep(&ts, NULL);
                        pthread_mutex_lock(&k->lock);
                        continue;
                }
                ipcf_pending pend = w->pend;
                uint64_t wake = MIN(MIN(until, k->last_progress + k->rto_ns), k->deadline);
                pthread_mutex_unlock(&k->lock);
                /* (no clock reading; -EINPROGRESS: an older transmission
                 * has its answer, which step 1 reads) */
                ssize_t n = now >= wake ? -EAGAIN : call_wait_by(&pend, wake, NULL);
                pthread_mutex_lock(&k->lock);
                if (n == -EAGAIN || n == -ETIMEDOUT || n == -EINPROGRESS || k->cancelled || wi >= k->n_txs ||
                    k->txs[wi] != w || !w->live)
                        continue;
                if (settle_answer(k, w, n))
                        k->done = true;
        }
        tx_drop_all(k); /* done: what is still in flight is not wanted (call_settle finds nothing) */
        pthread_mutex_unlock(&k->lock);
        return k->result;
}

/* Take back the encoder's buffers for the next call: the one it grew (if
 * not too large) in place of ours, and its segments' array. */
static void enc_keep(ipcf_rpc_call *k) {
        ipcf_xdr *e = &k->enc;
        if (e->buf && e->buf != k->keep.encbuf) { /* it grew: the buffer is its own */
                if (e->cap <= KEEP_ENC_MAX) {
                        free(k->keep.encbuf);
                        k->keep.encbuf = e->buf;
                        k->keep.cap_enc = e->cap;
                } else {
                        free(e->buf);
                }
        }
        if (e->segs) {
                k->keep.segs = e->segs;
                k->keep.cap_segs = e->cap_segs;
        }
        *e = (ipcf_xdr){ 0 }; /* a second settle finds nothing */
}

/* A buffer of at least n bytes in *buf (of *cap), grown as needed. */
static uint8_t *keep_grow(uint8_t **buf, size_t *cap, size_t n) {
        if (n > *cap || !*buf) {
                uint8_t *b = realloc(*buf, n ? n : 1);
                if (!b)
                        return NULL;
                *buf = b;
                *cap = n ? n : 1;
        }
        return *buf;
}

/* A call object: the client's spare (its buffers kept) or a new one. */
static ipcf_rpc_call *call_get(ipcf_rpc_client *c) {
        pthread_mutex_lock(&c->lock);
        ipcf_rpc_call *k = c->spare;
        c->spare = NULL;
        c->calls++; /* (given back below if no call can be made) */
        pthread_mutex_unlock(&c->lock);
        if (k) {
                memset(&k->c, 0, sizeof(*k) - offsetof(ipcf_rpc_call, c));
        } else if ((k = calloc(1, sizeof(*k)))) {
                pthread_mutex_init(&k->lock, NULL);
        } else {
                pthread_mutex_lock(&c->lock);
                bool last = --c->calls == 0 && c->freed;
                pthread_mutex_unlock(&c->lock);
                if (last)
                        client_destroy(c);
                return NULL;
        }
        return k;
}

static void call_destroy(ipcf_rpc_call *k) {
        if (!k)
                return;
        for (struct tx *t = k->keep.free_txs, *n; t; t = n) {
                n = t->next_free;
                free(t);
        }
        free(k->keep.txs);
        free(k->keep.acked);
        free(k->keep.sendbuf);
        free(k->keep.encbuf);
        free(k->keep.segs);
        pthread_mutex_destroy(&k->lock);
        free(k);
}

/* A settled call (its slot already given back, or given back here with
 * slot, else UINT32_MAX): the client's spare if it has none, else gone (and
 * the client too if it was freed before its last call). One lock of the
 * client for both. */
static void call_recycle(ipcf_rpc_call *k, unsigned slot) {
        ipcf_rpc_client *c = k->c;
        free(k->raw_res);
        k->raw_res = NULL;
        pthread_mutex_lock(&c->lock);
        if (slot != UINT32_MAX)
                slot_free_locked(c, slot);
        if (!c->spare && !c->freed) {
                c->spare = k;
                k = NULL;
        }
        bool last = --c->calls == 0 && c->freed;
        event_unlock(&c->slot_ev, &c->lock); /* (the client outlives it: this call was one of its calls) */
        call_destroy(k);
        if (last)
                client_destroy(c);
}

/* Everything a finished call holds on to: transmissions, and its slot
 * unless keep_slot (then the slot is returned, for call_recycle to give
 * back with the call itself). */
static unsigned call_settle_keep(ipcf_rpc_call *k, bool keep_slot) {
        if (k->n_txs) { /* (only this thread changes it) */
                pthread_mutex_lock(&k->lock);
                tx_drop_all(k);
                pthread_mutex_unlock(&k->lock);
        }
        unsigned slot = k->slot;
        k->slot = UINT32_MAX;
        if (slot != UINT32_MAX && !keep_slot) {
                slot_release(k->c, slot);
                slot = UINT32_MAX;
        }
        if (k->info_out) {
                *k->info_out = k->info;
                k->info_out = NULL;
        }
        enc_keep(k);
        return slot;
}

static void call_settle(ipcf_rpc_call *k) {
        call_settle_keep(k, false);
}

/* A call done with: settled, its slot and itself given back at once. */
static void call_end(ipcf_rpc_call *k) {
        call_recycle(k, call_settle_keep(k, true));
}

static int call_begin(ipcf_rpc_client *c, const ipcf_rpc_proc *p, uint32_t prog, uint32_t vers, uint32_t proc,
                      uint32_t flags, const void *in, const void *raw, size_t raw_len, void *out,
                      const ipcf_rpc_opts *o, ipcf_rpc_call **ret) {
        if (!c || !ret || (o && o->timeout_ms < -1))
                return -EINVAL;
        ipcf_rpc_call *k = call_get(c);
        if (!k)
                return -ENOMEM;
        k->c = c;
        k->p = p;
        k->prog = prog;
        k->vers = vers;
        k->proc = proc;
        k->flags = flags;
        k->out = out;
        k->raw = !p;
        k->slot = UINT32_MAX;
        k->chan = 0;
        k->result = -EINPROGRESS;
        k->info_out = o ? o->info : NULL;
        int tmo = o && o->timeout_ms ? o->timeout_ms : p && p->timeout_ms ? p->timeout_ms : c->default_timeout_ms;
        uint64_t now = now_ns();
        k->deadline = tmo < 0 ? UINT64_MAX : now + (uint64_t)tmo * 1000000u;
        /* encode the arguments: large opaque data is sent from its place */
        ipcf_xdr_encoder_sg(&k->enc, k->keep.encbuf, k->keep.cap_enc, 16384);
        k->enc.segs = k->keep.segs;
        k->enc.cap_segs = k->keep.cap_segs;
        k->keep.segs = NULL; /* the encoder's until enc_keep */
        int r = 0;
        if (p && p->encode_arg)
                r = in ? p->encode_arg(&k->enc, in) : -EINVAL;
        else if (raw_len)
                r = ipcf_xdr_put_fixed(&k->enc, raw, raw_len) < 0 || (raw_len & 3) ? -EINVAL : 0;
        if (r == 0)
                k->segs = ipcf_xdr_segments(&k->enc, &k->n_segs);
        k->total = k->enc.total;
        if (r == 0 && k->total > c->max_msg)
                r = -EMSGSIZE;
        k->n_pieces = k->total ? (k->total + RPC_PIECE - 1) / RPC_PIECE : 1;
        k->txs = k->keep.txs;
        k->acked = keep_grow(&k->keep.acked, &k->keep.cap_acked, (size_t)k->n_pieces);
        k->sendbuf = keep_grow(&k->keep.sendbuf, &k->keep.cap_sendbuf,
                               RPC_REQ_HDR + (size_t)MIN((uint64_t)RPC_PIECE, k->total));
        if (r == 0 && (!k->acked || !k->sendbuf))
                r = -ENOMEM;
        if (k->acked)
                memset(k->acked, 0, (size_t)k->n_pieces);
        if (r == 0)
                r = slot_take(c, k->deadline, &k->slot, &k->seq, k->session);
        if (r >= 0) {
                if (r == 1) /* it waited: read the clock again */
                        now = now_ns();
                uint64_t rto = atomic_load_explicit(&c->srtt_ns, memory_order_relaxed) * 4;
                k->rto_ns = MAX(rto, RTO_MIN_NS);
                k->last_progress = now;
                r = send_all(k, now);
                if (k->n_pieces > 1)
                        k->last_progress = now_ns(); /* (sending many took time) */
                if (r < 0 && k->sent)
                        r = -IPCF_EUNKNOWN;
        }
        if (r < 0) {
                /* none of it went: not run, and the slot's number not used;
                 * part of it went: "outcome unknown", the number used */
                if (!k->sent)
                        r = unsent_err(r);
                if (k->slot != UINT32_MAX && !k->sent)
                        slot_unuse(c, k->slot, k->seq);
                call_end(k);
                return r;
        }
        *ret = k;
        return 0;
}

int ipcf_rpc_start(ipcf_rpc_client *c, const ipcf_rpc_version *v, const ipcf_rpc_proc *p, const void *in,
                   void *out, const ipcf_rpc_opts *o, ipcf_rpc_call **ret) {
        if (!v || !p || (p->res_size && !out))
                return -EINVAL;
        uint32_t flags = (p->flags & IPCF_RPC_IDEMPOTENT ? RPCF_IDEMPOTENT : 0) |
                         (p->flags & IPCF_RPC_ONEWAY ? RPCF_ONEWAY : 0);
        return call_begin(c, p, v->prog, v->vers, p->number, flags, in, NULL, 0, p->res_size ? out : NULL, o, ret);
}

int ipcf_rpc_wait(ipcf_rpc_call *k, int timeout_ms) {
        if (!k || timeout_ms < -1)
                return -EINVAL;
        if (k->done)
                return k->result;
        int r = drive(k, timeout_ms);
        if (k->done)
                call_settle(k);
        return r;
}

int ipcf_rpc_cancel(ipcf_rpc_call *k) {
        if (!k)
                return -EINVAL;
        rpc_req rq = { .kind = RPC_CANCEL };
        bool tell = false;
        pthread_mutex_lock(&k->lock);
        /* "unless its result came first": a final answer already there (a
         * wait of 0 reads what the channel holds) is the call's outcome — a
         * call that ran and answered is not reported cancelled */
        for (size_t i = k->n_txs; i-- > 0 && !k->done && !k->cancelled;) {
                struct tx *t = k->txs[i];
                if (!t->live)
                        continue;
                ipcf_pending pend = t->pend;
                pthread_mutex_unlock(&k->lock);
                ssize_t n = ipcf_call_wait(&pend, 0, NULL);
                pthread_mutex_lock(&k->lock);
                if (n == -EAGAIN || n == -ETIMEDOUT || i >= k->n_txs || k->txs[i] != t || !t->live)
                        continue;
                if (n >= 0 || n == -EMSGSIZE) {
                        if (on_answer(k, t, n) == 1)
                                k->done = true;
                } else {
                        tx_finish(k, t); /* a transport error: the cancel decides */
                }
        }
        if (!k->done && !k->cancelled) {
                uint64_t by = now_ns() + RPC_CANCEL_VERDICT_MS * 1000000ull;
                k->verdict_by = MIN(by, k->deadline);
        }
        if (!k->done) {
                k->cancelled = true;
                for (size_t i = 0; i < k->n_txs; i++)
                        if (k->txs[i]->live)
                                ipcf_call_cancel(&k->txs[i]->pend); /* a local server sees it; a waiter wakes */
                /* a server on another host does not see that: say it in a
                 * message of our own (once; a oneway call is not waited for) */
                tell = k->sent && !k->told_cancel && !(k->flags & RPCF_ONEWAY);
                k->told_cancel = true;
                rq.slot = k->slot;
                rq.seq = k->seq;
                memcpy(rq.session, k->session, 16); /* (not the client's lock: a call
                                                      * may hold it making a session) */
        }
        pthread_mutex_unlock(&k->lock);
        ipcf_rpc_client *c = k->c;
        if (tell) {
                uint8_t rep[RPC_REP_HDR];
                plain_call(c, &rq, rep, sizeof(rep), deadline_from_timeout(RPC_CANCEL_WAIT_MS));
        }
        return 0;
}

ipcf_rpc_call *ipcf_rpc_call_free(ipcf_rpc_call *k) {
        if (!k)
                return NULL;
        if (!k->done) {
                ipcf_rpc_cancel(k);
                pthread_mutex_lock(&k->lock);
                k->done = true;
                k->result = -ECANCELED;
                pthread_mutex_unlock(&k->lock);
        }
        call_end(k);
        return NULL;
}

int ipcf_rpc_invoke(ipcf_rpc_client *c, const ipcf_rpc_version *v, const ipcf_rpc_proc *p, const void *in,
                    void *out, const ipcf_rpc_opts *o) {
        ipcf_rpc_call *k;
        int r = ipcf_rpc_start(c, v, p, in, out, o, &k);
        if (r < 0)
                return r;
        r = drive(k, -1); /* done: it waits as long as the call's deadline */
        call_end(k);      /* slot and call back in one go */
        return r;
}

int ipcf_rpc_call_raw(ipcf_rpc_client *c, uint32_t prog, uint32_t vers, uint32_t proc, uint32_t flags,
                      const void *args, size_t len, const ipcf_rpc_opts *o, void **ret_res, size_t *ret_len) {
        if (!ret_res || !ret_len || (len && !args))
                return -EINVAL;
        uint32_t f = (flags & IPCF_RPC_IDEMPOTENT ? RPCF_IDEMPOTENT : 0) | (flags & IPCF_RPC_ONEWAY ? RPCF_ONEWAY : 0);
        ipcf_rpc_call *k;
        int r = call_begin(c, NULL, prog, vers, proc, f, NULL, args, len, NULL, o, &k);
        if (r < 0)
                return r;
        r = drive(k, -1);
        if (r == 0) {
                *ret_res = k->raw_res;
                *ret_len = k->raw_len;
                k->raw_res = NULL;
        }
        ipcf_rpc_call_free(k);
        return r;
}

int ipcf_rpc_describe(ipcf_rpc_client *c, int timeout_ms, char **ret_text) {
        if (!c || !ret_text)
                return -EINVAL;
        uint8_t *buf = malloc(IPCF_CALL_MAX);
        if (!buf)
                return -ENOMEM;
        rpc_req rq = { .kind = RPC_DESCRIBE };
        ssize_t n = plain_call(c, &rq, buf, IPCF_CALL_MAX, deadline_from_timeout(timeout_ms));
        rpc_rep rp;
        int r = n < 0 ? unsent_err((int)n) : wire_parse_rep(buf, (size_t)n, &rp);
        if (r == 0 && rp.status != RS_OK)
                r = rp.status == RS_TOO_BIG ? -EMSGSIZE : -EPROTO;
        if (r == 0) {
                size_t len = (size_t)n - RPC_REP_HDR;
                char *t = malloc(len + 1);
                if (!t) {
                        r = -ENOMEM;
                } else {
                        memcpy(t, buf + RPC_REP_HDR, len);
                        t[len] = 0;
                        *ret_text = t;
                }
        }
        free(buf);
        return r;
}
