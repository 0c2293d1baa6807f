/*
 * mbox.c — mailboxes: named queues in the daemon with many senders and many
 * receivers; each message goes to exactly one receiver (docs/MODELS.md).
 *
 * FLOW OF A MESSAGE
 *   sender's ring 0 ──(pump: read while the queue has room)──► mailbox FIFO
 *   mailbox FIFO ──(round robin over receivers with ring room)──► receiver's
 *   ring 1, remembered as IN FLIGHT (its record position) until the receiver's
 *   tail passes it: then it is delivered (a receipt goes back to the sender if
 *   it asked) and freed.
 *   CUT-THROUGH: while the FIFO is empty, a message of MBOX_CUT_MIN bytes
 *   or more read from a sender goes straight into the ring of a receiver
 *   with room (the same round robin): one copy, ring to ring. Its block in
 *   the daemon holds the header fields only; the payload stays HELD in the
 *   sender's ring — the daemon reads on past it but publishes the sender's
 *   tail only up to its oldest held record (ring.h, HOLD; the message count
 *   is published as read: a held record costs the sender bytes, not
 *   messages) — until the receiver takes its copy (released, delivered). A
 *   receiver's ring is never read back: it may write it. A held payload is
 *   copied into its block (SPILLED) from the sender's ring when its
 *   receiver ends (re-queued), when its sender ends (before its side ends
 *   and its ring is unmapped), and when the sender's reading has gone its
 *   queue's capacity less two of its largest records past it (at least
 *   half; sender_hold_max, sender_spill_old: a receiver that does not read
 *   holds at most that much of a sender's queue, and a sender short of
 *   room — a write needs at most two records' room, a pad and the record —
 *   has always written since the last pump, so no wake-up is needed for
 *   held records). Half, as first, spilled about half of the 64 KiB
 *   messages cut through under cmp-thr (a receiver's ring holds as many
 *   records as a sender's): copied twice after all.
 *
 * INVARIANTS
 *   - A message is in exactly one place: a sender's ring (unread), the FIFO,
 *     or one receiver's in-flight list (then also in its ring; a held one's
 *     payload also still in its sender's ring, which the sender may not
 *     reuse yet). Nothing is dropped: a receiver that ends (deallocates or
 *     dies) gives its in-flight messages back to the head of the FIFO, in
 *     order, for the others (held payloads copied from their senders'
 *     rings). What a receiver consumed is its ring's position: one that
 *     forges it gets back what it read (it could read without consuming).
 *   - The FIFO takes a message while it holds fewer than max_msgs messages
 *     and fewer than max_bytes bytes (fifo_full): at most max_msgs messages
 *     and max_bytes + max_msg - 1 bytes (a message above max_bytes still
 *     passes, and a large one is never held back behind small ones); when
 *     full, senders are not read, so their rings fill and their own full
 *     policy (block or fail) applies: backpressure without daemon memory.
 *   - Destroy: receivers' flows end "mailbox destroyed" (they read what they
 *     have, then -EPIPE); every message still in the daemon or unread in a
 *     sender's ring is counted undelivered to its sender: an MW_UNDELIVERED
 *     frame and the count in its flow's end reason.
 *   - The daemon never blocks: a full ring is a wake-up armed (bport_arm_tx).
 *
 * SPIN: after a pump that moved messages, the mailbox watches its senders'
 * rings (and, with messages queued, its full receivers' room) instead of
 * sleeping, for at most MBOX_SPIN_NS (loop_spin, as the relay does): the
 * want words of the senders it watches (the first MBOX_SPIN_WATCH) are
 * taken back meanwhile, so their next write rings nobody and is taken in
 * the same wake-up of the daemon. A window that
 * closes with nothing is a miss; MBOX_SPIN_MISSES misses in a row leave out
 * the next 4, 8, ... MBOX_SPIN_SKIP_MAX windows (sparse traffic costs at
 * most one window in 1024). The spin only looks (validated ring reads);
 * the pump it ends in does the work and re-arms the wake-ups.
 *
 * RUN SLOTS: after every pump the daemon writes, in its run slot of each
 * of the mailbox's flows (bport_run_note, struct flow_run), the CPU it runs
 * on and whether it sleeps as far as this mailbox goes (no window armed, no
 * kick to come). A client waiting on its flow reads them as it reads a
 * flow's peer (src/lib/core/wait.c): it spins only while the daemon is
 * awake on another CPU, and sleeps at once when the daemon shares its CPU
 * (spinning there would only delay it). Before, the slot was never written
 * (CPU 0, awake): a client on CPU 0 never spun and every round trip paid
 * its futex wake-up; one on another CPU spun even for a sleeping daemon.
 *
 * Who may call: the dispatcher (MBOX_CREATE, MBOX_DESTROY), models.c (its
 * resolver: ALLOC of a mailbox role; shutdown), broker callbacks.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/growfifo.h"
#include "common/modelwire.h"
#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/log.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/broker.h"
#include "daemon/flows/resolve.h"
#include "daemon/models/modelmsg.h"
#include "daemon/models/models.h"

#define MBOX_DEF_MSGS 1024u
#define MBOX_MAX_MSGS IPCF_MODEL_MAX_MSGS
#define MBOX_DEF_BYTES (1ull << 20)
#define MBOX_MAX_BYTES IPCF_MBOX_MAX_BYTES
/* Messages moved per wake-up before the loop serves others. */
#define MBOX_BUDGET 4096
/* Receipts a sender may have waiting for room in its ring (a sender that
 * never reads them loses the excess, only those). */
