/*
 * loopwait.c — see loopwait.h.
 */
#include "support/loopwait.h"

#include <stdint.h>

#include "common/util.h"
#include "daemon/core/dlist.h"

typedef struct waiter {
        loop_timer t;
        loop *l;
        bool (*pred)(void *ctx);
        void *ctx;
        uint64_t end;
        bool met;
} waiter;

static void waiter_fn(loop_timer *t) {
        waiter *w = container_of(t, waiter, t);
        uint64_t now = now_ns();
        if (w->pred && w->pred(w->ctx)) {
                w->met = true;
                loop_quit(w->l);
                return;
        }
        if (now >= w->end) {
                loop_quit(w->l);
                return;
        }
        loop_timer_arm(w->l, t, MIN(w->end, now + LOOP_WAIT_CHECK_MS * 1000000ull));
}

bool loop_wait(loop *l, bool (*pred)(void *ctx), void *ctx, int timeout_ms) {
        waiter w = { .l = l, .pred = pred, .ctx = ctx, .end = now_ns() + (uint64_t)timeout_ms * 1000000u };
        if (pred && pred(ctx))
                return true;
        loop_timer_init(&w.t, waiter_fn);
        loop_timer_arm(l, &w.t, now_ns());
        loop_run(l);
        loop_timer_cancel(l, &w.t);
        return w.met || (pred && pred(ctx));
}
