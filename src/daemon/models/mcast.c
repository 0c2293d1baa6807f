/*
 * mcast.c — multicast groups: every message a member sends goes to every
 * other current member, FIFO per sender (docs/MODELS.md). The group's FIFO
 * also gives every member the same order of all messages, except where a
 * member misses some (DROP) — the daemon reads a message wholly into the FIFO
 * before any member gets it.
 *
 * STATE: one FIFO of messages per group, numbered (gseq); each member has a
 * cursor, the next message it is to get (NULL: caught up). A message is
 * freed once every cursor is past it. A member joining starts caught up: it
 * gets what is sent after it joined.
 *
 * A SLOW MEMBER (its ring has no room for its next message) is handled by the
 * policy chosen at creation:
 *   BLOCK   its cursor waits (a wake-up is armed on its ring); the FIFO keeps
 *           the message; when the FIFO is full (max_msgs) no member's sends
 *           are read, so senders block or fail by their own full policy.
 *   DROP    the message is skipped for it and counted; before its next
 *           message it gets an MW_LOST frame with the count (a wake-up is
 *           armed so the count goes out as soon as it has room, even if
 *           nothing else is sent). Never silent.
 *   REMOVE  it is removed: its flow ends with reason "too slow".
 *
 * The daemon never blocks: every ring operation is non-blocking (broker.c).
 * Who may call: the dispatcher (MCAST_CREATE, MCAST_DESTROY), models.c (its
 * resolver: ALLOC of the MCAST role; shutdown), broker callbacks.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

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

#define MCAST_DEF_MSGS 1024u
#define MCAST_MAX_MSGS IPCF_MODEL_MAX_MSGS
#define MCAST_BUDGET 4096
#define MCAST_MEMBERS_MAX 256

typedef model_msg gmsg;           /* seq: the group's number of the message */

typedef struct mcast mcast;

typedef struct member {
        mcast *g;
        bport *b;
        struct dlist link;            /* mcast.members */
        gmsg *cur;                    /* next message to get; NULL: caught up */
        uint64_t lost;                /* dropped since the last MW_LOST frame */
        bool full;                    /* BLOCK: waits for room */
} member;

struct mcast {
        model_obj obj;                /* name, owner, on the models' list */
        uint32_t slow, max_msgs, max_msg;
        gmsg *head, *tail;
        uint32_t n_msgs;
        uint64_t next_gseq;
        struct dlist members;
        uint32_t n_members;
        uint64_t msgs_in, msgs_out, dropped, removed;
        bool pumping;
};

/* Free messages every member is past. */
static void mcast_trim(mcast *g) {
        uint64_t low = g->next_gseq;
        dlist_for_each(pos, &g->members) {
                member *mb = dlist_entry(pos, member, link);
                if (mb->cur && mb->cur->seq < low)
                        low = mb->cur->seq;
        }
        while (g->head && g->head->seq < low) {
                gmsg *m = g->head;
                g->head = m->next;
                if (!g->head)
                        g->tail = NULL;
                g->n_msgs--;
                model_msg_free(m);
        }
}

/* Remove a member: with a reason, its flow ends now (it reads what it has,
 * then -EPIPE); without, it had ended itself. Its cursor goes with it, so
 * messages only it still needed are freed by the next mcast_trim(). */
static void member_drop(member *mb, uint32_t code, const char *why) {
        mcast *g = mb->g;
        dlist_del(&mb->link);
        g->n_members--;
        if (why)
                bport_end(mb->b, code, why);
        mb->b = bport_free(mb->b);
        free(mb);
}

/* Write an MW_LOST frame if one is owed. True when nothing is owed any more. */
static bool member_tell_lost(member *mb) {
        if (!mb->lost)
                return true;
        if (!model_frame_put(mb->b, MW_LOST, mb->lost, 0))
                return false;
        mb->lost = 0;
        return true;
}

