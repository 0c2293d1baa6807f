/*
 * hostsim.c — two authenticated hosts over netsim (see hostsim.h).
 */
#include "support/hostsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "efcp/noise.h"

static void host_up(hostsim *s, int i) {
        s->cfg[i].clock_offset_ns = 1000000000ull * 1000 + s->now; /* a wall clock that moves on */
        memcpy(s->cfg[i].private_key, s->priv[i], 32);
        if (efcp_host_new(&s->cfg[i], s->now, &s->h[i]) < 0) {
                fprintf(stderr, "hostsim: efcp_host_new failed\n");
                abort();
        }
        uint8_t addr = (uint8_t)!i;
        if (efcp_host_add_peer(s->h[i], s->pub[!i], &addr, 1, &s->p[i]) < 0) {
                fprintf(stderr, "hostsim: efcp_host_add_peer failed\n");
                abort();
        }
}

void hostsim_init(hostsim *s, uint64_t seed, const efcp_host_config *cfg) {
        memset(s, 0, offsetof(hostsim, buf));
        s->net = netsim_new(seed);
        for (int i = 0; i < 2; i++) {
                noise_keypair(s->priv[i], s->pub[i]);
                s->cfg[i] = *cfg;
        }
        for (int i = 0; i < 2; i++)
                host_up(s, i);
}

void hostsim_restart(hostsim *s, int i) {
        s->h[i] = efcp_host_free(s->h[i]);
        host_up(s, i);
}

void hostsim_deinit(hostsim *s) {
        for (int i = 0; i < 2; i++) {
                efcp_host_event ev;
                while (efcp_host_event_next(s->h[i], &ev))
                        if (ev.type == EFCP_HOST_EV_ASSOC_RETIRED)
                                efcp_assoc_free(ev.assoc);
                s->h[i] = efcp_host_free(s->h[i]);
        }
        netsim_free(s->net);
}

int hostsim_inject(hostsim *s, int to, int from, const void *d, size_t len) {
        uint8_t addr = (uint8_t)from;
        return efcp_host_input(s->h[to], d, len, &addr, 1, s->now);
}

static void pump(hostsim *s) {
        for (int i = 0; i < 2; i++) {
                int len;
                efcp_addr dst;
                while ((len = efcp_host_output(s->h[i], s->buf, sizeof(s->buf), s->now, &dst)) > 0) {
                        if (dst.len == 1 && dst.bytes[0] == (uint8_t)!i)
                                netsim_send(s->net, i, s->buf, (size_t)len, s->now);
                        else
                                s->elsewhere++;
                }
        }
}

bool hostsim_run(hostsim *s, uint64_t until, hostsim_app_fn app, void *arg) {
        for (;;) {
                pump(s);
                uint64_t wake = app ? app(s, arg) : UINT64_MAX;
                if (wake == 0)
                        return true;
                pump(s);
                uint64_t t = netsim_next(s->net);
                for (int i = 0; i < 2; i++) {
                        uint64_t d = efcp_host_next_deadline(s->h[i]);
                        if (d < t)
                                t = d;
                }
                if (wake < t)
                        t = wake;
                if (t <= s->now)
                        t = s->now + 1000;
                if (t > until) {
                        s->now = until;
                        return false;
                }
                s->now = t;
                int to;
                size_t len;
                while ((len = netsim_recv(s->net, s->now, &to, s->buf, sizeof(s->buf))) > 0)
                        if (!s->tap || s->tap(s, to, s->buf, &len, s->tap_arg))
                                hostsim_inject(s, to, !to, s->buf, len);
                for (int i = 0; i < 2; i++)
                        efcp_host_timeout(s->h[i], s->now);
        }
}
