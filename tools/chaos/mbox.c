/*
 * mbox.c — chaos rounds of a mailbox: the driver creates it (a small queue,
 * so that senders wait), process 0 sends the round's messages asking for
 * receipts without waiting for them, processes 1 and 2 compete to receive.
 * Once the sender is done (or dead) and deliveries have stopped, the driver
 * destroys the mailbox: the receivers read what they hold, then -EPIPE; the
 * sender, which waited for its receipts, learns -EPIPE and how many of its
 * messages were not delivered (ipcf_mbox_undelivered); the destroyer learns
 * how many it discarded of senders that had gone (ipcf_mbox_destroy).
 *
 * What a mailbox promises (include/ipcf.h, docs/MODELS.md): each message to
 * exactly one receiver; a receiver killed with messages unread gives them
 * back; nothing lost untold at destroy, nor when the daemon dies (the
 * sender's undelivered count then may include messages a receiver still
 * reads: counted as doubt). A message not delivered is with a killed
 * process when a receipt says a receiver that was killed took it.
 */
#include <errno.h>

#include "ipcf.h"
#include "models.h"

enum { SENDER = 0 };

static ssize_t mbox_recv(int h, void *buf, size_t cap, int timeout_ms) {
        return ipcf_mbox_recv(h, buf, cap, timeout_ms, NULL);
}

static bool mbox_got(chaos_book *b, uint32_t seq, void *ctx) {
        chaos_got(b, *(unsigned *)ctx, seq);
        return true;
}

static void mbox_receive(chaos_book *b, unsigned p) {
        int h = ipcf_mbox_open(b->name, IPCF_MBOX_RECV, NULL, 3000);
        if (h < 0) {
                chaos_book_error(b, h);
                return;
        }
        chaos_set_bit(&b->ready, p);
        unsigned sink = p - 1;
        chaos_receive(b, h, mbox_recv, mbox_got, &sink);
        ipcf_dealloc(h, NULL);
}

/* The message number on the handle (from 1) -> the round's message. */
static uint32_t handle_seq_msg[CHAOS_MAX_MSGS + 1];

/* Collect receipts, waiting up to timeout_ms for each; 0 when none came
 * in time, else the error that ended the handle. */
static int mbox_receipts(chaos_book *b, int h, int timeout_ms) {
        for (;;) {
                ipcf_receipt rc;
                int r = ipcf_mbox_receipt(h, timeout_ms, &rc);
                if (r == -EAGAIN || r == -ETIMEDOUT)
                        return 0;
                if (r < 0)
                        return r;
                if (rc.seq >= 1 && rc.seq <= CHAOS_MAX_MSGS)
                        atomic_store(&b->receipt_pid[handle_seq_msg[rc.seq]], rc.receiver);
        }
}

static void mbox_send(chaos_book *b) {
        int h = ipcf_mbox_open(b->name, IPCF_MBOX_SEND, NULL, 3000);
        if (h < 0) {
                chaos_book_error(b, h);
                return;
        }
        chaos_set_bit(&b->ready, SENDER);
        static char buf[CHAOS_MSG_MAX];
        int end = 0;
        for (uint32_t i = 0; i < b->n_msgs && !end;) {
                size_t len = chaos_msg_make(buf, b, i);
                uint64_t seq = 0;
                ssize_t r = ipcf_mbox_send_async(h, buf, len, 1000, &seq);
                if (r == (ssize_t)len) {
                        atomic_store(&b->sent[i], 1);
                        if (seq >= 1 && seq <= CHAOS_MAX_MSGS)
                                handle_seq_msg[seq] = i;
                        i++;
                        end = mbox_receipts(b, h, 0);
                } else if (r != -ETIMEDOUT) {
                        end = r < 0 ? (int)r : -EPROTO;
                }
        }
        chaos_set_bit(&b->done, SENDER);
        while (!end)
                end = mbox_receipts(b, h, 500);
        if (end != -EPIPE && end != -ECONNRESET)
                chaos_book_error(b, end);
        int64_t lost = ipcf_mbox_undelivered(h);
        if (lost > 0)
                atomic_fetch_add(&b->told[SENDER], lost);
        ipcf_dealloc(h, NULL);
}

static int mbox_setup(chaos_book *b, uint64_t *rng) {
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 16 + (uint32_t)(chaos_rand(rng) % 256) };
        return ipcf_mbox_create(b->name, &o);
}

static void mbox_run(chaos_book *b, unsigned p) {
        if (p == SENDER)
                mbox_send(b);
        else
                mbox_receive(b, p);
}

/* How many of the sent messages no receiver marked. */
static uint32_t mbox_missing(const chaos_book *b) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < b->n_msgs; i++)
                n += atomic_load(&b->sent[i]) && !chaos_got_any(b, i);
        return n;
}

static void mbox_step(chaos_book *b, uint32_t alive, uint64_t quiet_ms) {
        if (b->ended || b->daemon_killed)
                return; /* destroyed already, or gone with the daemon */
        bool sending = (alive & (1u << SENDER)) && !(atomic_load(&b->done) & (1u << SENDER));
        if (sending || (quiet_ms < 500 && mbox_missing(b) > 0))
                return;
        b->ended = true;
        int r = ipcf_mbox_destroy(b->name);
        if (r >= 0)
                b->destroy_told += r;
        else if (!b->daemon_killed)
                chaos_book_error(b, r);
}

static void mbox_tally(const chaos_book *b, chaos_tally *t) {
        uint64_t missing = 0;
        for (uint32_t i = 0; i < b->n_msgs; i++) {
                if (!chaos_was_sent(b, i))
                        continue;
                t->sent++;
                unsigned g = chaos_got_any(b, i);
                if (g > 1)
                        t->duplicates += g - 1;
                if (g) {
                        t->delivered++;
                        continue;
                }
                pid_t taker = atomic_load(&b->receipt_pid[i]);
                bool by_killed = false;
                for (unsigned p = 1; p < CHAOS_PROCS; p++)
                        by_killed |= taker && taker == b->pid[p] && b->killed[p];
                if (by_killed)
                        t->with_killed++;
                else
                        missing++;
        }
        chaos_settle(t, missing, atomic_load(&b->told[SENDER]) + b->destroy_told);
}

const chaos_model chaos_model_mbox = {
        .name = "mbox",
        .procs = 3,
        .daemon_kill_ok = true,
        .setup = mbox_setup,
        .run = mbox_run,
        .step = mbox_step,
        .tally = mbox_tally,
};
