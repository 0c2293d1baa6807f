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
 * Who may call: models.c (requests, ALLOC), broker callbacks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/modelwire.h"
#include "common/util.h"
#include "daemon/flows/broker.h"
#include "daemon/core/client.h"
#include "daemon/core/log.h"
#include "daemon/models/models.h"
#include "daemon/core/policy.h"

#define MCAST_DEF_MSGS 1024u
#define MCAST_MAX_MSGS 65536u
#define MCAST_BUDGET 4096
#define MCAST_MEMBERS_MAX 256

typedef struct gmsg {
        struct gmsg *next;
        uint64_t gseq;
        uint64_t sender;              /* the sending member's flow id */
        uint32_t pid, uid, gid;
        uint32_t len;
        uint8_t data[];
} gmsg;

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
        char name[IPCF_NAME_MAX + 1];
        struct dlist link;            /* models.groups */
        ipcfd *d;
        uid_t owner;
        uint32_t slow, max_msgs, max_msg;
        gmsg *head, *tail;
        uint32_t n_msgs;
        uint64_t next_gseq;
        struct dlist members;
        uint32_t n_members;
        uint64_t msgs_in, msgs_out, dropped, removed;
        bool pumping;
};

static mcast *mcast_find(ipcfd *d, const char *name) {
        models *ms = d->models;
        if (!ms)
                return NULL;
        dlist_for_each(pos, &ms->groups) {
                mcast *g = dlist_entry(pos, mcast, link);
                if (strcmp(g->name, name) == 0)
                        return g;
        }
        return NULL;
}

bool mcast_exists(ipcfd *d, const char *name) { return mcast_find(d, name) != NULL; }

