/*
 * test-daemon-relay-forged.c — a real ipcfd (alpha) against a forging
 * "beta": this process, with beta's enrolled key, speaking the control
 * protocol itself (daemon/hosts/link.h) on 127.0.0.1. A sender on alpha
 * opens the mailbox ub@beta; beta accepts (a data flow and ACCEPT), then
 * says how many of its messages were taken (DELIVERED, PROTOCOL.md §9):
 *  - a count within what alpha sent is taken (the flow goes on);
 *  - a count beyond what alpha sent, or below the last one, ends that flow
 *    IPCF_END_PROTOCOL and nothing else (the association stays up);
 *  - a DELIVERED for a port that is no flow changes nothing.
 * And the other way, this process as "alpha" asking the real beta for a
 * mailbox receiver's channel: a CONSUMED count within what beta's relay
 * sent is published (the broker counts those taken), one beyond it ends
 * that flow (EFCP PROTOCOL_ERROR) and what was not counted read goes back
 * to beta's own receiver.
 */
#include <arpa/inet.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/ctl.h"
#include "daemon/hosts/link.h"
#include "efcp/keyfile.h"
#include "efcp/noise.h"
#include "ipcf.h"
#include "support/hostset.h"
#include "support/loopwait.h"
#include "support/test.h"

static hostset S;
static loop *g_loop;
static hlink *g_link;
static conf g_conf;
static int g_ups;
static hw_msg g_alloc;          /* the last ALLOC from alpha */
static int g_allocs;
static hw_msg g_accept;         /* the last ACCEPT from beta */
static int g_accepts;
static efcp_flow *g_flow;       /* the data flow of the accepted ALLOC */
static uint32_t g_lport;        /* its port here */
static uint64_t g_records;      /* relay pieces that came on it */
static int gate[2], back[2];

static void on_up(void *ctx, hpeer *p) { g_ups++; }
static void on_down(void *ctx, hpeer *p, uint32_t reason) { g_flow = NULL; }
static void on_control(void *ctx, hpeer *p, const hw_msg *m) {
        if (m->type == HW_ALLOC) {
                g_alloc = *m;
                g_allocs++;
        } else if (m->type == HW_ACCEPT) {
                g_accept = *m;
                g_accepts++;
        }
}
/* The real daemon's data flow for our ALLOC (as the requester). */
static void on_flow_alloc(void *ctx, hpeer *p, efcp_flow *f) {
        g_flow = f;
        hlink_flow_adopt(p, f, &g_records);
}
static void on_flow_ready(void *ctx, hpeer *p, efcp_flow *f) {
        static uint8_t buf[70000];
        while (efcp_flow_recv(f, buf, sizeof(buf)) >= 0)
                g_records++;
}
static const hlink_ops ops = { on_up, on_down, on_control, on_flow_alloc, on_flow_ready };

static bool up(void *ctx) { return g_ups > 0; }
static bool allocs(void *ctx) { return g_allocs >= *(int *)ctx; }
static bool accepted(void *ctx) { return g_accepts > 0 && g_records >= *(uint64_t *)ctx; }

/* The real daemon on host real (its extra config), the other host under
 * our key; our link on that host's port, as it. */
static void start_as(int me, const char *extra) {
        int real = 1 - me;
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        uint8_t priv[32], pub[32];
        noise_keypair(priv, pub);
        char key[48];
        efcp_key_format(pub, key, sizeof(key));
        const char *keys[2] = { NULL, NULL };
        keys[me] = key;
        hostset_start_enrol(&S, real, extra, 1u << me, keys);
        char text[1024];
        int n = snprintf(text, sizeof(text), "[hosts]\nname = %s\n[host %s]\nkey = %s\naddress = 127.0.0.1:%u\n",
                         S.h[me].name, S.h[real].name, S.h[real].key, S.h[real].port);
        char err[256];
        CHECK_OK(conf_parse(text, (size_t)n, &g_conf, err, sizeof(err)));
        CHECK_OK(loop_new(&g_loop));
        hlink_cfg cfg = { .c = &g_conf, .self = S.h[me].name };
        memcpy(cfg.private_key, priv, 32);
        cfg.listen.family = 4;
        cfg.listen.port = S.h[me].port;
        inet_pton(AF_INET, "127.0.0.1", cfg.listen.ip);
        unsigned line = 0;
        CHECK_OK(hlink_new(g_loop, &cfg, &ops, NULL, &g_link, &line));
        CHECK(loop_wait(g_loop, up, NULL, 15000));
        CHECK(pipe(gate) == 0 && pipe(back) == 0);
}

