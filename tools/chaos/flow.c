/*
 * flow.c — chaos rounds of a plain flow: process 0 registers the round's
 * name and reads, process 1 allocates a flow to it and writes the round's
 * messages (sometimes with a small queue, so that it waits for room), then
 * waits for the flow's end. The reader deallocates ("done") once it has
 * every message; sometimes the writer ends the flow early instead ("early").
 *
 * What a flow promises (include/ipcf.h): messages in order, each once; what
 * a writer wrote stays readable after it deallocated or died; a writer whose
 * reader died learns it (-ECONNRESET). So with the reader alive nothing may
 * be missing, and with the reader killed every missing message must be
 * covered by the writer having been told — unless the writer had already
 * ended the flow and left (then the messages died with the reader).
 * The daemon's death changes nothing: it is not on the data path.
 */
#include <errno.h>

#include "ipcf.h"
#include "models.h"

enum { READER = 0, WRITER = 1 };

/* The reader's count: messages in order, and all of them. */
typedef struct flow_reading {
        uint32_t next, n;
} flow_reading;

static bool flow_got(chaos_book *b, uint32_t seq, void *ctx) {
        flow_reading *fr = ctx;
        if (seq != fr->next)
                atomic_fetch_add(&b->out_of_order, 1);
        fr->next = seq + 1;
        chaos_got(b, 0, seq);
        return ++fr->n < b->n_msgs;
}

static void flow_read(chaos_book *b) {
        int reg = ipcf_register(b->name, NULL);
        if (reg < 0) {
                chaos_book_error(b, reg);
                return;
        }
        chaos_set_bit(&b->ready, READER);
        int port = ipcf_accept(reg, 5000, NULL);
        ipcf_dealloc(reg, NULL);
        if (port < 0) {
                chaos_book_error(b, port);
                return;
        }
        flow_reading fr = { 0 };
        int end = chaos_receive(b, port, ipcf_read, flow_got, &fr);
        ipcf_dealloc(port, end == 1 ? "done" : NULL);
}

/* After the last write: wait for the reader's end of the flow. */
static void flow_wait_end(chaos_book *b, int port) {
        static char buf[CHAOS_MSG_MAX];
        for (;;) {
                ssize_t r = ipcf_read(port, buf, sizeof(buf), 1000);
                if (r == -ETIMEDOUT)
                        continue;
                if (r == -ECONNRESET)
                        atomic_store(&b->peer_gone, 1);
                else if (r != -EPIPE)
                        chaos_book_error(b, r < 0 ? (int)r : -EPROTO);
                return;
        }
}

static void flow_write(chaos_book *b) {
        if (!chaos_wait_bits(&b->ready, 1u << READER, 5000))
                return;
        ipcf_qos qos;
        ipcf_qos_init(&qos);
        if (b->variant & 0x10000u)
                qos.max_bytes = 8192; /* a small queue: the writer waits for room */
        int port = ipcf_alloc(b->name, &qos, 5000, NULL);
        if (port < 0) {
                chaos_book_error(b, port);
                return;
        }
        chaos_set_bit(&b->ready, WRITER);
        uint32_t early = b->variant & 0xffffu, upto = early ? early : b->n_msgs;
        static char buf[CHAOS_MSG_MAX];
        for (uint32_t i = 0; i < upto;) {
                size_t len = chaos_msg_make(buf, b, i);
                ssize_t r = ipcf_write(port, buf, len, 1000);
                if (r == (ssize_t)len) {
                        atomic_store(&b->sent[i++], 1);
                } else if (r == -ECONNRESET) {
                        atomic_store(&b->peer_gone, 1);
                        goto out;
                } else if (r != -ETIMEDOUT) {
                        chaos_book_error(b, r < 0 ? (int)r : -EPROTO);
                        goto out;
                }
        }
        chaos_set_bit(&b->done, WRITER);
        if (early) {
                ipcf_dealloc(port, "early");
                return;
        }
        flow_wait_end(b, port);
out:
        ipcf_dealloc(port, NULL);
}

static int flow_setup(chaos_book *b, uint64_t *rng) {
        uint64_t r = chaos_rand(rng);
        b->variant = (r & 1) ? 0x10000u : 0;
        if (r % 5 == 0) /* one round in five ends the flow early */
                b->variant |= 1 + (uint32_t)((r >> 8) % b->n_msgs);
        return 0;
}

static void flow_run(chaos_book *b, unsigned p) {
        if (p == READER)
                flow_read(b);
        else
                flow_write(b);
}

static void flow_tally(const chaos_book *b, chaos_tally *t) {
        bool early = b->variant & 0xffffu;
        for (uint32_t i = 0; i < b->n_msgs; i++) {
                if (!chaos_was_sent(b, i))
                        continue;
                t->sent++;
                unsigned g = atomic_load(&b->got[0][i]);
                if (g > 1)
                        t->duplicates += g - 1;
                if (g)
                        t->delivered++;
                else if (atomic_load(&b->peer_gone))
                        t->reported++;
                else if (b->killed[READER] && early)
                        t->with_killed++;
                else
                        t->lost_unreported++;
        }
}

const chaos_model chaos_model_flow = {
        .name = "flow",
        .procs = 2,
        .daemon_kill_ok = true,
        .setup = flow_setup,
        .run = flow_run,
        .tally = flow_tally,
};
