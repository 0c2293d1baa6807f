/*
 * test-request-withdrawn.c — a request its requester gave up on (its
 * ipcf_alloc timed out: the daemon withdraws it) is not handed out by
 * ipcf_request_next, against the real daemon, with a local requester:
 *   - withdrawn before the registrant looked: ipcf_request_next says
 *     -EAGAIN (it used to return the withdrawn request, while `ipcf ls`
 *     showed 0 pending, and accepting it then failed -ECANCELED);
 *   - a live request queued behind a withdrawn one is the one handed out,
 *     and accepting it makes a working flow;
 *   - taken (ipcf_request_next returned it) before the requester gave up:
 *     accepting or refusing it fails -ECANCELED, and nothing is left: no
 *     flow, nothing pending, no request handed out again.
 */
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

/* The requester: its allocation of name (arg) gives up after give_up_ms. */
static int give_up_ms;
static void alloc_and_give_up(void *arg) {
        CHECK_ERR(ipcf_alloc((const char *)arg, NULL, give_up_ms, NULL), -ETIMEDOUT);
}

/* The requester that waits long enough, then writes one message. */
static void alloc_and_write(void *arg) {
        int p = CHECK_OK(ipcf_alloc((const char *)arg, NULL, 10000, NULL));
        CHECK_EQ(ipcf_write(p, "hi", 2, 10000), 2);
        char b[4];
        /* The acceptor's answer, then the end. */
        CHECK_EQ(ipcf_read(p, b, sizeof(b), 10000), 2);
        CHECK_OK(ipcf_dealloc(p, NULL));
}

/* The acceptor's side of alloc_and_write on port p (c's flow): read its
 * message, answer, see c out, close. */
static void answer(int p, pid_t c) {
        char buf[4];
        CHECK_EQ(ipcf_read(p, buf, sizeof(buf), 10000), 2);
        CHECK_MEM(buf, "hi", 2);
        CHECK_EQ(ipcf_write(p, "ok", 2, 10000), 2);
        CHECK_EQ(test_wait(c, 10000), 0);
        CHECK_OK(ipcf_dealloc(p, NULL));
}

/* A requester of name gives up after ms, and is gone. */
static void requester_gives_up(const char *name, int ms) {
        give_up_ms = ms;
        CHECK_EQ(test_wait(test_fork(alloc_and_give_up, (void *)name), 10000), 0);
}

/* A new requester of name is served by ipcf_accept on reg. */
static void accept_a_new_one(int reg, const char *name) {
        pid_t c = test_fork(alloc_and_write, (void *)name);
        ipcf_request req;
        int p = CHECK_OK(ipcf_accept(reg, 5000, &req));
        CHECK_EQ(req.from.pid, c);
        answer(p, c);
}

/* pending requests and flows the daemon shows for name. */
static void shown(const char *name, uint32_t *ret_pending, size_t *ret_flows) {
        ipcf_listing *l;
        CHECK_OK(ipcf_list(&l));
        *ret_pending = 0;
        *ret_flows = 0;
        for (size_t i = 0; i < l->n_names; i++)
                if (strcmp(l->names[i].name, name) == 0)
                        *ret_pending += l->names[i].pending;
        for (size_t i = 0; i < l->n_flows; i++)
                if (strcmp(l->flows[i].name, name) == 0)
                        (*ret_flows)++;
        ipcf_free(l);
}

static void check_nothing_left(const char *name) {
        uint32_t pending;
        size_t flows;
        shown(name, &pending, &flows);
        CHECK_EQ(pending, 0);
        CHECK_EQ(flows, 0);
}

/* Wait (bounded) until the daemon shows n pending requests for name. */
static void wait_pending(const char *name, uint32_t n) {
        uint64_t t0 = test_now_ms();
        for (;;) {
                uint32_t pending;
                size_t flows;
                shown(name, &pending, &flows);
                if (pending == n)
                        return;
                CHECK(test_now_ms() - t0 < 10000);
                usleep(2000);
        }
}

TEST_TIMEOUT(a_request_withdrawn_before_it_was_looked_at_is_not_handed_out, 30) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("wd.before", NULL));
        requester_gives_up("wd.before", 200);
        check_nothing_left("wd.before");
        ipcf_request req;
        memset(&req, 0, sizeof(req));
        int r = ipcf_request_next(reg, 0, &req);
        if (r == 0) {
                int a = ipcf_request_accept(reg, &req);
                test_fail(__FILE__, __LINE__,
                          "ipcf_request_next handed out withdrawn request %llu from pid %d "
                          "(0 pending shown); accepting it: %d",
                          (unsigned long long)req.id, (int)req.from.pid, a);
        }
        CHECK_EQ(r, -EAGAIN);
        /* The same with a wait: nothing comes. */
        CHECK_ERR(ipcf_request_next(reg, 50, &req), -ETIMEDOUT);
        check_nothing_left("wd.before");
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}

TEST_TIMEOUT(a_live_request_behind_withdrawn_ones_is_the_one_handed_out, 30) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("wd.behind", NULL));
        requester_gives_up("wd.behind", 150);
        requester_gives_up("wd.behind", 150);
        pid_t c = test_fork(alloc_and_write, "wd.behind");
        wait_pending("wd.behind", 1);
        /* Two withdrawn requests, then c's: c's is the one handed out, by
         * ipcf_request_next and by ipcf_accept alike. */
        ipcf_request req;
        CHECK_OK(ipcf_request_next(reg, 5000, &req));
        CHECK_EQ(req.from.pid, c);
        answer(CHECK_OK(ipcf_request_accept(reg, &req)), c);
        CHECK_ERR(ipcf_request_next(reg, 0, &req), -EAGAIN);

        /* ipcf_accept skips withdrawn ones too. */
        requester_gives_up("wd.behind", 150);
        accept_a_new_one(reg, "wd.behind");
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}

TEST_TIMEOUT(a_request_taken_then_withdrawn_fails_to_accept_and_leaves_nothing, 30) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("wd.taken", NULL));
        give_up_ms = 300;
        /* Accept after the requester gave up. */
        pid_t b = test_fork(alloc_and_give_up, "wd.taken");
        ipcf_request req;
        /* Waiting when the request comes: it is handed out at once. */
        CHECK_OK(ipcf_request_next(reg, 5000, &req));
        CHECK_EQ(req.from.pid, b);
        CHECK_EQ(test_wait(b, 10000), 0);
        check_nothing_left("wd.taken");
        CHECK_ERR(ipcf_request_accept(reg, &req), -ECANCELED);
        check_nothing_left("wd.taken");
        CHECK_ERR(ipcf_request_next(reg, 0, &req), -EAGAIN);

        /* Refuse after the requester gave up. */
        b = test_fork(alloc_and_give_up, "wd.taken");
        CHECK_OK(ipcf_request_next(reg, 5000, &req));
        CHECK_EQ(test_wait(b, 10000), 0);
        CHECK_ERR(ipcf_request_refuse(reg, &req, "late"), -ECANCELED);
        check_nothing_left("wd.taken");
        CHECK_ERR(ipcf_request_next(reg, 0, &req), -EAGAIN);

        /* The registration still serves. */
        accept_a_new_one(reg, "wd.taken");
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}
