/*
 * test-cli-capture.c — `ipcf capture -w FILE` against the real daemon, with
 * real `ipcf listen` and `ipcf cat` processes doing the work, read back by
 * tshark with the dissector of tools/wireshark/ipcf.lua: every decoded field
 * of every packet is checked against what happened. Also: the file is a
 * whole pcap after each packet (read while the capture runs), and the
 * dissector marks a truncated record instead of reading past it. And the
 * dissector's EFCP side on the real datagrams of two daemons' host
 * association, captured off the loopback by tshark (root only).
 * Needs tshark (tools/setup.sh installs it); skipped without it.
 */
#include <fcntl.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/hostset.h"
#include "support/shell.h"
#include "support/test.h"

#ifndef TEST_SRCDIR
#error "built by the Makefile, which defines TEST_SRCDIR"
#endif

static bool have_tshark(void) {
        char *out = NULL;
        int st = test_sh(&out, 10, "command -v tshark");
        free(out);
        if (st != 0)
                printf("  skipped: no tshark (tools/setup.sh installs it)\n");
        return st == 0;
}

/* tshark's fields of every packet of file, one line each, tab-separated. */
static char *tshark_fields(const char *file, const char *fields) {
        return TEST_SH_OK("tshark -X lua_script:%s/tools/wireshark/ipcf.lua -r '%s' -T fields %s 2>/dev/null",
                          TEST_SRCDIR, file, fields);
}

/* `ipcf capture ARGS` in the background. */
static pid_t capture_start(const char *args) {
        char *bin = test_built("bin/ipcf");
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "exec '%s' capture %s", bin, args);
        free(bin);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        return pid;
}

/* The tab-separated fields of one line of tshark -T fields, into f[0..n)
 * (FIELD_MAX bytes each; missing ones empty). */
#define FIELD_MAX 200
static void split_fields(const char *line, char (*f)[FIELD_MAX], int n) {
        for (int k = 0; k < n; k++)
                f[k][0] = 0;
        for (int k = 0; k < n; k++) {
                size_t l = strcspn(line, "\t");
                snprintf(f[k], FIELD_MAX, "%.*s", (int)l, line);
                if (!line[l])
                        break;
                line += l + 1;
        }
}

/* Until tshark's fields of file, read by awk_prog (an awk program that
 * exits 0 when what it looks for is there), say so; bounded by ms. The
 * file is read while it is written (a whole pcap after each packet). */
static bool file_shows(const char *file, const char *fields, const char *awk_prog, int ms) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        do {
                char *out = NULL;
                int st = test_sh(&out, 60,
                                 "tshark -X lua_script:%s/tools/wireshark/ipcf.lua -r '%s' -T fields %s 2>/dev/null | "
                                 "awk -F'\t' '%s'",
                                 TEST_SRCDIR, file, fields, awk_prog);
                free(out);
                if (st == 0)
                        return true;
                usleep(100000);
        } while (test_now_ms() < end);
        return false;
}

/* The number of packets tshark reads in file (a whole pcap), or -1. */
static int packets_in(const char *file) {
        char *out = NULL;
        int st = test_sh(&out, 30, "tshark -r '%s' 2>/dev/null | wc -l", file);
        int n = st == 0 ? atoi(out) : -1;
        free(out);
        return n;
}