#define MBOX_RCPT_MAX 4096u
/* SPIN (above): the window, the misses in a row that start a back-off, its
 * longest (windows left out), and the senders/receivers looked at per look. */
#define MBOX_SPIN_NS 50000u
#define MBOX_SPIN_MISSES 2u
#define MBOX_SPIN_SKIP_MAX 1024u
#define MBOX_SPIN_WATCH 32u
/* CUT-THROUGH only for payloads of at least this many bytes: below, the
 * copy saved costs less than the bookkeeping of a held record (64-byte
 * messages: 3.4-3.6 M msgs/s through the FIFO, 2.6 M cut through). */
#define MBOX_CUT_MIN 4096u

typedef model_msg mmsg;

struct mend;

/* A message in a receiver's ring; m has its payload unless hs is set
 * (CUT-THROUGH: held in hs's ring, its held record number hno). */
struct inflight {
        uint64_t pos;
        mmsg *m;
        struct mend *hs;
        uint64_t hno;
};

/* A record of a sender's ring held for a receiver (CUT-THROUGH): where it
 * starts (with the counts, as published while it is held), and the
 * in-flight entry (its receiver, its number there). */
struct held {
        ring_mark at;
        struct mend *r;
        uint64_t rno;
        bool done;
};

struct rcpt {
        uint64_t seq;
        uint32_t pid;
};

typedef struct mbox mbox;

typedef struct mend {
        struct idmap_node node;       /* senders: node.id = flow id */
        mbox *mb;
        bport *b;
        bool recv;
        struct dlist link;            /* mbox.senders / mbox.receivers */
        /* receiver: in-flight messages (struct inflight), oldest first, each
         * with its fixed number (growfifo_by_no), and how many are held */
        growfifo fl;
        unsigned fl_held, fl_rcpt;    /* of them: held, wanting a receipt */
        bool full;                    /* waits for room */
        /* sender: records held in its ring (struct held), oldest first, numbered */
        growfifo hl;
        /* sender: DATA frames taken from its ring, and taken by a receiver */
        uint64_t taken, delivered;
        /* sender: receipts waiting for room in its ring (struct rcpt), at
         * most MBOX_RCPT_MAX */
        growfifo rc;
} mend;

struct mbox {
        model_obj obj;                /* name, owner, on the models' list */
        uint32_t flags, max_msgs, max_msg;
        uint64_t max_bytes;
        mmsg *head, *tail;            /* the FIFO */
        uint32_t n_msgs;
        uint64_t n_bytes;
        struct dlist senders, receivers;
        uint32_t n_senders, n_receivers;
        idmap sender_ids;
        uint64_t msgs_in, msgs_out, undelivered;
        uint64_t msgs_cut, msgs_spilled;  /* CUT-THROUGH: ring to ring, and copied in after all */
        bool pumping;
        /* SPIN */
        loop_spin spin;
        unsigned spin_miss, spin_skip;
        uint64_t spin_hits, spin_misses;
};

static void mbox_pump(mbox *mb);
static void mbox_spin(mbox *mb);

/* ---- the FIFO --------------------------------------------------------------- */

static void fifo_push(mbox *mb, mmsg *m) {
        m->next = NULL;
        if (mb->tail)
                mb->tail->next = m;
        else
                mb->head = m;
        mb->tail = m;
        mb->n_msgs++;
        mb->n_bytes += m->len;
}

static void fifo_push_front(mbox *mb, mmsg *m) {
        m->next = mb->head;
        mb->head = m;
        if (!mb->tail)
                mb->tail = m;
        mb->n_msgs++;
        mb->n_bytes += m->len;
}

static mmsg *fifo_pop(mbox *mb) {
        mmsg *m = mb->head;
        if (!m)
                return NULL;
        mb->head = m->next;
        if (!mb->head)
                mb->tail = NULL;
        mb->n_msgs--;
        mb->n_bytes -= m->len;
        return m;
}

static bool fifo_full(const mbox *mb) {
        return mb->n_msgs >= mb->max_msgs || mb->n_bytes >= mb->max_bytes;
}

