/*
 * test-inbox-takers.c — several threads taking from one service inbox
 * (src/lib/models/inbox.c): closing the inbox wakes every sleeping taker.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "ipcf.h"
#include "lib/core/lib.h"
#include "lib/models/callwire.h"
#include "lib/models/inbox.h"
#include "support/test.h"

static ssize_t take_any(void *arg, const void *data, size_t len) {
        (void)arg;
        (void)data;
        return (ssize_t)len;
}

static unsigned sleepers_of(inbox *b) {
        pthread_mutex_lock(&b->lock);
        unsigned n = b->sleepers;
        pthread_mutex_unlock(&b->lock);
        return n;
}

/* Wait (at most 10 s) until n takers sleep in b. */
static void wait_sleepers(inbox *b, unsigned n) {
        uint64_t t0 = test_now_ms();
        while (sleepers_of(b) != n) {
                CHECK(test_now_ms() - t0 < 10000);
                usleep(1000);
        }
}

/* ---- closing while several takers sleep ---------------------------------- */

#define CLOSE_SLEEPERS 3

struct closer {
        inbox *b;
        ssize_t r;
};

static atomic_uint closed_out;

static void *take_until_closed(void *arg) {
        struct closer *s = arg;
        port *p = NULL;
        s->r = inbox_take(s->b, take_any, NULL, -1, &p);
        atomic_fetch_add(&closed_out, 1);
        return NULL;
}

/* Three takers asleep with no time limit when the inbox closes: every one
 * returns -EBADF at once. epoll wakes one sleeper per event and that one
 * drains b->wake, so before it passed the wake-up on, the others slept on
 * (for ever). */
TEST_TIMEOUT(closing_wakes_every_sleeping_taker, 60) {
        inbox b;
        CHECK_OK(inbox_init(&b, NULL, NULL, CTL_ROLE_CALL));
        struct closer s[CLOSE_SLEEPERS];
        pthread_t th[CLOSE_SLEEPERS];
        for (int i = 0; i < CLOSE_SLEEPERS; i++) {
                s[i] = (struct closer){ .b = &b };
                CHECK_OK(-pthread_create(&th[i], NULL, take_until_closed, &s[i]));
        }
        wait_sleepers(&b, CLOSE_SLEEPERS);
        inbox_close_all(&b, "done");
        uint64_t t0 = test_now_ms();
        while (atomic_load(&closed_out) < CLOSE_SLEEPERS && test_now_ms() - t0 < 5000)
                usleep(1000);
        CHECK_EQ(atomic_load(&closed_out), CLOSE_SLEEPERS);
        for (int i = 0; i < CLOSE_SLEEPERS; i++) {
                CHECK_OK(-pthread_join(th[i], NULL));
                CHECK_EQ(s[i].r, -EBADF);
        }
        inbox_deinit(&b);
}
