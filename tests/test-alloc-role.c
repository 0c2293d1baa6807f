/*
 * test-alloc-role.c — the role of a flow (call channel, datagram channel,
 * mailbox sender or receiver, multicast member) is the library's own
 * business: a public ipcf_alloc() can never open one of those channels.
 *
 * Before issue 9 the role travelled in ipcf_qos.reserved0 (now "reserved"), which
 * ipcf_alloc() passed to the daemon unchecked: an application could open a
 * mailbox receiver, a multicast membership or a service's call channel as a
 * plain flow. Now the role is an ALLOC attribute of its own (CTL_A_ROLE) set
 * only by the library's model code; ipcf_alloc() refuses a qos whose
 * reserved byte is not 0 (-EINVAL), and the daemon takes the role from the
 * attribute only. Tested against the real daemon, through the library.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/ctl.h"
#include "ipcf.h"
#include "support/names.h"
#include "support/test.h"

static test_daemon d;

/* A qos with the reserved byte set to role, as an application could. */
static ipcf_qos qos_with_role(unsigned role) {
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.reserved = (uint8_t)role;
        return q;
}

/* The listing's entry for name (fails the test if it is not there). */
static ipcf_model_entry model_entry(const char *name) {
        ipcf_model_entry *all = NULL, e;
        size_t n = 0;
        CHECK_OK(ipcf_model_list(&all, &n));
        for (size_t i = 0; i < n; i++) {
                if (strcmp(all[i].name, name) == 0) {
                        e = all[i];
                        ipcf_free(all);
                        return e;
                }
        }
        ipcf_free(all);
        test_fail(__FILE__, __LINE__, "%s is not listed", name);
}

TEST(public_alloc_cannot_open_mailbox_or_group_channels) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_mbox_create("role.box", NULL));
        CHECK_OK(ipcf_mcast_create("role.grp", NULL));
        for (unsigned role = 1; role < CTL_ROLE_MAX_; role++) {
                ipcf_qos q = qos_with_role(role);
                CHECK_ERR(ipcf_alloc("role.box", &q, 2000, NULL), -EINVAL);
                CHECK_ERR(ipcf_alloc("role.grp", &q, 2000, NULL), -EINVAL);
        }
        /* Nothing was opened in the daemon either. */
        ipcf_model_entry e = model_entry("role.box");
        CHECK_EQ(e.senders, 0);
        CHECK_EQ(e.receivers, 0);
        e = model_entry("role.grp");
        CHECK_EQ(e.senders, 0);
        /* A plain flow to a mailbox name is not a mailbox channel: nobody
         * registered the name. */
        CHECK_ERR(ipcf_alloc("role.box", NULL, 2000, NULL), -ENOENT);
        /* The library's own way still works, and is what the listing counts. */
        int rx = CHECK_OK(ipcf_mbox_open("role.box", IPCF_MBOX_RECV, NULL, 2000));
        int tx = CHECK_OK(ipcf_mbox_open("role.box", IPCF_MBOX_SEND, NULL, 2000));
        int m = CHECK_OK(ipcf_mcast_join("role.grp", NULL, 2000));
        e = model_entry("role.box");
        CHECK_EQ(e.senders, 1);
        CHECK_EQ(e.receivers, 1);
        CHECK_EQ(model_entry("role.grp").senders, 1);
        CHECK_EQ(ipcf_mbox_send(tx, "ok", 2, 1000, NULL), 2);
        char buf[8];
        CHECK_EQ(ipcf_mbox_recv(rx, buf, sizeof(buf), 1000, NULL), 2);
        /* The model code refuses a caller's qos with the byte set, too. */
        ipcf_qos q = qos_with_role(CTL_ROLE_MBOX_RECV);
        CHECK_ERR(ipcf_mbox_open("role.box", IPCF_MBOX_SEND, &q, 2000), -EINVAL);
        CHECK_OK(ipcf_dealloc(rx, NULL));
        CHECK_OK(ipcf_dealloc(tx, NULL));
        CHECK_OK(ipcf_dealloc(m, "left the group"));
        test_daemon_stop(&d);
}

/* A service (call channels) and a datagram endpoint: serve until killed. */
static void inbox_holder(void *arg) {
        (void)arg;
        CHECK_OK(ipcf_service("role.svc", NULL));
        CHECK_OK(ipcf_dgram_open("role.dg", NULL));
        pause();
}

TEST(public_alloc_cannot_open_call_or_datagram_channels) {
        test_daemon_start(&d, NULL, NULL);
        pid_t s = test_fork(inbox_holder, NULL);
        test_wait_for_name("role.svc", 5000);
        test_wait_for_name("role.dg", 5000);
        for (unsigned role = 1; role < CTL_ROLE_MAX_; role++) {
                ipcf_qos q = qos_with_role(role);
                CHECK_ERR(ipcf_alloc("role.svc", &q, 2000, NULL), -EINVAL);
                CHECK_ERR(ipcf_alloc("role.dg", &q, 2000, NULL), -EINVAL);
        }
        /* An ordinary flow is the wrong kind of channel for both names. */
        CHECK_ERR(ipcf_alloc("role.svc", NULL, 2000, NULL), -ECONNREFUSED);
        CHECK_ERR(ipcf_alloc("role.dg", NULL, 2000, NULL), -ECONNREFUSED);
        /* The library's calls and datagrams still open their channels. */
        char reply[8];
        CHECK_ERR(ipcf_call("role.svc", "x", 1, reply, sizeof(reply), 200, NULL), -ETIMEDOUT);
        int ep = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        CHECK_EQ(ipcf_dgram_send(ep, "role.dg", "d", 1, 1000), 1);
        CHECK_OK(ipcf_dealloc(ep, NULL));
        kill(s, SIGKILL);
        CHECK_EQ(test_wait(s, 5000), 128 + SIGKILL);
        test_daemon_stop(&d);
}