static void start(void) { start_as(1, NULL); }

static hpeer *alpha(void) { return hlink_peer_by_name(g_link, "alpha"); }

/* Accept alpha's last ALLOC: our data flow, then ACCEPT with its terms. */
static void accept_alloc(void) {
        hpeer *p = alpha();
        g_lport = hlink_port_new(p);
        CHECK_OK(hlink_flow_open(p, g_lport, g_alloc.port, EFCP_POLICY_ORDERED | EFCP_POLICY_RELIABLE, &g_records, &g_flow));
        hw_msg a = { .type = HW_ACCEPT, .req = g_alloc.req, .port = g_lport, .qos = g_alloc.qos,
                     .who = { .pid = 4242, .uid = 0, .gid = 0 } };
        strcpy(a.who.prog, "forger");
        CHECK_OK(hlink_send(p, &a));
}

static void tell(uint32_t port, uint64_t count) {
        hw_msg m = { .type = HW_DELIVERED, .port = port, .count = count };
        CHECK_OK(hlink_send(alpha(), &m));
        loop_wait(g_loop, NULL, NULL, 300); /* it crosses, alpha acts */
}

static void go(void) { CHECK_EQ(write(gate[1], "g", 1), 1); }

static char gate_wait(void) {
        char c;
        CHECK_EQ(read(gate[0], &c, 1), 1);
        return c;
}

/* Alpha: a sender of ub@beta. At each gate byte 's' it sends 10 and says
 * 'k' (or the error's end code as 'e' then the code); 'q' ends it. */
static void sender(void *p) {
        hostset_enter(&S, 0);
        int tx = CHECK_OK(ipcf_mbox_open((const char *)p, IPCF_MBOX_SEND, NULL, 10000));
        for (;;) {
                char c = gate_wait();
                if (c == 'q')
                        return;
                ssize_t r = 0;
                for (int i = 0; i < 10 && r >= 0; i++)
                        r = ipcf_mbox_send(tx, "m", 1, 2000, NULL);
                ipcf_reason why = { 0 };
                ipcf_end_reason(tx, &why);
                char out[2] = { r >= 0 ? 'k' : 'e', (char)why.code };
                CHECK_EQ(write(back[1], out, 2), 2);
        }
}

/* Alpha's sender sends 10 (all reach us); its answer. */
static char send_ten(uint64_t want_records, int *ret_code) {
        go();
        char out[2];
        /* the loop must run for alpha's relay to get its data to us */
        uint64_t until = test_now_ms() + 10000;
        while (g_records < want_records && test_now_ms() < until)
                loop_wait(g_loop, NULL, NULL, 20);
        CHECK_EQ(read(back[0], out, 2), 2);
        *ret_code = out[1];
        return out[0];
}

static pid_t open_sender(const char *name) {
        int want = g_allocs + 1;
        pid_t pid = test_fork(sender, (void *)name);
        CHECK(loop_wait(g_loop, allocs, &want, 15000));
        CHECK_EQ(g_alloc.role, CTL_ROLE_MBOX_SEND);
        accept_alloc();
        loop_wait(g_loop, NULL, NULL, 300);
        return pid;
}

static void end_sender(pid_t pid) {
        CHECK_EQ(write(gate[1], "q", 1), 1);
        CHECK_EQ(test_wait(pid, 10000), 0);
}

