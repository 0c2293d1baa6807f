/*
 * wait.c — how a side of a flow waits, and how it wakes the other.
 *
 * A waiting side first SPINS, for at most qos.spin_us and only while the peer
 * is running on another CPU (spinning against a peer that shares our CPU, or
 * sleeps, only delays it). Then it SLEEPS: first on a futex on its want word
 * (common/wakeword.h), for at most FUTEX_SLICE_NS of each wait — one system
 * call to sleep and one for the peer to wake it, as cheap as a blocking
 * socket — then in poll() on its own ear (a wake-up channel, common/wake.h)
 * and the peer's pidfd, so the death of the peer wakes it even without the
 * daemon (within the slice at worst). In poll mode (ipcf_fd) only poll()
 * sleeps: the ear's readiness is what the user's epoll sees.
 *
 * The wake-up protocol has no lost wake-ups (the trap in ANCHORS.md: never
 * sleep on one word while the waker clears another):
 *   waiter:  want = EAR or FUTEX (seq_cst); FENCE; if (condition) { want = 0; return; }
 *            poll(ear) / futex_wait(want, FUTEX)
 *   waker:   publish (seq_cst store, ring.c); if (load(want)) switch (exchange(want, 0))
 *            FUTEX: futex_wake(want); EAR: ring(bell)
 * Both sides order their store before their load (a seq_cst store then a
 * seq_cst load on the waker's side: on x86 the store is the one locked
 * instruction of the fast path), so either the waiter sees the publication or
 * the waker sees want and wakes; the ear keeps the ring until the waiter
 * drains it, so a ring that comes before poll() is not lost, and a futex wait
 * on a word the waker already cleared returns at once.
 *
 * NOTHING HERE CAN BLOCK on a descriptor the peer holds: rings and drains are
 * non-blocking per call (wake.h), and the only waits are poll()s bounded by
 * the caller's deadline. A peer that floods our ear costs one bounded drain
 * per wake-up; one that shuts the channel down (the ear hangs up) is treated
 * as gone: -ECONNRESET once the queue is read.
 *
 * Poll mode (after ipcf_fd / ipcf_fd_send) keeps the ear's readiness exact:
 * whenever this side leaves its queue empty (or finds no room), it drains the
 * ear, sets want, fences and re-checks, ringing itself if the state changed
 * meanwhile.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>

#include "common/util.h"
#include "common/wake.h"
#include "common/wakeword.h"
#include "lib/core/lib.h"

typedef bool (*wait_cond)(port *p, const void *arg);

static void run_note_cpu(port *p, unsigned cpu) {
        if (atomic_load_explicit(&p->my_run->cpu, memory_order_relaxed) != cpu)
                atomic_store_explicit(&p->my_run->cpu, cpu, memory_order_relaxed);
}

/* Will spinning for the peer pay? Only if it runs on another CPU, is not
 * asleep, and — if it is itself waiting — has work from us (our ring to it is
 * not empty): two sides waiting for each other with nothing in between would
 * spin for nothing. (A peer leaves its wait before it consumes our message, so
 * a reply on its way always counts as running.) */
bool port_peer_spinnable(port *p, unsigned my_cpu) {
        if (atomic_load_explicit(&p->peer_run->blocked, memory_order_relaxed) ||
            atomic_load_explicit(&p->peer_run->cpu, memory_order_relaxed) == my_cpu)
                return false;
        if (!atomic_load_explicit(&p->peer_run->waiting, memory_order_relaxed))
                return true;
        return atomic_load_explicit(&p->prod.ctl->tail, memory_order_relaxed) !=
               atomic_load_explicit(&p->prod.ctl->head, memory_order_relaxed);
}

