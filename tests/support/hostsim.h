/*
 * hostsim.h — two efcp_host objects (src/efcp/host.h) over the deterministic
 * network simulator (netsim.h): authenticated host associations on a virtual
 * clock.
 *
 * Host i has address {i} (one byte) and enrols the other by its public key.
 * hostsim_run pumps both hosts' output into the links (a datagram addressed
 * anywhere but the other host — a cookie reply to a forged source, say — is
 * counted in `elsewhere` and dropped), delivers, runs timers and jumps the
 * clock to the next event, calling the test's application at each step. A tap
 * sees (and may change or drop) every datagram before delivery, as an on-path
 * attacker would.
 *
 * Test support only: aborts on setup failure.
 */
#pragma once

#include "efcp/host.h"
#include "support/netsim.h"

typedef struct hostsim hostsim;
typedef uint64_t (*hostsim_app_fn)(hostsim *s, void *arg);
typedef bool (*hostsim_tap_fn)(hostsim *s, int to, uint8_t *buf, size_t *len, void *arg);

struct hostsim {
        netsim *net;
        efcp_host *h[2];
        efcp_peer *p[2];  /* p[i]: host i's view of the other host */
        uint8_t priv[2][32], pub[2][32];
        efcp_host_config cfg[2];
        uint64_t now;
        uint64_t elsewhere;
        hostsim_tap_fn tap;
        void *tap_arg;
        uint8_t buf[65536];
};

/* Both hosts with fresh keys from cfg (a template), each enrolling the other. */
void hostsim_init(hostsim *s, uint64_t seed, const efcp_host_config *cfg);
/* Replaces host i by a new instance with the same key (a restart) at now. */
void hostsim_restart(hostsim *s, int i);
void hostsim_deinit(hostsim *s);
/* Feeds a datagram to host `to` as if from address {from}. */
int hostsim_inject(hostsim *s, int to, int from, const void *d, size_t len);
/* Runs until app returns 0 (true) or the clock passes until (false). */
bool hostsim_run(hostsim *s, uint64_t until, hostsim_app_fn app, void *arg);
