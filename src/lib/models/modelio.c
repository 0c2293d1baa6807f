/*
 * modelio.c — the library's side of mailbox and multicast flows: open with a
 * role, DATA frames out, DATA/RECEIPT/UNDELIVERED/LOST frames in (see
 * common/modelwire.h and models.h).
 *
 * The daemon is the peer of these flows; its frames are still validated
 * (length, kind): a bad one is -EPROTO and stays queued.
 * Who may call: mbox.c and mcast.c. Thread safety: as ports (writes
 * serialised, reads serialised); a receipt is awaited by reading the
 * handle, so one thread at a time should wait for receipts on one handle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/modelwire.h"
#include "common/util.h"
#include "common/wake.h"
#include "lib/core/lib.h"
#include "lib/models/models.h"

/* ---- per-handle counters ---------------------------------------------------- */

/* Receipts that came while nobody waited for them, oldest first, for
 * ipcf_mbox_receipt(); at most RQ_MAX (the oldest go first beyond). */
#define RQ_MAX 1024u
struct rq_entry {
        uint64_t seq;
        pid_t pid;
};

struct mstate {
        uint64_t flow_id;
        unsigned role;              /* enum ctl_role given to model_open (0: not a model's) */
        struct rq_entry *rq;        /* ring of RQ_MAX, allocated on first use */
        unsigned rq_head, rq_n;
        /* stream mailboxes: the unread rest of the last message, and its sender */
        uint8_t *left;
        size_t left_off, left_n;
        ipcf_peer_info left_from;
        uint64_t seq;               /* last DATA seq sent */
        uint64_t sent;              /* DATA frames written */
        int64_t undelivered;        /* -1 until the daemon said */
        int64_t lost;
        bool lost_from_reason;      /* the end reason's count is in lost */
};

static pthread_mutex_t slock = PTHREAD_MUTEX_INITIALIZER;
static struct mstate *states;
static size_t n_states;

/* The state of h (a port of flow flow_id), under slock; NULL if out of memory. */
static struct mstate *state_of(int h, uint64_t flow_id) {
        if ((size_t)h >= n_states) {
                size_t n = MAX((size_t)h + 1, n_states * 2);
                struct mstate *s = realloc(states, n * sizeof(*s));
                if (!s)
                        return NULL;
                memset(s + n_states, 0, (n - n_states) * sizeof(*s));
                states = s;
                n_states = n;
        }
        struct mstate *s = &states[h];
        if (s->flow_id != flow_id) {
                free(s->rq);
                free(s->left);
                memset(s, 0, sizeof(*s));
                s->flow_id = flow_id;
                s->undelivered = -1;
        }
        return s;
}

static void state_add_lost(int h, uint64_t flow_id, int64_t lost) {
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(h, flow_id);
        if (s)
                s->lost += lost;
        pthread_mutex_unlock(&slock);
}

/* The mailbox was destroyed: queued of our messages were still in it, and it
 * had taken `taken` from our flow; what we wrote beyond never left it. */
static void state_set_undelivered(int h, uint64_t flow_id, uint64_t queued, uint64_t taken) {
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(h, flow_id);
        if (s)
                s->undelivered = (int64_t)(queued + (s->sent > taken ? s->sent - taken : 0));
        pthread_mutex_unlock(&slock);
}

/* Keep a receipt nobody waits for (under slock). */
static void rq_push(struct mstate *s, uint64_t seq, pid_t pid) {
        if (!s->rq && !(s->rq = malloc(RQ_MAX * sizeof(*s->rq))))
                return;
        if (s->rq_n == RQ_MAX) {
                s->rq_head = (s->rq_head + 1) % RQ_MAX;
                s->rq_n--;
        }
        s->rq[(s->rq_head + s->rq_n) % RQ_MAX] = (struct rq_entry){ seq, pid };
        s->rq_n++;
}