/* Spin on cond within the budget; true if it became true.
 *
 * Catching up: once both sides of an exchange have fallen asleep (a hiccup
 * longer than the spin budget), each finds the other asleep when it starts to
 * wait, so neither spins and every turn pays a wake-up through the kernel —
 * for good. A side whose last sleep was short (its peer answered within
 * CATCH_UP_NS: it is busy with us) therefore spins once for up to
 * CATCH_UP_FACTOR x spin_us even if the peer sleeps: longer than a wake-up
 * takes, so the exchange gets back into step. */
#define CATCH_UP_NS 200000u
#define CATCH_UP_FACTOR 5u

/* The first SPIN_QUICK rounds of a spin read no clock: a peer busy with us
 * usually answers within them, and a wait that ends there costs no
 * clock_gettime (the budget starts after them). */
#define SPIN_QUICK 16u

/* A port with spin_yield_mark set (a service call's channel: many callers of
 * one service may share a CPU): while the peer's run slot shows that mark
 * (the service is awake with many callers, call.c/inbox.c) and the peer runs
 * on another CPU, the wait gives the CPU away with sched_yield() between
 * looks, for up to YIELD_SPIN_NS: the other callers on this CPU post their
 * requests and take their answers meanwhile, and nobody needs a wake-up
 * through the kernel (returns at once when nobody else is runnable here). */
#define YIELD_SPIN_NS 200000u
/* One look (a yield) that took longer than YIELD_LONG_NS gave the CPU to a
 * process that does not wait: it ran a timeslice (about 1.5 ms here; the
 * other callers' turns take a few microseconds each). The wait sleeps at
 * once, and the next YIELD_SKIP waits of the port sleep without yielding: a
 * caller beside a busy process paid a timeslice a yield (a 1 ms call under
 * the mark took 9-19 ms, test-call-busy-hostile). The clock is read after
 * each yield until they are quick, then after every 8th (its cost among 64
 * callers' turns: 4 % of the cycles, 3dd9d8b). */
#define YIELD_LONG_NS 1000000u
#define YIELD_QUICK_NS 8000u
#define YIELD_SKIP 64u

static bool yield_spin(port *p, wait_cond cond, const void *arg, uint64_t deadline, unsigned cpu) {
        uint64_t t = now_ns(), limit = MIN(t + YIELD_SPIN_NS, deadline);
        for (unsigned n = 0, stride = 1;;) {
                if (cond(p, arg))
                        return true;
                if (atomic_load_explicit(&p->peer_run->blocked, memory_order_relaxed) !=
                            p->spin_yield_mark ||
                    atomic_load_explicit(&p->peer_run->cpu, memory_order_relaxed) == cpu)
                        return cond(p, arg);
                sched_yield();
                if (++n == stride) {
                        uint64_t t2 = now_ns();
                        bool long_look = stride == 1 && t2 - t > YIELD_LONG_NS;
                        if (long_look)
                                atomic_store_explicit(&p->yield_skip, YIELD_SKIP, memory_order_relaxed);
                        if (long_look || t2 >= limit)
                                return cond(p, arg);
                        stride = t2 - t < (uint64_t)stride * YIELD_QUICK_NS ? 8u : 1u;
                        t = t2;
                        n = 0;
                }
        }
}

/* Say in our run slot that we wait (port_peer_spinnable reads it), once per
 * wait. */
static void announce_waiting(port *p, bool *announced) {
        if (*announced)
                return;
        *announced = true;
        atomic_store_explicit(&p->my_run->waiting, 1, memory_order_relaxed);
}

/* Have we given the peer something since our last wait (our ring's head
 * moved)? Then its answer may come at once, and the wait is announced late
 * (spin_until). Otherwise at once: a side that waits with nothing owed to
 * it — a reader of an idle flow — must show waiting even if it is
 * preempted in its first rounds, or its peer, waiting too, would take it
 * for running and spin its whole budget. (The head is our own line: the
 * peer never writes it but by forgery, which costs only a wrong hint.) */
