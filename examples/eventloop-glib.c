/*
 * eventloop-glib.c — an echo server on a GLib main loop: the registration
 * and each flow are watched with g_unix_fd_add (see eventloop-echo.h for the
 * rules of a port in a loop). A flow's source is replaced when it switches
 * between its read and its send descriptor.
 *
 *   eventloop-glib NAME [FLOWS]   serve NAME; with FLOWS, exit after that
 *                                 many flows ended, printing the totals
 *
 * Built from an installed ipcf (Debian: libglib2.0-dev):
 *   cc eventloop-glib.c $(pkg-config --cflags --libs ipcf glib-2.0) -o eventloop-glib
 */
#include <glib-unix.h>
#include <glib.h>

#include "eventloop-echo.h"

static echo_totals totals;
static unsigned long max_flows, accepted;
static int reg;
static GMainLoop *main_loop;

static gboolean on_flow_ready(gint fd, GIOCondition cond, gpointer data);

/* Watch the flow's descriptor for want (a new source). */
static gboolean watch(echo_flow *f, enum echo_want want) {
        int fd = echo_flow_fd(f, want);
        if (fd < 0)
                return FALSE;
        g_unix_fd_add(fd, G_IO_IN, on_flow_ready, f);
        f->loop_data = (void *)(intptr_t)want;
        return TRUE;
}

static void flow_end(echo_flow *f) {
        echo_flow_end(f, &totals);
        if (max_flows && totals.flows == max_flows)
                g_main_loop_quit(main_loop);
}

static gboolean on_flow_ready(gint fd, GIOCondition cond, gpointer data) {
        echo_flow *f = data;
        enum echo_want want = echo_flow_run(f, &totals);
        if (want == ECHO_DONE) {
                flow_end(f);
                return G_SOURCE_REMOVE;
        }
        if (want == (enum echo_want)(intptr_t)f->loop_data)
                return G_SOURCE_CONTINUE;
        if (!watch(f, want))
                flow_end(f);
        return G_SOURCE_REMOVE; /* the other descriptor's source goes on */
}

static gboolean on_request(gint fd, GIOCondition cond, gpointer data) {
        echo_flow *f = echo_accept(reg);
        if (f && !watch(f, ECHO_WANT_READ))
                flow_end(f);
        if (f && max_flows && ++accepted == max_flows)
                return G_SOURCE_REMOVE; /* accepted all it will serve */
        return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv) {
        reg = echo_start(argc, argv, "eventloop-glib", &max_flows);
        if (reg < 0)
                return 1;
        main_loop = g_main_loop_new(NULL, FALSE);
        g_unix_fd_add(ipcf_fd(reg), G_IO_IN, on_request, NULL);
        g_main_loop_run(main_loop);
        echo_report(&totals);
        g_main_loop_unref(main_loop);
        ipcf_dealloc(reg, NULL);
        return 0;
}