/* Is h (of flow flow_id) a handle model_open made with one of the roles of
 * mask (bits 1u << role)? A plain port, a pipe end, or a mailbox handle
 * opened the other way is not: its calls are -EBADF, "not a live handle of
 * the right kind", rather than a frame written where nobody reads frames
 * (a send on a receiver's handle was lost untold) or a wait for frames that
 * never come. */
static bool has_role(int h, uint64_t flow_id, unsigned mask) {
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(h, flow_id);
        bool ok = s && s->role && (mask & (1u << s->role));
        pthread_mutex_unlock(&slock);
        return ok;
}

#define ROLE_BIT(r) (1u << (r))
#define SENDERS (ROLE_BIT(CTL_ROLE_MBOX_SEND) | ROLE_BIT(CTL_ROLE_MCAST))
#define RECEIVERS (ROLE_BIT(CTL_ROLE_MBOX_RECV) | ROLE_BIT(CTL_ROLE_MCAST))
#define MAILBOXES (ROLE_BIT(CTL_ROLE_MBOX_SEND) | ROLE_BIT(CTL_ROLE_MBOX_RECV))

/* Take the kept receipt of seq (any: the oldest, if seq is 0). True if found. */
static bool rq_take(int h, uint64_t flow_id, uint64_t seq, uint64_t *ret_seq, pid_t *ret_pid) {
        bool found = false;
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(h, flow_id);
        for (unsigned i = 0; s && i < s->rq_n && !found; i++) {
                struct rq_entry *e = &s->rq[(s->rq_head + i) % RQ_MAX];
                if (seq && e->seq != seq)
                        continue;
                *ret_seq = e->seq;
                *ret_pid = e->pid;
                /* Close the gap: shift the older ones up by one. */
                for (unsigned k = i; k > 0; k--)
                        s->rq[(s->rq_head + k) % RQ_MAX] = s->rq[(s->rq_head + k - 1) % RQ_MAX];
                s->rq_head = (s->rq_head + 1) % RQ_MAX;
                s->rq_n--;
                found = true;
        }
        pthread_mutex_unlock(&slock);
        return found;
}

/* ---- open, send -------------------------------------------------------------- */

int model_open(const char *name, unsigned role, const ipcf_qos *qos, int timeout_ms) {
        ipcf_qos q;
        if (qos)
                q = *qos;
        else
                ipcf_qos_init(&q);
        /* The broker's terms (it enforces them too): bounded messages. */
        q.capacity = IPCF_CAPACITY_BOUNDED;
        q.mode = IPCF_MODE_MESSAGE;
        int h = alloc_role(name, &q, role, timeout_ms, NULL);
        port *p = h >= 0 ? handle_get_port(h) : NULL;
        if (p) {
                /* The peer is the daemon, which rings nobody when it dies:
                 * ipcf_fd of the handle watches its pidfd too. */
                p->fd_with_peer = true;
                pthread_mutex_lock(&slock);
                struct mstate *s = state_of(h, p->flow_id);
                if (s)
                        s->role = role;
                pthread_mutex_unlock(&slock);
                handle_put(p);
                if (!s) {
                        ipcf_dealloc(h, NULL);
                        return -ENOMEM;
                }
        }
        return h;
}