static bool answer_due(port *p) {
        uint64_t h = atomic_load_explicit(&p->prod.ctl->head, memory_order_relaxed);
        if (h == atomic_load_explicit(&p->head_at_wait, memory_order_relaxed))
                return false;
        atomic_store_explicit(&p->head_at_wait, h, memory_order_relaxed);
        return true;
}

/* Spin on cond while the peer is worth it (port_peer_spinnable). A wait
 * with an answer due (answer_due) is announced (announce_waiting) only once
 * ANNOUNCE_ROUNDS rounds have not met cond, or before it yields or sleeps:
 * a peer that answers at once — every turn of a ping-pong — then sees no
 * store to our run slot, whose line it reads when it waits itself; the
 * store (and the one that clears it) would take that line back from it,
 * and the publication of what we read next (a seq_cst store, ring.c) would
 * wait for them. */
static bool spin_until(port *p, wait_cond cond, const void *arg, uint64_t deadline,
                       bool *announced) {
        int c = sched_getcpu();
        unsigned cpu = c < 0 ? 0 : (unsigned)c;
        run_note_cpu(p, cpu);
        /* (an exchange only when set: it is a locked instruction) */
        bool catch_up = atomic_load_explicit(&p->catch_up, memory_order_relaxed) &&
                        atomic_exchange_explicit(&p->catch_up, false, memory_order_relaxed);
        if (!p->qos.spin_us)
                return false;
        if (p->spin_yield_mark &&
            atomic_load_explicit(&p->peer_run->blocked, memory_order_relaxed) == p->spin_yield_mark &&
            atomic_load_explicit(&p->peer_run->cpu, memory_order_relaxed) != cpu) {
                uint32_t skip = atomic_load_explicit(&p->yield_skip, memory_order_relaxed);
                announce_waiting(p, announced);
                if (!skip)
                        return yield_spin(p, cond, arg, deadline, cpu);
                atomic_store_explicit(&p->yield_skip, skip - 1, memory_order_relaxed);
                return false; /* the caller sleeps */
        }
        if (catch_up ? atomic_load_explicit(&p->peer_run->cpu, memory_order_relaxed) == cpu
                     : !port_peer_spinnable(p, cpu))
                return false;
        uint64_t budget = (uint64_t)p->qos.spin_us * 1000u * (catch_up ? CATCH_UP_FACTOR : 1u);
        uint64_t limit = 0;
        for (unsigned i = 1;; i++) {
                if (cond(p, arg))
                        return true;
                cpu_relax();
                if (i == ANNOUNCE_ROUNDS)
                        announce_waiting(p, announced);
                if (i == SPIN_QUICK) {
                        limit = now_ns() + budget;
                        if (limit > deadline)
                                limit = deadline;
                }
                if (i > SPIN_QUICK && (i & 63) == 0 &&
                    (now_ns() >= limit || (!catch_up && !port_peer_spinnable(p, cpu))))
                        return false;
        }
}

bool port_peer_exited(port *p) {
        if (atomic_load_explicit(&p->peer_gone, memory_order_acquire))
                return true;
        struct pollfd pfd = { .fd = p->peer_pidfd, .events = POLLIN };
        if (p->peer_pidfd < 0 || poll(&pfd, 1, 0) != 1)
                return false;
        atomic_store(&p->peer_gone, true);
        return true;
}

/* Drain our ear; a hung-up channel means the peer is gone. */
static void drain_ear(port *p, int ear) {
        if (wake_drain(ear) == -EPIPE)
                atomic_store(&p->peer_gone, true);
}

/* How long one wait sleeps on the futex before it sleeps in poll(): long
 * enough for any exchange that is busy, short enough that the death of a
 * peer no daemon reports (the futex does not watch its pidfd) shows soon. */
#define FUTEX_SLICE_NS 20000000u

/* One futex sleep, until the earlier of the slice's end and the deadline. */
static int futex_sleep(_Atomic uint32_t *want, uint64_t until, uint64_t deadline) {
        int r = wakeword_sleep(want, until < deadline ? until : deadline);
        return r == -ETIMEDOUT && now_ns() >= deadline ? -ETIMEDOUT : 0;
}