/* ---- frames back to a sender -------------------------------------------------- */

/* The last frame to a sender of a destroyed mailbox: seq = its messages
 * still queued here, payload = u64 messages taken from it in all. */
static void frame_undelivered(bport *b, uint64_t queued, uint64_t taken) {
        void *p;
        struct mw_hdr h = { .kind = MW_UNDELIVERED, .seq = queued };
        if (bport_reserve(b, sizeof(h) + 8, &p) < 0)
                return; /* the end reason carries the same numbers */
        uint64_t t = htole64(taken);
        memcpy(p, &h, sizeof(h));
        memcpy((uint8_t *)p + sizeof(h), &t, 8);
        bport_commit(b, sizeof(h) + 8);
}

/* Send the receipts a sender is owed, as far as its ring has room. */
static void sender_flush_rcpts(mend *s) {
        while (s->rc.n) {
                struct rcpt *r = growfifo_at(&s->rc, 0);
                if (!model_frame_put(s->b, MW_RECEIPT, r->seq, r->pid)) {
                        if (bport_arm_tx(s->b, sizeof(struct mw_hdr)))
                                continue;
                        return;
                }
                growfifo_pop(&s->rc);
        }
}

/* A receiver took message m: the sender's count of its messages taken goes
 * up (in its flow's header, where it reads it if the daemon dies), and it
 * gets its receipt if it asked. */
static void sender_delivered(mbox *mb, const mmsg *m, pid_t receiver) {
        struct idmap_node *n = idmap_find(&mb->sender_ids, m->sender);
        if (!n)
                return; /* the sender is gone */
        mend *s = container_of(n, mend, node);
        if (s->b->mem)
                atomic_store_explicit(&flow_hdr_of(s->b->mem)->broker.delivered, ++s->delivered,
                                      memory_order_release);
        if (!(m->flags & MW_F_RECEIPT))
                return;
        if (growfifo_room(&s->rc, MBOX_RCPT_MAX) < 0)
                return; /* bounded: a sender that never reads loses receipts */
        *(struct rcpt *)growfifo_push(&s->rc) = (struct rcpt){ m->seq, (uint32_t)receiver };
        sender_flush_rcpts(s);
}

/* ---- receivers ------------------------------------------------------------- */

/* In-flight entry i of r (from the oldest); number no (NULL: not there any
 * more); held record number no of s; the oldest held record of s. */
static struct inflight *fl_nth(const mend *r, unsigned i) { return growfifo_at(&r->fl, i); }
static struct inflight *fl_at(const mend *r, uint64_t no) { return growfifo_by_no(&r->fl, no); }
static struct held *hl_at(const mend *s, uint64_t no) { return growfifo_by_no(&s->hl, no); }
static struct held *hl_oldest(const mend *s) { return growfifo_at(&s->hl, 0); }

/* Let s reuse its ring up to its oldest held record (all it wrote: none). */
static void sender_publish(mend *s) {
        bport_publish_at(s->b, s->hl.n ? hl_oldest(s)->at : bport_mark(s->b));
}

/* Held record no of s is no longer needed: the records done at the front
 * go, and s may reuse their room. */
static void held_release(mend *s, uint64_t no) {
        struct held *h = hl_at(s, no);
        if (h)
                h->done = true;
        while (s->hl.n && hl_oldest(s)->done)
                growfifo_pop(&s->hl);
        sender_publish(s);
}

/* SPILL: copy the held payload of r's in-flight entry e into its block and
 * release the sender's record. The bounds were checked when the record was
 * read (the sender may have rewritten its bytes since: its own message). */
static void fl_spill(mend *r, struct inflight *e) {
        mend *s = e->hs;
        if (!s)
                return;
        struct held *h = hl_at(s, e->hno);
        const uint8_t *rec = h ? bport_payload_at(s->b, h->at.tail) : NULL;
        if (rec)
                memcpy(e->m->data, rec + sizeof(struct mw_hdr), e->m->len);
        else /* cannot happen: a sender is spilled before its side ends */
                memset(e->m->data, 0, e->m->len);
        s->mb->msgs_spilled++;
        e->hs = NULL;
        r->fl_held--;
        held_release(s, e->hno);
}

/* Spill s's oldest held record (or let it go if its entry is gone). */
static void sender_spill_first(mend *s) {
        struct held *h = hl_oldest(s);
        struct inflight *e = h->done ? NULL : fl_at(h->r, h->rno);
        if (e && e->hs == s)
                fl_spill(h->r, e);
        else
                held_release(s, s->hl.first);
}

/* Spill every record s holds (it ends: before its ring is unmapped). */
static void sender_unhold(mend *s) {
        while (s->hl.n)
                sender_spill_first(s);
}

