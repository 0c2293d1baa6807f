/*
 * mcast.c — chaos rounds of a multicast group: the driver creates it (a
 * small queue; BLOCK or DROP for slow members, at random), processes 1 and 2
 * join and receive, process 0 joins once they are in, sends the round's
 * messages and leaves. Once the sender is gone and deliveries have stopped,
 * the driver destroys the group: each member reads what it holds, then
 * -EPIPE, and ipcf_mcast_lost() says how many it missed (DROP) or was still
 * owed at the destroy.
 *
 * What a group promises (include/ipcf.h, docs/MODELS.md): every message to
 * every other member, in one order (so in each sender's order), what a
 * member that left or died sent still delivered, every miss counted. Each
 * message is a unit per member; a killed member's misses are with a killed
 * process. Rounds never kill the daemon: messages it had taken but not
 * copied to every member die with it and no member can count them (the
 * documented limit, MODELS.md "When the daemon dies").
 */
#include <errno.h>

#include "ipcf.h"
#include "models.h"

enum { SENDER = 0 };

static ssize_t mcast_recv(int h, void *buf, size_t cap, int timeout_ms) {
        return ipcf_mcast_recv(h, buf, cap, timeout_ms, NULL);
}

/* A member's view: which receiver it is, and its last message (one order). */
typedef struct mcast_member_view {
        unsigned sink;
        int64_t last;
} mcast_member_view;

static bool mcast_got(chaos_book *b, uint32_t seq, void *ctx) {
        mcast_member_view *v = ctx;
        if ((int64_t)seq <= v->last)
                atomic_fetch_add(&b->out_of_order, 1);
        v->last = seq;
        chaos_got(b, v->sink, seq);
        return true;
}

static void mcast_member(chaos_book *b, unsigned p) {
        int h = ipcf_mcast_join(b->name, NULL, 3000);
        if (h < 0) {
                chaos_book_error(b, h);
                return;
        }
        chaos_set_bit(&b->ready, p);
        mcast_member_view v = { .sink = p - 1, .last = -1 };
        chaos_receive(b, h, mcast_recv, mcast_got, &v);
        int64_t lost = ipcf_mcast_lost(h);
        if (lost > 0)
                atomic_fetch_add(&b->told[p], lost);
        ipcf_dealloc(h, NULL);
}

static void mcast_send(chaos_book *b) {
        chaos_wait_bits(&b->ready, 6u, 5000); /* the members are in (or not coming) */
        int h = ipcf_mcast_join(b->name, NULL, 3000);
        if (h < 0) {
                chaos_book_error(b, h);
                return;
        }
        chaos_set_bit(&b->ready, SENDER);
        static char buf[CHAOS_MSG_MAX];
        for (uint32_t i = 0; i < b->n_msgs;) {
                size_t len = chaos_msg_make(buf, b, i);
                ssize_t r = ipcf_mcast_send(h, buf, len, 1000);
                if (r == (ssize_t)len) {
                        atomic_store(&b->sent[i++], 1);
                } else if (r != -ETIMEDOUT) {
                        chaos_book_error(b, r < 0 ? (int)r : -EPROTO);
                        break;
                }
        }
        chaos_set_bit(&b->done, SENDER);
        ipcf_dealloc(h, "sent"); /* what it sent is still delivered */
}

static int mcast_setup(chaos_book *b, uint64_t *rng) {
        uint64_t r = chaos_rand(rng);
        b->variant = (r & 1) ? IPCF_MCAST_DROP : IPCF_MCAST_BLOCK;
        ipcf_mcast_opts o = { .size = sizeof(o), .slow = b->variant,
                              .max_msgs = 16 + (uint32_t)((r >> 8) % 256) };
        return ipcf_mcast_create(b->name, &o);
}

static void mcast_run(chaos_book *b, unsigned p) {
        if (p == SENDER)
                mcast_send(b);
        else
                mcast_member(b, p);
}

/* Whether every living member has every sent message. */
static bool mcast_all_in(const chaos_book *b, uint32_t alive) {
        for (unsigned p = 1; p < CHAOS_PROCS; p++)
                for (uint32_t i = 0; (alive & (1u << p)) && i < b->n_msgs; i++)
                        if (atomic_load(&b->sent[i]) && !atomic_load(&b->got[p - 1][i]))
                                return false;
        return true;
}

static void mcast_step(chaos_book *b, uint32_t alive, uint64_t quiet_ms) {
        if (b->ended || (alive & (1u << SENDER)) || (quiet_ms < 500 && !mcast_all_in(b, alive)))
                return;
        b->ended = true;
        int r = ipcf_mcast_destroy(b->name);
        if (r < 0)
                chaos_book_error(b, r);
}

static void mcast_tally(const chaos_book *b, chaos_tally *t) {
        for (unsigned p = 1; p < CHAOS_PROCS; p++) {
                uint64_t missing = 0;
                for (uint32_t i = 0; i < b->n_msgs; i++) {
                        if (!chaos_was_sent(b, i))
                                continue;
                        t->sent++;
                        unsigned g = atomic_load(&b->got[p - 1][i]);
                        if (g > 1)
                                t->duplicates += g - 1;
                        if (g)
                                t->delivered++;
                        else if (b->killed[p])
                                t->with_killed++;
                        else
                                missing++;
                }
                chaos_settle(t, missing, atomic_load(&b->told[p]));
        }
}

const chaos_model chaos_model_mcast = {
        .name = "mcast",
        .procs = 3,
        .daemon_kill_ok = false,
        .setup = mcast_setup,
        .run = mcast_run,
        .step = mcast_step,
        .tally = mcast_tally,
};
