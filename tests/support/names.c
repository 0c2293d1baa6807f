/*
 * names.c — see names.h.
 */
#include "support/names.h"

#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

/* Whether name is registered now. */
static bool registered(const char *name) {
        ipcf_listing *l;
        CHECK_OK(ipcf_list(&l));
        bool found = false;
        for (size_t k = 0; k < l->n_names; k++)
                found |= strcmp(l->names[k].name, name) == 0;
        ipcf_free(l);
        return found;
}

void test_wait_for_name_gone(const char *name, int timeout_ms) {
        uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
        do {
                if (!registered(name))
                        return;
                usleep(5000);
        } while (test_now_ms() < deadline);
        test_fail(__FILE__, __LINE__, "%s was still registered after %d ms", name, timeout_ms);
}

void test_wait_for_name(const char *name, int timeout_ms) {
        uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
        do {
                if (registered(name))
                        return;
                usleep(5000);
        } while (test_now_ms() < deadline);
        test_fail(__FILE__, __LINE__, "%s was not registered within %d ms", name, timeout_ms);
}

/* How many flows allocated to name have something queued towards it. */
static int queued_flows(const char *name) {
        ipcf_listing *l;
        CHECK_OK(ipcf_list(&l));
        int n = 0;
        for (size_t i = 0; i < l->n_flows; i++)
                n += strcmp(l->flows[i].name, name) == 0 && l->flows[i].queued_ab > 0;
        ipcf_free(l);
        return n;
}

void test_wait_queued(const char *name, int n, int timeout_ms) {
        uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
        int have;
        while ((have = queued_flows(name)) < n && test_now_ms() < deadline)
                usleep(500);
        if (have != n)
                test_fail(__FILE__, __LINE__, "%d flows to %s have something queued, want %d",
                          have, name, n);
}

int test_reuse_handle_numbers(int ports[128]) {
        bool was[64] = { false };
        int nwas = 0;
        for (int h = 0; h < 64; h++)
                if (ipcf_detach(h) == 0) {
                        was[h] = true;
                        nwas++;
                }
        CHECK(nwas >= 1);
        int n = 0, covered = 0;
        while (covered < nwas && n < 128) {
                CHECK_OK(ipcf_pipe(NULL, &ports[n]));
                for (int e = n; e < n + 2; e++)
                        if (ports[e] >= 0 && ports[e] < 64 && was[ports[e]])
                                covered++;
                n += 2;
        }
        CHECK_EQ(covered, nwas);
        return n;
}

void test_reused_pipes_untouched(const int *ports, int n) {
        char buf[64];
        for (int i = 0; i < n; i++) {
                CHECK_ERR(ipcf_read(ports[i], buf, sizeof(buf), 0), -EAGAIN);
                CHECK_EQ(ipcf_write(ports[i], "x", 1, 0), 1);
                CHECK_EQ(ipcf_read(ports[i ^ 1], buf, sizeof(buf), 1000), 1);
        }
}