ssize_t model_send(int h, const void *buf, size_t len, uint32_t flags, uint64_t *ret_seq,
                   int timeout_ms) {
        if ((!buf && len) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        if (!has_role(h, p->flow_id, SENDERS)) {
                handle_put(p);
                return -EBADF;
        }
        /* The daemon at the other end writes no end record when it dies:
         * looked at before each send, so that a send that starts after its
         * death fails -ECONNRESET instead of filling a ring nobody reads.
         * (One that races with the death may still succeed: it is counted
         * in ipcf_mbox_undelivered like the rest.) */
        (void)port_peer_exited(p);
        /* Numbered under the write lock's order: take the number, then write;
         * a failed write leaves a gap, which is harmless (numbers only match
         * receipts). */
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(h, p->flow_id);
        uint64_t seq = s ? ++s->seq : 0;
        pthread_mutex_unlock(&slock);
        struct mw_hdr hdr = { .kind = MW_DATA, .flags = flags, .seq = seq };
        ssize_t r = port_write2(p, &hdr, sizeof(hdr), buf, len, timeout_ms);
        if (r >= 0) {
                pthread_mutex_lock(&slock);
                s = state_of(h, p->flow_id);
                if (s)
                        s->sent++;
                pthread_mutex_unlock(&slock);
        }
        handle_put(p);
        if (r < 0)
                return r;
        if (ret_seq)
                *ret_seq = seq;
        return (ssize_t)len;
}

/* ---- receive ----------------------------------------------------------------- */

struct rx_ctx {
        int h;
        uint64_t flow_id;
        _Atomic bool *kept;         /* the port's rx_kept: whether bytes are kept (under slock) */
        void *buf;
        size_t cap;
        ipcf_peer_info *sender;
        uint64_t want_seq;          /* waiting for this receipt (0: for DATA) */
        bool want_any;              /* waiting for any receipt */
        pid_t receiver;
        uint64_t got_seq;           /* the receipt found (want_any) */
        bool done;                  /* the frame asked for was found */
        bool left;                  /* a stream message was read in part */
};

/* Stream mailboxes: keep the rest of a message read in part (under slock).
 * Returns 0, or -ENOMEM (then the message is not consumed). */
static int left_keep(struct rx_ctx *x, const uint8_t *rest, size_t n) {
        int r = -ENOMEM;
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(x->h, x->flow_id);
        uint8_t *copy = s ? malloc(n) : NULL;
        if (copy) {
                memcpy(copy, rest, n);
                free(s->left);
                s->left = copy;
                s->left_off = 0;
                s->left_n = n;
                if (x->sender)
                        s->left_from = *x->sender;
                if (x->kept)
                        atomic_store(x->kept, true);
                r = 0;
        }
        pthread_mutex_unlock(&slock);
        return r;
}

/* Stream mailboxes: read from the kept rest of p (handle h) first. Returns
 * the bytes given (0: nothing kept). */
static size_t left_take(int h, port *p, void *buf, size_t cap, ipcf_peer_info *ret_from) {
        size_t n = 0;
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(h, p->flow_id);
        if (s && s->left_n && cap) {
                n = MIN(cap, s->left_n);
                memcpy(buf, s->left + s->left_off, n);
                s->left_off += n;
                s->left_n -= n;
                if (ret_from)
                        *ret_from = s->left_from;
                if (!s->left_n) {
                        free(s->left);
                        s->left = NULL;
                }
        }
        atomic_store(&p->rx_kept, s && s->left_n);
        pthread_mutex_unlock(&slock);
        return n;
}

/* Called under the read lock with one frame (in shared memory). Returns >= 0
 * to consume it, < 0 to leave it queued. */
static ssize_t rx_frame(void *arg, const void *data, size_t len) {
        struct rx_ctx *x = arg;
        struct mw_hdr h;
        if (len < sizeof(h))
                return -EPROTO;
        memcpy(&h, data, sizeof(h));
        size_t plen = len - sizeof(h);
        switch (h.kind) {
        case MW_DATA: {
                if (x->want_seq || x->want_any)
                        return -EPROTO; /* a sender's flow carries no data in */
                size_t n = plen;
                if (plen > x->cap) {
                        /* A stream gives what fits and keeps the rest. */
                        if (!(h.flags & MW_F_STREAM) || x->cap == 0)
                                return -EMSGSIZE;
                        n = x->cap;
                }
                if (x->sender) {
                        memset(x->sender, 0, sizeof(*x->sender));
                        x->sender->pid = (pid_t)h.pid;
                        x->sender->uid = (uid_t)h.uid;
                        x->sender->gid = (gid_t)h.gid;
                }
                if (n < plen) {
                        int e = left_keep(x, (const uint8_t *)data + sizeof(h) + n, plen - n);
                        if (e < 0)
                                return e;
                        x->left = true;
                }
                memcpy(x->buf, (const uint8_t *)data + sizeof(h), n);
                x->done = true;
                return (ssize_t)n;
        }
        case MW_RECEIPT:
                if (plen)
                        return -EPROTO;
                if (x->want_any || (x->want_seq && h.seq == x->want_seq)) {
                        x->receiver = (pid_t)h.pid;
                        x->got_seq = h.seq;
                        x->done = true;
                } else {
                        /* Nobody waits for it now: kept for ipcf_mbox_receipt(). */
                        pthread_mutex_lock(&slock);
                        struct mstate *s = state_of(x->h, x->flow_id);
                        if (s)
                                rq_push(s, h.seq, (pid_t)h.pid);
                        pthread_mutex_unlock(&slock);
                }
                return 0;
        case MW_UNDELIVERED: {
                uint64_t taken;
                if (plen != 8)
                        return -EPROTO;
                memcpy(&taken, (const uint8_t *)data + sizeof(h), 8);
                state_set_undelivered(x->h, x->flow_id, h.seq, le64toh(taken));
                return 0;
        }
        case MW_LOST:
                if (plen)
                        return -EPROTO;
                state_add_lost(x->h, x->flow_id, (int64_t)h.seq);
                return 0;
        default:
                return -EPROTO;
        }
}

/* Read frames until one x asks for, or the timeout. */
static ssize_t rx_until(port *p, struct rx_ctx *x, int timeout_ms) {
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        for (;;) {
                int t = timeout_ms < 0 ? -1 : deadline_poll_ms(deadline);
                if (timeout_ms > 0 && t == 0)
                        return -ETIMEDOUT;
                ssize_t r = port_read_with(p, t, rx_frame, x);
                /* Nothing now (a wait of 0 looks at no pidfd): if the daemon
                 * died, say so rather than -EAGAIN for ever (once the queue
                 * is read: the read then sees the flow ended). */
                if ((r == -EAGAIN || r == -ETIMEDOUT) && !atomic_load(&p->peer_gone) &&
                    port_peer_exited(p))
                        continue;
                if (r < 0 || x->done)
                        return r;
        }
}

ssize_t model_recv(int h, void *buf, size_t cap, ipcf_peer_info *ret_sender, int timeout_ms) {
        if ((!buf && cap) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        if (!has_role(h, p->flow_id, RECEIVERS)) {
                handle_put(p);
                return -EBADF;
        }
        ssize_t r = (ssize_t)left_take(h, p, buf, cap, ret_sender);
        if (r > 0) {
                handle_put(p);
                return r;
        }
        struct rx_ctx x = { .h = h, .flow_id = p->flow_id, .kept = &p->rx_kept, .buf = buf,
                            .cap = cap, .sender = ret_sender };
        r = rx_until(p, &x, timeout_ms);
        /* Bytes kept in this process (rx_kept says so to a readiness set,
         * which looks at the port): make the descriptor say so too (a
         * poller would else wait for the next message). */
        if (x.left)
                wake_ring(p->bell_rx);
        handle_put(p);
        return r;
}

int model_wait_receipt(int h, uint64_t seq, uint64_t *ret_seq, pid_t *ret_pid, int timeout_ms) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        if (!has_role(h, p->flow_id, ROLE_BIT(CTL_ROLE_MBOX_SEND))) {
                handle_put(p);
                return -EBADF;
        }
        uint64_t got = 0;
        pid_t pid = 0;
        ssize_t r = 0;
        /* Already in (taken in by another wait)? Else read until it comes. */
        if (!rq_take(h, p->flow_id, seq, &got, &pid)) {
                struct rx_ctx x = { .h = h, .flow_id = p->flow_id, .want_seq = seq, .want_any = !seq };
                r = rx_until(p, &x, timeout_ms);
                got = x.got_seq;
                pid = x.receiver;
        }
        handle_put(p);
        if (r < 0)
                return (int)r;
        if (ret_seq)
                *ret_seq = got;
        if (ret_pid)
                *ret_pid = pid;
        return 0;
}

void model_drain(int h) {
        port *p = handle_get_port(h);
        if (!p)
                return;
        /* want_seq that never matches: every frame is taken in, none waited for. */
        struct rx_ctx x = { .h = h, .flow_id = p->flow_id, .want_seq = UINT64_MAX };
        for (int i = 0; i < 1 << 16; i++)
                if (port_read_with(p, 0, rx_frame, &x) < 0)
                        break;
        handle_put(p);
}

int64_t model_undelivered(int h) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        uint64_t id = p->flow_id;
        if (!has_role(h, id, MAILBOXES)) {
                handle_put(p);
                return -EBADF;
        }
        bool dead = port_peer_exited(p);
        handle_put(p);
        model_drain(h);
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(h, id);
        int64_t n = s ? s->undelivered : 0;
        pthread_mutex_unlock(&slock);
        if (n >= 0)
                return n;
        /* Destroyed, but no frame (the ring was full): the numbers are in
         * the end reason. */
        ipcf_reason why;
        unsigned long long q, t;
        bool ended = ipcf_end_reason(h, &why) == 0 && why.code != IPCF_END_NONE;
        if (ended && sscanf(why.text, "mailbox destroyed (%llu queued, %llu taken)", &q, &t) == 2) {
                state_set_undelivered(h, id, q, t);
        } else if (dead || (ended && why.code == IPCF_END_PEER_DIED)) {
                /* The mailbox's daemon died, or (on another host) the
                 * mailbox's host or the way to it did: every message sent
                 * that no receiver was seen to take is undelivered — the
                 * ones it held, the ones it never read from our ring, and
                 * any a receiver had in its queue, unread (that receiver may
                 * still read them). The count of those taken is in our
                 * flow's header, written by our daemon while it lived (its
                 * relay's copy of the other host's count, for a mailbox
                 * there), before it ended the flow: read after the end.
                 * Never more than we sent. */
                p = handle_get_port(h);
                uint64_t delivered =
                        p ? atomic_load_explicit(&p->hdr->broker.delivered, memory_order_acquire) : 0;
                if (p)
                        handle_put(p);
                pthread_mutex_lock(&slock);
                s = state_of(h, id);
                if (s)
                        s->undelivered = (int64_t)(s->sent - MIN(delivered, s->sent));
                pthread_mutex_unlock(&slock);
        }
        pthread_mutex_lock(&slock);
        s = state_of(h, id);
        n = s && s->undelivered >= 0 ? s->undelivered : 0;
        pthread_mutex_unlock(&slock);
        return n;
}

int64_t model_lost(int h) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        uint64_t id = p->flow_id;
        handle_put(p);
        if (!has_role(h, id, ROLE_BIT(CTL_ROLE_MCAST)))
                return -EBADF;
        model_drain(h); /* LOST frames not yet read (a destroy's last one) */
        /* A destroyed group whose last frame found no room says it in the
         * end reason: counted once. */
        ipcf_reason why;
        unsigned long long owed;
        bool from_reason = ipcf_end_reason(h, &why) == 0 &&
                           sscanf(why.text, "group destroyed (%llu not received)", &owed) == 1;
        pthread_mutex_lock(&slock);
        struct mstate *s = state_of(h, id);
        if (s && from_reason && !s->lost_from_reason) {
                s->lost_from_reason = true;
                s->lost += (int64_t)owed;
        }
        int64_t n = s ? s->lost : 0;
        pthread_mutex_unlock(&slock);
        return n;
}