/* How far s's reading may go past its oldest held record: its queue's
 * capacity less two of its largest records (the most a write can need: a
 * pad to the ring's end and the record), and at least half of it. A sender
 * short of room then always has unread records (held + free < capacity). */
static uint64_t sender_hold_max(const mend *s) {
        uint64_t cap = s->b->prod.cap, two = 2 * ring_rec_size(s->b->cons.max_msg);
        return MAX(cap / 2, cap > two ? cap - two : 0);
}

/* Spill s's oldest held records while its reading is sender_hold_max past
 * them: a receiver that does not read takes at most that much of a
 * sender's queue (in bytes; held records cost it no messages). */
static void sender_spill_old(mend *s) {
        uint64_t cur = bport_mark(s->b).tail, max = sender_hold_max(s);
        while (s->hl.n && cur - hl_oldest(s)->at.tail >= max)
                sender_spill_first(s);
}

/* Retire what the receiver has consumed: delivered (a held record is
 * released). Returns true if we want to learn of its next consume: a
 * message in flight wants a receipt. (Held records need no wake-up: a
 * sender's reading stays within sender_hold_max of its oldest held record,
 * sender_spill_old, so a sender short of room has written since the last
 * pump — its data rang us, or we spin — and the pump that reads it
 * releases what was taken and spills what is old.) */
static bool recv_retire(mend *r) {
        mbox *mb = r->mb;
        while (r->fl.n && bport_passed(r->b, fl_nth(r, 0)->pos)) {
                struct inflight e = *fl_nth(r, 0);
                growfifo_pop(&r->fl);
                if (e.hs) {
                        r->fl_held--;
                        held_release(e.hs, e.hno);
                }
                if (e.m->flags & MW_F_RECEIPT)
                        r->fl_rcpt--;
                mb->msgs_out++;
                sender_delivered(mb, e.m, r->b->peer.pid);
                model_msg_free(e.m);
        }
        return r->fl_rcpt > 0;
}

/* Write m (its payload from data) to receiver r, in flight (held in hs's
 * ring, as its record number hno, if hs). 0, -EAGAIN (no room), or < 0 (r
 * is broken). */
static int recv_write(mend *r, mmsg *m, const void *data, mend *hs, uint64_t hno) {
        uint64_t pos;
        if (growfifo_room(&r->fl, UINT32_MAX) < 0)
                return -ENOMEM;
        int e = model_msg_put_data(r->b, m, data, m->seq, (r->mb->flags & IPCF_MBOX_STREAM) ? MW_F_STREAM : 0,
                                   &pos);
        if (e < 0)
                return e;
        *(struct inflight *)growfifo_push(&r->fl) = (struct inflight){ pos, m, hs, hno };
        if (hs)
                r->fl_held++;
        if (m->flags & MW_F_RECEIPT)
                r->fl_rcpt++;
        return 0;
}

/* The next receiver in turn with room for m (payload at data): m written
 * to it (in flight; held in hs's ring if hs), and it goes to the back of
 * the turn. NULL if none has room (each is marked full, its wake-up armed). */
static mend *recv_give(mbox *mb, mmsg *m, const void *data, mend *hs, uint64_t hno) {
        dlist_for_each(pos, &mb->receivers) {
                mend *r = dlist_entry(pos, mend, link);
                if (r->full)
                        continue;
                int e = recv_write(r, m, data, hs, hno);
                /* Full: arm the wake-up; if room came meanwhile (the
                 * receiver consumed before it could see the flag),
                 * write now — no wake-up will come for it. */
                if (e == -EAGAIN && bport_arm_tx(r->b, sizeof(struct mw_hdr) + m->len))
                        e = recv_write(r, m, data, hs, hno);
                if (e == 0) {
                        /* Round robin: the receiver served goes to the back. */
                        dlist_del(&r->link);
                        dlist_add_tail(&mb->receivers, &r->link);
                        return r;
                }
                r->full = true;
                if (e == -EPROTO)
                        /* It corrupted its ring: end it (dropped on the next pass). */
                        bport_end(r->b, IPCF_END_PROTOCOL, "broken ring");
        }
        return NULL;
}

/* A receiver ends: what it did not consume goes back to the FIFO's head, in
 * order (held payloads copied from their senders' rings, never from its
 * own); then its side is closed. */
static void recv_drop(mend *r, const char *why) {
        mbox *mb = r->mb;
        recv_retire(r);
        for (unsigned i = r->fl.n; i-- > 0;) {
                struct inflight *e = fl_nth(r, i);
                fl_spill(r, e);
                fifo_push_front(mb, e->m);
        }
        if (r->fl.n)
                log_debug("mbox %s: receiver pid %d %s with %u unread: re-queued", mb->obj.name,
                          (int)r->b->peer.pid, why, r->fl.n);
        growfifo_free(&r->fl);
        dlist_del(&r->link);
        mb->n_receivers--;
        r->b = bport_free(r->b);
        free(r);
}

