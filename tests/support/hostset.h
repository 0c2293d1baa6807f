/*
 * hostset.h — several "hosts" for tests: one real ipcfd each, with its own
 * runtime and state directories, its key made before it starts, and a
 * config that enrols the others (each at its UDP address and port).
 *
 * On 127.0.0.1 (different ports: no root needed), or each in its own
 * network namespace joined by veth pairs to a bridge-less star (root):
 * hostset_start(..., HOSTSET_NETNS). Namespaces and links are named from
 * the test's pid and a counter, so parallel runs never collide, and are
 * removed by hostset_stop() (and at exit, and by a signal's handler).
 *
 * A process talks to one daemon: hostset_enter(h) sets IPCF_RUNTIME_DIR
 * (and, for namespaces, enters the host's network namespace) in the
 * calling process, which is meant to be a child forked for that host.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcf.h"
#include "support/test.h"

#define HOSTSET_MAX 3

typedef struct hostset_host {
        char name[16];
        char state_dir[300];
        char key[48];            /* public key, base64 */
        char addr[32];           /* its IP address */
        uint16_t port;
        char netns[64];          /* "" on the loopback */
        test_daemon d;
        bool running;
} hostset_host;

typedef struct hostset {
        int n;
        bool netns;
        hostset_host h[HOSTSET_MAX];
        char scratch[256];
        const char *hosts_keys;  /* more lines of every daemon's [hosts] section, or NULL */
        unsigned dead_interval_ms; /* every daemon's [hosts] dead_interval_ms; 0: 2000 */
        const char *const *daemon_args; /* more arguments of the daemons started next
                                         * (NULL-ended: "--shared"), or NULL */
} hostset;

enum { HOSTSET_LOOPBACK = 0, HOSTSET_NETNS = 1 };

/* Make n hosts ("alpha", "beta", "gamma"): keys, addresses (namespaces if
 * asked and root: returns false without root). Daemons are not started. */
bool hostset_init(hostset *s, int n, int mode);
/* The usual pair: alpha and beta on the loopback (hostset_init), both
 * started (beta with rules_beta, e.g. its remote_allocate), both up. */
void hostset_start_two(hostset *s, const char *rules_beta);
/* Start host i with the others enrolled (with their addresses) and extra
 * config text appended (rules, [impair]...; may be NULL). */
void hostset_start(hostset *s, int i, const char *extra);
/* The same with a choice: enrol the hosts j whose bit (1 << j) is in mask,
 * with keys[j] in place of their key when keys and keys[j] are not NULL. */
void hostset_start_enrol(hostset *s, int i, const char *extra, unsigned mask, const char *const *keys);
/* Stop (SIGTERM) or kill (SIGKILL) host i's daemon. */
void hostset_stop_host(hostset *s, int i);
void hostset_kill_host(hostset *s, int i);
/* Stop every daemon, remove namespaces and directories. */
void hostset_stop(hostset *s);
/* In a child: talk to host i's daemon (and live in its namespace). */
void hostset_enter(const hostset *s, int i);
/* A program of the build run as a child of host i with argv (NULL-ended);
 * stdin/stdout: the given fds (-1: /dev/null). Returns the pid. */
pid_t hostset_spawn(const hostset *s, int i, const char *const *argv, int in_fd, int out_fd);
/* Host j's IPv4 address as host i reaches it ("10.199.k.n" over their veth
 * pair, "127.0.0.1" on the loopback), into out. */
void hostset_addr(const hostset *s, int i, int j, char *out, size_t size);
/* ipcf_alloc(name, q) in the calling host, again every 50 ms (at most 100
 * times) while the name is not known or its host not reachable yet: the
 * daemons' association and the name's registration come up on their own. */
int hostset_alloc(const char *name, const ipcf_qos *q);
/* ipcf_mbox_open(name, how) in the calling host, again every 50 ms (at most
 * 100 times) while the mailbox is not known there yet. */
int hostset_mbox_open(const char *name, int how);
/* Wait until host i's daemon lists every other host as up (bounded). */
bool hostset_wait_up(const hostset *s, int i, int timeout_ms);