/* One poll sleep on the ear and the peer's pidfd. */
static int poll_sleep(port *p, int ear, uint64_t deadline) {
        struct pollfd pfd[2] = { { .fd = ear, .events = POLLIN },
                                 { .fd = p->peer_pidfd, .events = POLLIN } };
        int timeout = deadline_poll_ms(deadline);
        if (timeout == 0)
                return -ETIMEDOUT;
        int r = poll(pfd, p->peer_pidfd >= 0 ? 2 : 1, timeout);
        if (r < 0)
                return 0; /* EINTR: the caller re-checks and sleeps again */
        if (r == 0)
                return -ETIMEDOUT;
        if (pfd[1].revents)
                atomic_store(&p->peer_gone, true);
        if (pfd[0].revents) {
                drain_ear(p, ear);
                if (ear == p->ear_rx)
                        p->rx_unset = true;
                else
                        p->tx_unset = true;
        }
        return 0;
}

/* One sleep: announce want, re-check, sleep — on the futex until futex_until,
 * then in poll(). Returns 0 when woken or the condition holds, -ETIMEDOUT
 * when the deadline passed. */
static int sleep_once(port *p, int ear, _Atomic uint32_t *want, wait_cond cond, const void *arg,
                      uint64_t futex_until, uint64_t deadline) {
        bool futex = futex_until && now_ns() < futex_until;
        int r = 0;

        atomic_store_explicit(&p->my_run->blocked, 1, memory_order_relaxed);
        atomic_store(want, futex ? WAKEWORD_FUTEX : WAKEWORD_EAR);
        atomic_thread_fence(memory_order_seq_cst);
        if (!cond(p, arg))
                r = futex ? futex_sleep(want, futex_until, deadline) : poll_sleep(p, ear, deadline);
        atomic_store_explicit(want, WAKEWORD_NONE, memory_order_relaxed);
        atomic_store_explicit(&p->my_run->blocked, 0, memory_order_relaxed);
        /* A port in a readiness set: this wait took the want word from the
         * set (and may have drained a ring meant for it). Ring the ear, so
         * the set looks at the port again and re-arms it. */
        if (want == &p->cons.ctl->rx_sleep && atomic_load_explicit(&p->set, memory_order_relaxed))
                wake_ring(p->bell_rx);
        return r;
}

/* May a wait on ear sleep on the futex? Not in poll mode. */
static bool futex_allowed(port *p, int ear) {
        return ear == p->ear_rx ? !p->poll_rx : !p->poll_tx;
}

static bool flow_over(port *p) {
        return port_end_error(p) != 0;
}

static int wait_for(port *p, int ear, _Atomic uint32_t *want, wait_cond cond, const void *arg,
                    uint64_t deadline, bool timeout_zero) {
        if (cond(p, arg))
                return 0;
        if (timeout_zero) {
                /* A peer whose death nobody rings (the daemon: a relayed
                 * flow, a broker) is looked at here too, so that a poller
                 * woken by its pidfd (ipcf_fd) reads the end, not EAGAIN */
                if (p->fd_with_peer && port_peer_exited(p) && cond(p, arg))
                        return 0;
                return -EAGAIN;
        }
        int r = 0;
        bool announced = false;
        if (!answer_due(p))
                announce_waiting(p, &announced);
        if (!spin_until(p, cond, arg, deadline, &announced)) {
                announce_waiting(p, &announced);
                uint64_t slept = now_ns();
                uint64_t futex_until = futex_allowed(p, ear) ? slept + FUTEX_SLICE_NS : 0;
                for (;;) {
                        int s = sleep_once(p, ear, want, cond, arg, futex_until, deadline);
                        if (cond(p, arg)) {
                                /* Answered soon: the peer is busy with us. */
                                if (now_ns() - slept < CATCH_UP_NS)
                                        atomic_store_explicit(&p->catch_up, true,
                                                              memory_order_relaxed);
                                break;
                        }
                        if (s == -ETIMEDOUT || now_ns() >= deadline) {
                                r = -ETIMEDOUT;
                                break;
                        }
                }
        }
        if (announced)
                atomic_store_explicit(&p->my_run->waiting, 0, memory_order_relaxed);
        return r;
}

