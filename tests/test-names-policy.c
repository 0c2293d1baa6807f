/*
 * test-names-policy.c — nobody takes a name that is not theirs (issue 16,
 * item 5, the names part), against the real daemon (--shared) with processes
 * of other uids (needs root to setuid; skipped otherwise):
 *   - where a name's rule says `register = *`, a user cannot join another
 *     user's registrations of it (and take a share of its flows) unless the
 *     rule's `share` list names it;
 *   - ipcf_watch does not reveal a name the policy hides (EACCES), nor the
 *     pid of another user's registrant (0).
 */
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/steps.h"
#include "support/test.h"

static const char policy_conf[] =
        "[name open.*]\n"
        "allocate = *\n"
        "register = *\n"
        "[name joint.*]\n"
        "allocate = *\n"
        "register = *\n"
        "share = uid:65533\n";

#define ALICE 65534u
#define BOB 65533u

/* Become uid (and a gid of its own), dropping root. */
static void become(uid_t uid) {
        if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
                test_fail(__FILE__, __LINE__, "cannot become uid %u", (unsigned)uid);
}

/* Alice registers name and accepts every flow to it until told to stop;
 * then she writes how many she got to the parent. */
struct holder {
        struct steps st;
        const char *name;
};

static void alice_holds(void *arg) {
        struct holder *h = arg;
        become(ALICE);
        int reg = CHECK_OK(ipcf_register(h->name, NULL));
        step_send(h->st.to_parent[1]);
        int n = 0;
        for (;;) {
                struct pollfd p[2] = { { .fd = CHECK_OK(ipcf_fd(reg)), .events = POLLIN },
                                       { .fd = h->st.to_child[0], .events = POLLIN } };
                CHECK(poll(p, 2, 20000) > 0);
                if (p[1].revents)
                        break;
                int port = ipcf_accept(reg, 0, NULL);
                if (port >= 0) {
                        n++;
                        CHECK_OK(ipcf_dealloc(port, NULL));
                }
        }
        step_wait(h->st.to_child[0]);
        CHECK_OK(ipcf_dealloc(reg, NULL));
        CHECK_EQ(write(h->st.to_parent[1], &n, sizeof(n)), (ssize_t)sizeof(n));
}

static bool skip_unless_root(void) {
        if (geteuid() == 0)
                return false;
        printf("  skipped: needs root to setuid\n");
        return true;
}

static void bob_joins(void *arg) {
        const char *name = arg;
        become(BOB);
        CHECK_ERR(ipcf_register(name, NULL), -EACCES);
        /* An exclusive claim is no way around it. */
        ipcf_reg_opts o = { .size = sizeof(o), .flags = IPCF_REG_EXCLUSIVE };
        CHECK_ERR(ipcf_register(name, &o), -EADDRINUSE);
}

/* register = * lets Bob claim open.* names, not join Alice's. */
TEST(another_users_registration_cannot_be_joined_without_share) {
        if (skip_unless_root())
                return;
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d, policy_conf, shared);
        struct holder h = { .name = "open.svc" };
        steps_init(&h.st);
        pid_t a = test_fork(alice_holds, &h);
        step_wait(h.st.to_parent[0]);
        pid_t b = test_fork(bob_joins, "open.svc");
        CHECK_EQ(test_wait(b, 10000), 0);
        /* Every flow to the name goes to Alice: 40 of 40. */
        for (int i = 0; i < 40; i++) {
                int port = CHECK_OK(ipcf_alloc("open.svc", NULL, 10000, NULL));
                CHECK_OK(ipcf_dealloc(port, NULL));
        }
        step_send(h.st.to_child[1]);
        int n = 0;
        CHECK_EQ(read(h.st.to_parent[0], &n, sizeof(n)), (ssize_t)sizeof(n));
        CHECK_EQ(n, 40);
        CHECK_EQ(test_wait(a, 10000), 0);
        test_daemon_stop(&d);
}

