/*
 * test-eventloop.c — the event-loop examples (examples/eventloop-epoll.c,
 * eventloop-uv.c, eventloop-glib.c) serve a real daemon's flows: three
 * clients at once, each pushing about 3 MiB in messages of 0 to 200 KiB
 * without reading until it must, so that the server's writes fill the
 * clients' queues and it waits on ipcf_fd_send as well as on ipcf_fd. Every
 * byte that comes back is checked, in order, and the server's totals (it
 * prints them when it has served the flows it was told to) must be the
 * clients' to the byte.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/shell.h"
#include "support/test.h"

#define CLIENTS 3
#define MESSAGES 40
#define MAX_MSG (200 * 1024)

/* One client: what it sent and what came back so far. */
typedef struct client {
        int port;
        unsigned sent, received;
        unsigned long long bytes;
} client;

/* The i-th message of client c: its length and contents (reproducible). */
static size_t message(unsigned c, unsigned i, char *buf) {
        size_t len = i % 7 == 0 ? 0 : (size_t)((i * 7919u + c * 104729u) % MAX_MSG);
        test_fill(buf, len, (uint64_t)c << 32 | i);
        return len;
}

typedef struct server_args {
        const char *exe, *name, *out;
} server_args;

static void run_server(void *arg) {
        const server_args *a = arg;
        int fd = open(a->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0)
                _exit(126);
        char flows[16];
        snprintf(flows, sizeof(flows), "%d", CLIENTS);
        execl(a->exe, a->exe, a->name, flows, (char *)NULL);
        _exit(127);
}

/* Send what the queue takes, read what came back, until every client has
 * all its messages back. Writes go first: a client reads only once its
 * queue is full (or it sent everything). */
static void drive_clients(client *cl) {
        char *want = malloc(MAX_MSG), *got = malloc(MAX_MSG);
        unsigned done = 0;
        uint64_t deadline = test_now_ms() + 60000;
        while (done < CLIENTS) {
                struct pollfd pfd[CLIENTS * 2];
                for (unsigned c = 0; c < CLIENTS; c++) {
                        pfd[2 * c] = (struct pollfd){ .fd = ipcf_fd(cl[c].port), .events = POLLIN };
                        pfd[2 * c + 1] = (struct pollfd){ .fd = cl[c].sent < MESSAGES ? ipcf_fd_send(cl[c].port) : -1,
                                                          .events = POLLIN };
                }
                CHECK(poll(pfd, CLIENTS * 2, 1000) >= 0);
                if (test_now_ms() > deadline)
                        test_fail(__FILE__, __LINE__, "the clients were not served within 60 s");
                for (unsigned c = 0; c < CLIENTS; c++) {
                        client *k = &cl[c];
                        while (k->sent < MESSAGES) {
                                size_t len = message(c, k->sent, want);
                                ssize_t n = ipcf_write(k->port, want, len, 0);
                                if (n == -EAGAIN)
                                        break;
                                CHECK_EQ(n, len);
                                k->sent++;
                                k->bytes += len;
                        }
                        ssize_t n;
                        while (k->received < k->sent && (n = ipcf_read(k->port, got, MAX_MSG, 0)) != -EAGAIN) {
                                CHECK_OK(n);
                                size_t len = message(c, k->received, want);
                                if ((size_t)n != len || memcmp(got, want, len) != 0)
                                        test_fail(__FILE__, __LINE__, "client %u message %u: %zd bytes, "
                                                  "want %zu, or other bytes", c, k->received, n, len);
                                if (++k->received == MESSAGES)
                                        done++;
                        }
                }
        }
        free(want);
        free(got);
}

static void serve_three_clients(const char *example) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *exe = test_built(example);
        char out[PATH_MAX];
        snprintf(out, sizeof(out), "%s", test_scratch("server.out"));
        const char *name = "echo.loop";
        pid_t server = test_fork(run_server, &(server_args){ exe, name, out });
        test_wait_for_name(name, 10000);

        client cl[CLIENTS] = { 0 };
        for (unsigned c = 0; c < CLIENTS; c++)
                cl[c].port = CHECK_OK(ipcf_alloc(name, NULL, 5000, NULL));
        drive_clients(cl);
        unsigned long long bytes = 0;
        for (unsigned c = 0; c < CLIENTS; c++) {
                bytes += cl[c].bytes;
                CHECK_OK(ipcf_dealloc(cl[c].port, "client done"));
        }
        CHECK_EQ(test_wait(server, 10000), 0);
        char *said = TEST_SH_OK("cat '%s'", out);
        char want[128];
        snprintf(want, sizeof(want), "flows %d messages %d bytes %llu\n", CLIENTS, CLIENTS * MESSAGES, bytes);
        if (strcmp(said, want) != 0)
                test_fail(__FILE__, __LINE__, "%s said '%s', want '%s'", example, said, want);
        free(said);
        free(exe);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(epoll_example_serves_clients_at_once, 120) {
        serve_three_clients("examples/eventloop-epoll");
}

TEST_TIMEOUT(libuv_example_serves_clients_at_once, 120) {
        serve_three_clients("examples/eventloop-uv");
}

TEST_TIMEOUT(glib_example_serves_clients_at_once, 120) {
        serve_three_clients("examples/eventloop-glib");
}

/* Bad use: no name, and a name that is not one, are told, exit 1. */
TEST(examples_refuse_bad_arguments) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        const char *examples[] = { "examples/eventloop-epoll", "examples/eventloop-uv",
                                   "examples/eventloop-glib" };
        for (size_t i = 0; i < 3; i++) {
                char *exe = test_built(examples[i]);
                char *out = NULL;
                CHECK_EQ(test_sh(&out, 30, "'%s'", exe), 1);
                CHECK(strstr(out, "usage:") != NULL);
                free(out);
                CHECK_EQ(test_sh(&out, 30, "'%s' 'bad name'", exe), 1);
                CHECK(strstr(out, "register bad name:") != NULL);
                free(out);
                free(exe);
        }
        test_daemon_stop(&d);
}
