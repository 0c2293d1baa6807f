/*
 * fuzz-efcp-host.c — libFuzzer target for everything a host takes from the
 * network (host.h): handshake initiations, responses, cookie replies and
 * authenticated datagrams, as a whole.
 *
 * Two hosts are set up once, in memory, with a real handshake and an open
 * flow between them. Each input is fed to host B four ways: raw, and with its
 * first byte forced to each handshake type and to the AEAD type (so the
 * fuzzer reaches every parser past the type check); then both hosts exchange
 * what they have to say and their clocks move on. Nothing may crash, leak or
 * grow, and the real association must stay usable: garbage never
 * authenticates.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "efcp/host.h"
#include "efcp/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static efcp_host *g_h[2];
static efcp_peer *g_p[2];
static uint64_t g_now = 1000000000ull;

static void exchange(void) {
        static uint8_t buf[2048];
        for (int round = 0; round < 8; round++)
                for (int i = 0; i < 2; i++) {
                        int n;
                        efcp_addr dst;
                        uint8_t src = (uint8_t)i;
                        while ((n = efcp_host_output(g_h[i], buf, sizeof(buf), g_now, &dst)) > 0)
                                if (dst.len == 1 && dst.bytes[0] == (uint8_t)!i)
                                        efcp_host_input(g_h[!i], buf, (size_t)n, &src, 1, g_now);
                }
        efcp_host_event ev;
        for (int i = 0; i < 2; i++)
                while (efcp_host_event_next(g_h[i], &ev))
                        if (ev.type == EFCP_HOST_EV_ASSOC_RETIRED)
                                efcp_assoc_free(ev.assoc);
}

static void setup(void) {
        uint8_t priv[2][32], pub[2][32];
        for (int i = 0; i < 2; i++)
                noise_keypair(priv[i], pub[i]);
        for (int i = 0; i < 2; i++) {
                efcp_host_config c;
                efcp_host_config_default(&c);
                c.assoc.max_flows = 4;
                c.assoc.flow_window = 64;
                c.assoc.flow_send_buf = 64;
                c.assoc.max_msg = 8192;
                c.handshakes_per_sec = 20;
                memcpy(c.private_key, priv[i], 32);
                uint8_t addr = (uint8_t)!i;
                if (efcp_host_new(&c, g_now, &g_h[i]) < 0 || efcp_host_add_peer(g_h[i], pub[!i], &addr, 1, &g_p[i]) < 0)
                        abort();
        }
        efcp_peer_connect(g_p[0], g_now);
        exchange();
        efcp_assoc *a = efcp_peer_assoc(g_p[0]);
        efcp_flow *f;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 1};
        if (!a || efcp_flow_open(a, 1, 2, &pol, &f) < 0)
                abort();
        efcp_flow_send(f, "hello", 5);
        exchange();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!g_h[0])
                setup();
        static uint8_t d[70000];
        uint8_t src = (uint8_t)(size ? data[0] % 3 : 0); /* the peer's address, or another */
        efcp_host_input(g_h[1], data, size, &src, 1, g_now);
        if (size && size <= sizeof(d)) {
                static const uint8_t types[] = {2, 3, 4, 5};
                for (size_t k = 0; k < sizeof(types); k++) {
                        memcpy(d, data, size);
                        d[0] = types[k];
                        if (size > 1)
                                d[1] = 1;
                        efcp_host_input(g_h[1], d, size, &src, 1, g_now);
                }
        }
        g_now += 1000000 + (size ? data[size - 1] * 100000ull : 0);
        exchange();
        /* the real association still carries data */
        efcp_assoc *a = efcp_peer_assoc(g_p[0]);
        efcp_flow *f = a ? efcp_flow_get(a, 1) : NULL;
        if (f)
                efcp_flow_send(f, "x", 1);
        efcp_assoc *b = efcp_peer_assoc(g_p[1]);
        efcp_flow *r = b ? efcp_flow_get(b, 2) : NULL;
        uint8_t buf[8192];
        while (r && efcp_flow_recv(r, buf, sizeof(buf)) >= 0)
                ;
        efcp_event ev;
        for (int i = 0; i < 2; i++)
                while (efcp_peer_assoc(g_p[i]) && efcp_event_next(efcp_peer_assoc(g_p[i]), &ev))
                        ;
        return 0;
}