/* ---- senders ----------------------------------------------------------------- */

/* The messages still in an ended sender's ring (the FIFO was full: we had
 * stopped reading it), counted as they are read away: validated records,
 * bounded by the ring. */
static uint64_t sender_count_unread(mend *s) {
        uint64_t n = 0;
        const void *p;
        while (n < MW_RING_MAX / REC_HDR && bport_peek(s->b, &p) >= 0) {
                bport_consume(s->b);
                n++;
        }
        return n;
}

/* Before its side ends (then its ring is unmapped): its held records spilled. */
static void sender_drop(mend *s) {
        mbox *mb = s->mb;
        sender_unhold(s);
        growfifo_free(&s->hl);
        idmap_del(&mb->sender_ids, &s->node);
        dlist_del(&s->link);
        mb->n_senders--;
        growfifo_free(&s->rc);
        s->b = bport_free(s->b);
        free(s);
}

/* Read up to budget messages of s: into a receiver's ring (CUT-THROUGH,
 * while the FIFO is empty), else into the FIFO while it has room. Returns
 * how many, or -1 if s broke the protocol (it is to be dropped); *ret_dry
 * says whether it stopped at an empty ring (not for the budget, a full
 * FIFO or a lack of memory). */
static int sender_read(mend *s, int budget, bool *ret_dry) {
        mbox *mb = s->mb;
        int n = 0;
        *ret_dry = false;
        while (n < budget && !fifo_full(mb)) {
                mmsg *m;
                const void *data;
                int k = model_msg_peek(s->b, mb->max_msg, &m, &data);
                if (k == -EPROTO)
                        return -1;
                *ret_dry = k == 0;
                if (k <= 0)
                        break; /* none now (armed), or no memory: the next wake-up */
                ring_mark at = bport_mark(s->b);
                mend *r = NULL;
                if (m->len >= MBOX_CUT_MIN && !mb->head && !dlist_empty(&mb->receivers) &&
                    growfifo_room(&s->hl, UINT32_MAX) == 0) {
                        uint64_t hno = s->hl.first + s->hl.n;
                        r = recv_give(mb, m, data, s, hno);
                        if (r) {
                                *(struct held *)growfifo_push(&s->hl) =
                                        (struct held){ at, r, r->fl.first + r->fl.n - 1, false };
                                mb->msgs_cut++;
                        }
                }
                if (!r) {
                        memcpy(m->data, data, m->len);
                        fifo_push(mb, m);
                }
                bport_consume(s->b);
                /* Nothing held: its room at once, as without cut-through
                 * (else sender_publish below, up to the oldest held). */
                if (!s->hl.n)
                        sender_publish(s);
                mb->msgs_in++;
                s->taken++;
                n++;
        }
        sender_spill_old(s);
        sender_publish(s);
        return n;
}

/* ---- SPIN (see the top) ------------------------------------------------------ */

/* Is there work a pump would do now? Senders' records while the FIFO has
 * room, room in a full receiver while messages are queued: ring reads
 * only (each index validated as ring_peek does), at most MBOX_SPIN_WATCH
 * of each. */
static bool mbox_spin_ready(loop_spin *sp) {
        mbox *mb = container_of(sp, mbox, spin);
        unsigned k = 0;
        if (!fifo_full(mb))
                dlist_for_each(pos, &mb->senders) {
                        if (k++ >= MBOX_SPIN_WATCH)
                                break;
                        if (bport_rx_ready(dlist_entry(pos, mend, link)->b))
                                return true;
                }
        k = 0;
        if (mb->head)
                dlist_for_each(pos, &mb->receivers) {
                        mend *r = dlist_entry(pos, mend, link);
                        if (k++ >= MBOX_SPIN_WATCH)
                                break;
                        if (r->full && bport_tx_room(r->b, sizeof(struct mw_hdr) + mb->head->len))
                                return true;
                }
        return false;
}

/* The window closed: work came (a hit), or not (a miss: back off). The
 * pump re-arms every wake-up it needs (or spins again). */
static void mbox_spin_fn(loop_spin *sp) {
        mbox *mb = container_of(sp, mbox, spin);
        if (mbox_spin_ready(sp)) {
                mb->spin_miss = 0;
                mb->spin_hits++;
        } else {
                mb->spin_misses++;
                if (++mb->spin_miss >= MBOX_SPIN_MISSES)
                        mb->spin_skip = MIN(4u << MIN(mb->spin_miss - MBOX_SPIN_MISSES, 8u),
                                            MBOX_SPIN_SKIP_MAX);
        }
        /* The senders' words were taken back: the pump reads every sender
         * while the FIFO has room, arming each it finds empty (a full FIFO
         * is pumped again when a receiver consumes). */
        mbox_pump(mb);
}

