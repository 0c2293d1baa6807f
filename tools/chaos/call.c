/*
 * call.c — chaos rounds of service calls: process 0 is a service that
 * checks each request and echoes it back; process 1 calls it once per
 * message, one call at a time, each with a 3 s timeout — or, one round in
 * three, 300 ms with the service slower than that now and then.
 *
 * What a call promises (include/ipcf.h): it returns the service's reply, or
 * an error that says what became of it (-ECONNRESET the service died before
 * answering: outcome unknown; -EPIPE it closed; -ETIMEDOUT cancelled), and
 * never later than its timeout. So every call that counts as sent is either
 * answered with its own request, executed exactly once, or reported to the
 * caller — unless the caller was killed during it. A call that returned
 * later than its timeout (plus 1.5 s of scheduling slack) is counted late.
 * A reply the service could not give is reported to the service (counted in
 * told[0], not in the units: the caller's side accounts for the call).
 */
#include <errno.h>
#include <string.h>

#include "ipcf.h"
#include "models.h"

enum { SERVER = 0, CALLER = 1 };
#define CALL_TIMEOUT_MS 3000
#define CALL_SLACK_MS 1500
/* Rounds with timeouts that fire: calls of 300 ms, and the service takes
 * 400 ms over one request in 64 (the caller gets -ETIMEDOUT, the service's
 * late reply -ECANCELED). */
#define SLOW_TIMEOUT_MS 300
#define SLOW_SERVICE_MS 400
#define SLOW_EVERY 64

static int call_timeout(const chaos_book *b) {
        return b->variant ? SLOW_TIMEOUT_MS : CALL_TIMEOUT_MS;
}

static void call_serve(chaos_book *b) {
        int svc = ipcf_service(b->name, NULL);
        if (svc < 0) {
                chaos_book_error(b, svc);
                return;
        }
        chaos_set_bit(&b->ready, SERVER);
        static char buf[CHAOS_MSG_MAX];
        while (!atomic_load(&b->stop)) {
                ipcf_call_req req;
                ssize_t r = ipcf_service_next(svc, buf, sizeof(buf), 200, &req);
                if (r == -ETIMEDOUT || r == -EHOSTDOWN) {
                        if (r == -EHOSTDOWN) /* the daemon died and no caller is connected */
                                chaos_sleep_ms(50);
                        continue;
                }
                if (r < 0) {
                        chaos_book_error(b, (int)r);
                        break;
                }
                int64_t s = chaos_msg_check(b, buf, (size_t)r);
                if (b->variant && s % SLOW_EVERY == SLOW_EVERY - 1)
                        chaos_sleep_ms(SLOW_SERVICE_MS);
                int rr = s < 0 ? ipcf_service_fail(svc, &req, EBADMSG, 1000)
                               : (chaos_got(b, 0, (uint32_t)s),
                                  ipcf_service_reply(svc, &req, buf, (size_t)r, 1000));
                if (rr == -ECANCELED || rr == -EPIPE || rr == -ECONNRESET)
                        atomic_fetch_add(&b->told[SERVER], 1);
                else if (rr < 0)
                        chaos_book_error(b, rr);
        }
        ipcf_dealloc(svc, NULL);
}

static void call_make(chaos_book *b) {
        if (!chaos_wait_bits(&b->ready, 1u << SERVER, 5000))
                return;
        chaos_set_bit(&b->ready, CALLER);
        static char buf[CHAOS_MSG_MAX], reply[CHAOS_MSG_MAX];
        for (uint32_t i = 0; i < b->n_msgs; i++) {
                size_t len = chaos_msg_make(buf, b, i);
                uint64_t t0 = chaos_now_ms();
                ssize_t r = ipcf_call(b->name, buf, len, reply, sizeof(reply), call_timeout(b), NULL);
                if (chaos_now_ms() - t0 > (uint64_t)call_timeout(b) + CALL_SLACK_MS)
                        atomic_fetch_add(&b->late, 1);
                if (r >= 0) {
                        if ((size_t)r != len || memcmp(reply, buf, len) != 0)
                                atomic_fetch_add(&b->corrupt, 1);
                        else
                                atomic_fetch_add(&b->got[1][i], 1);
                        atomic_store(&b->sent[i], 1);
                        continue;
                }
                atomic_store(&b->told_msg[i], 1);
                atomic_store(&b->sent[i], 1);
                if (r == -ETIMEDOUT)
                        continue;
                if (r != -ECONNRESET && r != -EPIPE && r != -ENOENT && r != -EHOSTDOWN)
                        chaos_book_error(b, (int)r);
                break; /* the service is gone */
        }
        chaos_set_bit(&b->done, CALLER);
}

static int call_setup(chaos_book *b, uint64_t *rng) {
        b->variant = chaos_rand(rng) % 3 == 0;
        return 0;
}

static void call_run(chaos_book *b, unsigned p) {
        if (p == SERVER)
                call_serve(b);
        else
                call_make(b);
}

/* The caller is done (or dead): the service may go. */
static void call_step(chaos_book *b, uint32_t alive, uint64_t quiet_ms) {
        (void)quiet_ms;
        if (!(alive & (1u << CALLER)))
                atomic_store(&b->stop, 1);
}

static void call_tally(const chaos_book *b, chaos_tally *t) {
        for (uint32_t i = 0; i < b->n_msgs; i++) {
                unsigned runs = atomic_load(&b->got[0][i]), answered = atomic_load(&b->got[1][i]);
                if (!atomic_load(&b->sent[i]) && !runs)
                        continue;
                t->sent++;
                if (runs > 1)
                        t->duplicates += runs - 1;
                if (answered && runs)
                        t->delivered++;
                else if (answered) /* an answer the service never gave */
                        t->lost_unreported++;
                else if (atomic_load(&b->told_msg[i]))
                        t->reported++;
                else if (b->killed[CALLER])
                        t->with_killed++;
                else
                        t->lost_unreported++;
        }
}

const chaos_model chaos_model_call = {
        .name = "call",
        .procs = 2,
        .daemon_kill_ok = true,
        .setup = call_setup,
        .run = call_run,
        .step = call_step,
        .tally = call_tally,
};