TEST_TIMEOUT(capture_is_decoded_by_the_dissector, 120) {
        if (!have_tshark())
                return;
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        const char *file = test_scratch("events.pcap");
        char args[512];
        snprintf(args, sizeof(args), "-w '%s' 'cap.*'", file);
        pid_t cap = capture_start(args);
        /* Subscribed once a probe shows in the file (a whole pcap each time). */
        bool seen = false;
        for (int i = 0; i < 100 && !seen; i++) {
                char name[32];
                snprintf(name, sizeof(name), "cap.probe%d", i);
                int reg = CHECK_OK(ipcf_register(name, NULL));
                usleep(100000);
                seen = packets_in(file) > 0;
                CHECK_OK(ipcf_dealloc(reg, NULL));
        }
        CHECK(seen);
        char *log = TEST_SH_OK("b='%s/bin/ipcf'; \"$b\" listen cap.svc --stream -k </dev/null >/dev/null & L=$!; "
                               "\"$b\" watch -n 1 cap.svc >/dev/null; "
                               "echo x | \"$b\" cat cap.svc 2>&1; "
                               "echo hello | \"$b\" cat cap.svc --stream; "
                               "\"$b\" cat cap.none </dev/null 2>&1; "
                               "kill $L; wait $L; true",
                               test_build_abs());
        free(log);
        /* Until the name's down is in the file, read while it is written. */
        char *ev = NULL;
        for (int i = 0; i < 100; i++) {
                free(ev);
                ev = tshark_fields(file, "-e ipcf.event -e ipcf.name");
                if (strstr(ev, "7\tcap.svc\n"))
                        break;
                usleep(100000);
        }
        kill(cap, SIGTERM);
        test_wait(cap, 10000);
        free(ev);
        /* Every field of the events of cap.svc and cap.none, in order. */
        ev = tshark_fields(file, "-Y 'ipcf.name == \"cap.svc\" || ipcf.name == \"cap.none\"' "
                                 "-e ipcf.record -e ipcf.version -e ipcf.event -e ipcf.name -e ipcf.errno "
                                 "-e ipcf.end_side -e ipcf.end -e ipcf.program_a -e ipcf.program_b -e ipcf.reason");
        const char *want =
                "1\t1\t6\tcap.svc\t0\t0\t0\t\t\t\n"                           /* up (no programs sent) */
                "1\t1\t1\tcap.svc\t0\t0\t0\tipcf\t\t\n"                       /* alloc */
                "1\t1\t3\tcap.svc\t111\t0\t0\tipcf\t\tstream mode required\n" /* refuse */
                "1\t1\t1\tcap.svc\t0\t0\t0\tipcf\t\t\n"                       /* alloc */
                "1\t1\t2\tcap.svc\t0\t0\t0\tipcf\tipcf\t\n";                  /* accept */
        if (strncmp(ev, want, strlen(want)) != 0)
                test_fail(__FILE__, __LINE__, "decoded:\n%s--- want first:\n%s", ev, want);
        /* Then both sides' ends (in either order), the failure, the name down. */
        CHECK(strstr(ev, "1\t1\t5\tcap.svc\t0\t0\t1\tipcf\tipcf\teof\n") != NULL);
        CHECK(strstr(ev, "1\t1\t5\tcap.svc\t0\t1\t1\tipcf\tipcf\t\n") != NULL);
        CHECK(strstr(ev, "1\t1\t4\tcap.none\t2\t0\t0\tipcf\t\t\n") != NULL);
        CHECK(strstr(ev, "1\t1\t7\tcap.svc\t0\t0\t0\t\t\t\n") != NULL);
        free(ev);
        /* The summary line tshark shows: protocol and info. */
        ev = TEST_SH_OK("tshark -X lua_script:%s/tools/wireshark/ipcf.lua -r '%s' 2>/dev/null", TEST_SRCDIR, file);
        CHECK(strstr(ev, "IPCF") && strstr(ev, "refuse cap.svc") && strstr(ev, "fail cap.none"));
        free(ev);
        test_daemon_stop(&d);
}

/* A record cut short (a truncated file's last packet, made here by editing
 * the real capture's bytes) is marked malformed, and nothing past it is read. */
TEST_TIMEOUT(a_truncated_record_is_marked, 60) {
        if (!have_tshark())
                return;
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        const char *file = test_scratch("one.pcap"), *cut = test_scratch("cut.pcap");
        char args[512];
        snprintf(args, sizeof(args), "-n 1 -w '%s'", file);
        pid_t cap = capture_start(args);
        int st = -1;
        uint64_t end = test_now_ms() + 30000;
        for (int i = 0; st < 0 && test_now_ms() < end; i++) {
                char name[32];
                snprintf(name, sizeof(name), "cut.%d", i);
                CHECK_OK(ipcf_register(name, NULL));
                usleep(50000);
                int ws;
                if (waitpid(cap, &ws, WNOHANG) == cap)
                        st = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
        }
        CHECK_EQ(st, 0);
        CHECK_EQ(packets_in(file), 1);
        /* Keep 40 bytes of the packet and say so in its record header. */
        free(TEST_SH_OK("python3 -c '\n"
                        "import struct,sys\n"
                        "d = open(sys.argv[1], \"rb\").read()\n"
                        "h, r = d[:24], d[24:40]\n"
                        "s, u, n, o = struct.unpack(\"=IIII\", r)\n"
                        "open(sys.argv[2], \"wb\").write(h + struct.pack(\"=IIII\", s, u, 40, 40) + d[40:80])' '%s' '%s'",
                        file, cut));
        char *out = tshark_fields(cut, "-e ipcf.event -e _ws.expert.message");
        CHECK(strstr(out, "Record shorter than its format") != NULL);
        free(out);
        test_daemon_stop(&d);
}

/* Two real daemons associate over UDP on the loopback while tshark captures
 * their ports: the handshake (initiation, response) and the authenticated
 * datagrams are decoded, their indices agree, packet numbers climb. */