/* After a pump that moved messages: watch instead of sleeping, unless
 * backing off. The want words of the senders watched are taken back (their
 * writes then ring nobody; a word a sender took already has rung: its
 * event comes). */
static void mbox_spin(mbox *mb) {
        if (!loop_spinning(&mb->spin) && mb->spin_skip) {
                mb->spin_skip--;
                return;
        }
        loop_spin_until(mb->obj.d->loop, &mb->spin, now_ns() + MBOX_SPIN_NS);
        /* Only those the spin looks at (the others' writes ring as usual). */
        unsigned k = 0;
        dlist_for_each(pos, &mb->senders) {
                if (k++ >= MBOX_SPIN_WATCH)
                        break;
                bport_disarm_rx(dlist_entry(pos, mend, link)->b);
        }
}

/* ---- RUN SLOTS (see the top) ---------------------------------------------- */

/* After a pump: the daemon's CPU, and whether it sleeps as far as this
 * mailbox goes (no window, no kick to come), in the run slot of each of its
 * flows. */
static void mbox_run_note(mbox *mb, bool coming_back) {
        int c = sched_getcpu();
        unsigned cpu = c < 0 ? 0 : (unsigned)c;
        bool asleep = !coming_back && !loop_spinning(&mb->spin);
        dlist_for_each(pos, &mb->receivers)
                bport_run_note(dlist_entry(pos, mend, link)->b, cpu, asleep);
        dlist_for_each(pos, &mb->senders)
                bport_run_note(dlist_entry(pos, mend, link)->b, cpu, asleep);
}

/* ---- the pump ------------------------------------------------------------- */

/* Move messages FIFO -> receivers, round robin over those with room. */
static int mbox_deliver(mbox *mb, int budget) {
        int n = 0;
        while (mb->head && n < budget) {
                if (!recv_give(mb, mb->head, mb->head->data, NULL, 0))
                        break;
                fifo_pop(mb);
                n++;
        }
        return n;
}

/* The mailbox's one loop: ends and consumption first (re-queue, receipts,
 * room), then FIFO -> receivers, then senders -> FIFO; again while anything
 * moved, within a budget. */
static void mbox_pump(mbox *mb) {
        if (mb->pumping)
                return; /* re-entered from a drop below: the outer loop goes on */
        mb->pumping = true;
        int budget = MBOX_BUDGET;
        bool progress = true, moved_any = false;
        while (progress && budget > 0) {
                progress = false;
                /* Ends first: receivers give back, senders are drained. */
                dlist_for_each_safe(pos, tmp, &mb->receivers) {
                        mend *r = dlist_entry(pos, mend, link);
                        if (bport_peer_ended(r->b)) {
                                recv_drop(r, "ended");
                                progress = true;
                                continue;
                        }
                        bool want = recv_retire(r);
                        size_t need = sizeof(struct mw_hdr) + (mb->head ? mb->head->len : 0);
                        if (r->full && bport_arm_tx(r->b, need))
                                r->full = false;
                        if (want) {
                                /* Woken on the next consume; it may have come already. */
                                bport_want_tx(r->b);
                                if (bport_passed(r->b, fl_nth(r, 0)->pos))
                                        progress = true;
                        }
                }
                int moved = mbox_deliver(mb, budget);
                budget -= moved;
                progress |= moved > 0;
                moved_any |= moved > 0;
                dlist_for_each_safe(pos, tmp, &mb->senders) {
                        mend *s = dlist_entry(pos, mend, link);
                        if (s->rc.n)
                                sender_flush_rcpts(s);
                        /* Looked at before reading: what it wrote before it
                         * ended is then surely seen by the read. */
                        bool ended = bport_peer_ended(s->b), dry;
                        int lim = MIN(budget, 256);
                        int got = sender_read(s, lim, &dry);
                        if (got < 0) {
                                log_debug("mbox %s: sender pid %d: bad frame", mb->obj.name,
                                          (int)s->b->peer.pid);
                                sender_unhold(s); /* before its ring is unmapped */
                                bport_end(s->b, IPCF_END_PROTOCOL, "bad mailbox frame");
                                sender_drop(s);
                                continue;
                        }
                        budget -= got;
                        progress |= got > 0;
                        moved_any |= got > 0;
                        /* A sender that ended is dropped once its ring is
                         * read (found empty: a read cut short by a lack of
                         * memory leaves its records for the next wake-up). */
                        if (ended && dry)
                                sender_drop(s);
                }
                /* Fairness among senders: the first read goes to the back. */
                if (!dlist_empty(&mb->senders)) {
                        struct dlist *first = mb->senders.next;
                        dlist_del(first);
                        dlist_add_tail(&mb->senders, first);
                }
        }
        mb->pumping = false;
        if (moved_any && budget > 0)
                mbox_spin(mb);
        /* Budget spent with work left: come back after the others (any of
         * its ports will do: each one's wake-up pumps the whole mailbox). */
        if (budget <= 0) {
                struct dlist *l = !dlist_empty(&mb->senders) ? &mb->senders : &mb->receivers;
                if (!dlist_empty(l)) {
                        mend *e = dlist_entry(l->next, mend, link);
                        if (e->b->f)
                                bport_kick(e->b);
                }
        }
        mbox_run_note(mb, budget <= 0);
}