static void bob_shares(void *arg) {
        const char *name = arg;
        become(BOB);
        int reg = CHECK_OK(ipcf_register(name, NULL));
        CHECK_OK(ipcf_dealloc(reg, NULL));
}

static void bob_holds(void *arg) {
        struct holder *h = arg;
        become(BOB);
        int reg = CHECK_OK(ipcf_register(h->name, NULL));
        step_send(h->st.to_parent[1]);
        step_wait(h->st.to_child[0]);
        CHECK_OK(ipcf_dealloc(reg, NULL));
}

static void alice_tries(void *arg) {
        become(ALICE);
        CHECK_ERR(ipcf_register((const char *)arg, NULL), -EACCES);
}

/* share = uid:65533 lets Bob (only) join the other users' registrations. */
TEST(share_names_who_may_join) {
        if (skip_unless_root())
                return;
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d, policy_conf, shared);
        struct holder h = { .name = "joint.svc" };
        steps_init(&h.st);
        pid_t a = test_fork(alice_holds, &h);
        step_wait(h.st.to_parent[0]);
        CHECK_EQ(test_wait(test_fork(bob_shares, "joint.svc"), 10000), 0);
        step_send(h.st.to_child[1]);
        CHECK_EQ(test_wait(a, 10000), 0);
        /* The other way round: Bob holds it, Alice is not in share. */
        struct holder hb = { .name = "joint.other" };
        steps_init(&hb.st);
        pid_t b = test_fork(bob_holds, &hb);
        step_wait(hb.st.to_parent[0]);
        CHECK_EQ(test_wait(test_fork(alice_tries, "joint.other"), 10000), 0);
        /* Root (and the daemon's uid) may, as for every rule. */
        int mine = CHECK_OK(ipcf_register("joint.other", NULL));
        CHECK_OK(ipcf_dealloc(mine, NULL));
        step_send(hb.st.to_child[1]);
        CHECK_EQ(test_wait(b, 10000), 0);
        test_daemon_stop(&d);
}

/* Bob watches: a name only root may reach is refused; Alice's open name
 * comes up without her pid; his own with his. */
static void bob_watches(void *arg) {
        struct holder *h = arg;
        become(BOB);
        CHECK_ERR(ipcf_watch("secret.svc"), -EACCES);
        CHECK_OK(ipcf_watch("open.alice"));
        ipcf_event ev;
        CHECK_OK(ipcf_notify_next(5000, &ev));
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        CHECK(strcmp(ev.name, "open.alice") == 0);
        CHECK_EQ(ev.pid, 0);
        int reg = CHECK_OK(ipcf_register("open.bob", NULL));
        CHECK_OK(ipcf_watch("open.bob"));
        CHECK_OK(ipcf_notify_next(5000, &ev));
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        CHECK_EQ(ev.pid, getpid());
        /* Alice goes: NAME_DOWN (no pid either way). */
        step_send(h->st.to_child[1]);
        CHECK_OK(ipcf_notify_next(5000, &ev));
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_DOWN);
        CHECK(strcmp(ev.name, "open.alice") == 0);
        CHECK_EQ(ev.pid, 0);
        /* Nothing about the secret name ever comes. */
        CHECK_ERR(ipcf_notify_next(200, &ev), -ETIMEDOUT);
        CHECK_OK(ipcf_dealloc(reg, NULL));
}

TEST(watch_reveals_no_hidden_name_and_no_foreign_pid) {
        if (skip_unless_root())
                return;
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d, policy_conf, shared);
        int secret = CHECK_OK(ipcf_register("secret.svc", NULL));
        struct holder h = { .name = "open.alice" };
        steps_init(&h.st);
        pid_t a = test_fork(alice_holds, &h);
        step_wait(h.st.to_parent[0]);
        /* Bob tells Alice (through us) to go: he holds the pipe to her. */
        pid_t b = test_fork(bob_watches, &h);
        CHECK_EQ(test_wait(b, 20000), 0);
        CHECK_EQ(test_wait(a, 10000), 0);
        CHECK_OK(ipcf_dealloc(secret, NULL));
        test_daemon_stop(&d);
}