/* Give mb what it is owed. Returns messages moved, or -1 if mb was removed. */
static int member_deliver(member *mb, int budget) {
        mcast *g = mb->g;
        int n = 0;
        while (n < budget) {
                if (!member_tell_lost(mb)) {
                        if (bport_arm_tx(mb->b, sizeof(struct mw_hdr)))
                                continue;
                        if (g->slow != IPCF_MCAST_DROP || !mb->cur)
                                break;
                        /* DROP: its next message is lost too (below). */
                }
                gmsg *m = mb->cur;
                if (!m)
                        break;
                if (m->sender == mb->b->flow_id) {
                        mb->cur = m->next; /* its own message */
                        continue;
                }
                size_t len = sizeof(struct mw_hdr) + m->len;
                int e = mb->lost ? -EAGAIN : model_msg_put(mb->b, m, m->seq, 0, NULL);
                if (e == 0) {
                        mb->cur = m->next;
                        g->msgs_out++;
                        n++;
                        continue;
                }
                if (e == -EAGAIN && !mb->lost && bport_arm_tx(mb->b, len))
                        continue; /* room came meanwhile */
                if (e != -EAGAIN) {
                        member_drop(mb, IPCF_END_PROTOCOL, "broken ring");
                        return -1;
                }
                switch (g->slow) {
                case IPCF_MCAST_DROP:
                        mb->lost++;
                        g->dropped++;
                        mb->cur = m->next;
                        /* Woken when it has room, to tell it. */
                        bport_arm_tx(mb->b, sizeof(struct mw_hdr));
                        n++;
                        continue;
                case IPCF_MCAST_REMOVE:
                        log_debug("mcast %s: member pid %d too slow: removed", g->obj.name,
                                  (int)mb->b->peer.pid);
                        g->removed++;
                        member_drop(mb, IPCF_END_DEALLOC, "too slow");
                        return -1;
                default: /* BLOCK: armed above; wait for room */
                        mb->full = true;
                        return n;
                }
        }
        return n;
}

/* Read up to budget messages of mb into the FIFO; -1 on a bad frame.
 * *ret_dry: it stopped at an empty ring (not for the budget, a full FIFO
 * or a lack of memory). */
static int member_read(member *mb, int budget, bool *ret_dry) {
        mcast *g = mb->g;
        int n = 0;
        *ret_dry = false;
        while (n < budget && g->n_msgs < g->max_msgs) {
                gmsg *m;
                int k = model_msg_take(mb->b, g->max_msg, &m);
                if (k == -EPROTO)
                        return -1;
                *ret_dry = k == 0;
                if (k <= 0)
                        break; /* none now (armed), or no memory: the next wake-up */
                m->seq = g->next_gseq++;
                if (g->tail)
                        g->tail->next = m;
                else
                        g->head = m;
                g->tail = m;
                g->n_msgs++;
                g->msgs_in++;
                /* Caught-up members get it next. */
                dlist_for_each(pos, &g->members) {
                        member *o = dlist_entry(pos, member, link);
                        if (!o->cur)
                                o->cur = m;
                }
                n++;
        }
        return n;
}

/* Deliver to every member, free what all have, read senders while the FIFO
 * has room; again while anything moved, within a budget (then re-pumped via
 * an eventfd so other objects and clients get the loop too). */
static void mcast_pump(mcast *g) {
        if (g->pumping)
                return;
        g->pumping = true;
        int budget = MCAST_BUDGET;
        bool progress = true;
        while (progress && budget > 0) {
                progress = false;
                dlist_for_each_safe(pos, tmp, &g->members) {
                        member *mb = dlist_entry(pos, member, link);
                        int k = member_deliver(mb, budget);
                        if (k < 0) {
                                progress = true;
                                continue;
                        }
                        budget -= k;
                        progress |= k > 0;
                }
                mcast_trim(g);
                dlist_for_each_safe(pos, tmp, &g->members) {
                        member *mb = dlist_entry(pos, member, link);
                        bool ended = bport_peer_ended(mb->b), dry;
                        int lim = MIN(budget, 256);
                        int got = member_read(mb, lim, &dry);
                        if (got < 0) {
                                member_drop(mb, IPCF_END_PROTOCOL, "bad group frame");
                                progress = true;
                                continue;
                        }
                        budget -= got;
                        progress |= got > 0;
                        /* Left (or died): dropped once what it sent is read
                         * (its ring found empty: not a read cut short by a
                         * lack of memory). */
                        if (ended && dry) {
                                member_drop(mb, 0, NULL);
                                progress = true;
                        }
                }
                /* Fairness among senders: the first read goes to the back. */
                if (!dlist_empty(&g->members)) {
                        struct dlist *first = g->members.next;
                        dlist_del(first);
                        dlist_add_tail(&g->members, first);
                }
        }
        mcast_trim(g);
        g->pumping = false;
        if (budget <= 0 && !dlist_empty(&g->members))
                bport_kick(dlist_entry(g->members.next, member, link)->b);
}

static void mcast_on_event(bport *b) {
        member *mb = b->owner;
        mcast_pump(mb->g);
}