TEST_TIMEOUT(efcp_datagrams_of_two_daemons_are_decoded, 120) {
        if (!have_tshark())
                return;
        if (geteuid() != 0) {
                printf("  skipped: capturing needs root\n");
                return;
        }
        hostset S;
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        unsigned pa = S.h[0].port, pb = S.h[1].port;
        const char *file = test_scratch("efcp.pcap"), *err = test_scratch("tshark.err");
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "exec tshark -i lo -F pcap -f 'udp port %u or udp port %u' -w '%s' 2>'%s'",
                 pa, pb, file, err);
        fflush(NULL);
        pid_t ts = fork();
        CHECK(ts >= 0);
        if (ts == 0) {
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        /* tshark says when it captures. */
        bool capturing = false;
        for (int i = 0; i < 300 && !capturing; i++) {
                char *out = NULL;
                capturing = test_sh(&out, 10, "grep -q 'Capturing on' '%s'", err) == 0;
                free(out);
                if (!capturing)
                        usleep(50000);
        }
        CHECK(capturing);
        hostset_start(&S, 0, NULL);
        hostset_start(&S, 1, NULL);
        CHECK(hostset_wait_up(&S, 0, 10000));
        CHECK(hostset_wait_up(&S, 1, 10000));
        char decode[128];
        snprintf(decode, sizeof(decode), "-d udp.port==%u,efcp -d udp.port==%u,efcp", pa, pb);
        char fields[512];
        snprintf(fields, sizeof(fields), "%s -e efcp.type", decode);
        /* Until the file holds a handshake and a few authenticated
         * datagrams (the daemons' greeting, pings): tshark writes each
         * packet as it captures it. */
        CHECK(file_shows(file, fields, "$1 == 3 { i++ } $1 == 4 { r++ } $1 == 2 { a++ } "
                                       "END { exit !(i >= 1 && r >= 1 && a >= 2) }", 30000));
        hostset_stop(&S);
        kill(ts, SIGINT);
        test_wait(ts, 10000);
        snprintf(fields, sizeof(fields), "%s -e efcp.type -e efcp.version -e efcp.sender_index "
                 "-e efcp.receiver_index -e efcp.pn -e frame.len", decode);
        char *out = tshark_fields(file, fields);
        /* Lines "type version sender receiver pn length". On a loaded
         * machine a handshake may be retransmitted or done again (a new
         * sender index each time): every handshake's indices are kept, and
         * the checks that tie datagrams together are made against all of
         * them once every line is read. */
        enum { IDX_MAX = 32 };
        char inits[IDX_MAX][FIELD_MAX], resps[IDX_MAX][FIELD_MAX], resp_to[IDX_MAX][FIELD_MAX];
        char auth_to[256][FIELD_MAX];
        unsigned n_init = 0, n_resp = 0, n_auth = 0;
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char f[6][FIELD_MAX];
                split_fields(line, f, 6);
                CHECK(strcmp(f[1], "1") == 0); /* version */
                if (!strcmp(f[0], "3")) {
                        CHECK(n_init < IDX_MAX);
                        snprintf(inits[n_init++], FIELD_MAX, "%s", f[2]);
                        CHECK(atoi(f[5]) == 161 + 42); /* + Ethernet, IPv4, UDP headers */
                } else if (!strcmp(f[0], "4")) {
                        CHECK(n_resp < IDX_MAX);
                        snprintf(resps[n_resp], FIELD_MAX, "%s", f[2]);
                        snprintf(resp_to[n_resp++], FIELD_MAX, "%s", f[3]);
                        CHECK(atoi(f[5]) == 85 + 42);
                } else if (!strcmp(f[0], "2")) {
                        if (n_auth < 256)
                                snprintf(auth_to[n_auth], FIELD_MAX, "%s", f[3]);
                        n_auth++;
                        CHECK(f[4][0] != 0);
                } else {
                        test_fail(__FILE__, __LINE__, "not an EFCP datagram of a host association: %s", line);
                }
        }
        CHECK(n_init >= 1 && n_resp >= 1 && n_auth >= 2);
        /* Each response answers an initiation; each authenticated datagram
         * goes to one of the handshakes' indices. */
        for (unsigned i = 0; i < n_resp; i++) {
                bool answers = false;
                for (unsigned j = 0; j < n_init; j++)
                        answers |= strcmp(resp_to[i], inits[j]) == 0;
                if (!answers)
                        test_fail(__FILE__, __LINE__, "a response to %s, no initiation's index", resp_to[i]);
        }
        for (unsigned i = 0; i < n_auth && i < 256; i++) {
                bool known = false;
                for (unsigned j = 0; j < n_init; j++)
                        known |= strcmp(auth_to[i], inits[j]) == 0;
                for (unsigned j = 0; j < n_resp; j++)
                        known |= strcmp(auth_to[i], resps[j]) == 0;
                if (!known)
                        test_fail(__FILE__, __LINE__, "a datagram to %s, no handshake's index", auth_to[i]);
        }
        free(out);
        /* The summary names them. */
        out = TEST_SH_OK("tshark -X lua_script:%s/tools/wireshark/ipcf.lua -r '%s' %s 2>/dev/null", TEST_SRCDIR,
                         file, decode);
        CHECK(strstr(out, "EFCP") && strstr(out, "handshake initiation") && strstr(out, "authenticated pn"));
        free(out);
}