/* Any wake-up of any port of the mailbox pumps the whole mailbox. */
static void mbox_on_event(bport *b) {
        mend *e = b->owner;
        mbox_pump(e->mb);
}

/* ---- requests ----------------------------------------------------------------- */

/* MBOX_CREATE: strict options, then what every model's creation checks. */
static int mbox_on_create(request *rq) {
        const char *name = ctl_arg_str(rq->args, CTL_A_NAME);
        struct ctl_mbox_opts_wire o;
        memset(&o, 0, sizeof(o));
        ctl_arg_fixed(rq->args, CTL_A_MBOX_OPTS, &o, sizeof(o));
        uint32_t flags = le32toh(o.flags), max_msgs = le32toh(o.max_msgs);
        uint32_t max_msg = le32toh(o.max_msg_size);
        uint64_t max_bytes = le64toh(o.max_bytes);
        if ((flags & ~(uint32_t)(IPCF_MBOX_EXCLUSIVE | IPCF_MBOX_STREAM)) || max_msgs > MBOX_MAX_MSGS ||
            max_bytes > MBOX_MAX_BYTES || max_msg > MW_MSG_MAX)
                return -EINVAL;
        int r = model_may_create(rq, name);
        if (r < 0)
                return r;
        mbox *mb = calloc(1, sizeof(*mb));
        if (!mb)
                return -ENOMEM;
        str_copy(mb->obj.name, name, sizeof(mb->obj.name));
        mb->obj.d = rq->d;
        mb->obj.owner = rq->c->cred.uid;
        mb->obj.kind = &mbox_kind;
        mb->flags = flags;
        mb->max_msgs = max_msgs ? max_msgs : MBOX_DEF_MSGS;
        mb->max_bytes = max_bytes ? max_bytes : MBOX_DEF_BYTES;
        mb->max_msg = max_msg ? max_msg : MW_MSG_DEFAULT;
        dlist_init(&mb->senders);
        dlist_init(&mb->receivers);
        loop_spin_init(&mb->spin, mbox_spin_ready, mbox_spin_fn);
        model_add(rq, &mb->obj);
        return 0;
}

/* Destroy: see the invariants at the top. Returns the messages discarded of
 * senders that had left (theirs are told to nobody else). */
static uint64_t mbox_destroy(model_obj *o) {
        mbox *mb = container_of(o, mbox, obj);
        loop_spin_cancel(&mb->spin);
        /* Receivers keep what is in their rings; their flows end. One that
         * has ended already (it left or died, and no pump has dropped it
         * yet: the destroy came first) will read nothing more: what it did
         * not consume goes back to the FIFO as on any receiver's end, so it
         * is counted undelivered below, not given to nobody. */
        dlist_for_each_safe(pos, tmp, &mb->receivers) {
                mend *r = dlist_entry(pos, mend, link);
                if (bport_peer_ended(r->b)) {
                        recv_drop(r, "ended before the destroy");
                        continue;
                }
                recv_retire(r);
                mb->msgs_out += r->fl.n; /* in their rings: theirs to read */
                for (unsigned i = 0; i < r->fl.n; i++) {
                        struct inflight *e = fl_nth(r, i);
                        if (e->hs)
                                held_release(e->hs, e->hno);
                        model_msg_free(e->m);
                }
                growfifo_free(&r->fl);
                bport_end(r->b, IPCF_END_DEALLOC, "mailbox destroyed");
                dlist_del(&r->link);
                r->b = bport_free(r->b);
                free(r);
        }
        /* Count each sender's undelivered messages: in the FIFO and unread.
         * A sender still there is told; one that has ended (left, or died)
         * while the full FIFO kept us from reading the rest of its ring is
         * not there to be told: its share goes to the destroyer. */
        uint64_t queued = mb->n_msgs, told = 0, unread_gone = 0;
        dlist_for_each_safe(pos, tmp, &mb->senders) {
                mend *s = dlist_entry(pos, mend, link);
                uint64_t lost = 0;
                for (mmsg *m = mb->head; m; m = m->next)
                        if (m->sender == s->b->flow_id)
                                lost++;
                if (bport_peer_ended(s->b)) {
                        unread_gone += sender_count_unread(s);
                        sender_drop(s);
                        continue;
                }
                /* What is unread in its ring the sender counts itself: it
                 * knows how many it wrote, we say how many we took (exact
                 * even if it writes more while this runs). */
                mb->undelivered += lost;
                told += lost;
                char why[IPCF_REASON_MAX + 1];
                snprintf(why, sizeof(why), "mailbox destroyed (%llu queued, %llu taken)",
                         (unsigned long long)lost, (unsigned long long)s->taken);
                sender_flush_rcpts(s);
                frame_undelivered(s->b, lost, s->taken);
                bport_end(s->b, IPCF_END_DEALLOC, why);
                sender_drop(s);
        }
        /* The rest is of senders that had left: the destroyer is told. */
        uint64_t untold = queued - told + unread_gone;
        while (mb->head)
                model_msg_free(fifo_pop(mb));
        mb->undelivered += untold;
        if (untold)
                log_debug("mbox %s: destroyed with %llu message%s of departed senders", o->name,
                          (unsigned long long)untold, plural(untold));
        log_debug("mbox %s: %llu message%s in, %llu cut through, %llu of them spilled", o->name,
                  (unsigned long long)mb->msgs_in, plural(mb->msgs_in), (unsigned long long)mb->msgs_cut,
                  (unsigned long long)mb->msgs_spilled);
        idmap_deinit(&mb->sender_ids);
        model_remove(&mb->obj);
        loop_defer_free(o->d->loop, mb);
        return untold;
}