static bool cond_rx(port *p, const void *arg) {
        return ring_ready(&p->cons) || flow_over(p) ||
               atomic_load_explicit(&p->kick, memory_order_acquire) != *(const uint32_t *)arg;
}

static bool cond_tx(port *p, const void *arg) {
        return ring_can_reserve(&p->prod, *(const size_t *)arg) != -EAGAIN || flow_over(p);
}

static bool cond_passed(port *p, const void *arg) {
        /* A forged tail (-EPROTO) ends the wait too: the writer reports it. */
        return ring_passed(&p->prod, *(const uint64_t *)arg) != 0 || flow_over(p);
}

int port_wait_rx(port *p, uint64_t deadline, bool timeout_zero, uint32_t kick_seen) {
        return wait_for(p, p->ear_rx, &p->cons.ctl->rx_sleep, cond_rx, &kick_seen, deadline,
                        timeout_zero);
}

void port_kick(port *p) {
        atomic_fetch_add_explicit(&p->kick, 1, memory_order_release);
        wake_ring(p->bell_rx);
        wakeword_end(&p->cons.ctl->rx_sleep);
}

/* How many pauses apart a batching writer looks at the reader's index: long
 * enough for the reader to take several messages in between. */
#define BATCH_LOOK_PAUSES 16u

void port_wait_batch(port *p, size_t len, uint64_t deadline) {
        ring_prod *r = &p->prod;
        if (!p->qos.spin_us || !ring_looks_full(r, len) || !ring_batches(r, len))
                return;
        int c = sched_getcpu();
        unsigned cpu = c < 0 ? 0 : (unsigned)c;
        uint64_t limit = now_ns() + (uint64_t)p->qos.spin_us * 1000u, last = UINT64_MAX;
        if (limit > deadline)
                limit = deadline;
        for (;;) {
                uint64_t tail;
                if (ring_batch_free(r, &tail) != 0 || tail == last)
                        return; /* a batch is free, or forged, or the reader paused */
                last = tail;
                if (!port_peer_spinnable(p, cpu) || flow_over(p))
                        return;
                for (unsigned i = 0; i < BATCH_LOOK_PAUSES; i++)
                        cpu_relax();
                if (now_ns() >= limit)
                        return;
        }
}

int port_wait_tx(port *p, size_t len, uint64_t deadline, bool timeout_zero) {
        return wait_for(p, p->ear_tx, &p->prod.ctl->tx_sleep, cond_tx, &len, deadline,
                        timeout_zero);
}

static bool cond_uncached(port *p, const void *arg) {
        (void)arg;
        return ring_cached(&p->prod) == 0 || flow_over(p);
}

int port_wait_uncached(port *p, uint64_t deadline, bool timeout_zero) {
        return wait_for(p, p->ear_tx, &p->prod.ctl->tx_sleep, cond_uncached, NULL, deadline,
                        timeout_zero);
}

int port_wait_passed(port *p, uint64_t pos, uint64_t deadline) {
        return wait_for(p, p->ear_tx, &p->prod.ctl->tx_sleep, cond_passed, &pos, deadline,
                        false);
}

/* Called right after the seq_cst store that published (ring_commit, ring_consume). */
void port_notify_data(port *p) {
        wakeword_wake(&p->prod.ctl->rx_sleep, p->peer_bell_rx);
}

void port_notify_space(port *p) {
        wakeword_wake(&p->cons.ctl->tx_sleep, p->peer_bell_tx);
}