/* ipcf capture -d on alpha while alpha and beta associate and a flow
 * crosses to beta: records of type 2 carry the datagrams alpha sent and
 * received, as on the wire — the peer (beta's address and port), the
 * direction, the length, the bytes decoded by the efcp dissector: the
 * handshake (exact sizes, the response answering the initiation, one sent
 * and one received), authenticated datagrams both ways, and the large ones
 * cut at the snap length (512) and marked so. Monitor events keep coming in
 * the same file. Needs no root: the test runs as the daemons' user. */
TEST_TIMEOUT(capture_datagrams_of_two_daemons, 120) {
        if (!have_tshark())
                return;
        hostset S;
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, NULL);
        const char *alpha = S.h[0].d.dir, *beta = S.h[1].d.dir;
        unsigned pb = S.h[1].port;
        const char *file = test_scratch("dgrams.pcap");
        char args[512];
        snprintf(args, sizeof(args), "-d -w '%s'", file);
        setenv("IPCF_RUNTIME_DIR", alpha, 1);
        pid_t cap = capture_start(args);
        /* Subscribed once a probe's name event is in the file. */
        bool seen = false;
        uint64_t end = test_now_ms() + 60000;
        for (int i = 0; !seen && test_now_ms() < end; i++) {
                free(TEST_SH_OK("IPCF_RUNTIME_DIR='%s' timeout 0.5 '%s/bin/ipcf' listen cap.probe%d </dev/null; true",
                                alpha, test_build_abs(), i));
                seen = packets_in(file) > 0;
        }
        CHECK(seen);
        hostset_start(&S, 1, "[name *]\nremote_allocate = *@alpha\n");
        CHECK(hostset_wait_up(&S, 0, 10000));
        CHECK(hostset_wait_up(&S, 1, 10000));
        /* A flow alpha -> beta with 3000-byte messages: datagrams above 512. */
        free(TEST_SH_OK("b='%s/bin/ipcf'; IPCF_RUNTIME_DIR='%s' \"$b\" listen bulk -k </dev/null >/dev/null & L=$!; "
                        "for i in $(seq 100); do head -c 3000 /dev/zero | IPCF_RUNTIME_DIR='%s' \"$b\" cat bulk@beta "
                        ">/dev/null 2>&1 && break; sleep 0.1; done; kill $L; wait $L; true",
                        test_build_abs(), beta, alpha));
        /* Until the capture has written what is checked below: the
         * handshake, authenticated datagrams both ways, two cut at 512. */
        CHECK(file_shows(file, "-e ipcf.record -e ipcf.direction -e efcp.type -e ipcf.wire_len",
                         "$1 == 2 && $3 == 3 { i[$2]++ } $1 == 2 && $3 == 4 { r[$2]++ } "
                         "$1 == 2 && $3 == 2 { a[$2]++ } $1 == 2 && $4 > 512 { cut++ } "
                         "END { exit !((i[0] && r[1] || i[1] && r[0]) && a[0] >= 2 && a[1] >= 2 && cut >= 2) }",
                         30000));
        kill(cap, SIGINT);
        CHECK_EQ(test_wait(cap, 10000), 130); /* ^C: interrupted, the file whole */
        hostset_stop(&S);

        char *out = tshark_fields(file, "-e ipcf.record -e ipcf.direction -e ipcf.peer_ipv4 -e ipcf.peer_port "
                                        "-e ipcf.wire_len -e ipcf.captured -e efcp.type -e efcp.sender_index "
                                        "-e efcp.receiver_index -e _ws.expert.message");
        unsigned events = 0, n[2][6] = { { 0 } }, cut = 0;
        /* The initiations' sender indices, by direction ("|i|j|"), and the
         * responses' receiver indices: each must answer one that went the
         * other way. */
        char inits[2][1024] = { "|", "|" }, resps[2][1024] = { "|", "|" };
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char f[10][FIELD_MAX];
                split_fields(line, f, 10);
                if (!strcmp(f[0], "1")) {
                        events++;
                        continue;
                }
                CHECK(strcmp(f[0], "2") == 0);
                int dir = atoi(f[1]), type = atoi(f[6]);
                unsigned wire = (unsigned)atoi(f[4]), got = (unsigned)atoi(f[5]);
                CHECK(dir == 0 || dir == 1);
                CHECK(strcmp(f[2], "127.0.0.1") == 0);   /* the peer: beta */
                CHECK_EQ((unsigned)atoi(f[3]), pb);
                CHECK(type >= 2 && type <= 5);
                CHECK_EQ(got, wire < 512 ? wire : 512u);
                if (type == 3)
                        CHECK_EQ(wire, 161u);
                if (type == 4)
                        CHECK_EQ(wire, 85u);
                if (type == 3 && strlen(inits[dir]) + strlen(f[7]) + 2 < sizeof(inits[dir]))
                        strcat(strcat(inits[dir], f[7]), "|");
                if (type == 4 && strlen(resps[dir]) + strlen(f[8]) + 2 < sizeof(resps[dir]))
                        strcat(strcat(resps[dir], f[8]), "|");
                if (wire > 512) {
                        cut++;
                        CHECK(strstr(f[9], "Datagram cut to the snap length") != NULL);
                }
                n[dir][type]++;
        }
        printf("  %u events; sent: %u init, %u resp, %u auth; received: %u init, %u resp, %u auth; %u cut\n",
               events, n[0][3], n[0][4], n[0][2], n[1][3], n[1][4], n[1][2], cut);
        CHECK(events >= 2);
        /* One initiates, the other answers (which is alpha depends on timing;
         * both may initiate at once). */
        CHECK(n[0][3] + n[1][3] >= 1 && n[0][4] + n[1][4] >= 1);
        CHECK((n[0][3] >= 1 && n[1][4] >= 1) || (n[1][3] >= 1 && n[0][4] >= 1));
        for (int dir = 0; dir < 2; dir++) /* each response answers an initiation */
                for (char *sv = NULL, *r = strtok_r(resps[dir] + 1, "|", &sv); r; r = strtok_r(NULL, "|", &sv)) {
                        char want[FIELD_MAX + 2];
                        snprintf(want, sizeof(want), "|%s|", r);
                        CHECK(strstr(inits[!dir], want) != NULL);
                }
        CHECK(n[0][2] >= 2 && n[1][2] >= 2); /* authenticated, both ways */
        CHECK(cut >= 2);                     /* the flow's 3000-byte messages */
        free(out);
        /* The summary line of a datagram names its peer and direction. */
        out = TEST_SH_OK("tshark -X lua_script:%s/tools/wireshark/ipcf.lua -r '%s' 2>/dev/null", TEST_SRCDIR, file);
        char want[64];
        snprintf(want, sizeof(want), "127.0.0.1:%u", pb);
        CHECK(strstr(out, "IPCF/EFCP") && strstr(out, want) && strstr(out, "handshake"));
        free(out);
}