TEST_TIMEOUT(a_count_within_what_was_sent_is_taken_one_beyond_ends_the_flow, 120) {
        start();
        pid_t tx = open_sender("ub@beta");
        int code;
        CHECK_EQ(send_ten(10, &code), 'k');
        tell(g_lport, 4);  /* fine */
        tell(g_lport, 10); /* fine */
        tell(g_lport + 1000, 1 << 20); /* no such flow: nothing */
        CHECK_EQ(send_ten(20, &code), 'k');
        tell(g_lport, 21); /* beyond the 20 sent */
        CHECK_EQ(send_ten(20, &code), 'e');
        CHECK_EQ(code, IPCF_END_PROTOCOL);
        end_sender(tx);
        /* the association lives on: a second sender is accepted */
        CHECK(alpha()->state == HPEER_UP);
        tx = open_sender("ub2@beta");
        CHECK_EQ(send_ten(30, &code), 'k');
        tell(g_lport, 5);
        tell(g_lport, 4); /* below the last */
        CHECK_EQ(send_ten(30, &code), 'e');
        CHECK_EQ(code, IPCF_END_PROTOCOL);
        end_sender(tx);
        hostset_stop(&S);
}

/* ---- CONSUMED: this process asks for a receiver's channel ------------------------ */

/* Beta: the mailbox, 20 messages in it, then (at the gate) a receiver that
 * exits with how many it read. */
static void box_then_reader(void *p) {
        hostset_enter(&S, 1);
        CHECK_OK(ipcf_mbox_create("ub", NULL));
        int tx = CHECK_OK(ipcf_mbox_open("ub", IPCF_MBOX_SEND, NULL, 5000));
        for (int i = 0; i < 20; i++)
                CHECK_EQ(ipcf_mbox_send(tx, "m", 1, 5000, NULL), 1);
        CHECK_EQ(write(back[1], "s", 1), 1);
        gate_wait();
        int rx = CHECK_OK(ipcf_mbox_open("ub", IPCF_MBOX_RECV, NULL, 5000));
        char buf[8];
        int n = 0;
        while (ipcf_mbox_recv(rx, buf, sizeof(buf), 2000, NULL) == 1)
                n++;
        _exit(n);
}

TEST_TIMEOUT(a_consumed_count_beyond_what_was_sent_ends_the_flow_and_gives_back_the_rest, 120) {
        start_as(0, "[name *]\nremote_allocate = *@alpha\n");
        pid_t box = test_fork(box_then_reader, NULL);
        char c;
        CHECK_EQ(read(back[0], &c, 1), 1);
        hpeer *beta = hlink_peer_by_name(g_link, "beta");
        uint32_t port = hlink_port_new(beta);
        hw_msg a = { .type = HW_ALLOC, .req = 77, .port = port, .timeout_ms = 5000, .role = CTL_ROLE_MBOX_RECV,
                     .who = { .pid = (uint32_t)getpid(), .uid = getuid(), .gid = getgid() } };
        ipcf_qos_init(&a.qos);
        ctl_qos_normalize(&a.qos);
        strcpy(a.who.prog, "forger");
        strcpy(a.name, "ub");
        strcpy(a.user, "root");
        CHECK_OK(hlink_send(beta, &a));
        uint64_t twenty = 20;
        CHECK(loop_wait(g_loop, accepted, &twenty, 15000));
        CHECK_EQ(g_accept.req, 77);
        CHECK(g_flow != NULL);
        hw_msg m = { .type = HW_CONSUMED, .port = port, .count = 5 };
        CHECK_OK(hlink_send(beta, &m));
        m.port = port + 1000; /* no such flow: nothing */
        m.count = 1000;
        CHECK_OK(hlink_send(beta, &m));
        loop_wait(g_loop, NULL, NULL, 300);
        uint32_t why = 0;
        CHECK(!efcp_flow_deallocated(g_flow, &why));
        m.port = port;
        m.count = 21; /* beta's relay sent 20 */
        CHECK_OK(hlink_send(beta, &m));
        for (int t = 0; t < 200 && !efcp_flow_deallocated(g_flow, &why); t++)
                loop_wait(g_loop, NULL, NULL, 20);
        CHECK(efcp_flow_deallocated(g_flow, &why));
        CHECK_EQ(why, EFCP_REASON_PROTOCOL_ERROR);
        /* the 15 not counted read go to beta's own receiver */
        go();
        CHECK_EQ(test_wait(box, 30000), 15);
        hostset_stop(&S);
}
