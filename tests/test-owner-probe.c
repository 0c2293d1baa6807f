/*
 * test-owner-probe.c — nobody takes, destroys or unregisters what is not
 * theirs (issue 16), as an outside tester tries it: a shared daemon where
 * anyone may register and allocate open.* names, root (this process)
 * creating a mailbox and a multicast group, uid 65534 trying to destroy
 * them (EPERM), create them again (EEXIST) and register the mailbox's name
 * (allowed: a registration serves plain flows; the mailbox still opens).
 */
#include <grp.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/shell.h"
#include "support/test.h"

#define OTHER 65534u

static const char conf[] = "[name open.*]\nallocate = *\nregister = *\n";

static void become(uid_t uid) {
        if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
                test_fail(__FILE__, __LINE__, "cannot become uid %u", (unsigned)uid);
}

static int up[2], down[2]; /* other_tries <-> the test */

static void other_tries(void *arg) {
        (void)arg;
        become(OTHER);
        CHECK_ERR(ipcf_mbox_destroy("open.mb"), -EPERM);
        CHECK_ERR(ipcf_mcast_destroy("open.mc"), -EPERM);
        CHECK_ERR(ipcf_mbox_create("open.mb", NULL), -EEXIST);
        CHECK_ERR(ipcf_mcast_create("open.mc", NULL), -EEXIST);
        /* Holding a registration of the mailbox's name while the owner
         * opens the mailbox. */
        int r = ipcf_register("open.mb", NULL);
        CHECK_EQ(write(up[1], r >= 0 ? "r" : "n", 1), 1);
        char c;
        CHECK_EQ(read(down[0], &c, 1), 1);
}

TEST(another_user_cannot_destroy_or_take_over) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid\n");
                return;
        }
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d, conf, shared);
        CHECK_OK(ipcf_mbox_create("open.mb", NULL));
        CHECK_OK(ipcf_mcast_create("open.mc", NULL));
        CHECK(pipe(up) == 0 && pipe(down) == 0);
        pid_t p = test_fork(other_tries, NULL);
        char c;
        CHECK_EQ(read(up[0], &c, 1), 1);
        int h = ipcf_mbox_open("open.mb", IPCF_MBOX_SEND, NULL, 5000);
        CHECK_EQ(write(down[1], "g", 1), 1);
        CHECK_OK(h);
        CHECK_OK(ipcf_dealloc(h, NULL));
        CHECK_EQ(test_wait(p, 20000), 0);
        /* Still ours and working. */
        int tx = CHECK_OK(ipcf_mbox_open("open.mb", IPCF_MBOX_SEND, NULL, 5000));
        int rx = CHECK_OK(ipcf_mbox_open("open.mb", IPCF_MBOX_RECV, NULL, 5000));
        CHECK_EQ(ipcf_mbox_send(tx, "x", 1, 5000, NULL), 1);
        char b[8];
        CHECK_EQ(ipcf_mbox_recv(rx, b, sizeof(b), 5000, NULL), 1);
        CHECK_OK(ipcf_mbox_destroy("open.mb"));
        CHECK_OK(ipcf_mcast_destroy("open.mc"));
        test_daemon_stop(&d);
}