/* Datagrams are for root and the daemon's user: another user's monitor
 * asking for them is refused (-EPERM, and capture -d says so, exit 1),
 * while its plain monitor works. */
static void unprivileged_monitor(void *arg) {
        (void)arg;
        if (setgid(65534) < 0 || setuid(65534) < 0)
                _exit(10);
        if (ipcf_monitor_open(IPCF_MONITOR_DATAGRAMS) != -EPERM)
                _exit(11);
        int fd = ipcf_monitor_open(0);
        if (fd < 0)
                _exit(12);
        close(fd);
        char *out = NULL;
        int st = test_sh(&out, 20, "'%s/bin/ipcf' capture -d -w /dev/null", test_build_abs());
        if (st != 1 || !strstr(out, "ipcf: monitor (datagrams: root or the daemon's user only): Operation not permitted"))
                _exit(13);
        free(out);
        _exit(0);
}

TEST(datagrams_only_for_the_privileged) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to run a client as another user\n");
                return;
        }
        test_daemon d;
        static const char *const shared[] = { "--shared", NULL };
        test_daemon_start(&d, NULL, shared);
        CHECK_EQ(test_wait(test_fork(unprivileged_monitor, NULL), 30000), 0);
        /* root may; and an unknown flag is refused by the library first. */
        int fd = CHECK_OK(ipcf_monitor_open(IPCF_MONITOR_DATAGRAMS));
        close(fd);
        CHECK_ERR(ipcf_monitor_open(2), -EINVAL);
        test_daemon_stop(&d);
}
