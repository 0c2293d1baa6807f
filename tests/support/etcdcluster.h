/*
 * etcdcluster.h — a real etcd cluster for tests and benchmarks: N members
 * (1..ETCD_CLUSTER_MAX) of Debian's etcd 3.4 on loopback, each on its own
 * address 127.X.Y.(i+1) (X, Y drawn per cluster, so clusters of concurrent
 * test runs never meet) at ports 2379 (clients) and 2380 (peers), with data
 * in a private directory under $TEST_SCRATCH (or /tmp).
 *
 * TEARDOWN WHATEVER HAPPENS: every member gets PR_SET_PDEATHSIG(SIGKILL), so
 * it dies with the process that started it (a test case killed by its alarm
 * takes its cluster along), and it runs in that process's group, which the
 * harness kills after each case. etcd_cluster_stop() kills and reaps them
 * (bounded) and removes the data.
 *
 * Every wait is bounded; a failure to start prints why and exits 1 (a test
 * case fails; benchmarks link this too, so it does not use test.h).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define ETCD_CLUSTER_MAX 3

typedef struct etcd_cluster {
        char dir[256];
        int n;
        bool tls;                              /* clients speak https with certificates */
        char ca[300], cert[300], key[300];     /* TLS: files for a client (in dir) */
        char host[ETCD_CLUSTER_MAX][32];       /* 127.X.Y.(i+1) */
        char client_url[ETCD_CLUSTER_MAX][64]; /* http://127.X.Y.(i+1):2379 */
        pid_t pid[ETCD_CLUSTER_MAX];           /* 0: not running */
} etcd_cluster;

/* Start n members and wait (at most 30 s) until the cluster has a leader and
 * serves a linearizable read. */
void etcd_cluster_start(etcd_cluster *c, int n);
/* The same with TLS for clients: a CA, a server certificate for the
 * members' addresses and a client certificate are made with openssl(1);
 * members require a client certificate signed by the CA
 * (--client-cert-auth). client_url[] are https://; c->ca, c->cert, c->key
 * are the files a client needs. */
void etcd_cluster_start_tls(etcd_cluster *c, int n);
/* SIGKILL member i (no clean shutdown) and reap it. */
void etcd_cluster_kill(etcd_cluster *c, int i);
/* Start member i again on its data (after etcd_cluster_kill). Does not wait. */
void etcd_cluster_restart(etcd_cluster *c, int i);
/* Every member SIGKILLed, its data removed, the cluster started anew on the
 * same addresses (an operator's rebuilt or replaced cluster: empty, its
 * revisions counting from 1 again); waits until every member is ready. */
void etcd_cluster_wipe(etcd_cluster *c);
/* Wait until a linearizable read succeeds through member i (or any member
 * when i < 0), at most timeout_ms. Returns true if it did. */
bool etcd_cluster_wait_ready(etcd_cluster *c, int i, int timeout_ms);
/* Kill every member, reap them, remove the data directory. */
void etcd_cluster_stop(etcd_cluster *c);