/* MBOX_DESTROY: the creator's uid or a privileged one. */
static int mbox_on_destroy(request *rq) { return model_destroy(rq, &mbox_kind); }

/* A sender or receiver opens the mailbox (ALLOC with its role). */
static int mbox_alloc(model_obj *o, alloc *a) {
        mbox *mb = container_of(o, mbox, obj);
        bool recv = a->role == CTL_ROLE_MBOX_RECV;
        /* A receiver that ended but was not yet seen to (its wake-up is
         * still queued) must not keep an exclusive mailbox: look now. */
        if (recv && (mb->flags & IPCF_MBOX_EXCLUSIVE) && mb->n_receivers)
                mbox_pump(mb);
        if (recv && (mb->flags & IPCF_MBOX_EXCLUSIVE) && mb->n_receivers) {
                alloc_fail(a, -EBUSY, "exclusive mailbox has a receiver", IPCF_END_REFUSED);
                return 0;
        }
        mend *e = calloc(1, sizeof(*e));
        if (!e) {
                alloc_fail(a, -ENOMEM, NULL, 0);
                return 0;
        }
        e->mb = mb;
        e->recv = recv;
        growfifo_init(&e->fl, sizeof(struct inflight));
        growfifo_init(&e->hl, sizeof(struct held));
        growfifo_init(&e->rc, sizeof(struct rcpt));
        int r = bport_accept(a, mb->max_msg, mbox_on_event, e, &e->b);
        if (r < 0) {
                free(e);
                if (r != -ECANCELED)
                        alloc_fail(a, r, NULL, 0);
                return 0;
        }
        if (recv) {
                dlist_add_tail(&mb->receivers, &e->link);
                mb->n_receivers++;
        } else {
                e->node.id = e->b->flow_id;
                bport_hold(e->b);
                if (idmap_add(&mb->sender_ids, &e->node) < 0) {
                        bport_free(e->b);
                        free(e);
                        return 0;
                }
                dlist_add_tail(&mb->senders, &e->link);
                mb->n_senders++;
        }
        mbox_pump(mb);
        return 0;
}

static void mbox_entry(const model_obj *o, struct ctl_model_entry_wire *e) {
        const mbox *mb = container_of(o, mbox, obj);
        e->kind = htole32(0);
        e->senders = htole32(mb->n_senders);
        e->receivers = htole32(mb->n_receivers);
        e->queued = htole32(mb->n_msgs);
        e->flags = htole32(mb->flags);
        e->msgs_in = htole64(mb->msgs_in);
        e->msgs_out = htole64(mb->msgs_out);
        e->dropped = htole64(mb->undelivered);
}

const model_kind mbox_kind = {
        .what = "mbox",
        .roles = RESOLVE_ROLE(CTL_ROLE_MBOX_SEND) | RESOLVE_ROLE(CTL_ROLE_MBOX_RECV),
        .alloc = mbox_alloc,
        .entry = mbox_entry,
        .destroy = mbox_destroy,
};

int mbox_init(ipcfd *d) {
        static const method methods[] = {
                { CTL_MBOX_CREATE, mbox_on_create },
                { CTL_MBOX_DESTROY, mbox_on_destroy },
        };
        return dispatch_add(d, methods, ARRAY_SIZE(methods));
}