/* MCAST_CREATE: strict options, then what every model's creation checks. */
static int mcast_on_create(request *rq) {
        const char *name = ctl_arg_str(rq->args, CTL_A_NAME);
        struct ctl_mcast_opts_wire o;
        memset(&o, 0, sizeof(o));
        ctl_arg_fixed(rq->args, CTL_A_MCAST_OPTS, &o, sizeof(o));
        uint32_t slow = le32toh(o.slow), max_msgs = le32toh(o.max_msgs);
        uint32_t max_msg = le32toh(o.max_msg_size);
        if (slow > IPCF_MCAST_REMOVE || max_msgs > MCAST_MAX_MSGS || max_msg > MW_MSG_MAX)
                return -EINVAL;
        int r = model_may_create(rq, name);
        if (r < 0)
                return r;
        mcast *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        str_copy(g->obj.name, name, sizeof(g->obj.name));
        g->obj.d = rq->d;
        g->obj.owner = rq->c->cred.uid;
        g->obj.kind = &mcast_kind;
        g->slow = slow;
        g->max_msgs = max_msgs ? max_msgs : MCAST_DEF_MSGS;
        g->max_msg = max_msg ? max_msg : MW_MSG_DEFAULT;
        g->next_gseq = 1;
        dlist_init(&g->members);
        model_add(rq, &g->obj);
        return 0;
}

/* Destroy: every member's flow ends "group destroyed", and each is told how
 * many messages it was owed and will not get (lost, as for a DROP group: an
 * MW_LOST frame, or, if its ring has no room for one, the count in the end
 * reason); queued messages go. Nothing is left untold: returns 0. */
static uint64_t mcast_destroy(model_obj *o) {
        mcast *g = container_of(o, mcast, obj);
        dlist_for_each_safe(pos, tmp, &g->members) {
                member *mb = dlist_entry(pos, member, link);
                for (gmsg *m = mb->cur; m; m = m->next)
                        mb->lost += m->sender != mb->b->flow_id;
                char why[IPCF_REASON_MAX + 1] = "group destroyed";
                if (!member_tell_lost(mb))
                        snprintf(why, sizeof(why), "group destroyed (%llu not received)",
                                 (unsigned long long)mb->lost);
                member_drop(mb, IPCF_END_DEALLOC, why);
        }
        while (g->head) {
                gmsg *m = g->head;
                g->head = m->next;
                model_msg_free(m);
        }
        model_remove(&g->obj);
        loop_defer_free(o->d->loop, g);
        return 0;
}

static int mcast_on_destroy(request *rq) { return model_destroy(rq, &mcast_kind); }

/* A member joins (ALLOC with the MCAST role): caught up, it gets what is
 * sent from now on. */
static int mcast_alloc(model_obj *o, alloc *a) {
        mcast *g = container_of(o, mcast, obj);
        if (g->n_members >= MCAST_MEMBERS_MAX) {
                alloc_fail(a, -EDQUOT, NULL, 0);
                return 0;
        }
        member *mb = calloc(1, sizeof(*mb));
        if (!mb) {
                alloc_fail(a, -ENOMEM, NULL, 0);
                return 0;
        }
        mb->g = g;
        int r = bport_accept(a, g->max_msg, mcast_on_event, mb, &mb->b);
        if (r < 0) {
                free(mb);
                if (r != -ECANCELED)
                        alloc_fail(a, r, NULL, 0);
                return 0;
        }
        dlist_add_tail(&g->members, &mb->link);
        g->n_members++;
        mcast_pump(g);
        return 0;
}

static void mcast_entry(const model_obj *o, struct ctl_model_entry_wire *e) {
        const mcast *g = container_of(o, mcast, obj);
        e->kind = htole32(1);
        e->senders = htole32(g->n_members);
        e->queued = htole32(g->n_msgs);
        e->flags = htole32(g->slow);
        e->msgs_in = htole64(g->msgs_in);
        e->msgs_out = htole64(g->msgs_out);
        e->dropped = htole64(g->dropped + g->removed);
}

const model_kind mcast_kind = {
        .what = "mcast",
        .roles = RESOLVE_ROLE(CTL_ROLE_MCAST),
        .alloc = mcast_alloc,
        .entry = mcast_entry,
        .destroy = mcast_destroy,
};

int mcast_init(ipcfd *d) {
        static const method methods[] = {
                { CTL_MCAST_CREATE, mcast_on_create },
                { CTL_MCAST_DESTROY, mcast_on_destroy },
        };
        return dispatch_add(d, methods, ARRAY_SIZE(methods));
}