/* Free messages every member is past. */
static void mcast_trim(mcast *g) {
        uint64_t low = g->next_gseq;
        dlist_for_each(pos, &g->members) {
                member *mb = dlist_entry(pos, member, link);
                if (mb->cur && mb->cur->gseq < low)
                        low = mb->cur->gseq;
        }
        while (g->head && g->head->gseq < low) {
                gmsg *m = g->head;
                g->head = m->next;
                if (!g->head)
                        g->tail = NULL;
                g->n_msgs--;
                free(m);
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
        void *p;
        if (bport_reserve(mb->b, sizeof(struct mw_hdr), &p) < 0)
                return false;
        struct mw_hdr h = { .kind = MW_LOST, .seq = mb->lost };
        memcpy(p, &h, sizeof(h));
        bport_commit(mb->b, sizeof(h));
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
                void *p;
                size_t len = sizeof(struct mw_hdr) + m->len;
                int e = mb->lost ? -EAGAIN : bport_reserve(mb->b, len, &p);
                if (e == 0) {
                        struct mw_hdr h = { .kind = MW_DATA, .seq = m->gseq, .pid = m->pid,
                                            .uid = m->uid, .gid = m->gid };
                        memcpy(p, &h, sizeof(h));
                        memcpy((uint8_t *)p + sizeof(h), m->data, m->len);
                        bport_commit(mb->b, len);
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
                        log_debug("mcast %s: member pid %d too slow: removed", g->name,
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

/* Read up to budget messages of mb into the FIFO; -1 on a bad frame. */
static int member_read(member *mb, int budget) {
        mcast *g = mb->g;
        int n = 0;
        while (n < budget && g->n_msgs < g->max_msgs) {
                const void *p;
                ssize_t len = bport_peek(mb->b, &p);
                if (len == -EAGAIN) {
                        if (bport_arm_rx(mb->b))
                                continue;
                        break;
                }
                if (len < (ssize_t)sizeof(struct mw_hdr))
                        return -1;
                struct mw_hdr h;
                memcpy(&h, p, sizeof(h));
                size_t plen = (size_t)len - sizeof(h);
                if (h.kind != MW_DATA || plen > g->max_msg)
                        return -1;
                gmsg *m = malloc(sizeof(*m) + plen);
                if (!m)
                        break;
                m->next = NULL;
                m->gseq = g->next_gseq++;
                m->sender = mb->b->flow_id;
                m->pid = (uint32_t)mb->b->peer.pid;
                m->uid = mb->b->peer.uid;
                m->gid = mb->b->peer.gid;
                m->len = (uint32_t)plen;
                memcpy(m->data, (const uint8_t *)p + sizeof(h), plen);
                bport_consume(mb->b);
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
                        bool ended = bport_peer_ended(mb->b);
                        int lim = MIN(budget, 256);
                        int got = member_read(mb, lim);
                        if (got < 0) {
                                member_drop(mb, IPCF_END_PROTOCOL, "bad group frame");
                                progress = true;
                                continue;
                        }
                        budget -= got;
                        progress |= got > 0;
                        /* Left (or died): dropped once what it sent is read. */
                        if (ended && got < lim && g->n_msgs < g->max_msgs) {
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

/* MCAST_CREATE: strict options, the register policy of the name, one name
 * space with mailboxes, the per-user and global bounds. */
int mcast_handle_create(client *c, const ctl_msg *m) {
        ipcfd *d = c->d;
        const char *name;
        struct ctl_mcast_opts_wire o;
        int r = ctl_get_str(m, CTL_A_NAME, CTL_MSG_MAX, &name);
        if (r == -EBADMSG)
                return r;
        if (r < 0 || !ctl_name_valid(name))
                return client_reply_error(c, m->seq, -EINVAL), 0;
        memset(&o, 0, sizeof(o));
        r = ctl_get_fixed(m, CTL_A_MCAST_OPTS, &o, sizeof(o));
        if (r == -EBADMSG)
                return r;
        uint32_t slow = le32toh(o.slow), max_msgs = le32toh(o.max_msgs);
        uint32_t max_msg = le32toh(o.max_msg_size);
        if (slow > IPCF_MCAST_REMOVE || max_msgs > MCAST_MAX_MSGS || max_msg > MW_MSG_MAX)
                return client_reply_error(c, m->seq, -EINVAL), 0;
        r = policy_check(d, name, POLICY_REGISTER, &c->cred);
        if (r < 0)
                return client_reply_error(c, m->seq, r), 0;
        models *ms = models_of(d);
        if (!ms)
                return client_reply_error(c, m->seq, -ENOMEM), 0;
        if (mbox_exists(d, name) || mcast_exists(d, name))
                return client_reply_error(c, m->seq, -EEXIST), 0;
        if (ms->n_objects >= MODELS_MAX || models_owned_by(d, c->cred.uid) >= MODELS_PER_USER)
                return client_reply_error(c, m->seq, -EDQUOT), 0;
        mcast *g = calloc(1, sizeof(*g));
        if (!g)
                return client_reply_error(c, m->seq, -ENOMEM), 0;
        str_copy(g->name, name, sizeof(g->name));
        g->d = d;
        g->owner = c->cred.uid;
        g->slow = slow;
        g->max_msgs = max_msgs ? max_msgs : MCAST_DEF_MSGS;
        g->max_msg = max_msg ? max_msg : MW_MSG_DEFAULT;
        g->next_gseq = 1;
        dlist_init(&g->members);
        dlist_add_tail(&ms->groups, &g->link);
        ms->n_objects++;
        log_debug("mcast %s: created by pid %d (slow policy %u)", name, (int)c->cred.pid, slow);
        client_reply_ok(c, m->seq);
        models_name_changed(d, name);
        return 0;
}

/* Destroy: every member's flow ends "group destroyed"; queued messages go
 * (a multicast message has no single sender to report it to). */
static void mcast_free(mcast *g) {
        models *ms = g->d->models;
        dlist_for_each_safe(pos, tmp, &g->members)
                member_drop(dlist_entry(pos, member, link), IPCF_END_DEALLOC, "group destroyed");
        while (g->head) {
                gmsg *m = g->head;
                g->head = m->next;
                free(m);
        }
        dlist_del(&g->link);
        ms->n_objects--;
        loop_defer_free(g->d->loop, g);
}

int mcast_handle_destroy(client *c, const ctl_msg *m) {
        const char *name;
        int r = ctl_get_str(m, CTL_A_NAME, CTL_MSG_MAX, &name);
        if (r == -EBADMSG)
                return r;
        if (r < 0 || !ctl_name_valid(name))
                return client_reply_error(c, m->seq, -EINVAL), 0;
        mcast *g = mcast_find(c->d, name);
        if (!g)
                return client_reply_error(c, m->seq, -ENOENT), 0;
        if (g->owner != c->cred.uid && !client_is_privileged(c))
                return client_reply_error(c, m->seq, -EPERM), 0;
        char nm[IPCF_NAME_MAX + 1];
        str_copy(nm, name, sizeof(nm));
        mcast_free(g);
        client_reply_ok(c, m->seq);
        models_name_changed(c->d, nm);
        return 0;
}

/* A member joins (ALLOC with the MCAST role): caught up, it gets what is
 * sent from now on. */
int mcast_alloc(client *c, const char *name, const ipcf_qos *qos, int *reply_fd, uint32_t seq) {
        mcast *g = mcast_find(c->d, name);
        if (!g) {
                bport_refuse(c, seq, reply_fd, -ENOENT, NULL);
                return 0;
        }
        if (g->n_members >= MCAST_MEMBERS_MAX) {
                bport_refuse(c, seq, reply_fd, -EDQUOT, NULL);
                return 0;
        }
        member *mb = calloc(1, sizeof(*mb));
        if (!mb) {
                bport_refuse(c, seq, reply_fd, -ENOMEM, NULL);
                return 0;
        }
        mb->g = g;
        if (bport_accept(c->d, c, name, qos, g->max_msg, reply_fd, seq, mcast_on_event, mb, &mb->b) < 0) {
                free(mb);
                return 0;
        }
        dlist_add_tail(&g->members, &mb->link);
        g->n_members++;
        mcast_pump(g);
        return 0;
}

void mcast_free_all(ipcfd *d) {
        dlist_for_each_safe(pos, tmp, &d->models->groups)
                mcast_free(dlist_entry(pos, mcast, link));
}

void mcast_list(ipcfd *d, models_put_fn put, void *arg) {
        dlist_for_each(pos, &d->models->groups) {
                mcast *g = dlist_entry(pos, mcast, link);
                struct ctl_model_entry_wire e;
                memset(&e, 0, sizeof(e));
                str_copy(e.name, g->name, sizeof(e.name));
                e.kind = htole32(1);
                e.owner_uid = htole32(g->owner);
                e.senders = htole32(g->n_members);
                e.queued = htole32(g->n_msgs);
                e.flags = htole32(g->slow);
                e.msgs_in = htole64(g->msgs_in);
                e.msgs_out = htole64(g->msgs_out);
                e.dropped = htole64(g->dropped + g->removed);
                put(arg, &e);
        }
}

size_t mcast_count_owned(ipcfd *d, uid_t uid) {
        size_t n = 0;
        dlist_for_each(pos, &d->models->groups)
                n += dlist_entry(pos, mcast, link)->owner == uid;
        return n;
}