/* Poll mode: make the ear readable iff cond holds (at quiescence). */
static void rearm(port *p, int ear, int bell, bool *unset, _Atomic uint32_t *want, wait_cond cond,
                  const void *arg) {
        if (cond(p, arg)) {
                if (*unset) {
                        wake_ring(bell);
                        *unset = false;
                }
                return;
        }
        drain_ear(p, ear);
        *unset = true;
        atomic_store(want, WAKEWORD_EAR);
        atomic_thread_fence(memory_order_seq_cst);
        if (cond(p, arg)) {
                wake_ring(bell);
                *unset = false;
        }
}

void port_rearm_rx(port *p) {
        uint32_t k = atomic_load(&p->kick);
        rearm(p, p->ear_rx, p->bell_rx, &p->rx_unset, &p->cons.ctl->rx_sleep, cond_rx, &k);
}

void port_rearm_tx(port *p) {
        size_t need = p->qos.mode == IPCF_MODE_STREAM ? 1 : p->qos.max_msg_size;
        rearm(p, p->ear_tx, p->bell_tx, &p->tx_unset, &p->prod.ctl->tx_sleep, cond_tx, &need);
}

/* ---- readiness sets (set.c) ----------------------------------------------- */

bool port_rx_ready(port *p) {
        /* Another thread reads it (or holds a peek): say what the lock-free
         * hint says. Not "ready" for that alone: a thread blocked in a read
         * holds the lock while it sleeps, and a set that took its port for
         * ready would report it at every wait, never sleeping (3,000
         * spurious reports in 500 ms). The hint has no false "empty" (a
         * record at the published tail, or none queued), and the blocked
         * reader rings the ear when it is done (sleep_once): the set looks
         * again then. */
        if (!plock_try(&p->rlock))
                return port_rx_hint(p);
        bool ready;
        if (p->cons.zero) {
                /* (a peek would claim a rendezvous record for good) */
                ready = ring_ready(&p->cons);
        } else {
                /* A peek, not ring_ready(): it steps over pad and withdrawn
                 * records, which are no message. It stays peeked for the read. */
                const void *data;
                ssize_t n = ring_peek(&p->cons, &data);
                if (n == -EPROTO)
                        atomic_store(&p->broken, true);
                ready = n != -EAGAIN;
        }
        ready = ready || port_end_error(p) != 0 || atomic_load(&p->rx_kept);
        plock_unlock(&p->rlock);
        return ready;
}

bool port_rx_hint(port *p) {
        return atomic_load_explicit(&p->rx_kept, memory_order_relaxed) ||
               ring_ready_hint(&p->cons) || port_end_error(p) != 0;
}

void port_set_arm(port *p) {
        /* Only over NONE: FUTEX is a blocking read of another thread, which
         * rings the ear when it is done (sleep_once); any other value is the
         * peer's doing, and only its own flow is at stake. */
        uint32_t none = WAKEWORD_NONE;
        atomic_compare_exchange_strong_explicit(&p->cons.ctl->rx_sleep, &none, WAKEWORD_EAR,
                                                memory_order_relaxed, memory_order_relaxed);
        atomic_store_explicit(&p->my_run->blocked, 1, memory_order_relaxed);
}

void port_set_watch(port *p, unsigned cpu) {
        _Atomic uint32_t *want = &p->cons.ctl->rx_sleep;
        uint32_t ear = WAKEWORD_EAR;
        if (atomic_load_explicit(want, memory_order_relaxed) == WAKEWORD_EAR)
                atomic_compare_exchange_strong_explicit(want, &ear, WAKEWORD_NONE,
                                                        memory_order_relaxed,
                                                        memory_order_relaxed);
        if (atomic_load_explicit(&p->my_run->blocked, memory_order_relaxed))
                atomic_store_explicit(&p->my_run->blocked, 0, memory_order_relaxed);
        run_note_cpu(p, cpu);
}
