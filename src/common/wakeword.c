/*
 * wakeword.c — sleeping on and waking the want words of a flow's rings (the
 * rules are in wakeword.h). The futex is a shared one (no FUTEX_PRIVATE_FLAG):
 * the word lives in a MAP_SHARED memfd both processes map.
 */
#include "common/wakeword.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/wake.h"

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts) {
        return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, FUTEX_BITSET_MATCH_ANY);
}

void wakeword_wake(_Atomic uint32_t *want, int bell) {
        if (!atomic_load(want))
                return;
        uint32_t old = atomic_exchange(want, WAKEWORD_NONE);
        if (old == WAKEWORD_FUTEX)
                futex(want, FUTEX_WAKE, INT_MAX, NULL);
        else if (old)
                wake_ring(bell);
}

void wakeword_end(_Atomic uint32_t *want) {
        /* Order the end code (or kick) stored before against the load of
         * the word, as the sleeper orders its store of the word against its
         * load of the code. */
        atomic_thread_fence(memory_order_seq_cst);
        uint32_t expect = WAKEWORD_FUTEX;
        if (atomic_compare_exchange_strong(want, &expect, WAKEWORD_NONE))
                futex(want, FUTEX_WAKE, INT_MAX, NULL);
}

int wakeword_sleep(_Atomic uint32_t *want, uint64_t until_ns) {
        struct timespec ts = { .tv_sec = (time_t)(until_ns / 1000000000u),
                               .tv_nsec = (long)(until_ns % 1000000000u) };
        if (futex(want, FUTEX_WAIT_BITSET, WAKEWORD_FUTEX, &ts) < 0 && errno == ETIMEDOUT)
                return -ETIMEDOUT;
        return 0; /* woken, EAGAIN (the word changed), EINTR */
}
