/*
 * eventloop-uv.c — an echo server on libuv: the registration and each flow
 * are watched with uv_poll_t (see eventloop-echo.h for the rules of a port
 * in a loop). A flow has two poll handles, one on each of its descriptors
 * (libuv binds a uv_poll_t to one descriptor), and runs one at a time.
 *
 *   eventloop-uv NAME [FLOWS]   serve NAME; with FLOWS, exit after that
 *                               many flows ended, printing the totals
 *
 * Built from an installed ipcf (Debian: libuv1-dev):
 *   cc eventloop-uv.c $(pkg-config --cflags --libs ipcf libuv) -o eventloop-uv
 */
#include <uv.h>

#include "eventloop-echo.h"

typedef struct uv_flow {
        echo_flow *flow;
        uv_poll_t read_side, send_side;
        int closing;             /* handles still to close before freeing */
} uv_flow;

static echo_totals totals;
static unsigned long max_flows, accepted;
static int reg;
static uv_poll_t reg_poll;

static void on_closed(uv_handle_t *h) {
        uv_flow *u = h->data;
        if (--u->closing == 0) {
                echo_flow_end(u->flow, &totals);
                free(u);
                if (max_flows && totals.flows == max_flows)
                        uv_close((uv_handle_t *)&reg_poll, NULL); /* nothing left: the loop ends */
        }
}

static void on_flow_ready(uv_poll_t *p, int status, int events) {
        uv_flow *u = p->data;
        enum echo_want want = status < 0 ? ECHO_DONE : echo_flow_run(u->flow, &totals);
        if (want == ECHO_DONE) {
                u->closing = 2;
                uv_close((uv_handle_t *)&u->read_side, on_closed);
                uv_close((uv_handle_t *)&u->send_side, on_closed);
                return;
        }
        uv_poll_t *next = want == ECHO_WANT_WRITE ? &u->send_side : &u->read_side;
        if (next != p) {
                uv_poll_stop(p);
                uv_poll_start(next, UV_READABLE, on_flow_ready);
        }
}

static void on_request(uv_poll_t *p, int status, int events) {
        echo_flow *f = echo_accept(reg);
        if (!f)
                return;
        uv_flow *u = calloc(1, sizeof(*u));
        if (!u || uv_poll_init(p->loop, &u->read_side, echo_flow_fd(f, ECHO_WANT_READ)) < 0) {
                free(u);
                echo_flow_end(f, &totals);
                return;
        }
        u->flow = f;
        u->read_side.data = u->send_side.data = u;
        if (uv_poll_init(p->loop, &u->send_side, echo_flow_fd(f, ECHO_WANT_WRITE)) < 0) {
                u->closing = 1;
                uv_close((uv_handle_t *)&u->read_side, on_closed);
                return;
        }
        uv_poll_start(&u->read_side, UV_READABLE, on_flow_ready);
        if (max_flows && ++accepted == max_flows)
                uv_poll_stop(p); /* accepted all it will serve */
}

int main(int argc, char **argv) {
        reg = echo_start(argc, argv, "eventloop-uv", &max_flows);
        if (reg < 0)
                return 1;
        uv_loop_t *loop = uv_default_loop();
        int r = uv_poll_init(loop, &reg_poll, ipcf_fd(reg));
        if (r < 0 || (r = uv_poll_start(&reg_poll, UV_READABLE, on_request)) < 0) {
                fprintf(stderr, "eventloop-uv: %s\n", uv_strerror(r));
                return 1;
        }
        uv_run(loop, UV_RUN_DEFAULT);
        echo_report(&totals);
        uv_loop_close(loop);
        ipcf_dealloc(reg, NULL);
        return 0;
}
