/*
 * test-allockill-probe.c — kill -9 at each step of an allocation (issue 15):
 * 90 rounds of a requester and an acceptor process (the acceptor takes
 * flows on the parent's registration, the prefork pattern), one of them
 * killed early (connecting, asking), in the middle (pending, deciding,
 * handing over) or late, then both. Afterwards the daemon lists no flow,
 * has exactly the descriptors it had before, keeps the registration, and
 * serves a new allocation on it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;
static _Atomic unsigned *made; /* shared: flows a requester got, accepts an acceptor made */

static void requester(void *arg) {
        (void)arg;
        int p = ipcf_alloc("probe.kill", NULL, 5000, NULL);
        if (p >= 0) {
                atomic_fetch_add(&made[0], 1);
                (void)ipcf_write(p, "x", 1, 100);
        }
        pause();
}

static void acceptor(void *arg) {
        int rg = *(int *)arg;
        for (;;) {
                int p = ipcf_accept(rg, 5000, NULL);
                if (p >= 0) {
                        atomic_fetch_add(&made[1], 1);
                        char c;
                        (void)ipcf_read(p, &c, 1, 100);
                }
        }
}

TEST_TIMEOUT(kill_9_at_random_moments_of_allocations, 200) {
        made = mmap(NULL, 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(made != MAP_FAILED);
        test_daemon_start(&d, NULL, NULL);
        int rg = CHECK_OK(ipcf_register("probe.kill", NULL));
        ipcf_listing *l = NULL;
        CHECK_OK(ipcf_list(&l));
        size_t flows0 = l->n_flows, names0 = l->n_names;
        ipcf_free(l);
        int fds0 = test_daemon_fds(&d);
        uint64_t rng = 12345;
        for (int round = 0; round < 90; round++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                pid_t acc = test_fork(acceptor, &rg);
                pid_t req = test_fork(requester, NULL);
                /* early (connecting, asking), middle (pending, deciding), late */
                static const unsigned from[3] = { 0, 1500, 4000 }, span[3] = { 1500, 2500, 15000 };
                usleep(from[round % 3] + (unsigned)(rng >> 33) % span[round % 3]);
                if (rng & (1ull << 20))
                        kill(req, SIGKILL);
                else
                        kill(acc, SIGKILL);
                usleep((unsigned)(rng >> 40) % 2000);
                kill(req, SIGKILL);
                kill(acc, SIGKILL);
                test_wait(req, 5000);
                test_wait(acc, 5000);
        }
        /* everything of theirs is gone: flows, pending requests, descriptors */
        uint64_t end = test_now_ms() + 10000;
        size_t flows = 0;
        int fds = 0;
        do {
                usleep(50000);
                CHECK_OK(ipcf_list(&l));
                flows = l->n_flows;
                CHECK_EQ(l->n_names, names0);
                ipcf_free(l);
                fds = test_daemon_fds(&d);
        } while ((flows != flows0 || fds != fds0) && test_now_ms() < end);
        printf("# %u flows made, %u accepts; after: flows %zu (was %zu), daemon fds %d (was %d)\n",
               made[0], made[1], flows, flows0, fds, fds0);
        CHECK_EQ(flows, flows0);
        CHECK_EQ(fds, fds0);
        /* and the registration still serves */
        pid_t acc = test_fork(acceptor, &rg);
        int p = CHECK_OK(ipcf_alloc("probe.kill", NULL, 5000, NULL));
        CHECK_EQ(ipcf_write(p, "y", 1, 1000), 1);
        kill(acc, SIGKILL);
        test_wait(acc, 5000);
        test_daemon_stop(&d);
}
