/*
 * fuzz-efcp-parse.c — libFuzzer target for the EFCP datagram parser and the
 * engine's input path.
 *
 * Each input is used three ways:
 *   1. as a raw datagram for the wire parser (header, trailer, every frame);
 *   2. as a raw datagram for a live association (almost always dropped for
 *      its CRC: this checks the drop path never crashes);
 *   3. as the frame area of a datagram that gets a valid header and CRC, so
 *      the fuzzer reaches the frame handlers of a live association (acks,
 *      data, credit, allocation, deallocation) with arbitrary contents.
 * The association lives across inputs (bounded state) and its clock moves
 * forward, so timers, loss detection and quarantine run too. Malformed input
 * must be dropped and counted, never crash, never leak, never grow memory.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "efcp/efcp.h"
#include "efcp/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static efcp_assoc *g_a;
static uint64_t g_now = 1000000;
static uint64_t g_pn = 1;

static void setup(void) {
        efcp_config c;
        efcp_config_default(&c);
        c.max_flows = 8;
        c.flow_window = 64;
        c.flow_send_buf = 64;
        c.max_msg = 16384;
        c.max_inflight = 256;
        if (efcp_assoc_new(&c, g_now, &g_a) < 0)
                __builtin_trap();
        efcp_flow *f;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 0};
        efcp_flow_open(g_a, 1, 2, &pol, &f);
        pol.flags = 0;
        pol.isn = 0xfffffff0u;
        efcp_flow_open(g_a, 3, 4, &pol, &f);
}

/* Lets the engine send (so acks refer to real packets) and drains events. */
static void churn(void) {
        static uint8_t out[2048];
        for (int i = 0; i < 8 && efcp_output(g_a, out, sizeof(out), g_now) > 0; i++)
                ;
        efcp_event ev;
        while (efcp_event_next(g_a, &ev))
                ;
        efcp_flow *f = efcp_flow_get(g_a, 1);
        if (f) {
                uint8_t m[64] = {0};
                efcp_flow_send(f, m, sizeof(m));
                while (efcp_flow_recv(f, out, sizeof(out)) >= 0)
                        ;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!g_a)
                setup();
        /* 1. the parser alone */
        efcp_hdr h;
        if (efcp_wire_get_hdr(data, size, &h) == 0)
                (void)efcp_wire_check_plain(data, size);
        size_t off = 0;
        efcp_frame fr;
        while (off < size) {
                int n = efcp_wire_get_frame(data + off, size - off, &fr);
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        /* 2. raw into the engine */
        efcp_input(g_a, data, size, g_now);
        /* 3. as frames inside a well-formed, correctly sealed datagram */
        static uint8_t dg[70000];
        if (size + EFCP_HDR_LEN + EFCP_CRC_LEN <= sizeof(dg)) {
                h = (efcp_hdr){.type = EFCP_TYPE_PLAIN, .version = EFCP_VERSION, .rx_index = 0,
                               .pn = g_pn++};
                efcp_wire_put_hdr(dg, &h);
                memcpy(dg + EFCP_HDR_LEN, data, size);
                efcp_wire_seal_plain(dg, EFCP_HDR_LEN + size);
                efcp_input(g_a, dg, EFCP_HDR_LEN + size + EFCP_CRC_LEN, g_now);
        }
        g_now += 100000 + (size ? data[0] * 10000ull : 0);
        efcp_timeout(g_a, g_now);
        churn();
        if (efcp_assoc_dead(g_a)) {
                g_a = efcp_assoc_free(g_a);
                g_pn = 1;
        }
        return 0;
}
